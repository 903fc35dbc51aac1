#!/usr/bin/python3
"""Compare the cloud with the directory, independently of dirconn.

Reads the fixture with python-ldap (libldap, paged) and the cloud with urllib
(admin token), computes what a correct sync must have produced from the rules
in docs/configuration.md and docs/mapping.md (users that are not computers and
have mail, not in a naming conflict; groups that are not critical system
objects, with the members that are in scope; contacts), and checks the cloud
holds exactly that. Prints "ok - ..." / "not ok - ..." lines and a final
"N passed, N failed"; exits 1 on any failure.
"""
import argparse
import json
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import ldap
import ldap.dn
from ldap.controls import SimplePagedResultsControl

PASS = FAIL = 0


ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def check(ok, what):
    global PASS, FAIL
    if ok:
        PASS += 1
        print("ok - " + what)
    else:
        FAIL += 1
        print("not ok - " + what)


def ldap_all(conn, base, filt, attrs):
    ctrl = SimplePagedResultsControl(True, size=500, cookie=b"")
    out = []
    while True:
        msgid = conn.search_ext(base, ldap.SCOPE_SUBTREE, filt, attrs, serverctrls=[ctrl])
        _, data, _, sctrls = conn.result3(msgid)
        out.extend((dn, a) for dn, a in data if dn)
        cookie = next((c.cookie for c in sctrls if c.controlType == SimplePagedResultsControl.controlType), b"")
        if not cookie:
            return out
        ctrl.cookie = cookie


def first(a, name):
    for k, v in a.items():
        if k.lower() == name.lower() and v:
            return v[0].decode("utf-8", "replace")
    return None


def values(a, name):
    for k, v in a.items():
        if k.split(";")[0].lower() == name.lower():
            return v
    return []


def ext_id(a):
    g = values(a, "objectGUID")
    if g and len(g[0]) == 16:
        return str(uuid.UUID(bytes_le=g[0]))
    u = first(a, "entryUUID")
    return u.lower() if u else None


def classes(a):
    return {c.decode().lower() for c in values(a, "objectClass")}


def cloud_all(base, ctx, token, path):
    out, start = [], 1
    while True:
        url = "%s%s?startIndex=%d&count=1000" % (base, path, start)
        if path == "/Users":  # groups is computed per user by some clouds, and not compared
            url += "&excludedAttributes=groups"
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
        for attempt in range(20):  # the cloud may be injecting faults: retry them
            try:
                with urllib.request.urlopen(req, context=ctx) as r:
                    doc = json.load(r)
                break
            except urllib.error.HTTPError as e:
                if e.code == 404 and path == "/Contacts":
                    return None
                if e.code not in (429, 500, 502, 503, 504) or attempt == 19:
                    raise
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                if attempt == 19:
                    raise
            time.sleep(0.5)
        res = doc.get("Resources", [])
        out.extend(res)
        start += len(res)
        if not res or start > doc.get("totalResults", 0):
            return out


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# The rows of docs/mapping.md "Defaults" that --every-attribute compares, in mapping order.
PHONES = [("work", "telephoneNumber"), ("mobile", "mobile"), ("fax", "facsimileTelephoneNumber"),
          ("pager", "pager"), ("home", "homePhone")]
WORK_ADDRESS = [("streetAddress", "streetAddress"), ("locality", "l"), ("region", "st"),
                ("postalCode", "postalCode"), ("country", "c")]
# addresses.work.formatted = streetAddress, l, st postalCode, co: (separator, attribute).
WORK_FORMATTED = [("", "streetAddress"), (", ", "l"), (", ", "st"), (" ", "postalCode"), (", ", "co")]
EVERY_USER_ATTRS = ["employeeType", "preferredLanguage", "mobile", "facsimileTelephoneNumber",
                    "pager", "homePhone", "streetAddress", "l", "st", "postalCode", "c", "co",
                    "physicalDeliveryOfficeName", "employeeNumber", "employeeID", "company", "o",
                    "division", "initials", "generationQualifier"]
# docs/mapping.md "Validation": a dot-atom local part of at most 64 bytes, "@", two or more
# labels of letters, digits and hyphens (non-ASCII letters allowed), at most 254 bytes.
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LOCAL = re.compile(r"^%s(\.%s)*$" % (ATOM, ATOM))
LABEL = re.compile(r"^[^\W_]([^\W_]|-)*$|^[^\W_]$")


def is_email(v):
    local, at, domain = v.rpartition("@")
    if not at or len(v.encode()) > 254 or len(local.encode()) > 64 or not LOCAL.match(local):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(LABEL.match(x) for x in labels)


def text(at, name):
    """The first value of a directory attribute as the mapping sends it: valid UTF-8 without
    control characters (tab allowed), at most 1024 bytes; else none (docs/mapping.md)."""
    for k, v in at.items():
        if k.lower() == name.lower() and v:
            raw = v[0]
            try:
                t = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in t) or len(raw) > 1024:
                return None
            return t
    return None


def every_attribute(at, r, single, no_enterprise):
    """(want, got): every default mapping of a user, from the directory entry and the cloud."""
    want, got = {}, {}
    for key, attr in (("userType", "employeeType"), ("preferredLanguage", "preferredLanguage")):
        want[key] = text(at, attr)
        got[key] = r.get(key)
    mail = text(at, "mail")
    emails = [("work", mail)] if mail and is_email(mail) else []
    phones = [(t, text(at, x)) for t, x in PHONES]
    phones = [(t, v) for t, v in phones if v and any(ch.isdigit() for ch in v)]
    work = {k: text(at, x) for k, x in WORK_ADDRESS}
    work = {k: v for k, v in work.items() if v}
    formatted = ""
    for sep, x in WORK_FORMATTED:
        v = text(at, x)
        if v:
            formatted += (sep if formatted else "") + v
    if formatted and len(formatted.encode()) <= 1024:
        work["formatted"] = formatted
    addresses = [("work", tuple(sorted(work.items())))] if work else []
    office = text(at, "physicalDeliveryOfficeName")
    if office:
        addresses.append(("other", (("formatted", office),)))
    if "emails" in single:
        emails = emails[:1]
    if "phoneNumbers" in single:
        phones = phones[:1]
    if "addresses" in single:
        addresses = addresses[:1]
    want["emails"] = sorted(emails)
    got["emails"] = sorted((e.get("type"), e.get("value")) for e in r.get("emails") or [])
    want["phoneNumbers"] = sorted(phones)
    got["phoneNumbers"] = sorted((p.get("type"), p.get("value")) for p in r.get("phoneNumbers") or [])
    want["addresses"] = sorted(addresses)
    got["addresses"] = sorted((x.get("type"), tuple(sorted((k, v) for k, v in x.items()
                                                           if k not in ("type", "primary"))))
                              for x in r.get("addresses") or [])
    if not no_enterprise:
        ext = r.get(ENT) or {}
        for key, attrs in (("employeeNumber", ["employeeNumber", "employeeID"]),
                           ("organization", ["company", "o"]),
                           ("division", ["division"])):
            want[key] = next((text(at, x) for x in attrs if text(at, x)), None)
            got[key] = ext.get(key)
    return want, got


def main():
    ap = argparse.ArgumentParser()
    for k in ("url", "ca", "bind-dn", "password-file", "base", "cloud", "cloud-ca", "token-file"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--user-base", action="append", default=[], help="users are searched here only")
    ap.add_argument("--security-group", action="append", default=[],
                    help="users must be direct members of one of these groups ([users] security_groups)")
    ap.add_argument("--no-groups", action="store_true")
    ap.add_argument("--no-contacts", action="store_true")
    ap.add_argument("--protected", action="append", default=[], help="externalIds kept although out of scope")
    ap.add_argument("--avatar", help="expected photo URI of the form PREFIX{local-part}SUFFIX")
    ap.add_argument("--out-of-scope-description", help="users with this description are filtered out")
    ap.add_argument("--member-of", help="only direct members of this group are users in scope")
    ap.add_argument("--all-attributes", action="store_true",
                    help="also compare title, name.familyName, the work phone and, unless "
                         "--no-enterprise, department and manager (docs/mapping.md defaults)")
    ap.add_argument("--no-enterprise", action="store_true",
                    help="the provider has no enterprise extension: users must carry none")
    ap.add_argument("--every-attribute", action="store_true",
                    help="compare every attribute of the default mapping table (docs/mapping.md "
                         "Defaults), with its validation rules; implies --all-attributes")
    ap.add_argument("--single-valued", default="",
                    help="comma-separated multi-valued attributes the provider takes one value of "
                         "([cloud] single_valued): the primary, else the first in mapping order")
    ap.add_argument("--no-photos", action="store_true", help="the provider has no photos attribute")
    ap.add_argument("--report", help="also write what differs as JSON to this file: duplicates (externalIds "
                                     "seen twice), missing and extra users (externalId, DN or userName), "
                                     "users whose mapped attributes differ (DN, want, got), and the "
                                     "externalIds of extra groups and contacts")
    a = ap.parse_args()
    report = {"duplicates": [], "missing_users": [], "extra_users": [], "differing_users": [],
              "extra_groups": [], "extra_contacts": []}
    if a.every_attribute:
        a.all_attributes = True
    single = {x.strip() for x in a.single_valued.split(",") if x.strip()}

    ldap.set_option(ldap.OPT_X_TLS_CACERTFILE, a.ca)
    ldap.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    conn = ldap.initialize(a.url)
    conn.protocol_version = 3
    conn.set_option(ldap.OPT_REFERRALS, 0)
    if a.url.startswith("ldap://"):
        conn.start_tls_s()
    conn.simple_bind_s(a.bind_dn, open(a.password_file).read().strip())
    attrs = ["objectClass", "mail", "displayName", "givenName", "sn", "cn", "userAccountControl",
             "msDS-UserAccountDisabled", "objectGUID", "entryUUID", "member", "isCriticalSystemObject",
             "description", "memberOf", "title", "telephoneNumber", "department", "manager"]
    attrs += [x for x in EVERY_USER_ATTRS if x not in attrs]
    entries = ldap_all(conn, a.base, "(|(objectClass=user)(objectClass=group)(objectClass=contact))", attrs)

    def in_user_base(dn):
        if not a.user_base:
            return True
        return any(dn.lower().endswith(b.lower()) for b in a.user_base)

    def norm(dn):  # one spelling per DN: escapes differ between servers ("\\2C" or "\\,")
        return ldap.dn.dn2str(ldap.dn.str2dn(dn)).lower()

    sg_members = None
    if a.security_group:
        sgs = {norm(g) for g in a.security_group}
        sg_members = set()
        for dn, at in entries:
            if norm(dn) in sgs:
                sg_members |= {norm(m.decode()) for m in values(at, "member")}

    users, groups, contacts = {}, {}, {}
    for dn, at in entries:
        if sg_members is not None and "user" in classes(at) and norm(dn) not in sg_members:
            continue
        c = classes(at)
        i = ext_id(at)
        if "user" in c and "computer" not in c and in_user_base(dn):
            if a.out_of_scope_description and first(at, "description") == a.out_of_scope_description:
                continue
            if a.member_of and a.member_of.lower() not in {m.decode().lower() for m in values(at, "memberOf")}:
                continue
            users[i] = (dn, at)
        elif "group" in c and first(at, "isCriticalSystemObject") != "TRUE":
            groups[i] = (dn, at)
        elif "contact" in c:
            contacts[i] = (dn, at)

    # Naming conflicts: one email (lower case) on two users or contacts.
    names = {}
    for i, (dn, at) in users.items():
        m = first(at, "mail")
        if m:
            names.setdefault(m.lower(), []).append(i)
    if not a.no_contacts:
        for i, (dn, at) in contacts.items():
            m = first(at, "mail")
            if m and EMAIL.match(m):
                names.setdefault(m.lower(), []).append(i)
    conflicted = {i for ids in names.values() if len(ids) > 1 for i in ids}
    want_users = {i: v for i, v in users.items() if first(v[1], "mail") and i not in conflicted}
    want_contacts = {} if a.no_contacts else {i: v for i, v in contacts.items() if i not in conflicted}
    want_groups = {} if a.no_groups else groups

    ctx = ssl.create_default_context(cafile=a.cloud_ca)
    token = open(a.token_file).read().strip()
    cu = cloud_all(a.cloud, ctx, token, "/Users")
    cg = cloud_all(a.cloud, ctx, token, "/Groups")
    cc = cloud_all(a.cloud, ctx, token, "/Contacts")
    by_ext = {}
    dup = []
    for r in cu + cg + (cc or []):
        e = r.get("externalId")
        if e:
            if e in by_ext:
                dup.append(e)
            by_ext[e] = r
    check(not dup, "no externalId appears twice in the cloud (%d duplicates)" % len(dup))
    cloud_users = {r["externalId"]: r for r in cu if r.get("externalId")}
    expected_users = set(want_users) | (set(a.protected) & set(cloud_users))
    missing = set(want_users) - set(cloud_users)
    extra = set(cloud_users) - expected_users
    report["duplicates"] = dup
    report["missing_users"] = [{"externalId": i, "dn": users[i][0]} for i in sorted(missing)]
    report["extra_users"] = [{"externalId": i, "userName": cloud_users[i].get("userName")} for i in sorted(extra)]
    check(not missing and not extra, "cloud users are exactly the %d users in scope (missing %d: %s; extra %d: %s)"
          % (len(want_users), len(missing), [users[i][0] for i in list(missing)[:3]], len(extra), list(extra)[:3]))
    bad = []
    dn_to_user = {norm(dn): i for i, (dn, _) in want_users.items()}
    ext_to_id = {r["externalId"]: r["id"] for r in cu if r.get("externalId")}
    for i, (dn, at) in want_users.items():
        r = cloud_users.get(i)
        if r is None:
            continue
        disabled = False
        uac = first(at, "userAccountControl")
        if uac is not None:
            disabled = bool(int(uac) & 2)
        elif first(at, "msDS-UserAccountDisabled") is not None:
            disabled = first(at, "msDS-UserAccountDisabled").upper() == "TRUE"
        want = {"userName": first(at, "mail"), "active": not disabled}
        if first(at, "displayName"):
            want["displayName"] = first(at, "displayName")
        got = {"userName": r.get("userName"), "active": r.get("active")}
        if "displayName" in want:
            got["displayName"] = r.get("displayName")
        if first(at, "givenName"):
            want["givenName"] = first(at, "givenName")
            got["givenName"] = (r.get("name") or {}).get("givenName")
        if a.all_attributes:
            want["title"] = first(at, "title")
            got["title"] = r.get("title")
            want["familyName"] = first(at, "sn")
            got["familyName"] = (r.get("name") or {}).get("familyName")
            tel = first(at, "telephoneNumber")  # sent when it holds a digit (mapping.md)
            want["phone"] = tel if tel is not None and any(ch.isdigit() for ch in tel) else None
            got["phone"] = next((p.get("value") for p in r.get("phoneNumbers") or []
                                 if p.get("type") == "work"), None)
            ext = r.get(ENT) or {}
            if a.no_enterprise:
                want["enterprise"] = False
                got["enterprise"] = bool(ext) or ENT in (r.get("schemas") or [])
            else:
                want["department"] = first(at, "department")
                got["department"] = ext.get("department")
                mdn = first(at, "manager")  # in scope: the manager's cloud id, else none
                mext = dn_to_user.get(norm(mdn)) if mdn else None
                want["manager"] = ext_to_id.get(mext) if mext else None
                got["manager"] = (ext.get("manager") or {}).get("value")
        if a.every_attribute:
            w, g = every_attribute(at, r, single, a.no_enterprise)
            want.update(w)
            got.update(g)
        if a.avatar:
            local = first(at, "mail").split("@")[0]
            want["photo"] = a.avatar.replace("{local-part}", urllib.parse.quote(local, safe=""))
            got["photo"] = ((r.get("photos") or [{}])[0]).get("value")
        if want != got:
            bad.append((dn, want, got))
            report["differing_users"].append({"externalId": i, "dn": dn, "want": want, "got": got})
    check(not bad, "every user carries the mapped attributes of its directory entry (%d differ: %s)"
          % (len(bad), bad[:2]))

    if not a.no_groups:
        cloud_groups = {r["externalId"]: r for r in cg if r.get("externalId")}
        report["extra_groups"] = sorted(set(cloud_groups) - set(want_groups))
        check(set(cloud_groups) == set(want_groups),
              "cloud groups are exactly the %d groups in scope (cloud has %d)" % (len(want_groups), len(cloud_groups)))
        id_to_ext = {r["id"]: r.get("externalId") for r in cu + cg}
        dn_to_ext = {norm(dn): i for i, (dn, _) in list(want_users.items()) + list(want_groups.items())}
        wrong = []
        for i, (dn, at) in want_groups.items():
            r = cloud_groups.get(i)
            if r is None:
                continue
            want_members = {dn_to_ext[norm(m.decode())] for m in values(at, "member") if norm(m.decode()) in dn_to_ext}
            got_members = {id_to_ext.get(m["value"]) for m in r.get("members", [])}
            if want_members != got_members:
                wrong.append((dn, len(want_members), len(got_members)))
        check(not wrong, "every group has exactly its in-scope members (%d differ: %s)" % (len(wrong), wrong[:3]))

    if not a.no_contacts and cc is not None:
        cloud_contacts = {r["externalId"]: r for r in cc if r.get("externalId")}
        report["extra_contacts"] = sorted(set(cloud_contacts) - set(want_contacts))
        check(set(cloud_contacts) == set(want_contacts),
              "cloud contacts are exactly the %d contacts in scope (cloud has %d)" % (len(want_contacts), len(cloud_contacts)))
        if a.every_attribute:
            wrong = []
            for i, (dn, at) in want_contacts.items():
                r = cloud_contacts.get(i)
                if r is None:
                    continue
                mail = text(at, "mail")
                want = {"displayName": text(at, "displayName") or text(at, "cn"),
                        "emails": {("work", mail)} if mail and is_email(mail) else set()}
                got = {"displayName": r.get("displayName"),
                       "emails": {(e.get("type"), e.get("value")) for e in r.get("emails") or []}}
                if want != got:
                    wrong.append((dn, want, got))
            check(not wrong, "every contact carries its display name and mail (%d differ: %s)"
                  % (len(wrong), wrong[:2]))

    if a.every_attribute and not a.no_groups:
        wrong = []
        for i, (dn, at) in want_groups.items():
            r = cloud_groups.get(i)
            if r is not None and r.get("displayName") != (text(at, "displayName") or text(at, "cn")):
                wrong.append((dn, r.get("displayName")))
        check(not wrong, "every group carries its displayName, else its cn (%d differ: %s)"
              % (len(wrong), wrong[:2]))

    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1, default=sorted)
    print("%d passed, %d failed" % (PASS, FAIL))
    return 0 if FAIL == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
