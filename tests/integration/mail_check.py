#!/usr/bin/env python3
"""Parse one received mail (smtp_sink.py's NNN.eml) with Python's email package and print what
the mail tests check, as one JSON object:
  subject (decoded), from, to (addresses), date_skew (seconds between Date: and now),
  message_id, mime_version, types (content types of the leaf parts, in order), alternative
  (the plain and HTML parts are alternatives of one multipart/alternative), text, html.

    mail_check.py FILE.eml
"""
import email
import email.policy
import email.utils
import json
import sys
import time

with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)
alt = [p for p in msg.walk() if p.get_content_type() == "multipart/alternative"]
leaves = [p for p in msg.walk() if not p.is_multipart()]
plain = msg.get_body(preferencelist=("plain",))
html = msg.get_body(preferencelist=("html",))
date = msg["Date"]
out = {
    "subject": str(msg["Subject"]),
    "from": [a.addr_spec for a in msg["From"].addresses] if msg["From"] else [],
    "to": [a.addr_spec for a in msg["To"].addresses] if msg["To"] else [],
    "date_skew": abs(time.time() - email.utils.parsedate_to_datetime(str(date)).timestamp())
    if date else None,
    "message_id": str(msg["Message-ID"] or ""),
    "mime_version": str(msg["MIME-Version"] or ""),
    "types": [p.get_content_type() for p in leaves],
    "alternative": bool(alt) and [p.get_content_type() for p in alt[0].iter_parts()]
    == ["text/plain", "text/html"],
    "text": plain.get_content() if plain is not None else "",
    "html": html.get_content() if html is not None else "",
}
print(json.dumps(out))
