#!/usr/bin/env python3
"""Two builds side by side on the root-cause judgement at scale: probes in dependency graphs
whose verdicts keep changing, the before/after record of a change to how results are judged.

Both binaries run the same config at the same time: N tcp probes every 10 s in blocks of 10
(bench/shard_config.py's shape: a base, three that `depends_on` it, six alone), the bases
against a port that is open for 15 s and closed for 15 s (so their verdicts flip and the
parts above them are judged anew), the rest against a port that always accepts. After the
first runs, it reports per build the CPU over a window (cores), the resident memory and
the median GET of /metrics, then B/A ratios. Nothing is written: paste the table into
BENCHMARKS.md.

With --incidents N, the config also has N incidents, each judging two probes (0 and 1, 2
and 3, ...): the record of a change to how a result finds the incidents it moves.

Usage: bench/rootcause_ab.py --a OLD_BINARY --b NEW_BINARY [--probes 10000] [--window 60]
       [--incidents 0]
"""
import argparse, os, socket, statistics, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import get_metrics, cpu_seconds, free_port, listener, rss_mib, two_builds  # noqa: E402


def flapping(period):
    """A 127.0.0.1 port that accepts and closes for `period` s, then refuses for `period` s."""
    port = free_port()
    def loop():
        while True:
            srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("127.0.0.1", port)); srv.listen(4096); srv.settimeout(0.2)
            end = time.time() + period
            while time.time() < end:
                try:
                    c, _ = srv.accept(); c.close()
                except OSError:
                    pass
            srv.close()
            time.sleep(period)
    threading.Thread(target=loop, daemon=True).start()
    return port


def config(n, steady, flap, incidents):
    out = ["defaults: { interval: 10s, timeout: 2s }", "probes:"]
    for i in range(n):
        port = flap if i % 10 == 0 else steady
        dep = f", depends_on: [tcp-{i - i % 10:06}]" if i % 10 in (1, 2, 3) else ""
        out.append(f"  - {{ name: tcp-{i:06}, kind: tcp, host: 127.0.0.1, port: {port}{dep} }}")
    if incidents:
        out.append("incidents:")
    for k in range(incidents):
        a, b = (2 * k) % n, (2 * k + 1) % n
        out += [f"  - id: inc-{k}", "    criteria:",
                f"      - {{ name: a, probe: tcp-{a:06}, success: true }}",
                f"      - {{ name: b, probe: tcp-{b:06}, success: true }}"]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the baseline build")
    ap.add_argument("--b", required=True, help="the build under test")
    ap.add_argument("--probes", type=int, default=10000)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--incidents", type=int, default=0)
    a = ap.parse_args()
    steady, flap = listener(), flapping(15)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.yaml"); open(path, "w").write(config(a.probes, steady, flap, a.incidents))
        with two_builds(a.a, a.b, path, secs=120) as procs:
            time.sleep(15)  # every probe has run once
            start = {n: cpu_seconds(p.pid) for n, (p, _) in procs.items()}
            gets = {n: [] for n in procs}
            t0 = time.time()
            while time.time() - t0 < a.window:
                for n, (p, port) in procs.items():
                    t = time.perf_counter()
                    get_metrics(f"http://127.0.0.1:{port}/metrics", timeout=120)
                    gets[n].append((time.perf_counter() - t) * 1000)
                time.sleep(5)
            elapsed = time.time() - t0
            cores = {n: (cpu_seconds(p.pid) - start[n]) / elapsed for n, (p, _) in procs.items()}
            rss = {n: rss_mib(p.pid) for n, (p, _) in procs.items()}
    print(f"## root-cause judgement A/B at {a.probes} probes, {a.probes * 4 // 10} in dependency graphs, "
          f"bases flapping every 15 s, {a.incidents} incidents ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})\n")
    print(f"`bench/rootcause_ab.py --a {a.a} --b {a.b} --probes {a.probes} --window {a.window} --incidents {a.incidents}` "
          f"(both running at once; CPU over {elapsed:.0f} s, scrapes every 5 s included)\n")
    print("| build | CPU (cores) | RSS (MiB) | /metrics GET median (ms) |\n|---|---|---|---|")
    for n, binary in (("A", a.a), ("B", a.b)):
        print(f"| {n}: {binary} | {cores[n]:.3f} | {rss[n]:.1f} | {statistics.median(gets[n]):.1f} |")
    print(f"| B/A | {cores['B'] / cores['A']:.3g}x | {rss['B'] / rss['A']:.2f}x | "
          f"{statistics.median(gets['B']) / statistics.median(gets['A']):.3g}x |")


if __name__ == "__main__":
    main()
