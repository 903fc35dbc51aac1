# Chaos test of high availability (issue 19, item 6): three dirconnd instances on one lease
# (the cloud's, or etcd's with the argument "etcd"; a 6 s lease) over the slapd AD LDS fixture
# and dirconn-cloud, while a writer process adds, modifies and deletes directory users every
# ~200 ms (ldapmodify; each change logged). Trials, each on the active of the moment:
#   SIGSTOP  until another instance holds the lease, then SIGCONT;
#   kill -9  then the instance is restarted;
#   SIGTERM  then the instance is restarted.
# During each trial every instance's role is sampled every 50 ms over its admin socket; a sweep
# with two "active" is read again in the reverse order and counts when that confirms it. At the
# end the writer stops, a last change is made and waited for in the cloud (the active's
# incremental covered everything before it), and the cloud is compared with the directory by
# the oracle (sync_check.py --report): duplicates (an externalId twice), lost updates (a user
# added or a value set in the directory that the cloud lacks), stale values (the cloud holds a
# value the writer had replaced), orphans (cloud objects with this directory's externalId that
# the directory deleted). Then a `sync-now --full` and the oracle once more. Each count must be
# 0, as must the dual-active samples and the writes the cloud accepted from an instance after
# another took the lease (stale writes). Prints the chaos table.
#   bash ha_chaos.sh [cloud|etcd]
# HA_LEASE (default 6) is the lease duration in seconds; HA_CHAOS_TRIALS (default 5) the trials
# of each experiment.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/ha_lib.sh"
BACKEND=${1:-cloud}
LEASE=${HA_LEASE:-6}
TRIALS=${HA_CHAOS_TRIALS:-5}
LIMIT=$((LEASE + 2 + 10)) # lease + failover_interval + jitter, with room for a loaded host
T_BEGIN=$SECONDS

if [[ $BACKEND == etcd ]]; then
	source "$(dirname "${BASH_SOURCE[0]}")/etcd_lib.sh"
	ha_test_begin ha-chaos-etcd "chaos_cleanup etcd_stop_all"
	etcd_start_cluster "$work/etcd" 1
	lease_ini="lease = etcd
etcd_endpoints = $ETCD_ENDPOINTS"
else
	ha_test_begin ha-chaos chaos_cleanup
	lease_ini="lease = cloud"
fi
# The writer deletes a few users a second and a takeover's first sync may carry the deletions
# of a whole failover: the delete threshold is not what this test is about.
ha_setup 3 "[ha]
$lease_ini
lease_duration = ${LEASE}s
failover_interval = 0s
jitter = 200ms
[policy]
delete_threshold = 1000"

WRITER_PID=
chaos_cleanup() {
	touch "$work/writer.stop"
	[[ -n $WRITER_PID ]] && { kill "$WRITER_PID" 2>/dev/null || true; wait "$WRITER_PID" 2>/dev/null || true; }
	WRITER_PID=
	[[ -n ${1-} ]] && "$1"
	return 0
}

holder() {
	if [[ $BACKEND == etcd ]]; then
		local h
		h=$(etcd_ctl get /dirconn/acme/leader --print-value-only 2>/dev/null | head -1)
		[[ -n $h ]] || { echo none; return 0; }
		ha_index "$h"
	else
		ha_cloud_holder
	fi
}
holder_is_other() { local h; h=$(holder); [[ $h != none && $h != "$1" ]]; }
fenced() { ha_fenced 2>/dev/null || echo 0; }

# start I: ha_start, and the pid where the sampler finds it (a stopped process is not asked)
start() { ha_start "$1" && echo "${HA_PID[$1]}" >"$work/pid-$1"; }

# ---- the directory writer: every ~200 ms one change, logged as
#   EPOCH SEQ add|modify|delete DN VALUE RC
# adds go to the Employees OU (mail chaos-SEQ@chaos.dirconn.test, displayName "Chaos Add SEQ"),
# modifications set displayName "Chaos Mod SEQ" on a user it added or one of 30 fixture users,
# deletions take a user it added (mostly) or a fixture user. It never touches the probe user.
emp=$(json "$LDSFX_MANIFEST" "j['ous']['Employees']['dn']")
mapfile -t fixture_users < <(ha_user_dns 31)
probe=${fixture_users[0]}
pool=("${fixture_users[@]:1}")
writer() {
	local seq=0 r dn op val rc ldif
	local -a live=() pool_left=("${pool[@]}")
	while [[ ! -e $work/writer.stop ]]; do
		seq=$((seq + 1))
		r=$((RANDOM % 10))
		if ((r < 4 || ${#live[@]} < 3)); then
			op=add
			dn="CN=Chaos $seq,$emp"
			val="Chaos Add $seq"
			ldif="dn: $dn
changetype: add
objectClass: user
userPrincipalName: chaos-$seq@chaos.dirconn.test
givenName: Chaos
sn: Writer $seq
displayName: $val
mail: chaos-$seq@chaos.dirconn.test
msDS-UserAccountDisabled: FALSE"
		elif ((r < 8)); then
			op=modify
			if ((RANDOM % 2 == 0 && ${#pool_left[@]} > 0)); then
				dn=${pool_left[RANDOM % ${#pool_left[@]}]}
			else
				dn=${live[RANDOM % ${#live[@]}]}
			fi
			val="Chaos Mod $seq"
			ldif="dn: $dn
changetype: modify
replace: displayName
displayName: $val"
		else
			op=delete
			local k
			if ((RANDOM % 4 == 0 && ${#pool_left[@]} > 10)); then
				k=$((RANDOM % ${#pool_left[@]}))
				dn=${pool_left[k]}
				pool_left=("${pool_left[@]:0:k}" "${pool_left[@]:k+1}")
			else
				k=$((RANDOM % ${#live[@]}))
				dn=${live[k]}
				live=("${live[@]:0:k}" "${live[@]:k+1}")
			fi
			val=-
			ldif="dn: $dn
changetype: delete"
		fi
		rc=0
		printf '%s\n' "$ldif" | LDAPTLS_CACERT=$LDSFX_CA_FILE timeout 20 ldapmodify -x -H "$LDSFX_URL_TLS" \
			-D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" >/dev/null 2>>"$work/writer.err" || rc=$?
		[[ $op == add && $rc == 0 ]] && live+=("$dn")
		printf '%s\t%d\t%s\t%s\t%s\t%d\n' "$(date +%s.%N)" "$seq" "$op" "$dn" "$val" "$rc" >>"$work/writer.log"
		sleep 0.2 # the pace of the changes (the stimulus), not a wait for an event
	done
}

# ---- the role sampler: from now until $1.stop exists, every 50 ms each instance's role over
# its admin socket; an instance whose process is stopped (SIGSTOP) is "stopped" and not asked.
# Writes "sweeps dual" to $1 and each sweep to $1.log.
sampler_start() {
	rm -f "$1" "$1.stop"
	"$PY" "$(dirname "${BASH_SOURCE[0]}")/ha_roles.py" "$1" "$HA_N" "$work" &
	SAMPLER_PID=$!
}
sampler_stop() {
	touch "$1.stop"
	wait "$SAMPLER_PID" 2>/dev/null || true
}

# ---- start: three instances, one active, the writer
for ((i = 1; i <= 3; i++)); do start "$i"; done
check "one of three instances becomes active" ha_wait_one_active 30
first_sync_done() { grep -q "sync done in" "$work/dirconnd-$HA_ACTIVE.log"; }
check "the active's first sync ends" wait_until 120 first_sync_done
rm -f "$work/writer.stop"
writer &
WRITER_PID=$!
writer_ran() { [[ -s $work/writer.log ]]; }
check "the directory writer makes changes" wait_until 30 writer_ran

# trial EXP SIG: one trial of experiment EXP (stop, kill, term) on the active; appends
# "takeover sweeps dual stale fenced" to $work/EXP.trials
trial() {
	local exp=$1 sig=$2 a b from fenced0 takeover stale fenced sweeps dual rc
	check "$exp: exactly one active" ha_wait_one_active 60 || return 0
	a=$HA_ACTIVE
	for ((i = 1; i <= 3; i++)); do
		[[ $i == "$a" ]] || check "$exp: conn-$i is standby" ha_wait_role "$i" standby 60
	done
	fenced0=$(fenced)
	local sample=$work/sample-$sig-$n
	sampler_start "$sample"
	ha_signal "$a" "$sig"
	check "$exp: another instance holds the lease (conn-$a had it)" wait_until "$LIMIT" holder_is_other "$a"
	# the writes of conn-$a that the cloud accepts from now on are stale writes
	from=$(ha_cloud_log_lines)
	b=$(holder)
	ha_failover_time "$a" "$LIMIT" || true
	takeover=$HA_FAILOVER
	check "$exp: the new holder conn-$b reports active ($takeover s)" ha_wait_role "$b" active 30
	case $sig in
	STOP)
		ha_signal "$a" CONT
		check "$exp: conn-$a reports standby after SIGCONT" ha_wait_role "$a" standby 30
		# whatever it still tries, it tries before its interrupted work ends: wait for that
		no_sync_running() { [[ $(json "$(ha_status "$a")" "j['current'] is None" 2>/dev/null) == True ]]; }
		check "$exp: conn-$a runs no sync" wait_until 60 no_sync_running
		;;
	KILL)
		start "$a"
		check "$exp: conn-$a restarts as standby" ha_wait_role "$a" standby 30
		;;
	TERM)
		rc=0
		ha_wait_exit "$a" || rc=$?
		check_eq "$exp: conn-$a exits 0 after SIGTERM" 0 "$rc"
		start "$a"
		check "$exp: conn-$a restarts as standby" ha_wait_role "$a" standby 30
		;;
	esac
	check_eq "$exp: the lease stays with conn-$b" "$b" "$(holder)"
	sampler_stop "$sample"
	sweeps=0 dual=-1 # the sampler failed
	[[ -s $sample ]] && read -r sweeps dual <"$sample"
	check_eq "$exp: no sweep saw two actives ($sweeps sweeps)" 0 "$dual"
	{ grep DUAL "$sample.log" || true; } | head -3 | sed 's/^/#   /'
	stale=$(ha_cloud_writes_by "$a" "$from" | wc -l)
	check_eq "$exp: the cloud accepted no write of conn-$a after conn-$b took the lease" 0 "$stale"
	ha_cloud_writes_by "$a" "$from" | head -3 | sed 's/^/#   /'
	fenced=$(($(fenced) - fenced0))
	echo "# $exp trial $n: SIG$sig conn-$a -> conn-$b in $takeover s; $sweeps sweeps, $dual dual; $stale stale writes accepted; $fenced fenced rejections"
	echo "$takeover $sweeps $dual $stale $fenced" >>"$work/$exp.trials"
}

for exp in SIGSTOP:STOP "kill -9:KILL" SIGTERM:TERM; do
	name=${exp%%:*}
	: >"$work/$name.trials"
	for ((n = 1; n <= TRIALS; n++)); do trial "$name" "${exp##*:}"; done
done

# ---- the end state
touch "$work/writer.stop"
wait "$WRITER_PID" 2>/dev/null || true
WRITER_PID=
echo "# the writer made $(wc -l <"$work/writer.log") changes ($(awk -F'\t' '$6 != 0' "$work/writer.log" | wc -l) refused or failed): $(cut -f3 "$work/writer.log" | sort | uniq -c | tr -s ' \n' ' ')"
check "one active after the trials" ha_wait_one_active 60
a=$HA_ACTIVE
last="Chaos End $RANDOM"
ha_set_attr "$probe" displayName "$last"
check "the last change reaches the cloud (the active's incremental covers the writer's changes)" \
	ha_wait_cloud_count "displayName eq \"$last\"" 1 60
idle() { [[ $(json "$(ha_status "$a")" "j['current'] is None" 2>/dev/null) == True ]]; }
check "the active's sync ends" wait_until 60 idle

# oracle WHEN: sync_check.py --report, then the counts classified with the writer's log
# (lost: an add or the directory's value the cloud lacks; stale: the cloud holds a value the
# writer had replaced); prints "lost stale duplicates orphans"
oracle() {
	sync_check --report "$work/oracle-$1.json" >"$work/oracle-$1.out" || true
	sed 's/^/#   /' "$work/oracle-$1.out" | grep -v '^#   ok - ' | head -8 >&2
	"$PY" - "$work/oracle-$1.json" "$work/writer.log" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
history = {}
for line in open(sys.argv[2]):
    t, seq, op, dn, val, rc = line.rstrip("\n").split("\t")
    if rc == "0" and op != "delete":
        history.setdefault(dn.lower(), []).append(val)
lost = len(r["missing_users"])
stale = 0
for d in r["differing_users"]:
    got = d["got"].get("displayName")
    older = history.get(d["dn"].lower(), [])[:-1]
    if got is not None and got in older:
        stale += 1
    else:
        lost += 1
orphans = len(r["extra_users"]) + len(r["extra_groups"]) + len(r["extra_contacts"])
print(lost, stale, len(r["duplicates"]), orphans)
EOF
}
read -r lost stale_v dups orphans < <(oracle incremental)
check_eq "after the incremental: no lost update" 0 "$lost"
check_eq "after the incremental: no stale value" 0 "$stale_v"
check_eq "after the incremental: no duplicate" 0 "$dups"
check_eq "after the incremental: no orphan" 0 "$orphans"
check "after the incremental: the oracle agrees" grep -q ' 0 failed$' "$work/oracle-incremental.out"

echo "# $(date -u +%T.%N | cut -c1-12) test: sync-now --full" >>"$work/dirconnd-$a.log"
run_capture full dirconnctl sync-now --full --socket "$(ha_sock "$a")"
check_eq "sync-now --full on the active" 0 "$full_rc"
[[ $full_rc == 0 ]] || echo "# $full_out $full_err"
full_done() { ha_log_since "$a" "test: sync-now --full" | grep -q -E "full sync done in|sync ended"; }
check "the full sync ends" wait_until 120 full_done
check "it succeeds" grep -q "full sync done in" <(ha_log_since "$a" "test: sync-now --full")
read -r lost_f stale_f dups_f orphans_f < <(oracle full)
check_eq "after a full sync: no lost update" 0 "$lost_f"
check_eq "after a full sync: no stale value" 0 "$stale_f"
check_eq "after a full sync: no duplicate" 0 "$dups_f"
check_eq "after a full sync: no orphan" 0 "$orphans_f"

# ---- the chaos table
"$PY" - "$BACKEND" "$LEASE" "$work" "$lost" "$stale_v" "$dups" "$orphans" <<'EOF'
import math, sys
backend, lease, work = sys.argv[1], sys.argv[2], sys.argv[3]
lost, stale_v, dups, orphans = sys.argv[4:8]
def pct(t, p):
    k = max(0, min(len(t) - 1, math.ceil(p / 100 * len(t)) - 1))
    return "%.2f" % t[k]
rows = []
tot = [0, 0, 0, 0, 0]
for exp in ("SIGSTOP", "kill -9", "SIGTERM"):
    tr = [l.split() for l in open(f"{work}/{exp}.trials") if l.strip()]
    t = sorted(float(x[0]) for x in tr if x[0] != "timeout")
    s = [sum(int(x[k]) for x in tr) for k in (1, 2, 3, 4)]
    tot[0] += len(tr)
    for k in range(4):
        tot[k + 1] += s[k]
    rows.append((exp, len(tr), pct(t, 50) if t else "-", "%.2f" % t[-1] if t else "-", s[1], s[2],
                 s[3] if backend == "cloud" else "n/a", "", "", ""))
rows.append(("end state", tot[0], "", "", tot[2], tot[3], tot[4] if backend == "cloud" else "n/a",
             lost, dups, orphans))
print(f"# chaos table ({backend} lease, {lease} s; stale values at the end: {stale_v}):")
hdr = ("experiment", "trials", "takeover p50 (s)", "max (s)", "dual-active samples",
       "stale writes accepted", "fenced rejections", "lost updates", "duplicates", "orphans")
print("# | " + " | ".join(hdr) + " |")
print("# |" + "|".join("---" for _ in hdr) + "|")
for r in rows:
    print("# | " + " | ".join(str(x) for x in r) + " |")
EOF
check_eq "no libproxy helper got stuck or outlived its dirconnd" "" "$(ha_stuck_children)"
echo "# wall time: $((SECONDS - T_BEGIN)) s"
finish
