#!/usr/bin/env python3
"""Bytes a probe adds to a /metrics answer, per kind (issue 33): the figures behind
`pathwatch shards`' estimate (src/config/shard.rs, metrics_bytes).

Starts pathwatch with 100 probes of each of tcp, http and postgres, in two sets of names
(12 and 24 characters), all against local targets: tcp and http against the reference
service (`pathwatch sim`, its /health answers 200), postgres against a local listener that
accepts and closes (a failed run: postgres runs that fail carry a reason series; a
successful one carries the db-connect histogram instead, of a similar size). After the first
runs it reads the text format 0.0.4 answer and, per kind, counts the lines and bytes that
name each probe. Per probe: bytes = fixed + lines * len(name); the two name lengths give
`lines` (checked against the count) and `fixed`.

Usage: bench/shard_bytes.py [--bin target/debug/pathwatch]
"""
import argparse, os, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, listener, start_sim, wait_up  # noqa: E402

N = 100


def names(kind, width):
    stem = f"{kind}-"
    return [stem + str(i).rjust(width - len(stem), "0") for i in range(N)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/pathwatch")
    a = ap.parse_args()
    sim, sim_addr, _ = start_sim(a.bin)
    sim_port = sim_addr.rsplit(":", 1)[1]
    closed = listener()
    lines = ["defaults: { interval: 1h }", "probes:"]
    for width in (12, 24):
        for n in names("tcp", width):
            lines += [f"  - name: {n}", "    kind: tcp", "    host: 127.0.0.1", f"    port: {sim_port}"]
        for n in names("http", width):
            lines += [f"  - name: {n}", "    kind: http", f"    url: http://127.0.0.1:{sim_port}/health"]
        for n in names("pg", width):
            lines += [f"  - name: {n}", "    kind: postgres", "    host: 127.0.0.1", f"    port: {closed}",
                      "    user: u", "    password: p"]
    try:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.yaml"); open(path, "w").write("\n".join(lines) + "\n")
            port = free_port()
            p = subprocess.Popen([a.bin, "serve", "--config", path, "--listen", f"127.0.0.1:{port}"],
                                 stderr=subprocess.DEVNULL)
            try:
                wait_up(f"http://127.0.0.1:{port}/healthz")
                time.sleep(15)  # first runs spread over 10 s
                req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                             headers={"Accept": "text/plain;version=0.0.4"})
                body = urllib.request.urlopen(req, timeout=60).read().decode()
            finally:
                p.terminate(); p.wait()
    finally:
        sim.terminate(); sim.wait()
    total = len(body.encode())
    print(f"answer: {total} bytes for {6 * N} probes")
    for kind in ("tcp", "http", "pg"):
        per = {}
        for width in (12, 24):
            b = l = 0
            for n in names(kind, width):
                mine = [x for x in body.splitlines() if f'probe="{n}"' in x]
                b += sum(len(x) + 1 for x in mine); l += len(mine)
            per[width] = (b / N, l / N)
        (b12, l12), (b24, l24) = per[12], per[24]
        slope = (b24 - b12) / 12
        fixed = b12 - slope * 12
        print(f"{kind:5} lines/probe {l12:.1f}  bytes/probe {b12:.0f} (12-char names), {b24:.0f} (24)"
              f"  => fixed {fixed:.0f} + {slope:.1f} per name byte")


if __name__ == "__main__":
    main()
