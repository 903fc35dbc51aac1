#!/usr/bin/python3
"""Latency from an LDAP write to the change visible in the cloud (driver of bench/latency.sh).

--mode modify (default): for each of N changes, replace the displayName of one in-scope user
with a unique value, then poll the cloud (SCIM filter on externalId) every 20 ms until that
value is there.
--mode delete: for each of N in-scope users, delete the entry (ldapdelete), then poll until
the cloud no longer has it.
--mode move: for each of N in-scope users, move the entry (modrdn) to --move-to, a container
outside [users] base_dns, then poll until the cloud no longer has it.
Prints one JSON object: label, mode, samples (seconds), p50, p90, p99, max, timeouts.
"""
import argparse
import json
import ssl
import sys
import time
import urllib.parse
import urllib.request
import uuid

import ldap
import ldap.dn


def ext_id(attrs):
    g = attrs.get("objectGUID")
    if g and len(g[0]) == 16:
        return str(uuid.UUID(bytes_le=g[0]))
    return attrs["entryUUID"][0].decode().lower()


def pct(sorted_samples, p):
    if not sorted_samples:
        return None
    k = min(len(sorted_samples) - 1, max(0, int(round(p / 100.0 * len(sorted_samples) + 0.5)) - 1))
    return sorted_samples[k]


def main():
    ap = argparse.ArgumentParser()
    for k in ("url", "ca", "bind-dn", "password-file", "group", "cloud", "cloud-ca", "token-file", "label"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--mode", choices=("modify", "delete", "move"), default="modify")
    ap.add_argument("--move-to", help="--mode move: the container the users are moved to")
    a = ap.parse_args()
    if a.mode == "move" and not a.move_to:
        ap.error("--mode move needs --move-to")

    ldap.set_option(ldap.OPT_X_TLS_CACERTFILE, a.ca)
    ldap.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    conn = ldap.initialize(a.url)
    conn.simple_bind_s(a.bind_dn, open(a.password_file).read().strip())
    members = [m.decode() for m in conn.search_s(a.group, ldap.SCOPE_BASE, attrlist=["member"])[0][1]["member"]]
    ctx = ssl.create_default_context(cafile=a.cloud_ca)
    token = open(a.token_file).read().strip()

    def cloud_user(ext):
        q = urllib.parse.quote('externalId eq "%s"' % ext)
        req = urllib.request.Request("%s/Users?filter=%s&attributes=displayName" % (a.cloud, q),
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, context=ctx) as r:
            res = json.load(r).get("Resources", [])
        return res[0] if res else None

    # users in scope that the cloud holds (mail, not in a naming conflict); a deletion or a
    # move uses each user once
    want = 20 if a.mode == "modify" else a.changes
    targets = []
    for dn in members:
        if len(targets) >= want:
            break
        try:
            _, at = conn.search_s(dn, ldap.SCOPE_BASE, "(&(objectClass=user)(mail=*))",
                                  ["objectGUID", "entryUUID"])[0]
        except (ldap.NO_SUCH_OBJECT, IndexError):
            continue
        ext = ext_id(at)
        if cloud_user(ext) is not None:
            targets.append((dn, ext))
    if len(targets) < (1 if a.mode == "modify" else a.changes):
        print(json.dumps({"error": "%d synchronised users found, %s needs %d" %
                          (len(targets), a.mode, 1 if a.mode == "modify" else a.changes)}))
        return 1

    samples, timeouts = [], 0
    for i in range(a.changes):
        dn, ext = targets[i % len(targets)]
        value = "Latency %s %d %d" % (a.label, i, int(time.time() * 1000))
        t0 = time.monotonic()
        if a.mode == "modify":
            conn.modify_s(dn, [(ldap.MOD_REPLACE, "displayName", [value.encode()])])
        elif a.mode == "delete":
            conn.delete_s(dn)
        else:
            conn.rename_s(dn, ldap.dn.explode_dn(dn)[0], a.move_to)
        while True:
            u = cloud_user(ext)
            if (u is None) if a.mode != "modify" else (u is not None and u.get("displayName") == value):
                samples.append(time.monotonic() - t0)
                break
            if time.monotonic() - t0 > a.timeout:
                timeouts += 1
                break
            time.sleep(0.02)
    s = sorted(samples)
    print(json.dumps({"label": a.label, "mode": a.mode, "changes": a.changes, "timeouts": timeouts,
                      "p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99),
                      "max": s[-1] if s else None, "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
