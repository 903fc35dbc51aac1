#!/usr/bin/python3
"""Load generated LDIF into a stopped Samba AD DC's sam.ldb, offline.

    adds_load.py SMB_CONF LDIF...

Runs with Samba's own Python bindings (Debian's /usr/bin/python3) as the
system session, in one transaction, through the full DSDB module stack, so
objectSid, objectGUID, RIDs, memberOf/directReports back links and the
USN are assigned exactly as an LDAP add would assign them, without the
per-request network and ACL overhead, and in ldb's batch mode, which keeps
the load linear in the number of entries.  Prints one line of JSON: the counts
of built-in objects Samba provisioned (before the load) and what was added.
"""
import json
import sys
import time

from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
import ldb


def count(db, base, flt):
    return len(db.search(base=base, scope=ldb.SCOPE_SUBTREE, expression=flt, attrs=["dn"]))


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: adds_load.py SMB_CONF LDIF...\n")
        return 2
    lp = LoadParm()
    lp.load(argv[0])
    # batch_mode: ldb skips its per-operation index sub-transaction, whose
    # copying of index lists makes every add O(entries so far).  Any error
    # then voids the whole transaction, which is what a load wants anyway.
    db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp,
               options=["batch_mode:1"])
    base = str(db.domain_dn())
    builtin = {
        "users": count(db, base, "(&(objectClass=user)(!(objectClass=computer)))"),
        "users_enabled": count(db, base, "(&(objectClass=user)(!(objectClass=computer))"
                                         "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"),
        "groups": count(db, base, "(objectClass=group)"),
        "contacts": count(db, base, "(objectClass=contact)"),
        "computers": count(db, base, "(objectClass=computer)"),
    }
    started = time.monotonic()
    added = 0
    db.transaction_start()
    try:
        for path in argv[1:]:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if text.startswith("version:"):  # RFC 2849 header; ldb's parser rejects it
                text = text.split("\n", 1)[1]
            for _changetype, msg in db.parse_ldif(text):
                db.add(msg)
                added += 1
    except Exception:
        db.transaction_cancel()
        raise
    db.transaction_commit()
    print(json.dumps({"builtin": builtin, "added": added,
                      "seconds": round(time.monotonic() - started, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
