#!/usr/bin/env python3
"""group_patch.py - the cost of a member PATCH on a large group in dirconn-cloud.

usage: bench/group_patch.py [--members N] [--chunk C] [--build-dir DIR] [--out FILE] [--wrap CMD]

Starts the reference cloud (plain HTTP on loopback, its own temporary database), creates N users
through /Bulk, one group, and fills the group the way dirconn does (RFC 7644 3.5.2.1: one "add"
of "members" per PATCH with C values, dirconn's MEMBER_CHUNK is 500). Then it times, each on
the full group: a PATCH adding one member, a PATCH removing one member (members[value eq "..."]),
a PATCH of 100 remove operations, each with the whole representation as the answer and with
?excludedAttributes=members (RFC 7644 3.9). Prints a Markdown table and writes JSON.
"""
import argparse, http.client, json, os, shutil, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--members", type=int, default=20000)
ap.add_argument("--chunk", type=int, default=500)
ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
ap.add_argument("--out", default=None)
ap.add_argument("--wrap", default="", help="command the cloud runs under, e.g. 'perf record -g -o F --'")
a = ap.parse_args()
cloud = os.path.join(a.build_dir, "cloud", "dirconn-cloud")
tmp = tempfile.mkdtemp(prefix="dirconn-group-patch.")
tok = os.path.join(tmp, "token")
open(tok, "w").write("benchtoken0123456789abcdef\n")
ready = os.path.join(tmp, "ready")
log = open(os.path.join(tmp, "cloud.log"), "w")
p = subprocess.Popen(a.wrap.split() + [cloud, "--listen", "127.0.0.1:0", "--db", os.path.join(tmp, "db"),
                      "--admin-token-file", tok, "--org", "bench", "--insecure-http",
                      "--ready-file", ready, "--max-body", "16m", "--bulk-max-payload", "16m"],
                     stderr=log)
try:
    for _ in range(600):
        if os.path.exists(ready) and open(ready).read().strip():
            break
        time.sleep(0.05)
    port = int(open(ready).read())
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    H = {"Authorization": "Bearer benchtoken0123456789abcdef",
         "Content-Type": "application/scim+json"}

    def req(method, path, body=None):
        t0 = time.monotonic()
        c.request(method, "/scim/v2/bench" + path,
                  body=json.dumps(body) if body is not None else None, headers=H)
        r = c.getresponse()
        data = r.read()
        dt = time.monotonic() - t0
        if r.status >= 300:
            sys.exit("%s %s: %d %s" % (method, path, r.status, data[:300]))
        return dt, data

    ids = []
    for start in range(0, a.members, 1000):
        ops = [{"method": "POST", "path": "/Users", "bulkId": "u%d" % i,
                "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                         "userName": "bench.user%07d@example.org" % i}}
               for i in range(start, min(start + 1000, a.members))]
        _, data = req("POST", "/Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                                         "Operations": ops})
        for o in json.loads(data)["Operations"]:
            ids.append(o["location"].rsplit("/", 1)[1])
    _, data = req("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                      "displayName": "Bench Big Group"})
    gid = json.loads(data)["id"]
    PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    fill = []
    for start in range(0, len(ids) - 1, a.chunk):
        vals = [{"value": v} for v in ids[start:min(start + a.chunk, len(ids) - 1)]]
        dt, _ = req("PATCH", "/Groups/" + gid,
                    {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": vals}]})
        fill.append(dt)
    rows = []
    for q in ("", "?excludedAttributes=members"):
        # members: N-1 -> N -> N-1 -> N-101 -> N-1 (the 100 are added back in one PATCH)
        dt_add, ans_add = req("PATCH", "/Groups/" + gid + q,
                              {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
                                                                   "value": [{"value": ids[-1]}]}]})
        dt_rm, _ = req("PATCH", "/Groups/" + gid + q,
                       {"schemas": [PATCH], "Operations": [{"op": "remove",
                                                            "path": 'members[value eq "%s"]' % ids[-1]}]})
        dt_rm100, _ = req("PATCH", "/Groups/" + gid + q,
                          {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "%s"]' % v}
                                                              for v in ids[:100]]})
        dt_add100, _ = req("PATCH", "/Groups/" + gid + q,
                           {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
                                                                "value": [{"value": v} for v in ids[:100]]}]})
        rows.append({"query": q or "(none)", "add_1_s": dt_add, "remove_1_s": dt_rm,
                     "remove_100_ops_s": dt_rm100, "add_100_values_s": dt_add100,
                     "answer_bytes": len(ans_add)})
    res = {"members": a.members, "chunk": a.chunk, "fill_patches": len(fill),
           "fill_total_s": sum(fill), "fill_last_s": fill[-1], "rows": rows}
    print("| members | fill: %d PATCHes of %d values (s) | last fill PATCH (s) |" % (len(fill), a.chunk))
    print("|---|---|---|")
    print("| %d | %.2f | %.3f |" % (a.members, sum(fill), fill[-1]))
    print()
    print("| query | +1 member (s) | -1 member (s) | 100 remove ops (s) | +100 members (s) | answer (B) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.3f | %.3f | %.3f | %.3f | %d |" % (r["query"], r["add_1_s"], r["remove_1_s"],
                                                         r["remove_100_ops_s"], r["add_100_values_s"],
                                                         r["answer_bytes"]))
    if a.out:
        json.dump(res, open(a.out, "w"), indent=2)
finally:
    p.send_signal(2)  # SIGINT: a wrapper such as perf record passes it on and writes its data
    p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
