# dirconn-cloud command line: exit codes, readiness, plain HTTP, clean SIGTERM.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup

run_exit() { "$CLOUD_BIN" "$@" >/dev/null 2>"$T/cli.err"; echo $?; }
check_eq "$(run_exit --help)" 0 "--help"
check_eq "$(run_exit --version)" 0 "--version"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token")" 2 "no TLS and no --insecure-http"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --tls-cert a --tls-key b)" 2 "TLS and --insecure-http"
check_eq "$(run_exit --bogus)" 2 "unknown option"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --token-ttl 5x)" 2 "bad duration"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --fault-500 1.5)" 2 "bad rate"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --org 'a/b')" 2 "bad org name"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/nonexistent" --insecure-http)" 3 "missing token file"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --tls-cert "$T/nonexistent" --tls-key "$T/server.key")" 3 "missing certificate"
check_eq "$(run_exit --listen 127.0.0.1:0 --db "$T/nodir/x.db" --admin-token-file "$T/admin.token" --insecure-http)" 20 "unusable database"

# plain HTTP, default org, IPv6 loopback
"$CLOUD_BIN" --listen '[::1]:0' --db "$T/v6.db" --admin-token-file "$T/admin.token" --insecure-http \
    --ready-file "$T/ready6" 2>"$T/cloud.log" &
CLOUD_PID=$!
for _ in $(seq 1 1200); do [ -s "$T/ready6" ] && break; sleep 0.05; done # up to 60 s
P6=$(cat "$T/ready6")
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "http://[::1]:$P6/scim/v2/default/Users")
check_eq "$STATUS" 200 "plain HTTP on ::1 with the default org"
# the port is taken now
check_eq "$(run_exit --listen "[::1]:$P6" --db "$T/y.db" --admin-token-file "$T/admin.token" --insecure-http)" 3 "port in use"
cloud_stop
check_eq "$CLOUD_EXIT" 0 "SIGTERM exit status"
grep -q "listening on http://\[::1\]:$P6" "$T/cloud.log" && pass || failm "ready line in the log"
finish
