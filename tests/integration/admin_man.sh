# The manual pages: dirconn.conf.5 is current with docs/configuration.md, groff
# renders every page without warnings, dirconnctl.8 names every command and
# every exit code, and `cmake --install` puts the pages in man5/man8.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MAN=$SRC/docs/man
work=$(mktemp -d /tmp/dirconn-it-man-XXXXXX)
trap 'rm -rf "$work"' EXIT

"$PY" "$MAN/gen-dirconn-conf.py" "$SRC/docs/configuration.md" >"$work/dirconn.conf.5"
check "dirconn.conf.5 is generated from the current docs/configuration.md" \
	cmp -s "$work/dirconn.conf.5" "$MAN/dirconn.conf.5"

for page in dirconnctl.8 dirconnd.8 dirconn.conf.5; do
	warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$MAN/$page" 2>&1 || true)
	check_eq "groff renders $page without warnings" "" "$warnings"
done

text=$(sed 's/\\-/-/g' "$MAN/dirconnctl.8")
while read -r cmd _; do
	check_contains "dirconnctl.8 describes '$cmd'" "$text" "$cmd"
done < <(dirconnctl --help | sed -n '/^commands:/,/^$/p' | sed '1d;/^$/d')

# Every exit code row of docs/cli.md is in the EXIT STATUS table.
while IFS='|' read -r _ code name _; do
	code=${code// /}
	name=${name//[ \`]/}
	check_contains "dirconnctl.8 lists exit code $code" "$text" "$code|$name|"
done < <(grep -E '^\| [0-9]+ \| `' "$SRC/docs/cli.md")

# Every key of the options table is in dirconn.conf.5.
conf_text=$(sed 's/\\-/-/g; s/\\fB//g; s/\\fR//g' "$MAN/dirconn.conf.5")
while IFS= read -r row; do
	key=$(sed -E 's/^\| `([a-z_]+)`.*/\1/' <<<"$row")
	check_contains "dirconn.conf.5 documents $key" "$conf_text" "$key ("
done < <(grep -E '^\| `[a-z_]+` \|' "$SRC/docs/configuration.md")
# Each key's paragraph is its meaning (the table's last column), with when it is applied.
check_contains "dirconn.conf.5 gives a key's meaning" "$conf_text" \
	"The largest request body sent to this provider."
check_contains "dirconn.conf.5 says when a key is applied" "$conf_text" \
	"max_payload (integer (bytes); default: 0; applied: next-run)"

if [[ -n ${DIRCONN_BUILD_DIR:-} ]]; then
	cmake --install "$DIRCONN_BUILD_DIR" --prefix "$work/prefix" >/dev/null
	for p in man8/dirconnctl.8 man8/dirconnd.8 man5/dirconn.conf.5; do
		check "cmake --install installs share/man/$p" test -f "$work/prefix/share/man/$p"
	done
fi
finish
