#!/usr/bin/env python3
"""The HA tests' role sampler (ha_fence.sh, ha_chaos.sh).

usage: ha_roles.py OUT N WORK [SECONDS]

Every 50 ms, asks each of the N instances of WORK for its role over its admin socket
(WORK/state-conn-I/dirconnd.sock, docs/cli.md "dirconnd admin socket"), for SECONDS, or until
OUT.stop exists when SECONDS is not given. An instance whose process (WORK/pid-I) is stopped
(SIGSTOP) is "stopped" and not asked. A sweep with two or more "active" is read again in the
reverse order and counts as dual-active only when that confirms it. Writes "sweeps dual" to
OUT and each sweep to OUT.log.
"""
import json
import os
import socket
import sys
import time

out, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else None


def stopped(i):
    try:
        pid = open(f"{work}/pid-{i}").read().strip()
        st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        return st in ("T", "t")
    except (OSError, IndexError, ValueError):  # not started yet, exited, being reaped
        return False


def role(i):
    if stopped(i):
        return "stopped"
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(1.0)
    try:
        s.connect(f"{work}/state-conn-{i}/dirconnd.sock")
        s.sendall(b'{"cmd":"status"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            c = s.recv(65536)
            if not c:
                break
            buf += c
        return json.loads(buf)["status"]["ha"]["role"]
    except socket.timeout:
        return "unknown"
    except Exception:
        return "down"
    finally:
        s.close()


def running(t_end):
    if t_end is not None:
        return time.monotonic() < t_end
    return not os.path.exists(out + ".stop")


sweeps = dual = 0
t_end = time.monotonic() + seconds if seconds is not None else None
with open(out + ".log", "w") as log:
    while running(t_end):
        t0 = time.monotonic()
        fwd = {i: role(i) for i in range(1, n + 1)}
        sweeps += 1
        line = " ".join(f"{i}:{r}" for i, r in fwd.items())
        if sum(r == "active" for r in fwd.values()) >= 2:
            rev = {i: role(i) for i in range(n, 0, -1)}
            line += " / re-read: " + " ".join(f"{i}:{r}" for i, r in rev.items())
            if sum(r == "active" for r in rev.values()) >= 2:
                dual += 1
                line += " DUAL"
        log.write(f"{time.time():.3f} {line}\n")
        time.sleep(max(0.0, 0.05 - (time.monotonic() - t0)))
with open(out, "w") as f:
    f.write(f"{sweeps} {dual}\n")
