#!/usr/bin/env node
// Thin launcher for an independent SCIM 2.0 service provider used by dirconn's
// integration tests. All protocol logic (filter parsing and matching, PATCH
// application, schema validation and coercion, list responses, pagination,
// sorting, Bulk, /.search, discovery endpoints) comes from the npm packages
// SCIMMY (`scimmy`) and `scimmy-routers`. This file only supplies:
//   - in-memory storage for Users and Groups (ingress/egress/degress handlers),
//     with userName uniqueness (409) as a storage constraint,
//   - bearer-token checking, request logging, ready-file and SIGTERM handling.
//
// Usage:
//   node server.js --listen 127.0.0.1:0 --token-file FILE --ready-file FILE
//                  [--log FILE] [--no-cascade]
//
// SCIM base path: http://HOST:PORT/scim/v2
"use strict";

const fs = require("fs");
const crypto = require("crypto");
const express = require("express");
const SCIMMY = require("scimmy").default ?? require("scimmy");
const routersMod = require("scimmy-routers");
const SCIMMYRouters = routersMod.default ?? routersMod.SCIMMYRouters ?? routersMod;

const BASE = "/scim/v2";
const DISCOVERY = /^\/(ServiceProviderConfig|ResourceTypes|Schemas)(\/|$)/;

function usage(msg) {
  if (msg) process.stderr.write(`server.js: ${msg}\n`);
  process.stderr.write(
    "usage: node server.js --listen HOST:PORT --token-file FILE --ready-file FILE [--log FILE] [--no-cascade]\n");
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { cascade: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    switch (a) {
      case "--listen": opts.listen = val(); break;
      case "--token-file": opts.tokenFile = val(); break;
      case "--ready-file": opts.readyFile = val(); break;
      case "--log": opts.log = val(); break;
      case "--no-cascade": opts.cascade = false; break;
      case "-h": case "--help": usage(); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!opts.listen || !opts.tokenFile || !opts.readyFile) usage("missing required argument");
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(opts.listen);
  if (!m) usage(`bad --listen ${opts.listen}`);
  opts.host = m[1] ?? m[2];
  opts.port = Number(m[3]);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const token = fs.readFileSync(opts.tokenFile, "utf8").trim();
if (!token) usage("token file is empty");

const logLine = (line) => {
  if (opts.log) fs.appendFileSync(opts.log, line + "\n");
  else process.stderr.write(line + "\n");
};

// ---------------------------------------------------------------- storage
// Plain in-memory maps of JSON objects. SCIMMY hands ingress a validated,
// coerced schema instance; we keep its JSON form plus id and meta timestamps.

const stores = { User: new Map(), Group: new Map() };
const clone = (o) => JSON.parse(JSON.stringify(o));
const notFound = (id) => new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);

function makeHandlers(kind) {
  const store = stores[kind];
  return {
    egress(resource) {
      if (resource.id) {
        const r = store.get(resource.id);
        if (!r) throw notFound(resource.id);
        return clone(r);
      }
      const all = [...store.values()].map(clone);
      if (!resource.filter) return all;
      // Filter parsing and matching are SCIMMY's own (SCIMMY.Types.Filter).
      // Two workarounds for SCIMMY 1.3.5 bugs (see README, deviations D1, D2):
      //  - match one resource at a time: Filter#match throws a TypeError for
      //    the whole list when any resource lacks a complex attribute named in
      //    the filter (e.g. `emails.value eq "x"` and a user without emails);
      //    such a resource does not match.
      //  - the parser keys `urn:...:User:department` at the top level, so each
      //    resource is matched through a view with extension attributes also
      //    copied to "URN:attr" keys.
      return all.filter((r) => {
        const view = { ...r };
        for (const [k, v] of Object.entries(r)) {
          if (k.startsWith("urn:") && v && typeof v === "object" && !Array.isArray(v))
            for (const [a, av] of Object.entries(v)) view[`${k}:${a}`] = av;
        }
        try { return resource.filter.match([view]).length > 0; } catch (e) {
          if (e instanceof TypeError && e.message === "Cannot convert undefined or null to object") return false;
          throw e; // any other failure is answered as SCIMMY answers it
        }
      });
    },
    ingress(resource, instance) {
      const data = clone(instance);
      delete data.id;
      delete data.meta;
      if (kind === "User") {
        const name = String(data.userName ?? "").toLowerCase();
        for (const [id, u] of stores.User) {
          if (id !== resource.id && String(u.userName).toLowerCase() === name)
            throw new SCIMMY.Types.Error(409, "uniqueness", `userName '${data.userName}' is already in use`);
        }
      }
      const now = new Date().toISOString();
      let rec;
      if (resource.id) {
        const old = store.get(resource.id);
        if (!old) throw notFound(resource.id);
        rec = { ...data, id: resource.id, meta: { created: old.meta.created, lastModified: now } };
      } else {
        rec = { ...data, id: crypto.randomUUID(), meta: { created: now, lastModified: now } };
      }
      store.set(rec.id, rec);
      return clone(rec);
    },
    degress(resource) {
      if (!store.delete(resource.id)) throw notFound(resource.id);
      if (kind === "User" && opts.cascade) {
        for (const g of stores.Group.values()) {
          if (Array.isArray(g.members) && g.members.some((m) => m.value === resource.id)) {
            g.members = g.members.filter((m) => m.value !== resource.id);
            if (!g.members.length) delete g.members;
            g.meta.lastModified = new Date().toISOString();
          }
        }
      }
    },
  };
}

SCIMMY.Resources.declare(SCIMMY.Resources.User, {
  ...makeHandlers("User"),
  extensions: [{ schema: SCIMMY.Schemas.EnterpriseUser, required: false }],
});
SCIMMY.Resources.declare(SCIMMY.Resources.Group, makeHandlers("Group"));

// ---------------------------------------------------------------- HTTP

const app = express();
app.disable("x-powered-by");
app.disable("etag"); // no weak ETags from express: SCIMMY declares etag unsupported

app.use((req, res, next) => {
  const p = req.originalUrl.split("?")[0];
  res.on("finish", () => {
    // ops=N: the PATCH operations the request carried (a PATCH, or the PATCHes inside a /Bulk)
    const b = req.body ?? {};
    let ops = req.method === "PATCH" && Array.isArray(b.Operations) ? b.Operations.length : 0;
    if (req.method === "POST" && /\/Bulk$/.test(p) && Array.isArray(b.Operations))
      for (const o of b.Operations)
        if (String(o.method).toUpperCase() === "PATCH" && Array.isArray(o.data?.Operations))
          ops += o.data.Operations.length;
    logLine(`${req.method} ${p} ${res.statusCode}${ops ? ` ops=${ops}` : ""}`);
  });
  next();
});

// scimmy-routers sets the SCIM media type only after its JSON body parser ran,
// so a malformed body would be answered as application/json (deviation D9).
app.use(BASE, (req, res, next) => { res.setHeader("Content-Type", "application/scim+json"); next(); });

const tokenBuf = Buffer.from(token);
app.use(BASE, new SCIMMYRouters({
  type: "bearer",
  handler: (req) => {
    if (DISCOVERY.test(req.path) && req.method === "GET") return undefined;
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(req.get("Authorization") ?? "");
    const got = Buffer.from(m ? m[1] : "");
    if (got.length !== tokenBuf.length || !crypto.timingSafeEqual(got, tokenBuf)) {
      req.res.set("WWW-Authenticate", 'Bearer realm="scim"');
      throw new Error("Authorization failure: missing or invalid bearer token");
    }
    return undefined;
  },
}));

// Anything outside the SCIM base path.
app.use((req, res) => {
  res.status(404).type("application/scim+json").send(JSON.stringify({
    schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "404", detail: "Endpoint Not Found",
  }));
});
// scimmy-routers already answered; it forwards 5xx errors here for logging.
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  process.stderr.write(`server.js: ${req.method} ${req.originalUrl}: ${err && err.stack || err}\n`);
  if (!res.headersSent) res.status(500).end();
});

const server = app.listen(opts.port, opts.host, () => {
  const { port } = server.address();
  const tmp = `${opts.readyFile}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, `${port}\n`);
  fs.renameSync(tmp, opts.readyFile);
  process.stderr.write(`server.js: SCIM 2.0 on http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}${BASE}\n`);
});
server.on("error", (e) => { process.stderr.write(`server.js: ${e.message}\n`); process.exit(1); });

function shutdown(sig) {
  process.stderr.write(`server.js: ${sig}, shutting down\n`);
  server.close(() => process.exit(0));
  if (server.closeIdleConnections) server.closeIdleConnections();
  setTimeout(() => { if (server.closeAllConnections) server.closeAllConnections(); process.exit(0); }, 2000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
