#!/usr/bin/env python3
"""Scheduling at scale (issue 8, measurement 3), with memory and /metrics under that load.

Starts the release binary with N tcp probes (default 10,000) at a 10 s interval against local
listeners (8 ports, accept-and-close threads), waits for the first runs to spread out, then
measures over a window:
  - lateness of every scheduled run against its slot, exactly, from /api/status
    (`lateness_seconds` of each probe's recent runs): p50, p99, max;
  - the same from the exporter's own histogram pathwatch_scheduler_lateness_seconds (bucket bounds);
  - CPU of the exporter (utime+stime from /proc/PID/stat over the window) in cores;
  - resident memory at the end (each probe keeps an hour of points; whole results only for
    probes an incident judges), and /metrics encode time (pathwatch_metrics_encode_seconds) and
    GET time (median of 10) and size while the probes keep running.
Goals (issue 8): p99 lateness under 50 ms and under one core on a 2-core machine; 10,000 probes
under 150 MiB; /metrics under 50 ms. Goals (issue 19) past 10,000 probes (100,000 every 60 s):
p99 lateness under 50 ms, under half a core, under 300 MiB resident before a scrape.
Resident memory is read twice: before the first scrape (the steady state) and after the
scrapes (what the encode buffers leave behind).

With --shard I/C the exporter runs `serve --shard I/C` over the whole config: the figures are
one shard's (issue 33: 3 x 100,000 probes measured for one shard, multiplied), and the
config's load and cut are part of it.

Usage: bench/schedule_at_scale.py [--bin target/release/pathwatch] [--probes 10000] [--interval 10]
       [--window 60] [--scrapes 10] [--env KEY=VALUE] [--shard I/C] [--quick] [--write]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_kind, cpu_seconds, free_port, listener, quantile, rss_mib, scrape_metrics, wait_up  # noqa: E402

# Probes per config file (see main).

def get(url, timeout=60):
    return urllib.request.urlopen(url, timeout=timeout).read()

def histogram_quantile(text, q):
    """Upper bucket bound holding quantile q of pathwatch_scheduler_lateness_seconds."""
    buckets = []
    for line in text.splitlines():
        if line.startswith("pathwatch_scheduler_lateness_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return float("nan"), 0
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= q * total:
            return le, int(total)
    return float("inf"), int(total)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--probes", type=int, default=10000)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--window", type=int, default=60, help="measured seconds after the warm-up")
    ap.add_argument("--scrapes", type=int, default=10, help="timed /metrics GETs at the end")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment of the exporter, e.g. TOKIO_WORKER_THREADS=1; repeatable")
    ap.add_argument("--shard", metavar="I/C", help="run `serve --shard I/C`: one shard of the config")
    ap.add_argument("--quick", action="store_true", help="smoke run: 500 probes, 15 s window")
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    a = ap.parse_args()
    if a.quick:
        a.probes, a.window = 500, 15
    ports = [listener() for _ in range(8)]
    cfg = f"defaults: {{ interval: {a.interval}s, timeout: 5s }}\nprobes:\n" + "".join(
        f"  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: {ports[i % len(ports)]} }}\n"
        for i in range(a.probes))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.yaml")
        open(path, "w").write(cfg)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [a.bin, "serve", "--config", path, "--listen", f"127.0.0.1:{port}"]
        if a.shard:
            argv += ["--shard", a.shard]
        env = {**os.environ, **dict(kv.split("=", 1) for kv in a.env)}
        p = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=env)
        try:
            wait_up(f"{base}/healthz", secs=max(30, a.probes // 500), proc=p)  # 100,000: a config of 4 MB
            time.sleep(a.interval + 5)  # every probe has had its first (spread) run
            c0, t0 = cpu_seconds(p.pid), time.monotonic()
            time.sleep(a.window)
            c1, t1 = cpu_seconds(p.pid), time.monotonic()
            cores = (c1 - c0) / (t1 - t0)
            rss_steady = rss_mib(p.pid)
            scrapes, encodes, body = scrape_metrics(base, a.scrapes)
            text, size = body.decode(), len(body)
            rss = rss_mib(p.pid)
            status = json.loads(get(f"{base}/api/status"))
        finally:
            p.terminate(); p.wait()
    late = [x * 1000 for pr in status["probes"] for x in pr.get("lateness_seconds", [])]
    if not late:
        raise SystemExit("no lateness figures in /api/status")
    runs_ok = sum(1 for pr in status["probes"] for _, ok in pr["history"] if ok)
    runs = sum(len(pr["history"]) for pr in status["probes"])
    h99, hcount = histogram_quantile(text, 0.99)
    p50, p99, mx = quantile(late, 0.5), quantile(late, 0.99), max(late)
    cmd = (f"bench/schedule_at_scale.py --probes {a.probes} --interval {a.interval} --window {a.window}"
           + (f" --scrapes {a.scrapes}" if a.scrapes != 10 else "") + "".join(f" --env {e}" for e in a.env)
           + (f" --shard {a.shard}" if a.shard else ""))
    here = len(status["probes"])
    shard = f" (shard {a.shard} runs {here} of them)" if a.shard else ""
    verdict = lambda ok: "PASS" if ok else "MISS"
    # Issue 19's goals past issue 8's scale (100,000 probes every 60 s).
    big = a.probes > 10000
    max_cores, max_rss = (0.5, 300) if big else (1, 150)
    lines = [f"## Scheduling at scale ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores)", "",
             f"`{cmd}` ({build_kind(a.bin)}): {a.probes} tcp probes every {a.interval} s against 8 local listeners{shard}"
             + "; "
             f"{len(late)} scheduled runs measured ({runs_ok} of {runs} kept runs succeeded); "
             f"CPU over a {a.window} s window after the first runs.", "",
             "| what | value | goal | |", "|---|---|---|---|",
             f"| lateness p50 | {p50:.2f} ms | | |",
             f"| lateness p99 | {p99:.2f} ms | < 50 ms | {verdict(p99 < 50)} |",
             f"| lateness max | {mx:.2f} ms | | |",
             f"| lateness p99, exporter's histogram (bucket bound, {hcount} runs) | <= {h99 * 1000:g} ms | | |",
             f"| CPU | {cores:.3f} cores | < {max_cores:g} core | {verdict(cores < max_cores)} |",
             f"| resident memory before the first scrape | {rss_steady:.1f} MiB | {'< 300 MiB' if big else ''} | {verdict(rss_steady < max_rss) if big else ''} |",
             f"| resident memory at the end (after the scrapes) | {rss:.1f} MiB | {'' if big else '< 150 MiB'} | {'' if big else verdict(rss < max_rss)} |",
             f"| /metrics encode under this load, median of {a.scrapes} | {statistics.median(encodes):.1f} ms, {size} bytes | {'' if big else '< 50 ms'} | {'' if big else verdict(statistics.median(encodes) < 50)} |",
             f"| /metrics GET as a client sees it, median of {a.scrapes} | {statistics.median(scrapes):.1f} ms | | |",
             ""]
    out = "\n".join(lines); print(out)
    if a.write:
        open("BENCHMARKS.md", "a").write(out + "\n")

if __name__ == "__main__":
    main()
