#!/usr/bin/env bash
# Install the Debian packages dirconn needs to build, test and run its fixtures.
# Idempotent: installs only what is missing. Run as root on Debian 12.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

mapfile -t wanted < <(cat "$top/scripts/packages.txt" "$top"/*/packages.txt 2>/dev/null |
	sed 's/#.*//; s/[[:space:]]//g' | grep -v '^$' | sort -u)

missing=()
for p in "${wanted[@]}"; do
	if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
		missing+=("$p")
	fi
done

# Debian's npm package; a Node.js from elsewhere (NodeSource) brings its own npm and conflicts
# with Debian's, so it is asked for only when the command is missing.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian starts the packaged directory servers on install; they would hold the
# ports the Samba AD DC fixture needs (389/636). The fixtures run their own.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	for unit in slapd samba-ad-dc; do
		if systemctl is-active --quiet "$unit" 2>/dev/null; then
			echo "install-deps: stopping and disabling the system's $unit (it holds LDAP port 389)"
			systemctl disable --now "$unit" >/dev/null 2>&1 || true
		fi
	done
fi
# The npm packages of the independent SCIM service provider (pinned by its package-lock.json),
# installed again only when the lock file changed.
ext=$top/tests/integration/scim_ext
if [[ ! -f $ext/node_modules/.package-lock.json || $ext/package-lock.json -nt $ext/node_modules/.package-lock.json ]]; then
	echo "install-deps: npm ci in tests/integration/scim_ext"
	npm ci --prefix "$ext" --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "install-deps: all ${#wanted[@]} packages present"
