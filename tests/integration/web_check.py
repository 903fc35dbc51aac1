#!/usr/bin/python3
"""Read what dirconnd's status page and /metrics served, for daemon_web.sh.

  web_check.py metrics FILE   the samples of a Prometheus text exposition as JSON:
                              {"name{label=value,...}": value}, labels sorted
                              (parsed with prometheus_client, Debian's python3-prometheus-client)
  web_check.py dom FILE       the page's DOM (chromium --dump-dom) as JSON: "ids" (text of every
                              element with an id), "classes" (class of every element with an id),
                              "h2" (section titles), "refresh" (meta refresh seconds), "svg" (id ->
                              number of rect.bar), "csrf" (hidden csrf values), "li" (config summary),
                              "rows" (every <tr class=...>: its class, the enclosing panel's id and
                              its cells' text)
"""
import json
import sys
from html.parser import HTMLParser

from prometheus_client.parser import text_string_to_metric_families


def metrics(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for fam in text_string_to_metric_families(f.read()):
            for s in fam.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.classes, self.h2, self.svg, self.csrf, self.li = {}, {}, [], {}, [], []
        self.refresh = None
        self.stack = []  # (tag, id) of open elements
        self.texts = {}  # id -> collected text
        self.in_h2 = False
        self.h2_text = ""
        self.svg_id = None
        self.in_summary = False
        self.li_text = None
        self.rows, self.panel, self.row, self.cell = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            self.refresh = int(a.get("content", "0").split(";")[0])
        if tag == "input" and a.get("name") == "csrf":
            self.csrf.append(a.get("value"))
        if tag == "svg":
            self.svg_id = a.get("id")
            self.svg[self.svg_id] = 0
        if tag == "rect" and self.svg_id and "bar" in a.get("class", "").split():
            self.svg[self.svg_id] += 1
        if tag == "h2":
            self.in_h2, self.h2_text = True, ""
        if tag == "ul" and a.get("id") == "config-summary":
            self.in_summary = True
        if tag == "li" and self.in_summary:
            self.li_text = ""
        if tag == "div" and "panel" in a.get("class", "").split():
            self.panel = a.get("id")
        if tag == "tr" and a.get("class"):
            self.row = {"class": a["class"], "panel": self.panel, "cells": []}
        if tag == "td" and self.row is not None:
            self.cell = ""
        if tag in ("input", "meta", "br", "img", "link"):
            return
        if "id" in a:
            self.texts[a["id"]] = ""
            self.classes[a["id"]] = a.get("class", "")
        self.stack.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        if tag == "td" and self.row is not None and self.cell is not None:
            self.row["cells"].append(self.cell.strip())
            self.cell = None
        if tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None
        if tag == "div" and self.panel is not None and self.stack and self.stack[-1] == ("div", self.panel):
            self.panel = None
        if tag == "svg":
            self.svg_id = None
        if tag == "h2":
            self.in_h2 = False
            self.h2.append(self.h2_text.strip())
        if tag == "ul":
            self.in_summary = False
        if tag == "li" and self.li_text is not None:
            self.li.append(self.li_text.strip())
            self.li_text = None
        while self.stack:
            t, i = self.stack.pop()
            if i is not None:
                self.ids[i] = self.texts[i]
            if t == tag:
                break

    def handle_data(self, data):
        for _, i in self.stack:
            if i is not None:
                self.texts[i] += data
        if self.in_h2:
            self.h2_text += data
        if self.li_text is not None:
            self.li_text += data
        if self.cell is not None:
            self.cell += data


def dom(path):
    d = Dom()
    with open(path, encoding="utf-8") as f:
        d.feed(f.read())
    return {"ids": {k: v.strip() for k, v in d.ids.items()}, "classes": d.classes, "h2": d.h2,
            "refresh": d.refresh, "svg": d.svg, "csrf": d.csrf, "li": d.li, "rows": d.rows}


if __name__ == "__main__":
    what, path = sys.argv[1], sys.argv[2]
    print(json.dumps(metrics(path) if what == "metrics" else dom(path), ensure_ascii=False))
