#!/usr/bin/env python3
"""Deterministic organisation generator for the dirconn directory fixtures.

Writes LDIF for an AD DS domain (Samba) or for AD LDS-like application
partitions (slapd) plus manifest.json, the exact numbers tests compare with.

    gen.py --kind adds|adlds --out DIR [--users N] [--seed S]

Output:
    DIR/data/p1.ldif        first (or only) naming context, parents first
    DIR/data/p2.ldif        adlds only: the second partition
    DIR/manifest.json       expected counts, sample entries, special cases

Same arguments give byte-identical output (python3 standard library only,
random.Random(seed), no clock, no environment).
"""

import argparse
import base64
import json
import os
import random
import struct
import sys
import unicodedata
import zlib

GENERATOR_VERSION = 3
DEFAULT_SEED = 4533
DEFAULT_USERS = 2000
BIG_GROUP_SIZE = 1600  # > 1500 forces AD ranged retrieval (member;range=0-1499)

ADDS_DOMAIN_DN = "DC=dirconn,DC=test"
ADDS_MAIL_DOMAIN = "dirconn.test"
ADLDS_PARTITIONS = [
    # (naming context, mail domain, head entry kind, share of --users)
    ("CN=AppPartition1,DC=dirconn,DC=test", "dirconn.test", "container", 1.0),
    ("O=Fabrikam,C=US", "fabrikam.example", "organization", 0.1),
]

# userAccountControl bits ([MS-ADTS] 2.2.16)
UAC_ACCOUNTDISABLE = 0x2
UAC_NORMAL_ACCOUNT = 0x200
UAC_WORKSTATION_TRUST_ACCOUNT = 0x1000
UAC_DONT_EXPIRE_PASSWORD = 0x10000

# groupType ([MS-ADTS] 2.2.12), as the signed 32-bit values AD returns
GT_GLOBAL_SECURITY = -2147483646
GT_UNIVERSAL_SECURITY = -2147483640
GT_UNIVERSAL_DISTRIBUTION = 8
GT_BUILTIN_LOCAL_SECURITY = -2147483643

# ---------------------------------------------------------------- name pools
GIVEN = [
    "Anna", "José", "Zoë", "Łukasz", "Søren", "Ángel", "François", "Ingrid",
    "Björn", "Chloé", "Nuño", "John", "Mary", "Ahmed", "Priya", "Oluwaseun",
    "Siobhán", "Dmitri", "Agnès", "Jürgen", "Małgorzata", "Renée", "Thomas",
    "Fatima", "Kofi", "Elena", "Mateo", "Noémie", "Øystein", "Wei", "Aiko",
    "Lars", "Camille", "Grzegorz", "Hélène", "Raúl", "Sinéad", "Tomáš",
    "Yusuf", "Émilie", "Olga", "Pedro", "Ségolène", "Zbigniew", "Laura",
    "Michael", "Sarah", "David", "Sofía", "Chiara",
]
SURNAME = [
    "O'Brien", "D'Angelo", "Müller", "García", "Nguyễn", "Smith", "Dvořák",
    "Øvergaard", "Jönsson", "van der Berg", "Ó Súilleabháin", "Kowalczyk",
    "Łęcki", "Ibáñez", "Schmidt", "Johnson", "Fernández", "Rossi", "Dubois",
    "Novák", "Andersson", "Papadopoulos", "Yılmaz", "Kowalski", "Moreau",
    "Bianchi", "Fischer", "Hernández", "Lindqvist", "Petrović", "Silva",
    "Brown", "Taylor", "Wilson", "Martin", "Lefèvre", "Weiß", "Çelik",
    "Sørensen", "Ågren", "MacDonald", "N'Diaye", "de la Cruz", "Nowak",
]
CJK = [
    # (family, given, display name as written)
    ("王", "伟", None), ("李", "娜", None), ("张", "秀英", None),
    ("刘", "洋", None), ("陈", "静", None), ("田中", "太郎", "田中 太郎"),
    ("佐藤", "花子", "佐藤 花子"), ("鈴木", "一郎", "鈴木 一郎"),
    ("김", "민준", "김민준"), ("이", "서연", "이서연"), ("박", "지훈", "박지훈"),
]
DEPARTMENTS = [
    ("Executive", "Chief Executive Officer", ["Executive Assistant", "Chief of Staff"]),
    ("Sales", "Head of Sales", ["Account Executive", "Sales Manager", "Sales Engineer"]),
    ("Marketing", "Head of Marketing", ["Marketing Specialist", "Content Writer"]),
    ("Engineering", "VP Engineering", ["Software Engineer", "Senior Software Engineer", "Staff Engineer", "QA Engineer"]),
    ("Operations", "Head of Operations", ["Site Reliability Engineer", "Operations Analyst"]),
    ("Finance", "Chief Financial Officer", ["Accountant", "Financial Analyst", "Controller"]),
    ("Human Resources", "Head of People", ["HR Partner", "Recruiter"]),
    ("Legal", "General Counsel", ["Paralegal", "Counsel"]),
    ("Support", "Head of Support", ["Support Engineer", "Support Agent"]),
    ("Research & Development", "Head of R&D", ["Researcher", "Research Scientist"]),
    ("Facilities", "Facilities Manager", ["Facilities Coordinator"]),
    ("IT", "Chief Information Officer", ["Systems Administrator", "Help Desk Technician"]),
]
OFFICES = [
    # office name, street, city, st, postal code, c, co, language, phone prefix
    ("Berlin HQ", "Friedrichstraße 68", "Berlin", "BE", "10117", "DE", "Germany", "de-DE", "+49 30 5550"),
    ("Zürich", "Bahnhofstrasse 10", "Zürich", "ZH", "8001", "CH", "Switzerland", "de-CH", "+41 44 5550"),
    ("New York", "350 Fifth Avenue", "New York", "NY", "10118", "US", "United States", "en-US", "+1 212 555"),
    ("Tokyo", "1-1 Marunouchi, Chiyoda-ku", "Tokyo", "13", "100-0005", "JP", "Japan", "ja-JP", "+81 3 5550"),
    ("São Paulo", "Avenida Paulista 1000", "São Paulo", "SP", "01310-100", "BR", "Brazil", "pt-BR", "+55 11 5550"),
    ("London", "1 Canada Square", "London", "", "E14 5AB", "GB", "United Kingdom", "en-GB", "+44 20 7946"),
    ("Kraków", "ul. Floriańska 3", "Kraków", "MA", "31-019", "PL", "Poland", "pl-PL", "+48 12 5550"),
]
PARTNER_DOMAINS = ["contoso.example", "northwind.example", "tailspin.example", "adatum.example"]
SERVICE_NAMES = ["svc-backup", "svc-sql", "svc-sharepoint", "svc-exchange", "svc-monitoring",
                 "svc-ci", "svc-print", "svc-scan", "svc-hr-sync", "svc-crm"]


# ---------------------------------------------------------------- helpers
def rdn_escape(value):
    """Escape an attribute value for use in a DN (RFC 4514 section 2.4)."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=':
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        elif (ch == " " and (i == 0 or i == len(value) - 1)) or (ch == "#" and i == 0):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def ascii_fold(text):
    """ASCII letters only, accents removed; '' for scripts without a folding."""
    special = {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d", "ı": "i"}
    text = "".join(special.get(c, c) for c in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalpha())


def tiny_png(rng):
    """A valid 16x16 single-colour PNG, as a stand-in photo (about 80 bytes)."""
    r, g, b = rng.randrange(256), rng.randrange(256), rng.randrange(256)
    raw = b"".join(b"\x00" + bytes((r, g, b)) * 16 for _ in range(16))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def ldif_line(attr, value):
    """One LDIF attrval-spec (RFC 2849), base64 when the value needs it."""
    if isinstance(value, bytes):
        return "%s:: %s" % (attr, base64.b64encode(value).decode("ascii"))
    safe = (value != "" and value.isascii() and value.isprintable()
            and value[0] not in " :<" and value[-1] != " ")
    if safe:
        return "%s: %s" % (attr, value)
    return "%s:: %s" % (attr, base64.b64encode(value.encode("utf-8")).decode("ascii"))


class Entry:
    def __init__(self, dn, kind):
        self.dn = dn
        self.kind = kind  # ou, user, group, contact, computer, container, head
        self.attrs = []   # list of (name, value)
        self.info = {}

    def add(self, name, value):
        if value is None or value == "":
            return
        self.attrs.append((name, value))

    def ldif(self):
        lines = [ldif_line("dn", self.dn)]
        lines += [ldif_line(a, v) for a, v in self.attrs]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the org
class Org:
    """One naming context's worth of organisation."""

    def __init__(self, kind, base_dn, mail_domain, n_users, seed, head=None):
        self.kind = kind
        self.base = base_dn
        self.domain = mail_domain
        self.n = n_users
        self.rng = random.Random("%s|%s|%d" % (seed, base_dn, n_users))
        self.head = head
        self.entries = []
        self.ous = {}
        self.cn_taken = set()
        self.sam_taken = set()
        self.mail_taken = set()
        self.users = []
        self.groups = []
        self.contacts = []
        self.computers = []
        self.conflicts = []
        self.build()

    # -- names -------------------------------------------------------------
    def person_name(self):
        rng = self.rng
        if rng.random() < 0.08:
            family, given, display = rng.choice(CJK)
            return given, family, display or (family + given), True
        given, sn = rng.choice(GIVEN), rng.choice(SURNAME)
        return given, sn, "%s %s" % (given, sn), False

    def unique_cn(self, parent, cn):
        cand, i = cn, 1
        while (parent, cand.casefold()) in self.cn_taken:
            i += 1
            cand = "%s %d" % (cn, i)
        self.cn_taken.add((parent, cand.casefold()))
        return cand

    def unique(self, taken, base, limit):
        base = base[:limit]
        cand, i = base, 1
        while cand.casefold() in taken:
            i += 1
            suffix = str(i)
            cand = base[:limit - len(suffix)] + suffix
        taken.add(cand.casefold())
        return cand

    # -- building blocks -----------------------------------------------------
    def ou(self, name):
        dn = "OU=%s,%s" % (rdn_escape(name), self.base)
        e = Entry(dn, "ou")
        e.add("objectClass", "top")
        e.add("objectClass", "organizationalUnit")
        e.add("ou", name)
        e.add("description", "%s (dirconn ldsfx)" % name)
        self.entries.append(e)
        self.ous[name] = dn
        return dn

    def new_user(self, ou_name, category, dept=None, title=None, manager=None,
                 disabled=False, service_name=None):
        rng = self.rng
        parent = self.ous[ou_name]
        if service_name:
            given, sn, display, cjk = None, service_name, service_name, False
            cn = service_name
        else:
            given, sn, display, cjk = self.person_name()
            if not cjk and rng.random() < 0.15:
                cn = "%s, %s" % (sn, given)  # "Last, First": a comma in the RDN
            else:
                cn = display
        cn = self.unique_cn(parent, cn)
        if not service_name and cn != display and "," not in cn:
            display = cn  # keep CN and displayName aligned after de-duplication
        idx = len(self.users)
        if service_name:
            login = service_name
        else:
            login = (ascii_fold(given)[:1] + ascii_fold(sn)).lower() or "user%05d" % idx
        sam = self.unique(self.sam_taken, login, 20)
        e = Entry("CN=%s,%s" % (rdn_escape(cn), parent), "user")
        e.info.update(cn=cn, sam=sam, ou=ou_name, category=category, disabled=disabled,
                      given=given, sn=sn, display=display, dept=dept, title=title,
                      manager=manager, cjk=cjk, mail=None, index=idx)
        self.users.append(e)
        return e

    def assign_mail(self, e, mixed_case=False):
        i = e.info
        if i["given"] and ascii_fold(i["given"]) and ascii_fold(i["sn"]):
            local = "%s.%s" % (ascii_fold(i["given"]), ascii_fold(i["sn"]))
        else:
            local = i["sam"]
        local = self.unique(self.mail_taken, local.lower(), 64)
        if mixed_case:
            parts = local.split(".")
            local = ".".join(p[:1].upper() + p[1:] for p in parts)
            mail = "%s@%s" % (local, self.domain.title())
        else:
            mail = "%s@%s" % (local, self.domain)
        i["mail"] = mail
        i["mixed_case_mail"] = mixed_case

    # -- the whole organisation -----------------------------------------------
    def build(self):
        rng = self.rng
        n = self.n
        for name in ["Employees", "Contractors", "Disabled", "Service Accounts",
                     "Groups", "Contacts", "Workstations"]:
            self.ou(name)

        n_service = min(max(2, round(n * 0.01)), n // 4) if n >= 8 else 0
        n_disabled_ou = max(1, round(n * 0.04)) if n >= 8 else 0
        n_contractors = max(1, round(n * 0.10)) if n >= 8 else 0
        n_employees = n - n_service - n_disabled_ou - n_contractors
        if n_employees < 1:
            raise SystemExit("gen.py: --users must be at least 1")

        # Employees: CEO first, then department heads, then everyone else, so
        # that every manager exists before the entries that point at it.
        depts = DEPARTMENTS[:max(1, min(len(DEPARTMENTS), n_employees // 8 or 1))]
        ceo = self.new_user("Employees", "employee", dept=depts[0][0], title=depts[0][1])
        heads = {depts[0][0]: ceo}
        for dname, htitle, _ in depts[1:]:
            if len(self.users) >= n_employees:
                break
            heads[dname] = self.new_user("Employees", "employee", dept=dname, title=htitle,
                                         manager=ceo)
        dnames = list(heads)
        while len(self.users) < n_employees:
            dname = rng.choice(dnames)
            titles = [d[2] for d in depts if d[0] == dname][0]
            # every 50th employee has left but was not moved: disabled in place
            disabled = len(self.users) % 50 == 49
            self.new_user("Employees", "employee", dept=dname, title=rng.choice(titles),
                          manager=heads[dname], disabled=disabled)
        for _ in range(n_contractors):
            dname = rng.choice(dnames)
            self.new_user("Contractors", "contractor", dept=dname, title="Contractor",
                          manager=heads[dname], disabled=rng.random() < 0.05)
        for _ in range(n_disabled_ou):
            dname = rng.choice(dnames)
            self.new_user("Disabled", "leaver", dept=dname, title="Former Employee",
                          disabled=True)
        for k in range(n_service):
            name = SERVICE_NAMES[k] if k < len(SERVICE_NAMES) else "svc-app-%03d" % k
            self.new_user("Service Accounts", "service", service_name=name)

        # mail: service accounts never, ~6% of the others not either
        people = [u for u in self.users if u.info["category"] != "service"]
        for u in people:
            if u is not ceo and rng.random() < 0.06:
                continue
            self.assign_mail(u, mixed_case=rng.random() < 0.03)

        # contacts (external partners), some of them with a user's address
        n_contacts = max(3, n // 20)
        contacts_ou = self.ous["Contacts"]
        mailed = [u for u in people if u.info["mail"]]
        pair = (mailed[1], mailed[-1]) if len(mailed) >= 4 else ()
        pool = [u for u in mailed if u not in pair]
        n_dup = min(len(pool) // 3, max(1, n // 250))
        dup_users = rng.sample(pool, n_dup) if n_dup else []
        for k in range(n_contacts):
            given, sn, display, _ = self.person_name()
            cn = self.unique_cn(contacts_ou, "%s (External)" % display)
            e = Entry("CN=%s,%s" % (rdn_escape(cn), contacts_ou), "contact")
            if k < len(dup_users):
                # naming conflict: a contact with the address of a user; every
                # second one differs from the user's address in case only
                owner = dup_users[k]
                mail = owner.info["mail"]
                mail = mail.upper() if k % 2 else mail
                self.conflicts.append({"mail": mail, "dns": [owner.dn, e.dn],
                                       "case_only": mail != owner.info["mail"]})
            else:
                local = ascii_fold(given).lower() + "." + (ascii_fold(sn).lower() or "x")
                mail = "%s%d@%s" % (local, k, PARTNER_DOMAINS[k % len(PARTNER_DOMAINS)])
            e.info.update(cn=cn, given=given, sn=sn, display=display, mail=mail)
            self.contacts.append(e)
        # and one user pair sharing an address (the second took the first's)
        if pair:
            a, b = pair
            b.info["mail"] = a.info["mail"]
            b.info["mixed_case_mail"] = a.info.get("mixed_case_mail", False)
            self.conflicts.append({"mail": a.info["mail"], "dns": [a.dn, b.dn], "case_only": False})

        # user attributes
        for u in self.users:
            self.fill_user(u)

        # computers: must never sync
        n_computers = max(2, n // 40)
        ws_ou = self.ous["Workstations"]
        for k in range(n_computers):
            name = "WS%05d" % (k + 1)
            e = Entry("CN=%s,%s" % (name, ws_ou), "computer")
            e.info.update(cn=name)
            self.computers.append(e)

        self.build_groups(heads, people)

    def fill_user(self, u):
        rng = self.rng
        i = u.info
        office = OFFICES[(i["index"] * 7 + len(i["sam"])) % len(OFFICES)]
        i["office"] = office
        phone = None
        if i["category"] != "service":
            r = rng.random()
            if r < 0.02:
                phone = "+"  # invalid on purpose
            elif r < 0.90:
                phone = "%s %04d" % (office[8], rng.randrange(10000))
        i["phone"] = phone
        i["mobile"] = ("%s %04d" % (office[8].rsplit(" ", 1)[0] + " 17", rng.randrange(10000))
                       if i["category"] != "service" and rng.random() < 0.5 else None)
        i["fax"] = "%s 9%03d" % (office[8], rng.randrange(1000)) if rng.random() < 0.05 else None
        i["pager"] = "%05d" % rng.randrange(100000) if rng.random() < 0.02 else None
        i["home"] = "%s %04d" % (office[8], rng.randrange(10000)) if rng.random() < 0.1 else None
        i["photo"] = tiny_png(rng) if i["category"] != "service" and rng.random() < 0.05 else None
        i["alias"] = rng.random() < 0.2

    def build_groups(self, heads, people):
        rng = self.rng
        gou = self.ous["Groups"]
        groups = {}

        def group(name, gtype, members, mail=None, description=None):
            e = Entry("CN=%s,%s" % (rdn_escape(name), gou), "group")
            e.info.update(cn=name, gtype=gtype, members=list(members), mail=mail,
                          description=description, sam=self.unique(self.sam_taken, name, 64))
            self.groups.append(e)
            groups[name] = e
            return e

        # department groups, nested two levels deep under "Staff"
        dept_groups = []
        for dname in heads:
            members = [u for u in self.users
                       if u.info["dept"] == dname and u.info["category"] == "employee"]
            dept_groups.append(group("Dept - %s" % dname, GT_GLOBAL_SECURITY, members,
                                     description="Employees of %s" % dname))
        contractors = group("Contractors", GT_GLOBAL_SECURITY,
                            [u for u in self.users if u.info["category"] == "contractor"])
        all_depts = group("All Departments", GT_UNIVERSAL_SECURITY, dept_groups)
        group("Staff", GT_UNIVERSAL_SECURITY, [all_depts, contractors],
              description="Nested: Staff > All Departments > Dept - *")
        group("Managers", GT_GLOBAL_SECURITY, list(heads.values()))
        # the big group: > 1500 members at the default size
        big = [u for u in self.users if u.info["category"] != "service"][:BIG_GROUP_SIZE]
        self.big_group = group("All Company", GT_UNIVERSAL_DISTRIBUTION, big,
                               mail="all-company@%s" % self.domain)
        # the email security group the connector is told to sync
        enabled_mailed = [u for u in self.users if u.info["category"] == "employee"
                          and not u.info["disabled"] and u.info["mail"]]
        cloud_direct = enabled_mailed[::4]
        pilot_pool = [u for u in self.users if u.info["category"] == "contractor"]
        pilot = pilot_pool[:10]
        # the nested group also holds one disabled user and one without mail,
        # so that the connector's filters have something to filter
        extra = [u for u in self.users if u.info["disabled"] and u not in pilot][:1]
        extra += [u for u in people if not u.info["mail"] and not u.info["disabled"]
                  and u not in pilot][:1]
        pilot_group = group("Cloud Pilot", GT_GLOBAL_SECURITY, pilot + extra)
        self.cloud_group = group("Cloud Users", GT_UNIVERSAL_SECURITY,
                                 cloud_direct + [pilot_group],
                                 mail="cloud-users@%s" % self.domain,
                                 description="Email security group: users synced to the cloud")
        newsletter_contacts = self.contacts[: max(1, len(self.contacts) // 2)]
        group("Newsletter", GT_UNIVERSAL_DISTRIBUTION,
              rng.sample(people, min(25, len(people))) + newsletter_contacts,
              mail="newsletter@%s" % self.domain)
        group("Empty Group", GT_GLOBAL_SECURITY, [])
        # teams: more groups, up to n/10 in all (directories at scale hold about
        # one group per ten users), each with about ten consecutive users. No
        # draws from rng, so everything else is the same as without them, and
        # small organisations (n < 220) get none.
        n_teams = self.n // 10 - len(self.groups)
        pool = [u for u in self.users if u.info["category"] != "service"]
        if n_teams > 0 and pool:
            size = max(1, len(pool) // n_teams)
            for t in range(n_teams):
                first = (t * size) % len(pool)
                group("Team %05d" % (t + 1), GT_GLOBAL_SECURITY, pool[first:first + size],
                      description="Team %d" % (t + 1))

    # -- output ----------------------------------------------------------------
    def user_entry_attrs(self, u):
        i = u.info
        e = u
        if self.kind == "adds":
            e.add("objectClass", "top")
            e.add("objectClass", "person")
            e.add("objectClass", "organizationalPerson")
            e.add("objectClass", "user")
        else:
            for oc in ("top", "person", "organizationalPerson", "user"):
                e.add("objectClass", oc)
        e.add("cn", i["cn"])
        if self.kind == "adds":
            e.add("sAMAccountName", i["sam"])
            uac = UAC_NORMAL_ACCOUNT
            if i["category"] == "service":
                uac |= UAC_DONT_EXPIRE_PASSWORD
            if i["disabled"]:
                uac |= UAC_ACCOUNTDISABLE
            e.add("userAccountControl", str(uac))
        else:
            e.add("msDS-UserAccountDisabled", "TRUE" if i["disabled"] else "FALSE")
        e.add("userPrincipalName", "%s@%s" % (i["sam"], self.domain))
        e.add("givenName", i["given"])
        e.add("sn", i["sn"])
        e.add("displayName", i["display"])
        if i["mail"]:
            e.add("mail", i["mail"])
            e.add("proxyAddresses", "SMTP:" + i["mail"])
            if i["alias"]:
                e.add("proxyAddresses", "smtp:%s@mail.%s" % (i["sam"].lower(), self.domain))
        if i["category"] == "service":
            e.add("description", "Service account")
            return
        o = i["office"]
        e.add("telephoneNumber", i["phone"])
        e.add("mobile", i["mobile"])
        e.add("facsimileTelephoneNumber", i["fax"])
        e.add("pager", i["pager"])
        e.add("homePhone", i["home"])
        e.add("physicalDeliveryOfficeName", o[0])
        e.add("streetAddress", o[1])
        e.add("l", o[2])
        e.add("st", o[3])
        e.add("postalCode", o[4])
        e.add("c", o[5])
        e.add("co", o[6])
        e.add("preferredLanguage", o[7])
        e.add("title", i["title"])
        e.add("department", i["dept"])
        prefix = {"employee": "E", "contractor": "C", "leaver": "L"}[i["category"]]
        e.add("employeeNumber", "%s%06d" % (prefix, i["index"] + 1))
        if i["manager"] is not None:
            e.add("manager", i["manager"].dn)
        if i["photo"]:
            e.add("thumbnailPhoto", i["photo"])

    def materialise(self):
        """Fill every entry's attribute list; returns entries in load order."""
        member_of = {}
        for g in self.groups:
            for m in g.info["members"]:
                member_of.setdefault(m.dn, []).append(g.dn)
        for u in self.users:
            self.user_entry_attrs(u)
        for c in self.contacts:
            i = c.info
            for oc in ("top", "person", "organizationalPerson", "contact"):
                c.add("objectClass", oc)
            c.add("cn", i["cn"])
            c.add("givenName", i["given"])
            c.add("sn", i["sn"])
            c.add("displayName", i["display"])
            c.add("mail", i["mail"])
            c.add("description", "External contact")
        for w in self.computers:
            name = w.info["cn"]
            if self.kind == "adds":
                w.add("objectClass", "top")
                w.add("objectClass", "computer")
                w.add("cn", name)
                w.add("sAMAccountName", name + "$")
                w.add("userAccountControl", str(UAC_WORKSTATION_TRUST_ACCOUNT))
            else:
                for oc in ("top", "person", "organizationalPerson", "user", "computer"):
                    w.add("objectClass", oc)
                w.add("cn", name)
                w.add("sn", name)
            w.add("dNSHostName", "%s.%s" % (name.lower(), self.domain))
            w.add("description", "Workstation (must never sync)")
        # groups: a group's member groups come before it (nesting order)
        ordered, seen = [], set()

        def visit(g):
            if g.dn in seen:
                return
            seen.add(g.dn)
            for m in g.info["members"]:
                if m.kind == "group":
                    visit(m)
            ordered.append(g)
        for g in self.groups:
            visit(g)
        self.groups = ordered
        for g in self.groups:
            i = g.info
            g.add("objectClass", "top")
            g.add("objectClass", "group")
            g.add("cn", i["cn"])
            if self.kind == "adds":
                g.add("sAMAccountName", i["sam"])
            g.add("groupType", str(i["gtype"]))
            g.add("description", i["description"])
            if i["mail"]:
                g.add("mail", i["mail"])
                g.add("proxyAddresses", "SMTP:" + i["mail"])
            for m in i["members"]:
                g.add("member", m.dn)
        roles = []
        if self.kind == "adlds":
            # every AD LDS partition has CN=Roles with three built-in groups
            rdn = "CN=Roles,%s" % self.base
            r = Entry(rdn, "container")
            r.add("objectClass", "top")
            r.add("objectClass", "container")
            r.add("cn", "Roles")
            r.add("isCriticalSystemObject", "TRUE")
            roles.append(r)
            for name in ("Administrators", "Readers", "Users"):
                g = Entry("CN=%s,%s" % (name, rdn), "role")
                g.add("objectClass", "top")
                g.add("objectClass", "group")
                g.add("cn", name)
                g.add("groupType", str(GT_BUILTIN_LOCAL_SECURITY))
                g.add("isCriticalSystemObject", "TRUE")
                roles.append(g)
            # memberOf is maintained by the memberof overlay on writes;
            # slapadd bypasses overlays, so the generator writes it.
            for e in self.users + self.contacts + self.groups:
                for gdn in member_of.get(e.dn, []):
                    e.add("memberOf", gdn)
        self.roles = roles
        head = []
        if self.head is not None:
            head.append(self.head)
        ous = [e for e in self.entries if e.kind == "ou"]
        return head + roles + ous + self.users + self.contacts + self.computers + self.groups

    def manifest(self):
        users = self.users

        def enabled(u):
            return not u.info["disabled"]

        def transitive_users(g, seen=None):
            seen = set() if seen is None else seen
            out = {}
            for m in g.info["members"]:
                if m.kind == "group":
                    if m.dn not in seen:
                        seen.add(m.dn)
                        out.update(transitive_users(m, seen))
                elif m.kind == "user":
                    out[m.dn] = m
            return out

        per_ou = {}
        for name, dn in self.ous.items():
            per_ou[name] = {"dn": dn, "users": 0, "users_enabled": 0, "users_disabled": 0,
                            "groups": 0, "contacts": 0, "computers": 0}
        for u in users:
            o = per_ou[u.info["ou"]]
            o["users"] += 1
            o["users_enabled" if enabled(u) else "users_disabled"] += 1
        per_ou["Groups"]["groups"] = len(self.groups)
        per_ou["Contacts"]["contacts"] = len(self.contacts)
        per_ou["Workstations"]["computers"] = len(self.computers)

        cloud = self.cloud_group
        cloud_all = transitive_users(cloud)
        big = self.big_group
        with_mail = [u for u in users if u.info["mail"]]
        counts = {
            "users": len(users),
            "users_enabled": sum(1 for u in users if enabled(u)),
            "users_disabled": sum(1 for u in users if not enabled(u)),
            "users_with_mail": len(with_mail),
            "users_without_mail": len(users) - len(with_mail),
            "users_enabled_with_mail": sum(1 for u in with_mail if enabled(u)),
            "users_mixed_case_mail": sum(1 for u in with_mail if u.info.get("mixed_case_mail")),
            "users_with_manager": sum(1 for u in users if u.info["manager"] is not None),
            "users_with_photo": sum(1 for u in users if u.info.get("photo")),
            "users_invalid_phone": sum(1 for u in users if u.info.get("phone") == "+"),
            "users_comma_in_cn": sum(1 for u in users if "," in u.info["cn"]),
            "users_non_ascii_cn": sum(1 for u in users if not u.info["cn"].isascii()),
            "groups": len(self.groups),
            "groups_security": sum(1 for g in self.groups if g.info["gtype"] < 0),
            "groups_distribution": sum(1 for g in self.groups if g.info["gtype"] > 0),
            "groups_with_mail": sum(1 for g in self.groups if g.info["mail"]),
            "contacts": len(self.contacts),
            "computers": len(self.computers),
            "ous": len(self.ous),
        }
        if self.kind == "adlds":
            counts["role_groups"] = 3

        def sample(u, why):
            return {"why": why, "dn": u.dn, "mail": u.info["mail"], "displayName": u.info["display"],
                    "cn": u.info["cn"], "enabled": enabled(u),
                    **({"sAMAccountName": u.info["sam"]} if self.kind == "adds" else {})}

        samples, picked = [], set()

        def pick(why, pred):
            for u in users:
                if u.dn not in picked and pred(u):
                    picked.add(u.dn)
                    samples.append(sample(u, why))
                    return
        pick("first employee (CEO)", lambda u: True)
        pick("comma in CN", lambda u: "," in u.info["cn"])
        pick("CJK name", lambda u: u.info["cjk"])
        pick("apostrophe in CN", lambda u: "'" in u.info["cn"])
        pick("no mail", lambda u: not u.info["mail"] and u.info["category"] != "service")
        pick("disabled", lambda u: u.info["disabled"])
        pick("mixed-case mail", lambda u: u.info.get("mixed_case_mail"))
        pick("invalid telephoneNumber '+'", lambda u: u.info.get("phone") == "+")
        pick("service account", lambda u: u.info["category"] == "service")

        return {
            "dn": self.base,
            "mail_domain": self.domain,
            "users_requested": self.n,
            "counts": counts,
            "ous": per_ou,
            "groups": {g.info["cn"]: {"dn": g.dn, "members": len(g.info["members"]),
                                      "groupType": g.info["gtype"]} for g in self.groups},
            "big_group": {"name": big.info["cn"], "dn": big.dn, "members": len(big.info["members"])},
            "cloud_users": {
                "name": cloud.info["cn"], "dn": cloud.dn, "mail": cloud.info["mail"],
                "members": len(cloud.info["members"]),
                "direct_user_members": sum(1 for m in cloud.info["members"] if m.kind == "user"),
                "direct_group_members": [m.dn for m in cloud.info["members"] if m.kind == "group"],
                "transitive_users": len(cloud_all),
                "transitive_users_enabled": sum(1 for u in cloud_all.values() if enabled(u)),
                "transitive_users_enabled_with_mail": sum(
                    1 for u in cloud_all.values() if enabled(u) and u.info["mail"]),
            },
            "mail_conflicts": self.conflicts,
            "samples": samples,
        }



# ---------------------------------------------------------------- streaming
class StreamOrg:
    """The same organisation shape as Org, written as it is generated.

    For directories too large to hold in memory (a million users): the
    memory used does not grow with N. Entries are written to the LDIF file
    in load order as they are drawn from one random stream; the member
    lists of the groups go to temporary files next to the output and are
    copied into the group entries at the end. The differences from Org,
    all needed to avoid remembering earlier entries:
      * every person's CN, mail and userPrincipalName carry the person's
        number, so they are unique without a look-up (no "Anna Smith 2");
      * the mail conflicts are contacts that take the address of every
        k-th mailed user (no user pair sharing an address);
      * Newsletter holds every k-th person, not a random sample;
      * the manifest lists only the named groups (teams as a count).
    adlds only (it writes memberOf itself, as slapadd needs).
    """

    def __init__(self, kind, base_dn, mail_domain, n_users, seed, head, out_path):
        if kind != "adlds":
            raise SystemExit("gen.py: --stream is for --kind adlds (slapadd) only")
        self.kind = kind
        self.base = base_dn
        self.domain = mail_domain
        self.n = n_users
        self.rng = random.Random("stream|%s|%s|%d" % (seed, base_dn, n_users))
        self.head = head
        self.out_path = out_path

    # -- names -------------------------------------------------------------
    def person_name(self):
        rng = self.rng
        if rng.random() < 0.08:
            family, given, display = rng.choice(CJK)
            return given, family, display or (family + given), True
        given, sn = rng.choice(GIVEN), rng.choice(SURNAME)
        return given, sn, "%s %s" % (given, sn), False

    def write(self, f, e):
        f.write(e.ldif())
        f.write("\n")
        self.entries += 1

    def run(self):
        n, rng = self.n, self.rng
        dir_ = os.path.dirname(self.out_path)
        tmp_files = {}

        def members_file(key):
            if key not in tmp_files:
                tmp_files[key] = open(os.path.join(dir_, ".members.%d.tmp" % len(tmp_files)),
                                      "w+", encoding="utf-8", newline="\n")
            return tmp_files[key]

        self.entries = 0
        f = open(self.out_path + ".tmp", "w", encoding="utf-8", newline="\n")
        if self.head is not None:
            self.write(f, self.head)
        # CN=Roles with the three built-in groups of every AD LDS partition
        roles_dn = "CN=Roles,%s" % self.base
        r = Entry(roles_dn, "container")
        for a, v in (("objectClass", "top"), ("objectClass", "container"), ("cn", "Roles"),
                     ("isCriticalSystemObject", "TRUE")):
            r.add(a, v)
        self.write(f, r)
        for name in ("Administrators", "Readers", "Users"):
            g = Entry("CN=%s,%s" % (name, roles_dn), "role")
            for a, v in (("objectClass", "top"), ("objectClass", "group"), ("cn", name),
                         ("groupType", str(GT_BUILTIN_LOCAL_SECURITY)),
                         ("isCriticalSystemObject", "TRUE")):
                g.add(a, v)
            self.write(f, g)
        ous = {}
        for name in ["Employees", "Contractors", "Disabled", "Service Accounts",
                     "Groups", "Contacts", "Workstations"]:
            dn = "OU=%s,%s" % (rdn_escape(name), self.base)
            e = Entry(dn, "ou")
            e.add("objectClass", "top")
            e.add("objectClass", "organizationalUnit")
            e.add("ou", name)
            e.add("description", "%s (dirconn ldsfx)" % name)
            self.write(f, e)
            ous[name] = dn
        gou = ous["Groups"]

        def gdn(name):
            return "CN=%s,%s" % (rdn_escape(name), gou)

        n_service = min(max(2, round(n * 0.01)), n // 4) if n >= 8 else 0
        n_disabled_ou = max(1, round(n * 0.04)) if n >= 8 else 0
        n_contractors = max(1, round(n * 0.10)) if n >= 8 else 0
        n_employees = n - n_service - n_disabled_ou - n_contractors
        if n_employees < 1:
            raise SystemExit("gen.py: --users must be at least 1")
        n_people = n - n_service  # people come first, service accounts last
        depts = DEPARTMENTS[:max(1, min(len(DEPARTMENTS), n_employees // 8 or 1))]
        n_heads = min(len(depts), n_employees)
        dnames = [d[0] for d in depts[:n_heads]]
        titles = {d[0]: d[2] for d in depts}
        named = (["Dept - %s" % d for d in dnames]
                 + ["Contractors", "All Departments", "Staff", "Managers", "All Company",
                    "Cloud Pilot", "Cloud Users", "Newsletter", "Empty Group"])
        n_teams = max(0, n // 10 - len(named))
        team_size = max(1, n_people // n_teams) if n_teams and n_people else 0
        n_big = min(BIG_GROUP_SIZE, n_people)
        n_contacts = max(3, n // 20)
        n_dup = max(1, n // 250) if n_people >= 4 else 0
        dup_step = max(1, n_people // (n_dup + 1)) if n_dup else 0
        dup_mails = []  # bounded: N/250 addresses
        news_step = max(1, n_people // 25)
        news_contacts = max(1, n_contacts // 2)
        counts = dict.fromkeys(
            ("users", "users_enabled", "users_disabled", "users_with_mail", "users_without_mail",
             "users_enabled_with_mail", "users_mixed_case_mail", "users_with_manager",
             "users_with_photo", "users_invalid_phone", "users_comma_in_cn",
             "users_non_ascii_cn"), 0)
        per_ou = {name: {"dn": dn, "users": 0, "users_enabled": 0, "users_disabled": 0,
                         "groups": 0, "contacts": 0, "computers": 0} for name, dn in ous.items()}
        gmembers = dict.fromkeys(named, 0)
        samples, why_done = [], set()
        head_dns = []
        cloud = {"direct_user": 0, "pilot": 0, "trans": 0, "trans_en": 0, "trans_en_mail": 0}
        pilot_disabled = pilot_nomail = False
        enabled_mailed_emp = 0
        prefix = {"employee": "E", "contractor": "C", "leaver": "L"}

        for i in range(n):
            if i < n_employees:
                cat, ou_name = "employee", "Employees"
            elif i < n_employees + n_contractors:
                cat, ou_name = "contractor", "Contractors"
            elif i < n_people:
                cat, ou_name = "leaver", "Disabled"
            else:
                cat, ou_name = "service", "Service Accounts"
            parent = ous[ou_name]
            dept = title = manager = None
            disabled = False
            if cat == "service":
                k = i - n_people
                name = SERVICE_NAMES[k] if k < len(SERVICE_NAMES) else "svc-app-%03d" % k
                given, sn, display, cjk, cn = None, name, name, False, name
            else:
                given, sn, display, cjk = self.person_name()
                display = "%s %d" % (display, i + 1)
                cn = display
                if not cjk and rng.random() < 0.15:
                    cn = "%s, %s %d" % (sn, given, i + 1)  # "Last, First": a comma in the RDN
                if cat == "employee":
                    if i == 0:
                        dept, title = dnames[0], depts[0][1]
                    elif i < n_heads:
                        dept, title, manager = dnames[i], depts[i][1], head_dns[0]
                    else:
                        dept = rng.choice(dnames)
                        title = rng.choice(titles[dept])
                        manager = head_dns[dnames.index(dept)]
                        disabled = i % 50 == 49
                elif cat == "contractor":
                    dept = rng.choice(dnames)
                    title, manager = "Contractor", head_dns[dnames.index(dept)]
                    disabled = rng.random() < 0.05
                else:
                    dept, title, disabled = rng.choice(dnames), "Former Employee", True
            dn = "CN=%s,%s" % (rdn_escape(cn), parent)
            if cat == "employee" and i < n_heads:
                head_dns.append(dn)
            if cat == "service":
                login = cn
            else:
                login = (ascii_fold(given)[:1] + ascii_fold(sn)).lower()[:12] or "user"
                login = "%s%d" % (login, i + 1)
            mail, mixed = None, False
            if cat != "service" and (i == 0 or rng.random() >= 0.06):
                fg, fs = ascii_fold(given), ascii_fold(sn)
                local = ("%s.%s" % (fg, fs) if fg and fs else login).lower()[:50]
                local = "%s.%d" % (local, i + 1)
                mixed = rng.random() < 0.03
                if mixed:
                    local = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
                    mail = "%s@%s" % (local, self.domain.title())
                else:
                    mail = "%s@%s" % (local, self.domain)
                if n_dup and len(dup_mails) < n_dup and i % dup_step == dup_step - 1:
                    dup_mails.append((mail, dn))
            enabled = not disabled

            # memberships (the groups are written after the users)
            member_of = []
            line = ldif_line("member", dn) + "\n"
            if cat == "employee":
                member_of.append(gdn("Dept - %s" % dept))
                members_file("Dept - %s" % dept).write(line)
                gmembers["Dept - %s" % dept] += 1
                if i < n_heads:
                    member_of.append(gdn("Managers"))
                    members_file("Managers").write(line)
                    gmembers["Managers"] += 1
            if cat == "contractor":
                member_of.append(gdn("Contractors"))
                members_file("Contractors").write(line)
                gmembers["Contractors"] += 1
            if cat != "service" and i < n_big:
                member_of.append(gdn("All Company"))
                members_file("All Company").write(line)
                gmembers["All Company"] += 1
            in_pilot = False
            if cat == "contractor" and i - n_employees < 10:
                in_pilot = True
            elif disabled and not pilot_disabled and cat != "contractor":
                in_pilot = pilot_disabled = True
            elif (cat != "service" and not mail and enabled and not pilot_nomail
                    and cat != "contractor"):
                in_pilot = pilot_nomail = True
            if in_pilot:
                member_of.append(gdn("Cloud Pilot"))
                members_file("Cloud Pilot").write(line)
                gmembers["Cloud Pilot"] += 1
                cloud["trans"] += 1
                cloud["trans_en"] += enabled
                cloud["trans_en_mail"] += enabled and bool(mail)
            if cat == "employee" and enabled and mail:
                if enabled_mailed_emp % 4 == 0:
                    member_of.append(gdn("Cloud Users"))
                    members_file("Cloud Users").write(line)
                    cloud["direct_user"] += 1
                    if not in_pilot:
                        cloud["trans"] += 1
                        cloud["trans_en"] += 1
                        cloud["trans_en_mail"] += 1
                enabled_mailed_emp += 1
            if cat != "service" and i % news_step == 0 and i // news_step < 25:
                member_of.append(gdn("Newsletter"))
                members_file("Newsletter").write(line)
                gmembers["Newsletter"] += 1
            if cat != "service" and team_size and i // team_size < n_teams:
                member_of.append(gdn("Team %05d" % (i // team_size + 1)))
            if cat != "service" and team_size:
                members_file("people").write(line)

            # the entry
            e = Entry(dn, "user")
            for oc in ("top", "person", "organizationalPerson", "user"):
                e.add("objectClass", oc)
            e.add("cn", cn)
            e.add("msDS-UserAccountDisabled", "TRUE" if disabled else "FALSE")
            e.add("userPrincipalName", "%s@%s" % (login, self.domain))
            e.add("givenName", given)
            e.add("sn", sn)
            e.add("displayName", display)
            phone = photo = None
            if mail:
                e.add("mail", mail)
                e.add("proxyAddresses", "SMTP:" + mail)
            if cat == "service":
                e.add("description", "Service account")
            else:
                office = OFFICES[(i * 7 + len(login)) % len(OFFICES)]
                r = rng.random()
                if r < 0.02:
                    phone = "+"  # invalid on purpose
                elif r < 0.90:
                    phone = "%s %04d" % (office[8], rng.randrange(10000))
                e.add("telephoneNumber", phone)
                if rng.random() < 0.5:
                    e.add("mobile", "%s %04d" % (office[8].rsplit(" ", 1)[0] + " 17",
                                                 rng.randrange(10000)))
                if rng.random() < 0.05:
                    e.add("facsimileTelephoneNumber", "%s 9%03d" % (office[8], rng.randrange(1000)))
                if rng.random() < 0.02:
                    e.add("pager", "%05d" % rng.randrange(100000))
                if rng.random() < 0.1:
                    e.add("homePhone", "%s %04d" % (office[8], rng.randrange(10000)))
                if mail and rng.random() < 0.2:
                    e.add("proxyAddresses", "smtp:%s@mail.%s" % (login.lower(), self.domain))
                for a, v in zip(("physicalDeliveryOfficeName", "streetAddress", "l", "st",
                                 "postalCode", "c", "co", "preferredLanguage"), office):
                    e.add(a, v)
                e.add("title", title)
                e.add("department", dept)
                e.add("employeeNumber", "%s%07d" % (prefix[cat], i + 1))
                if manager is not None:
                    e.add("manager", manager)
                if rng.random() < 0.05:
                    photo = tiny_png(rng)
                    e.add("thumbnailPhoto", photo)
            for g in member_of:
                e.add("memberOf", g)
            self.write(f, e)

            counts["users"] += 1
            counts["users_enabled" if enabled else "users_disabled"] += 1
            counts["users_with_mail" if mail else "users_without_mail"] += 1
            counts["users_enabled_with_mail"] += enabled and bool(mail)
            counts["users_mixed_case_mail"] += mixed
            counts["users_with_manager"] += manager is not None
            counts["users_with_photo"] += photo is not None
            counts["users_invalid_phone"] += phone == "+"
            counts["users_comma_in_cn"] += "," in cn
            counts["users_non_ascii_cn"] += not cn.isascii()
            o = per_ou[ou_name]
            o["users"] += 1
            o["users_enabled" if enabled else "users_disabled"] += 1
            for why, hit in (("first employee (CEO)", i == 0), ("comma in CN", "," in cn),
                             ("CJK name", cjk), ("apostrophe in CN", "'" in cn),
                             ("no mail", not mail and cat != "service"), ("disabled", disabled),
                             ("mixed-case mail", mixed), ("invalid telephoneNumber '+'", phone == "+"),
                             ("service account", cat == "service")):
                if hit and why not in why_done:
                    why_done.add(why)
                    samples.append({"why": why, "dn": dn, "mail": mail, "displayName": display,
                                    "cn": cn, "enabled": enabled})
                    break

        # contacts (external partners); the first N/250 take a user's address
        conflicts = []
        for k in range(n_contacts):
            given, sn, display, _ = self.person_name()
            cn = "%s (External) %d" % (display, k + 1)
            dn = "CN=%s,%s" % (rdn_escape(cn), ous["Contacts"])
            if k < len(dup_mails):
                mail, owner = dup_mails[k]
                mail = mail.upper() if k % 2 else mail
                conflicts.append({"mail": mail, "dns": [owner, dn],
                                  "case_only": mail != dup_mails[k][0]})
            else:
                local = ascii_fold(given).lower() + "." + (ascii_fold(sn).lower() or "x")
                mail = "%s%d@%s" % (local, k, PARTNER_DOMAINS[k % len(PARTNER_DOMAINS)])
            e = Entry(dn, "contact")
            for oc in ("top", "person", "organizationalPerson", "contact"):
                e.add("objectClass", oc)
            e.add("cn", cn)
            e.add("givenName", given)
            e.add("sn", sn)
            e.add("displayName", display)
            e.add("mail", mail)
            e.add("description", "External contact")
            if k < news_contacts:
                e.add("memberOf", gdn("Newsletter"))
                members_file("Newsletter").write(ldif_line("member", dn) + "\n")
                gmembers["Newsletter"] += 1
            self.write(f, e)
        per_ou["Contacts"]["contacts"] = n_contacts

        n_computers = max(2, n // 40)
        for k in range(n_computers):
            name = "WS%05d" % (k + 1)
            w = Entry("CN=%s,%s" % (name, ous["Workstations"]), "computer")
            for oc in ("top", "person", "organizationalPerson", "user", "computer"):
                w.add("objectClass", oc)
            w.add("cn", name)
            w.add("sn", name)
            w.add("dNSHostName", "%s.%s" % (name.lower(), self.domain))
            w.add("description", "Workstation (must never sync)")
            self.write(f, w)
        per_ou["Workstations"]["computers"] = n_computers

        # groups, a group's member groups before it
        def group(name, gtype, member_dns=(), key=None, mail=None, description=None,
                  member_of=(), member_range=None):
            f.write(ldif_line("dn", gdn(name)) + "\n")
            attrs = [("objectClass", "top"), ("objectClass", "group"), ("cn", name),
                     ("groupType", str(gtype))]
            if description:
                attrs.append(("description", description))
            if mail:
                attrs += [("mail", mail), ("proxyAddresses", "SMTP:" + mail)]
            attrs += [("memberOf", gdn(g)) for g in member_of]
            attrs += [("member", m) for m in member_dns]
            for a, v in attrs:
                f.write(ldif_line(a, v) + "\n")
            if key in tmp_files:
                t = tmp_files[key]
                t.seek(0)
                for chunk in iter(lambda: t.read(1 << 20), ""):
                    f.write(chunk)
            if member_range is not None:
                src, count = member_range
                for _ in range(count):
                    f.write(src.readline())
            f.write("\n")
            self.entries += 1

        for d in dnames:
            group("Dept - %s" % d, GT_GLOBAL_SECURITY, key="Dept - %s" % d,
                  description="Employees of %s" % d, member_of=["All Departments"])
        group("Contractors", GT_GLOBAL_SECURITY, key="Contractors", member_of=["Staff"])
        group("All Departments", GT_UNIVERSAL_SECURITY, [gdn("Dept - %s" % d) for d in dnames],
              member_of=["Staff"])
        gmembers["All Departments"] = len(dnames)
        group("Staff", GT_UNIVERSAL_SECURITY, [gdn("All Departments"), gdn("Contractors")],
              description="Nested: Staff > All Departments > Dept - *")
        gmembers["Staff"] = 2
        group("Managers", GT_GLOBAL_SECURITY, key="Managers")
        group("All Company", GT_UNIVERSAL_DISTRIBUTION, key="All Company",
              mail="all-company@%s" % self.domain)
        group("Cloud Pilot", GT_GLOBAL_SECURITY, key="Cloud Pilot", member_of=["Cloud Users"])
        group("Cloud Users", GT_UNIVERSAL_SECURITY, [gdn("Cloud Pilot")], key="Cloud Users",
              mail="cloud-users@%s" % self.domain,
              description="Email security group: users synced to the cloud")
        gmembers["Cloud Users"] = cloud["direct_user"] + 1
        group("Newsletter", GT_UNIVERSAL_DISTRIBUTION, key="Newsletter",
              mail="newsletter@%s" % self.domain)
        group("Empty Group", GT_GLOBAL_SECURITY)
        if n_teams and team_size:
            people = tmp_files["people"]
            people.seek(0)
            for t in range(n_teams):
                group("Team %05d" % (t + 1), GT_GLOBAL_SECURITY, description="Team %d" % (t + 1),
                      member_range=(people, team_size))
        f.close()
        os.replace(self.out_path + ".tmp", self.out_path)
        for t in tmp_files.values():
            os.unlink(t.name)
            t.close()

        gtypes = {"Contractors": GT_GLOBAL_SECURITY, "All Departments": GT_UNIVERSAL_SECURITY,
                  "Staff": GT_UNIVERSAL_SECURITY, "Managers": GT_GLOBAL_SECURITY,
                  "All Company": GT_UNIVERSAL_DISTRIBUTION, "Cloud Pilot": GT_GLOBAL_SECURITY,
                  "Cloud Users": GT_UNIVERSAL_SECURITY, "Newsletter": GT_UNIVERSAL_DISTRIBUTION,
                  "Empty Group": GT_GLOBAL_SECURITY}
        n_groups = len(named) + (n_teams if team_size else 0)
        per_ou["Groups"]["groups"] = n_groups
        n_security = sum(1 for g in named if gtypes.get(g, GT_GLOBAL_SECURITY) < 0)
        counts.update({
            "groups": n_groups,
            "groups_security": n_security + (n_teams if team_size else 0),
            "groups_distribution": len(named) - n_security,
            "groups_with_mail": 3,
            "contacts": n_contacts,
            "computers": n_computers,
            "ous": len(ous),
            "role_groups": 3,
        })
        return {
            "dn": self.base,
            "mail_domain": self.domain,
            "users_requested": n,
            "generator_mode": "stream",
            "counts": counts,
            "ous": per_ou,
            "groups": {g: {"dn": gdn(g), "members": gmembers[g],
                           "groupType": gtypes.get(g, GT_GLOBAL_SECURITY)} for g in named},
            "teams": {"count": n_teams if team_size else 0, "members_each": team_size},
            "big_group": {"name": "All Company", "dn": gdn("All Company"), "members": n_big},
            "cloud_users": {
                "name": "Cloud Users", "dn": gdn("Cloud Users"), "mail": "cloud-users@%s" % self.domain,
                "members": cloud["direct_user"] + 1,
                "direct_user_members": cloud["direct_user"],
                "direct_group_members": [gdn("Cloud Pilot")],
                "transitive_users": cloud["trans"],
                "transitive_users_enabled": cloud["trans_en"],
                "transitive_users_enabled_with_mail": cloud["trans_en_mail"],
            },
            "mail_conflicts": conflicts,
            "samples": samples,
            "entries": self.entries,
        }


def partition_head(dn):
    """The entry at the top of an adlds naming context."""
    attr, value = dn.split(",", 1)[0].split("=", 1)
    e = Entry(dn, "head")
    if attr.upper() == "CN":
        e.add("objectClass", "top")
        e.add("objectClass", "container")
        e.add("cn", value)
    elif attr.upper() == "O":
        e.add("objectClass", "top")
        e.add("objectClass", "organization")
        e.add("o", value)
    else:
        raise SystemExit("gen.py: unsupported partition head %s" % dn)
    e.add("description", "dirconn ldsfx application partition")
    return e


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=["adds", "adlds"], required=True)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--users", type=int, default=DEFAULT_USERS)
    ap.add_argument("--seed", default=str(DEFAULT_SEED))
    ap.add_argument("--stream", action="store_true",
                    help="write entries as they are generated (adlds only; memory does not "
                         "grow with --users; see StreamOrg)")
    a = ap.parse_args(argv)
    if a.stream and a.kind != "adlds":
        ap.error("--stream is for --kind adlds only")
    if a.users < 1:
        ap.error("--users must be at least 1")

    os.makedirs(os.path.join(a.out, "data"), exist_ok=True)
    if a.kind == "adds":
        specs = [(ADDS_DOMAIN_DN, ADDS_MAIL_DOMAIN, None, a.users)]
    else:
        specs = [(dn, dom, partition_head(dn), max(20, round(a.users * share)) if share < 1 else a.users)
                 for dn, dom, _, share in ADLDS_PARTITIONS]
    parts = []
    for k, (dn, dom, head, n) in enumerate(specs, 1):
        path = os.path.join(a.out, "data", "p%d.ldif" % k)
        if a.stream:
            m = StreamOrg(a.kind, dn, dom, n, a.seed, head, path).run()
            m["ldif"] = os.path.join("data", "p%d.ldif" % k)
            parts.append(m)
            continue
        org = Org(a.kind, dn, dom, n, a.seed, head)
        entries = org.materialise()
        with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
            for e in entries:
                f.write(e.ldif())
                f.write("\n")
        os.replace(path + ".tmp", path)
        m = org.manifest()
        m["ldif"] = os.path.join("data", "p%d.ldif" % k)
        m["entries"] = len(entries)
        parts.append(m)

    first = parts[0]
    manifest = {
        "generator": "ldsfx/gen.py",
        "generator_version": GENERATOR_VERSION,
        "kind": a.kind,
        "seed": a.seed,
        "users_requested": a.users,
        "mode": "stream" if a.stream else "org",
        "base_dn": first["dn"],
        "partitions": parts,
        # convenience copies of the first partition (the base DN)
        "counts": first["counts"],
        "ous": first["ous"],
        "big_group": first["big_group"],
        "cloud_users": first["cloud_users"],
        "samples": first["samples"],
        "filters": {
            "users": "(&(objectClass=user)(!(objectClass=computer)))",
            "users_enabled": ("(&(objectClass=user)(!(objectClass=computer))"
                              "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
                              if a.kind == "adds" else
                              "(&(objectClass=user)(!(objectClass=computer))"
                              "(!(msDS-UserAccountDisabled=TRUE)))"),
            "groups": "(objectClass=group)",
            "contacts": "(objectClass=contact)",
            "computers": "(objectClass=computer)",
        },
        "notes": ("counts cover the generated organisation, i.e. the OUs listed in 'ous'; "
                  + ("Samba's built-in objects (CN=Users, CN=Builtin, OU=Domain Controllers) "
                     "are counted separately under 'builtin' when ldsfx loads the data"
                     if a.kind == "adds" else
                     "each partition also holds CN=Roles with three built-in groups "
                     "(counts.role_groups), which are not in counts.groups")),
    }
    path = os.path.join(a.out, "manifest.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
