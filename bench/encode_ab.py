#!/usr/bin/env python3
"""Two builds side by side on /metrics at scale: the before/after record of an encoder change.

Starts both binaries with the same N tcp probes against one local listener (interval 10 s, so
the scrape competes with the schedule as in production; --idle for 1 h), then scrapes them in
turn, A then B then A..., and reports per build the median encode time
(pathwatch_metrics_encode_seconds, carried by the next answer), the median GET as a client
sees it, CPU per scrape (from /proc, both exporters' probe work included in the same way) and
the answer's size, then B/A ratios. Nothing is written: paste the table into BENCHMARKS.md.

Usage: bench/encode_ab.py --a OLD_BINARY --b NEW_BINARY [--probes 10000] [--rounds 15] [--idle]
"""
import argparse, os, statistics, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import get_metrics, cpu_seconds, listener, two_builds  # noqa: E402


def scrape(port):
    """One GET of /metrics: (GET ms, encode ms of the previous answer, bytes)."""
    t = time.perf_counter()
    body = get_metrics(f"http://127.0.0.1:{port}/metrics")
    get_ms = (time.perf_counter() - t) * 1000
    encode = next(float(line.split()[1]) * 1000 for line in body.decode().splitlines()
                  if line.startswith("pathwatch_metrics_encode_seconds "))
    return get_ms, encode, len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the baseline build")
    ap.add_argument("--b", required=True, help="the build under test")
    ap.add_argument("--probes", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--idle", action="store_true", help="interval 1h instead of 10s")
    a = ap.parse_args()
    target = listener()
    interval = "1h" if a.idle else "10s"
    cfg = f"defaults: {{ interval: {interval}, timeout: 5s }}\nprobes:\n" + "".join(
        f"  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: {target} }}\n" for i in range(a.probes))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.yaml"); open(path, "w").write(cfg)
        with two_builds(a.a, a.b, path) as procs:
            time.sleep(15)  # every probe has run once
            results = {n: {"get": [], "encode": [], "cpu": [], "bytes": 0} for n in procs}
            for n, (p, port) in procs.items():
                scrape(port)  # the next answer carries this one's encode time
            for _ in range(a.rounds):
                for n, (p, port) in procs.items():
                    c0 = cpu_seconds(p.pid)
                    get_ms, enc, size = scrape(port)
                    r = results[n]
                    r["get"].append(get_ms); r["encode"].append(enc)
                    r["cpu"].append((cpu_seconds(p.pid) - c0) * 1000); r["bytes"] = size
    med = {n: {k: statistics.median(v) for k, v in r.items() if k != "bytes"} for n, r in results.items()}
    print(f"## /metrics A/B at {a.probes} probes, interval {interval} ({time.strftime('%Y-%m-%d')}, "
          f"{os.uname().nodename}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})\n")
    print(f"`bench/encode_ab.py --a {a.a} --b {a.b} --probes {a.probes} --rounds {a.rounds}"
          f"{' --idle' if a.idle else ''}` (medians of {a.rounds} alternating scrapes)\n")
    print("| build | encode (ms) | GET (ms) | CPU per scrape (ms) | bytes |\n|---|---|---|---|---|")
    for n, binary in (("A", a.a), ("B", a.b)):
        m = med[n]
        print(f"| {n}: {binary} | {m['encode']:.1f} | {m['get']:.1f} | {m['cpu']:.0f} | {results[n]['bytes']} |")
    ratio = {k: med["B"][k] / med["A"][k] for k in ("encode", "get", "cpu")}
    print(f"| B/A | {ratio['encode']:.2f}x | {ratio['get']:.2f}x | {ratio['cpu']:.2f}x | |")


if __name__ == "__main__":
    main()
