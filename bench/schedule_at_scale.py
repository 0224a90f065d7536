#!/usr/bin/env python3
"""Scheduling at scale (issue 8, measurement 3), with memory and /metrics under that load.

Starts the release binary with N tcp probes (default 10,000) at a 10 s interval against local
listeners (8 ports, accept-and-close threads), waits for the first runs to spread out, then
measures over a window:
  - lateness of every scheduled run against its slot, exactly, from /api/status
    (`lateness_seconds` of each probe's recent runs) read at the window's end: p50, p99, max;
    and apart, the runs after it, beside the scrapes (and the reload), which compete with them
    for the cores;
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
config's load and cut are part of it. --baseline then runs an unsharded exporter of as many
probes as the share held, and the table puts the two side by side: what sharding costs a
replica over running its probes alone (the whole file is read and parsed by every shard).
Peak resident memory (VmHWM) is read when the exporter first serves (the config loaded and
cut, no probe run yet: the load's peak, which a memory limit must allow) and at the end.
--reload then reloads the config once (POST /-/reload) and reports its peak: the whole file
loaded again beside the running probes.

Usage: bench/schedule_at_scale.py [--bin target/release/pathwatch] [--probes 10000] [--interval 10]
       [--window 60] [--scrapes 10] [--env KEY=VALUE] [--shard I/C [--baseline]] [--reload]
       [--quick] [--write]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_kind, cpu_seconds, free_port, listener, quantile, rss_mib, scrape_metrics, wait_up  # noqa: E402

# Probes per config file (see run).

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

def status_kib(pid, field):
    """A /proc/PID/status figure in KiB (VmRSS, VmHWM: the peak resident memory so far)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return float("nan")


def run(a, probes, shard):
    """One exporter over `probes` tcp probes (its share when `shard` is set): its figures."""
    ports = [listener() for _ in range(8)]
    cfg = f"defaults: {{ interval: {a.interval}s, timeout: 5s }}\nprobes:\n" + "".join(
        f"  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: {ports[i % len(ports)]} }}\n"
        for i in range(probes))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.yaml")
        open(path, "w").write(cfg)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [a.bin, "serve", "--config", path, "--listen", f"127.0.0.1:{port}"]
        if shard:
            argv += ["--shard", shard]
        env = {**os.environ, **dict(kv.split("=", 1) for kv in a.env)}
        t = time.monotonic()
        p = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=env)
        try:
            wait_up(f"{base}/healthz", secs=max(30, probes // 500), proc=p)  # 100,000: a config of 4 MB
            # Serving: the config is loaded and cut, and nothing has run yet. VmHWM now is the
            # load's peak (what a memory limit must allow at every start and reload).
            up_s = time.monotonic() - t
            rss_up, hwm_up = status_kib(p.pid, "VmRSS") / 1024, status_kib(p.pid, "VmHWM") / 1024
            time.sleep(a.interval + 5)  # every probe has had its first (spread) run
            c0, t0 = cpu_seconds(p.pid), time.monotonic()
            time.sleep(a.window)
            c1, t1 = cpu_seconds(p.pid), time.monotonic()
            cores = (c1 - c0) / (t1 - t0)
            rss_steady = rss_mib(p.pid)
            # The window's runs, before any scrape or reload competes with them for the cores.
            window = json.loads(get(f"{base}/api/status"))
            scrapes, encodes, body = scrape_metrics(base, a.scrapes)
            text, size = body.decode(), len(body)
            rss = rss_mib(p.pid)
            hwm = status_kib(p.pid, "VmHWM") / 1024
            reload = None
            if a.reload:
                # The whole file loaded again beside the running probes: a reload's peak.
                t = time.monotonic()
                urllib.request.urlopen(urllib.request.Request(f"{base}/-/reload", method="POST"),
                                       timeout=300).read()
                reload = (time.monotonic() - t, status_kib(p.pid, "VmRSS") / 1024,
                          status_kib(p.pid, "VmHWM") / 1024)
            status = json.loads(get(f"{base}/api/status"))
        finally:
            p.terminate(); p.wait()
    late = [x * 1000 for pr in window["probes"] for x in pr.get("lateness_seconds", [])]
    if not late:
        raise SystemExit("no lateness figures in /api/status")
    # Runs after the window (during the scrapes and the reload): each probe's points past the
    # ones it had then (a probe keeps an hour of points, longer than a run of this script).
    before = {pr["name"]: len(pr.get("lateness_seconds", [])) for pr in window["probes"]}
    late_after = [x * 1000 for pr in status["probes"]
                  for x in pr.get("lateness_seconds", [])[before.get(pr["name"], 0):]]
    h99, hcount = histogram_quantile(text, 0.99)
    return {
        "probes": probes, "shard": shard, "here": len(status["probes"]), "late": late,
        "late_after": late_after,
        "runs_ok": sum(1 for pr in status["probes"] for _, ok in pr["history"] if ok),
        "runs": sum(len(pr["history"]) for pr in status["probes"]),
        "h99": h99, "hcount": hcount, "cores": cores, "up_s": up_s, "rss_up": rss_up,
        "hwm_up": hwm_up, "rss_steady": rss_steady, "rss": rss, "hwm": hwm, "size": size,
        "encode": statistics.median(encodes), "get": statistics.median(scrapes), "reload": reload,
    }


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
    ap.add_argument("--baseline", action="store_true",
                    help="with --shard: then an unsharded exporter of as many probes as the share ran, side by side")
    ap.add_argument("--reload", action="store_true",
                    help="after the scrapes, POST /-/reload and report its time and peak resident memory")
    ap.add_argument("--quick", action="store_true", help="smoke run: 500 probes, 15 s window")
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    a = ap.parse_args()
    if a.quick:
        a.probes, a.window = 500, 15
    if a.baseline and not a.shard:
        ap.error("--baseline goes with --shard")
    runs = [run(a, a.probes, a.shard)]
    if a.baseline:
        runs.append(run(a, runs[0]["here"], None))
    first = runs[0]
    cmd = (f"bench/schedule_at_scale.py --probes {a.probes} --interval {a.interval} --window {a.window}"
           + (f" --scrapes {a.scrapes}" if a.scrapes != 10 else "") + "".join(f" --env {e}" for e in a.env)
           + (f" --shard {a.shard}" if a.shard else "") + (" --baseline" if a.baseline else "")
           + (" --reload" if a.reload else ""))
    shard = f" (shard {a.shard} runs {first['here']} of them)" if a.shard else ""
    baseline = (f"; then, as the baseline, {runs[1]['probes']} probes unsharded (the share's count)"
                if a.baseline else "")
    verdict = lambda ok: "PASS" if ok else "MISS"
    # Issue 19's goals past issue 8's scale (100,000 probes every 60 s).
    big = a.probes > 10000
    max_cores, max_rss = (0.5, 300) if big else (1, 150)
    heads = [f"shard {r['shard']} of {r['probes']}" if r["shard"] else f"unsharded, {r['probes']}" for r in runs]
    if len(runs) == 1:
        heads = ["value"]
    q = {id(r): (quantile(r["late"], 0.5), quantile(r["late"], 0.99), max(r["late"])) for r in runs}
    row = lambda what, fmt, goal="", ok="": f"| {what} | " + " | ".join(fmt(r) for r in runs) + f" | {goal} | {ok} |"
    lines = [f"## Scheduling at scale ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores)", "",
             f"`{cmd}` ({build_kind(a.bin)}): {a.probes} tcp probes every {a.interval} s against 8 local listeners{shard}{baseline}"
             + "; "
             + ", ".join(f"{len(r['late'])} scheduled runs measured ({r['runs_ok']} of {r['runs']} kept runs succeeded)" for r in runs)
             + f"; CPU over a {a.window} s window after the first runs. Peak is VmHWM: at /healthz "
             "(the config loaded and cut, nothing run yet) and at the end.", "",
             "| what | " + " | ".join(heads) + " | goal | |", "|---|" + "---|" * len(runs) + "---|---|",
             row("probes run", lambda r: str(r["here"])),
             row("lateness p50", lambda r: f"{q[id(r)][0]:.2f} ms"),
             row("lateness p99", lambda r: f"{q[id(r)][1]:.2f} ms", "< 50 ms", verdict(q[id(first)][1] < 50)),
             row("lateness max", lambda r: f"{q[id(r)][2]:.2f} ms"),
             row("lateness p99, exporter's histogram (bucket bound; the scrapes too)",
                 lambda r: f"<= {r['h99'] * 1000:g} ms ({r['hcount']} runs)"),
             row("lateness p99 / max of the runs after the window, beside the scrapes"
                 + (" and the reload" if a.reload else ""),
                 lambda r: f"{quantile(r['late_after'], 0.99):.2f} / {max(r['late_after']):.2f} ms ({len(r['late_after'])} runs)"
                 if r["late_after"] else "no run"),
             row("CPU", lambda r: f"{r['cores']:.3f} cores", f"< {max_cores:g} core", verdict(first["cores"] < max_cores)),
             row("serving after (config loaded and cut)", lambda r: f"{r['up_s']:.1f} s"),
             row("resident memory when serving / peak by then", lambda r: f"{r['rss_up']:.1f} / {r['hwm_up']:.1f} MiB"),
             row("resident memory before the first scrape", lambda r: f"{r['rss_steady']:.1f} MiB",
                 "< 300 MiB" if big else "", verdict(first["rss_steady"] < max_rss) if big else ""),
             row("resident memory at the end (after the scrapes)", lambda r: f"{r['rss']:.1f} MiB",
                 "" if big else "< 150 MiB", "" if big else verdict(first["rss"] < max_rss)),
             row("peak resident memory (VmHWM) at the end", lambda r: f"{r['hwm']:.1f} MiB"),
             row(f"/metrics encode under this load, median of {a.scrapes}", lambda r: f"{r['encode']:.1f} ms, {r['size']} bytes",
                 "" if big else "< 50 ms", "" if big else verdict(first["encode"] < 50)),
             row(f"/metrics GET as a client sees it, median of {a.scrapes}", lambda r: f"{r['get']:.1f} ms")]
    if a.reload:
        lines.append(row("POST /-/reload after the scrapes: time, resident after / peak (VmHWM)",
                         lambda r: "{:.1f} s, {:.1f} / {:.1f} MiB".format(*r["reload"])))
    lines.append("")
    out = "\n".join(lines); print(out)
    if a.write:
        open("BENCHMARKS.md", "a").write(out + "\n")

if __name__ == "__main__":
    main()
