#!/usr/bin/python3
"""Click a button of dirconnd's status page in headless Chromium, for daemon_web.sh.

  web_browser.py --profile DIR --url URL --click ELEMENT_ID [--user USER --password-file FILE]

Starts Chromium (--headless=new, a fresh profile in DIR, --no-sandbox only as root) with the
DevTools protocol on a free port, opens URL, clicks the element (a form's submit button: the
browser posts the form, CSRF token included, as a user's click would), waits for the page that
answers, and prints JSON: {"requests": [[method, path, status of the redirect or null], ...],
"status": the HTTP status of the last document, "path": location.pathname, "text": the start of
the body's text}. With --user, every request carries HTTP Basic credentials
(Network.setExtraHTTPHeaders). The DevTools protocol is spoken with python3-websocket.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import websocket

DEADLINE_S = 120


class Tab:
    def __init__(self, ws):
        self.ws, self.n, self.events = ws, 0, []

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def poll(self, expression):
        """Evaluate expression until it is true (the page may still be loading)."""
        end = time.time() + DEADLINE_S
        while time.time() < end:
            r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
            if r.get("result", {}).get("value") is True:
                return
            time.sleep(0.1)
        raise TimeoutError(expression)

    def wait_event(self, pred, after=0):
        """The first event at index >= after for which pred is true; returns its index."""
        end = time.time() + DEADLINE_S
        while True:
            for i in range(after, len(self.events)):
                if pred(self.events[i]):
                    return i
            if time.time() > end:
                raise TimeoutError("DevTools event")
            self.events.append(json.loads(self.ws.recv()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--click", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    a = ap.parse_args()
    os.makedirs(a.profile, exist_ok=True)
    cmd = ["chromium", "--headless=new", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={a.profile}", "--remote-debugging-port=0", "about:blank"]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    log = open(os.path.join(a.profile, "chromium.log"), "ab")
    chrome = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        active = os.path.join(a.profile, "DevToolsActivePort")
        end = time.time() + DEADLINE_S
        while not (os.path.exists(active) and os.path.getsize(active) > 0):
            if chrome.poll() is not None or time.time() > end:
                sys.exit("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(open(active).read().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        page = next(t for t in targets if t["type"] == "page")
        tab = Tab(websocket.create_connection(page["webSocketDebuggerUrl"], timeout=DEADLINE_S))
        tab.call("Network.enable")
        tab.call("Page.enable")
        if a.user:
            secret = open(a.password_file, encoding="utf-8").read().splitlines()[0]
            token = base64.b64encode(f"{a.user}:{secret}".encode()).decode()
            tab.call("Network.setExtraHTTPHeaders", headers={"Authorization": "Basic " + token})
        tab.call("Page.navigate", url=a.url)
        button = json.dumps(a.click)
        tab.poll(f"location.href === {json.dumps(a.url)} && document.readyState === 'complete'"
                 f" && document.getElementById({button}) !== null")
        mark = len(tab.events)
        found = tab.call("Runtime.evaluate", returnByValue=True,
                         expression=f"(() => {{ window.dirconnClicked = true;"
                                    f" const b = document.getElementById({button});"
                                    " if (!b) return false; b.click(); return true; })()")
        if not found.get("result", {}).get("value"):
            sys.exit(f"no element {a.click} on the page: {json.dumps(found)[:300]}")
        # the answer to the click: a document response, then that document loaded
        tab.wait_event(lambda e: e.get("method") == "Network.responseReceived"
                       and e["params"].get("type") == "Document", mark)
        tab.poll("window.dirconnClicked === undefined && document.readyState === 'complete'")
        requests, status = [], None
        for e in tab.events[mark:]:
            p = e.get("params", {})
            if e.get("method") == "Network.requestWillBeSent" and p.get("type") == "Document":
                r = p.get("redirectResponse")
                if r is not None and requests:
                    requests[-1][2] = r.get("status")
                requests.append([p["request"]["method"], urllib.parse.urlsplit(p["request"]["url"]).path, None])
            if e.get("method") == "Network.responseReceived" and p.get("type") == "Document":
                status = p["response"]["status"]
        info = tab.call("Runtime.evaluate", returnByValue=True,
                        expression="JSON.stringify({path: location.pathname,"
                                   " text: document.body ? document.body.innerText.slice(0, 300) : ''})")
        out = json.loads(info["result"]["value"])
        print(json.dumps({"requests": requests, "status": status, **out}))
    finally:
        chrome.terminate()
        try:
            chrome.wait(timeout=30)
        except subprocess.TimeoutExpired:
            chrome.kill()
            chrome.wait()


if __name__ == "__main__":
    main()
