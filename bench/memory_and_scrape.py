#!/usr/bin/env python3
"""Resident memory and /metrics encoding at scale (issue 8, measurements 2 and 6).

Starts the release binary with the first user's example config (a copy whose targets are
rewritten to the local reference service, `pathwatch sim`: the example names private
addresses and the Google APIs), then with 1,000 and 10,000
tcp probes against one local listener (interval 1h: the first runs spread over 10 s, then
idle), and reads VmRSS from /proc after the first runs. blackbox_exporter (Debian package
prometheus-blackbox-exporter) idle is the reference. Each case times 20 GETs of /metrics:
the exporter's own encode time (pathwatch_metrics_encode_seconds, which each answer carries
for the previous one), the whole GET as a client sees it, and the exporter's CPU per scrape.
With nothing changed between scrapes the per-probe text is served from the cache (issue 19):
"after a change" is the median of 4 encodes (1 with --quick) that found the cache outdated: each follows a
`POST /-/reload`, which touches every probe's series, and the new first runs (spread over
10 s), so that nothing else competes with the encode; the plain median is of cached answers.
The 10,000-probe case runs once more with `defaults: { buckets: [] }` (no run-duration
histogram), and the size of the text format 0.0.4 answer (curl's) is given too.
Memory with a full hour of history under a 10 s schedule is in schedule_at_scale.py.
Goals: idle under 15 MiB, 10,000 probes under 150 MiB, /metrics under 50 ms at 10,000 probes.

Usage: bench/memory_and_scrape.py [--bin target/release/pathwatch] [--quick] [--write]
"""
import argparse, os, statistics, subprocess, sys, tempfile, time, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (build_kind, cpu_seconds, free_port, listener, loopback_example, rss_mib,  # noqa: E402
                    scrape_metrics, start_sim, wait_up)

def run_pathwatch(binary, config_text, settle, env=None, changes=4):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.yaml"); open(path, "w").write(config_text)
        port = free_port()
        p = subprocess.Popen([binary, "serve", "--config", path, "--listen", f"127.0.0.1:{port}"],
                             stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz")
            time.sleep(settle)
            rss = rss_mib(p.pid)
            c0 = cpu_seconds(p.pid)
            scrapes, encodes, body = scrape_metrics(f"http://127.0.0.1:{port}", 20)
            cpu_ms = (cpu_seconds(p.pid) - c0) * 1000 / 21
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
                text_004 = len(r.read())
            rss_after = rss_mib(p.pid)
            after_change = []
            for _ in range(changes):
                try:
                    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST"),
                                           timeout=60).read()
                except urllib.error.HTTPError:
                    pass  # a build that rejects the config (an older one, on `buckets:`) keeps the old one
                time.sleep(11)
                after_change.append(scrape_metrics(f"http://127.0.0.1:{port}", 1)[1][0])
            return (rss, rss_after, statistics.median(after_change), statistics.median(encodes), statistics.median(scrapes), cpu_ms,
                    len(body), text_004)
        finally:
            p.terminate(); p.wait()

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1,000 probes at most")
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    a = ap.parse_args()
    target = listener()
    rows = []
    sim, sim_addr, redis_addr = start_sim(a.bin)
    try:
        staging = loopback_example("examples/staging.yaml", sim_addr, redis_addr)
        rows.append(("pathwatch idle, examples/staging.yaml against `pathwatch sim` (15 probes)",
                     *run_pathwatch(a.bin, staging, 5, changes=1 if a.quick else 4)))
    finally:
        sim.terminate(); sim.wait()
    cases = [(1000, ""), (1000, "buckets: []")] if a.quick else [(1000, ""), (10000, ""), (10000, "buckets: []")]
    for n, extra in cases:
        cfg = f"defaults: {{ interval: 1h, timeout: 5s{', ' + extra if extra else ''} }}\nprobes:\n" + "".join(
            f"  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: {target} }}\n" for i in range(n))
        what = f"pathwatch, {n} tcp probes after their first runs" + (f", `{extra}`" if extra else "")
        rows.append((what, *run_pathwatch(a.bin, cfg, 15, changes=1 if a.quick else 4)))
    bb = subprocess.run(["which", "prometheus-blackbox-exporter"], capture_output=True, text=True).stdout.strip()
    if bb:
        port = free_port()
        p = subprocess.Popen([bb, f"--web.listen-address=127.0.0.1:{port}",
                              "--config.file=/etc/prometheus/blackbox.yml"], stderr=subprocess.DEVNULL)
        try:
            wait_up(f"http://127.0.0.1:{port}/metrics"); time.sleep(2)
            rows.append(("blackbox_exporter idle (reference)", rss_mib(p.pid), *([float("nan")] * 5), 0, 0))
        finally:
            p.terminate(); p.wait()
    lines = [f"## Memory and /metrics at scale ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores)", "",
             f"`bench/memory_and_scrape.py{' --quick' if a.quick else ''}` ({build_kind(a.bin)}; RSS from /proc; medians of 20 scrapes: "
             "encode = pathwatch_metrics_encode_seconds, GET = the whole request from a Python client, CPU = the exporter's per scrape; "
             f"RSS after = after the scrapes (the cached answers of both formats included); encode after a change = median of {1 if a.quick else 4} encodes after a reload and its runs (nothing cached); bytes of the OpenMetrics answer Prometheus gets and of the 0.0.4 one).", "",
             "| what | RSS (MiB) | RSS after (MiB) | encode after a change (ms) | encode (ms) | GET (ms) | CPU per scrape (ms) | /metrics bytes | 0.0.4 bytes |",
             "|---|---|---|---|---|---|---|---|---|"]
    f = lambda x: "" if x != x else f"{x:.1f}"
    for what, rss, after, first, enc, get, cpu, size, text in rows:
        lines.append(f"| {what} | {rss:.1f} | {f(after)} | {f(first)} | {f(enc)} | {f(get)} | {f(cpu)} | {size or ''} | {text or ''} |")
    lines += ["", "Goals (issue 8): idle under 15 MiB, 10,000 probes under 150 MiB, /metrics under 50 ms at 10,000 probes; "
              "(issue 19) /metrics at 10,000 probes <= 8 MB and <= 10 ms.", ""]
    out = "\n".join(lines); print(out)
    if a.write:
        open("BENCHMARKS.md", "a").write(out + "\n")

if __name__ == "__main__":
    main()
