#!/usr/bin/env python3
"""A real SMTP server on loopback for the mail tests (aiosmtpd, Debian's python3-aiosmtpd).

    smtp_sink.py --dir DIR --ready-file FILE [--port N] [--tls-cert PEM --tls-key PEM]
                 [--auth USER:PASSWORD_FILE] [--silent]

Listens on 127.0.0.1 (port N, or a free one), writes the port to the ready file once it
accepts connections, and stores each message it takes in DIR as NNN.eml (the data as
received) and NNN.json (the envelope: mail_from, rcpt_tos, whether the session was TLS, the
AUTH login), written to a temporary name and renamed, so a reader never sees half a file.
With --tls-cert, STARTTLS (RFC 3207) is offered and required before MAIL; with --auth,
AUTH PLAIN/LOGIN (RFC 4954) is required and only USER with the file's password passes.
--silent accepts TCP connections and never answers (a server that hangs).
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Sink:
    def __init__(self, directory):
        self.dir = directory
        self.n = len([f for f in os.listdir(directory) if f.endswith(".eml")])

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, "%03d" % self.n)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "login": session.auth_data if session.authenticated else None,
        }
        for ext, data in ((".eml", envelope.original_content or envelope.content),
                          (".json", json.dumps(meta).encode())):
            with open(base + ext + ".tmp", "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
            os.rename(base + ext + ".tmp", base + ext)
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--auth")
    ap.add_argument("--silent", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if a.silent:
        async def hang(reader, writer):
            await asyncio.sleep(3600)
        server = loop.run_until_complete(asyncio.start_server(hang, "127.0.0.1", a.port))
    else:
        tls = None
        if a.tls_cert:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(a.tls_cert, a.tls_key)
        kwargs = {}
        if a.auth:
            user, pwfile = a.auth.split(":", 1)
            with open(pwfile) as f:
                password = f.read().strip()

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
                return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

            kwargs = dict(auth_required=True, authenticator=authenticator,
                          auth_require_tls=tls is not None)
        handler = Sink(a.dir)

        def factory():
            return SMTP(handler, hostname="sink.test", tls_context=tls,
                        require_starttls=tls is not None, **kwargs)

        server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", a.port))
    port = server.sockets[0].getsockname()[1]
    with open(a.ready_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(a.ready_file + ".tmp", a.ready_file)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
