# dirconn-cloud command line: exit codes, readiness, plain HTTP, clean SIGTERM.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup

run_exit() { "$CLOUD_BIN" "$@" >/dev/null 2>"$T/cli.err"; echo $?; }
check_eq "--help" 0 "$(run_exit --help)"
check_eq "--version" 0 "$(run_exit --version)"
check_eq "no TLS and no --insecure-http" 2 "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token")"
check_eq "TLS and --insecure-http" 2 "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --tls-cert a --tls-key b)"
check_eq "unknown option" 2 "$(run_exit --bogus)"
check_eq "bad duration" 2 "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --token-ttl 5x)"
check_eq "bad rate" 2 "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --fault-500 1.5)"
check_eq "bad org name" 2 "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --insecure-http --org 'a/b')"
check_eq "missing token file" 3 "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/nonexistent" --insecure-http)"
check_eq "missing certificate" 3 "$(run_exit --listen 127.0.0.1:0 --db "$T/x.db" --admin-token-file "$T/admin.token" --tls-cert "$T/nonexistent" --tls-key "$T/server.key")"
check_eq "unusable database" 20 "$(run_exit --listen 127.0.0.1:0 --db "$T/nodir/x.db" --admin-token-file "$T/admin.token" --insecure-http)"

# plain HTTP, default org, IPv6 loopback
"$CLOUD_BIN" --listen '[::1]:0' --db "$T/v6.db" --admin-token-file "$T/admin.token" --insecure-http \
    --ready-file "$T/ready6" 2>"$T/cloud.log" &
CLOUD_PID=$!
for _ in $(seq 1 1200); do [ -s "$T/ready6" ] && break; sleep 0.05; done # up to 60 s
P6=$(cat "$T/ready6")
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "http://[::1]:$P6/scim/v2/default/Users")
check_eq "plain HTTP on ::1 with the default org" 200 "$STATUS"
# the port is taken now
check_eq "port in use" 3 "$(run_exit --listen "[::1]:$P6" --db "$T/y.db" --admin-token-file "$T/admin.token" --insecure-http)"
cloud_stop
check_eq "SIGTERM exit status" 0 "$CLOUD_EXIT"
check "ready line in the log" grep -q "listening on http://\[::1\]:$P6" "$T/cloud.log"
finish
