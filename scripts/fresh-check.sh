#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through trap, step and in_root
# Check the README's two commands on a fresh, minimal Debian 12: build a minbase root with
# debootstrap from this machine's own apt sources, clone the repository into it, and run
# `./scripts/demo.sh` and `./scripts/test.sh` in it as root. Prints each step's result and time.
# Not run by CI: it needs root, debootstrap and the Debian archive, and takes about as long as
# the whole test suite plus the installation.
#
#   scripts/fresh-check.sh [--dir DIR] [--reuse] [--rev REV] [--locale LOCALE]
#                          [--only demo|test] [-- CTEST-ARGUMENTS...]
#
#   --dir DIR        where the root (DIR/root) and the logs (DIR/logs/TIME/) are kept;
#                    default /var/tmp/dirconn-fresh
#   --reuse          use the root a previous run left in DIR (its packages stay installed);
#                    without it the root is removed and debootstrapped anew
#   --rev REV        the commit to clone (default HEAD); uncommitted changes are not checked
#   --locale LOCALE  run the commands with LANG and LC_ALL set to LOCALE (default: both unset,
#                    as in a fresh root's shell; C and C.UTF-8 need no locales package)
#   --only demo|test run only one of the two commands
#   -- ARGS          passed on to scripts/test.sh (ctest arguments: -R NAME to re-run one test)
#
# How the root is set up, and why:
# - The mirror is the first Debian entry for bookworm in /etc/apt/sources.list and
#   /etc/apt/sources.list.d/*.list|*.sources (one-line and deb822 formats); the root gets the
#   same Debian entries (bookworm, -updates, -security) as its /etc/apt/sources.list, a copy
#   of /etc/resolv.conf, and the site's own CA certificates from
#   /usr/local/share/ca-certificates (a TLS-inspecting proxy's CA: without it npm cannot reach
#   its registry from this site, as on any new machine of the site until its administrator
#   adds it). Nothing else of the host is copied.
# - The repository is cloned with the host's git (a minbase root has no git) into /root/dirconn:
#   a fresh clone of the commit, so what is checked is what is committed.
# - The network: scripts/install-deps.sh, which both commands run first, needs the Debian
#   archive (apt-get) and the npm registry (npm ci for tests/integration/scim_ext). So it runs
#   once in the root with the host's network ("install" below). The two README commands then
#   run in a network namespace of their own (unshare --net) with only the loopback interface
#   up: their own install-deps.sh finds everything installed, and every server the demo and the
#   tests start (Samba AD DC on 389/636, slapd, etcd, squid, dirconn-cloud) is apart from the
#   host's, so nothing on the host or in another test run can hold their ports, and a test
#   that needs more than loopback fails here.
# - Package scripts must not start the directory servers in the host's network during the
#   install (there is no systemd in a chroot, so install-deps.sh cannot stop them): the root
#   has a /usr/sbin/policy-rc.d that refuses every service start, as Debian's chroot tools do.
# - /proc (proc), /sys (sysfs), /dev (a tmpfs with null, zero, full, random, urandom, tty, a
#   private devpts and /dev/shm) and /tmp (tmpfs) are mounted in the root for the run and
#   unmounted on exit (trap), also after a failure or an interrupt; processes left in the root
#   are ended first. When the tests fail, the test directories they kept in /tmp are copied to
#   the logs before /tmp goes away.
# - The commands run with a clean environment (env -i: HOME, PATH, TERM, and LANG/LC_ALL only
#   with --locale).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
codename=bookworm

usage() { sed -n '8,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
base=/var/tmp/dirconn-fresh
reuse=no
rev=HEAD
only=
locale=
ctest_args=()
while (($#)); do
	case $1 in
	--dir) base=${2:?--dir needs a directory}; shift 2 ;;
	--reuse) reuse=yes; shift ;;
	--rev) rev=${2:?--rev needs a commit}; shift 2 ;;
	--locale) locale=${2:?--locale needs a locale}; shift 2 ;;
	--only)
		only=${2:-}
		[[ $only == demo || $only == test ]] || { usage >&2; exit 2; }
		shift 2
		;;
	--) shift; ctest_args=("$@"); break ;;
	-h | --help) usage; exit 0 ;;
	*) echo "fresh-check: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done

die() { echo "fresh-check: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot, mount, unshare)"
for c in git chroot unshare mount umount ip; do
	command -v "$c" >/dev/null || die "$c is missing on this machine"
done
if ! command -v debootstrap >/dev/null; then
	echo "fresh-check: installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
commit=$(git -C "$top" rev-parse --verify "$rev^{commit}") || die "no such commit: $rev"
if [[ $rev == HEAD && -n $(git -C "$top" status --porcelain --untracked-files=no) ]]; then
	echo "fresh-check: note: uncommitted changes in $top are not part of the check"
fi

mkdir -p "$base"
base=$(cd "$base" && pwd)
root=$base/root
logs=$base/logs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$logs"

# ---- apt sources ----------------------------------------------------------------------------
# host_sources: "URI SUITE COMPONENTS..." for every enabled deb entry of the host
host_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		sed 's/#.*//' "$f" | awk '$1 == "deb" {
			i = 2
			if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
			c = ""; for (k = i + 2; k <= NF; k++) c = c " " $k
			print $i, $(i + 1) c }'
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		awk 'function flush(  n, m, i, j, u, s) {
			if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
				n = split(uris, u, " "); m = split(suites, s, " ")
				for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j], comps
			}
			types = uris = suites = comps = ""; enabled = "yes"
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { next }   # a continuation line (a key block of Signed-By)
		{
			key = tolower($1); sub(/:$/, "", key)
			val = $0; sub(/^[^:]*:[ \t]*/, "", val)
			if (key == "types") types = val
			else if (key == "uris") uris = val
			else if (key == "suites") suites = val
			else if (key == "components") comps = val
			else if (key == "enabled") enabled = val
		}
		END { flush() }' "$f"
	done
}
# the Debian entries: bookworm and its -updates and -security suites
mapfile -t debian_sources < <(host_sources | awk -v c="$codename" \
	'$2 == c || $2 == c "-updates" || $2 == c "-security" || $2 == c "/updates"' | sort -u -k2,2)
mirror=$(printf '%s\n' "${debian_sources[@]}" | awk -v c="$codename" '$2 == c { print $1; exit }')
[[ -n $mirror ]] || die "no Debian $codename entry in /etc/apt/sources.list or /etc/apt/sources.list.d/"

# ---- mounts and cleanup ------------------------------------------------------------------------
mounted=() # mount points in the order they were mounted
mount_one() { # mount_one TARGET mount-arguments...
	local target=$1
	shift
	mount "$@" "$target"
	mounted+=("$target")
}
# root_pids: processes whose root directory is the fresh root (started by this script)
root_pids() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		[[ $r == "$root" ]] && echo "${p#/proc/}"
	done
	return 0
}
end_root_processes() {
	local pids i
	mapfile -t pids < <(root_pids)
	((${#pids[@]})) || return 0
	echo "fresh-check: ending ${#pids[@]} processes left in the root: ${pids[*]}"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	for i in $(seq 1 50); do
		mapfile -t pids < <(root_pids)
		((${#pids[@]})) || return 0
		sleep 0.2
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
	sleep 1
}
still_mounted() { grep -F " $root/" /proc/self/mountinfo | awk '{ print $5 }'; }
cleanup() {
	local rc=$? i
	trap - EXIT INT TERM HUP
	end_root_processes
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" ||
			echo "fresh-check: cannot unmount ${mounted[i]}" >&2
	done
	local left
	left=$(still_mounted || true)
	if [[ -n $left ]]; then
		echo "fresh-check: still mounted under $root:" >&2
		echo "$left" >&2
		rc=1
	fi
	echo "fresh-check: logs in $logs"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---- the steps --------------------------------------------------------------------------------
results=()
fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
# step NAME LOG COMMAND...: runs the command, its output to the terminal and to LOG; prints
# and records the result and the time
step() {
	local name=$1 log=$2 t0=$SECONDS rc=0 line
	shift 2
	echo "== fresh-check: $name"
	"$@" 2>&1 | tee "$log" || rc=$?
	line="$name: $([[ $rc -eq 0 ]] && echo passed || echo "FAILED (exit $rc)") in $(fmt_time $((SECONDS - t0)))"
	echo "== fresh-check: $line"
	results+=("$line")
	return "$rc"
}

env_in_root=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	TERM="${TERM:-dumb}")
[[ -n $locale ]] && env_in_root+=(LANG="$locale" LC_ALL="$locale")
# in_root COMMAND...: run in the clone inside the root, with the host's network
in_root() {
	chroot "$root" /usr/bin/env -i "${env_in_root[@]}" /bin/bash -c 'cd /root/dirconn && exec "$@"' bash "$@"
}
# in_root_netns COMMAND...: the same in a network namespace of its own, only loopback up
in_root_netns() {
	unshare --net -- /bin/sh -c 'ip link set lo up && exec "$@"' sh \
		chroot "$root" /usr/bin/env -i "${env_in_root[@]}" /bin/bash -c 'cd /root/dirconn && exec "$@"' bash "$@"
}

# (step runs it in a pipeline, where set -e does not hold: hence the && chain)
debootstrap_root() {
	rm -rf "$root.new" &&
		debootstrap --variant=minbase "$codename" "$root.new" "$mirror" &&
		touch "$root.new/.dirconn-fresh-root" &&
		mv "$root.new" "$root"
}

echo "fresh-check: Debian $codename from $mirror; root $root; commit $commit"
[[ -z $(still_mounted) ]] || die "something is still mounted under $root (an earlier run?): $(still_mounted | tr '\n' ' ')"
if [[ $reuse == yes && -f $root/.dirconn-fresh-root ]]; then
	echo "fresh-check: reusing the root of an earlier run (--reuse)"
else
	[[ $reuse == yes ]] && echo "fresh-check: no root to reuse in $base: debootstrap"
	[[ -n $(root_pids) ]] && die "processes still run in $root"
	rm -rf "$root"
	step "debootstrap --variant=minbase $codename" "$logs/debootstrap.log" debootstrap_root
fi

# the root's own configuration (again on reuse: the host's may have changed)
printf 'deb %s\n' "${debian_sources[@]}" >"$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
grep -qw localhost "$root/etc/hosts" 2>/dev/null ||
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >>"$root/etc/hosts"
mkdir -p "$root/usr/local/share/ca-certificates"
if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
	cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
	# a reused root has ca-certificates already: its store is rebuilt now, a new one on install
	if [[ -x $root/usr/sbin/update-ca-certificates ]]; then
		chroot "$root" /usr/sbin/update-ca-certificates >/dev/null
	fi
fi
printf '#!/bin/sh\n# fresh-check: no service starts in a chroot\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

echo "== fresh-check: clone $commit into /root/dirconn"
rm -rf "$root/root/dirconn"
git clone --quiet --no-hardlinks "$top" "$root/root/dirconn"
git -C "$root/root/dirconn" checkout --quiet --detach "$commit"

mount_one "$root/proc" -t proc proc
mount_one "$root/sys" -t sysfs -o nosuid,nodev,noexec sysfs
mount_one "$root/dev" -t tmpfs -o mode=755,nosuid tmpfs
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
	IFS=: read -r name maj min <<<"$d"
	mknod -m 666 "$root/dev/$name" c "$maj" "$min"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount_one "$root/dev/pts" -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts
mount_one "$root/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount_one "$root/tmp" -t tmpfs -o mode=1777,nosuid,nodev tmpfs

failed=0
step "install (scripts/install-deps.sh, host network)" "$logs/install.log" in_root ./scripts/install-deps.sh ||
	failed=1
if ((failed == 0)) && [[ $only != test ]]; then
	step "./scripts/demo.sh (own network namespace)" "$logs/demo.log" in_root_netns ./scripts/demo.sh ||
		failed=1
fi
if ((failed == 0)) && [[ $only != demo ]]; then
	if ! step "./scripts/test.sh ${ctest_args[*]} (own network namespace)" "$logs/test.log" \
		in_root_netns ./scripts/test.sh "${ctest_args[@]}"; then
		failed=1
		end_root_processes
		if [[ -n $(ls -A "$root/tmp") ]]; then
			cp -a "$root/tmp" "$logs/tmp"
			echo "fresh-check: the test directories kept in the root's /tmp are in $logs/tmp"
		fi
		echo "fresh-check: ctest's log: $root/root/dirconn/build-asan/Testing/Temporary/LastTest.log"
	fi
	grep -E '^[0-9]+% tests passed|^The following tests FAILED|^[[:space:]]+[0-9]+ - ' "$logs/test.log" || true
fi

echo "== fresh-check: summary (commit ${commit:0:12}, LANG=${locale:-unset})"
printf '   %s\n' "${results[@]}" | tee "$logs/summary.txt"
exit "$failed"
