# Integration test of `dirconnctl avatar-test`: output and exit codes (docs/cli.md).
#   bash avatar_cli.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

work=$(mktemp -d /tmp/dirconn-it-avatar-XXXXXX)
trap 'rm -rf "$work"' EXIT
seed='http://www.example.com/dir/photo/zoom/{mail:.*?(?=@.*)}.jpg'

run_capture a dirconnctl avatar-test --pattern "$seed" --value abcd@example.com
check_eq "the seed's example exits 0" 0 "$a_rc"
check_eq "the seed's example gives the seed's final URI" \
	"http://www.example.com/dir/photo/zoom/abcd.jpg" "$a_out"

run_capture j dirconnctl avatar-test --pattern "$seed" --value abcd@example.com --json
check_eq "--json exits 0" 0 "$j_rc"
check_eq "--json carries the URI" "http://www.example.com/dir/photo/zoom/abcd.jpg" "$(json "$j_out" "j['uri']")"

run_capture s dirconnctl avatar-test --pattern 'https://p.example/{cn}/{cn:^\w+}.png' --value 'Zoë Ann/B'
check_eq "several placeholders, percent-encoded" "https://p.example/Zo%C3%AB%20Ann%2FB/Zo%C3%AB.png" "$s_out"

run_capture n dirconnctl avatar-test --pattern "$seed" --value no-at-sign
check_eq "a value without a match exits 1 (EFAIL)" 1 "$n_rc"
check_eq "nothing on stdout without a match" "" "$n_out"
check_contains "the reason names the placeholder and the value" "$n_err" \
	"dirconnctl avatar-test: no avatar URI: {mail:.*?(?=@.*)} does not match the value 'no-at-sign'"

run_capture b dirconnctl avatar-test --pattern 'http://x.example/{mail:(?<=@}' --value a@b.c
check_eq "a regex that does not compile exits 3 (ECONFIG)" 3 "$b_rc"
check_contains "the error names the placeholder and PCRE2's message with the offset" "$b_err" \
	"[avatar] pattern: placeholder {mail:(?<=@}: regular expression error at offset"

run_capture f dirconnctl avatar-test --pattern 'ftp://x.example/{mail}' --value a@b.c
check_eq "a pattern that cannot give an http(s) URI exits 3" 3 "$f_rc"
check_contains "and says why" "$f_err" "must start with http:// or https://"

run_capture u dirconnctl avatar-test --pattern "$seed"
check_eq "a missing --value exits 2 (EUSAGE)" 2 "$u_rc"
run_capture u2 dirconnctl avatar-test --pattern "$seed" --value a@b.c --bogus
check_eq "an unknown option exits 2" 2 "$u2_rc"

# The pattern from the configuration file.
cat >"$work/dirconn.conf" <<CONF
[ldap]
urls = ldaps://dc1.example.com
[avatar]
enabled = yes
pattern = https://photos.example.com/{sAMAccountName}.jpg
CONF
run_capture c dirconnctl avatar-test --config "$work/dirconn.conf" --value jdoe
check_eq "the configured pattern is used without --pattern" "https://photos.example.com/jdoe.jpg" "$c_out"
printf '[ldap]\nurls = ldaps://dc1.example.com\n' >"$work/none.conf"
run_capture c2 dirconnctl avatar-test --config "$work/none.conf" --value jdoe
check_eq "a configuration without a pattern is a usage error" 2 "$c2_rc"

run_capture h dirconnctl avatar-test --help
check_eq "--help exits 0" 0 "$h_rc"
check_contains "--help shows the syntax" "$h_out" "{attribute:regex}"

finish
