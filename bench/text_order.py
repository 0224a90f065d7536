#!/usr/bin/env python3
"""Writes build/text-order.txt: the functions a running exporter executes, for the linker to
lay out together (build.rs passes the file to LLD as --symbol-ordering-file).

Why: the kernel maps a binary's code 64 KiB around each page touched, so executed functions
scattered over the binary keep most of it resident (3.4 MB executed touched 153 of 165
windows of the 10.6 MB text: about 9.6 MB). Laid out together they fill about 55 windows.

How: runs the release binary under valgrind's callgrind (Debian package valgrind) with
examples/staging.yaml rewritten to the local reference service (bench/common.py
loopback_example()), plus an on-demand allowlist; after the first runs of every probe it
asks for `/metrics` (both formats), `/`, `/api/status` and `/probe` (tcp, http), then stops
it. Every function callgrind saw run is listed by its symbol, in the binary's current order
(LTO's own locality kept). The names are the release profile's own (Cargo.toml keeps the
symbol table for this): rerun after a dependency update or a large change, then rebuild. A
stale list only costs memory: names not found keep their usual place.

Usage: bench/text_order.py [--bin target/release/pathwatch] [--out build/text-order.txt]
"""
import argparse, os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PROMETHEUS_ACCEPT, free_port, loopback_example, start_sim, wait_up  # noqa: E402


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
    except Exception as e:  # a refused /probe still runs the code around it
        print(f"{url}: {e}", file=sys.stderr)


def executed(callgrind_out):
    """Mangled names of every function in a callgrind profile (`--demangle=no`)."""
    names = set()
    for line in open(callgrind_out, errors="replace"):
        m = re.match(r"^c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
        if m:
            names.add(m.group(1).strip())
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--out", default="build/text-order.txt")
    ap.add_argument("--settle", type=float, default=40, help="seconds of service before the requests")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("missing: valgrind. Install with: apt-get install valgrind")
    nm = subprocess.run(["nm", "--defined-only", a.bin], capture_output=True, text=True).stdout
    addr = {}
    for line in nm.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "tTwW":
            addr[p[2]] = int(p[0], 16)
    if not addr:
        raise SystemExit(f"{a.bin} has no symbol table: build it with the release profile of Cargo.toml")
    with tempfile.TemporaryDirectory() as tmp:
        sim, sim_addr, redis_addr = start_sim(a.bin)
        try:
            cfg = os.path.join(tmp, "staging.yaml")
            open(cfg, "w").write(loopback_example("examples/staging.yaml", sim_addr, redis_addr)
                                 + 'on_demand:\n  allowed_targets: ["http://127.0.0.1:*", "127.0.0.1:*"]\n')
            out = os.path.join(tmp, "callgrind.out")
            port = free_port()
            p = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
                                  a.bin, "serve", "--config", cfg, "--listen", f"127.0.0.1:{port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_up(f"{base}/healthz", secs=300, proc=p)
                time.sleep(a.settle)
                q = urllib.parse.quote
                for _ in range(3):
                    get(f"{base}/metrics", PROMETHEUS_ACCEPT)
                    get(f"{base}/metrics")
                    get(f"{base}/")
                    get(f"{base}/api/status")
                    get(f"{base}/probe?module=vpc-path-postgres&target={q(sim_addr)}")
                    get(f"{base}/probe?module=backend-health&target={q(f'http://{sim_addr}/health', safe='')}")
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait()
        finally:
            sim.terminate(); sim.wait()
        names = executed(out)
    ordered = sorted((n for n in names if n in addr), key=lambda n: addr[n])
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    open(a.out, "w").write("".join(n + "\n" for n in ordered))
    print(f"{a.out}: {len(ordered)} functions executed (of {len(addr)} in {a.bin})")


if __name__ == "__main__":
    main()
