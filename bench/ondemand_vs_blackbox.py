#!/usr/bin/env python3
"""On-demand probing against blackbox_exporter (issue 8, measurement 1).

What: probes per second, and the exporter's CPU seconds per 1,000 probes, of pathwatch's
`/probe?module=...&target=...` against blackbox_exporter's `/probe` (Debian package
prometheus-blackbox-exporter), for the HTTP probe (pathwatch `http` module vs blackbox
`http_2xx`, same URL) and the TCP probe (pathwatch `tcp` module vs blackbox `tcp_connect`,
same host:port).

How: one reference service (`pathwatch sim`, axum) is the target of both; its `/ping`
answers 200 with a fixed body. Both exporters run side by side on 127.0.0.1, each with its
own temporary config. Before measuring, one answer of each exporter for each probe must say
probe_success 1, so no error path is benchmarked; during the runs a wrk Lua hook counts
every answer that is not 200 with probe_success 1 (they must be 0). The load is wrk from
a second process, with the same threads, connections and duration for both exporters. The
exporter's CPU is utime+stime from /proc/PID/stat before and after each wrk run. Rounds
alternate the order (pathwatch first, then blackbox first); each probe kind gets a short
unmeasured warm-up per exporter. The results are medians over the rounds, and the ratios
are medians of the per-round ratios, so both sides of a ratio come from the same minute.

Goals: issue 8, pathwatch at least 2x blackbox_exporter's probes per second, at most half its
CPU per probe; issue 19, at least 4x, at most 0.15x, and at most half its resident memory
(VmRSS right after each wrk run, median over the rounds).

PORTS: every tcp probe is a new connection from an ephemeral port, and a closed one waits in
TIME_WAIT for 60 s. At pathwatch's rate (13,000 a second against one target) Linux's default
range (32768-60999) is used up within 3 s, and each connect then searches the range for a
reusable port: the kernel time of a tcp /probe doubled (26 -> 66 us, strace and /proc on
2026-11-29), while blackbox_exporter, at a quarter of the rate, barely reaches that point. The
faster exporter pays for being faster; with --ports 1024-65535 neither does, in this namespace
only. The header says which range a table was measured with.

Usage: bench/ondemand_vs_blackbox.py [--quick] [--write] [--rounds 5] [--seconds 10]
       [--threads 1] [--connections 16] [--bin target/release/pathwatch] [--env KEY=VALUE]
--quick is a smoke run (1 round of 2 s). Without --write it only prints; with it, the
markdown section (date, host, cores, exact command) is appended to BENCHMARKS.md.
Needs wrk and prometheus-blackbox-exporter (`apt-get install wrk prometheus-blackbox-exporter`)
and the release binary (`cargo build --release`). Stops by itself and cleans up.
"""
import argparse, os, re, shlex, shutil, signal, statistics, subprocess, sys, tempfile, time
import urllib.parse, urllib.request

PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cpu_seconds, free_port, rss_mib, wait_up  # noqa: E402


# Counts answers that are not 200 with a probe_success sample of 1, per wrk thread.
# `probe_success 1` (blackbox) and `pathwatch_probe_success{probe="http",kind="http"} 1`.
WRK_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) failures = 0; bad_status = 0 end
function response(status, headers, body)
  if status ~= 200 then bad_status = bad_status + 1
  elseif not string.find(body, "probe_success[^\n ]* 1\n") then failures = failures + 1 end
end
function done(summary, latency, requests)
  local f, b = 0, 0
  for _, t in ipairs(threads) do f = f + t:get("failures"); b = b + t:get("bad_status") end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d failures=%d bad_status=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, f, b, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()

def succeeded(body):
    return re.search(r"^(pathwatch_)?probe_success(\{[^}]*\})? 1(\.0)?$", body, re.M) is not None

def check_tools(binary):
    missing = [t for t in ("wrk", "prometheus-blackbox-exporter") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)}. Install with: "
                         "sudo apt-get install wrk prometheus-blackbox-exporter")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary} not found: build it with `cargo build --release`")

def version(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    return (out.stdout + out.stderr).strip().splitlines()[0]

def wrk(url, lua, threads, connections, seconds):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", lua, url], capture_output=True, text=True)
    m = re.search(r"^BENCH (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2 s")
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10, help="per wrk run")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--ports", metavar="LOW-HIGH",
                    help="set this network namespace's ephemeral port range first (root; meant for "
                         ".ci/netguard's own namespace, never the host's), e.g. 1024-65535: see PORTS")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment of `pathwatch serve` only (not of the target), e.g. "
                         "MALLOC_ARENA_MAX=2 or LD_PRELOAD=...; repeatable")
    a = ap.parse_args()
    if a.ports:
        low, high = (int(x) for x in a.ports.split("-"))
        with open(PORT_RANGE, "w") as f:
            f.write(f"{low} {high}")
    if a.quick:
        a.rounds, a.seconds = 1, 2
    warmup = 1 if a.quick else 3
    check_tools(a.bin)

    procs = []
    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    tmp = tempfile.TemporaryDirectory()
    try:
        sim_port, pw_port, bb_port = free_port(), free_port(), free_port()
        url = f"http://127.0.0.1:{sim_port}/ping"
        hostport = f"127.0.0.1:{sim_port}"
        pw_cfg = os.path.join(tmp.name, "pathwatch.yaml")
        open(pw_cfg, "w").write(f"""defaults: {{ interval: 1h, timeout: 5s }}
probes:
  - {{ name: http, kind: http, url: "{url}" }}
  - {{ name: tcp, kind: tcp, host: 127.0.0.1, port: {sim_port} }}
on_demand:
  allowed_targets: ["http://127.0.0.1:*", "127.0.0.1:*"]
""")
        bb_cfg = os.path.join(tmp.name, "blackbox.yml")
        open(bb_cfg, "w").write("""modules:
  http_2xx:
    prober: http
    timeout: 5s
    http: { preferred_ip_protocol: ip4 }
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp: { preferred_ip_protocol: ip4 }
""")
        lua = os.path.join(tmp.name, "check.lua")
        open(lua, "w").write(WRK_LUA)
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(subprocess.Popen([a.bin, "sim", "--listen", hostport], **quiet))
        wait_up(url)
        pw_env = {**os.environ, **dict(kv.split("=", 1) for kv in a.env)}
        pw = subprocess.Popen([a.bin, "serve", "--config", pw_cfg, "--listen", f"127.0.0.1:{pw_port}"],
                              env=pw_env, **quiet)
        procs.append(pw)
        bb = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={bb_cfg}",
                               f"--web.listen-address=127.0.0.1:{bb_port}"], **quiet)
        procs.append(bb)
        wait_up(f"http://127.0.0.1:{pw_port}/healthz")
        wait_up(f"http://127.0.0.1:{bb_port}/metrics")

        q = urllib.parse.quote
        cases = {  # (probe, exporter) -> (pid, URL wrk loads)
            ("http", "pathwatch"): (pw.pid, f"http://127.0.0.1:{pw_port}/probe?module=http&target={q(url, safe='')}"),
            ("http", "blackbox"): (bb.pid, f"http://127.0.0.1:{bb_port}/probe?module=http_2xx&target={q(url, safe='')}"),
            ("tcp", "pathwatch"): (pw.pid, f"http://127.0.0.1:{pw_port}/probe?module=tcp&target={q(hostport)}"),
            ("tcp", "blackbox"): (bb.pid, f"http://127.0.0.1:{bb_port}/probe?module=tcp_connect&target={q(hostport)}"),
        }
        for (probe, exporter), (_, u) in cases.items():
            status, body = get(u)
            if status != 200 or not succeeded(body):
                raise SystemExit(f"{exporter} {probe} probe does not succeed ({u}):\n{body}")
        print("all four probes answer probe_success 1", flush=True)

        for (probe, exporter), (_, u) in cases.items():
            wrk(u, lua, a.threads, a.connections, warmup)
        runs = {k: [] for k in cases}
        for r in range(a.rounds):
            order = ("pathwatch", "blackbox") if r % 2 == 0 else ("blackbox", "pathwatch")
            for probe in ("http", "tcp"):
                for exporter in order:
                    pid, u = cases[(probe, exporter)]
                    c0 = cpu_seconds(pid)
                    res = wrk(u, lua, a.threads, a.connections, a.seconds)
                    res["cpu"] = cpu_seconds(pid) - c0
                    # Resident memory right after the load (connections still open: wrk has
                    # just stopped), the exporter's working set under /probe load.
                    res["rss"] = rss_mib(pid)
                    res["rate"] = res["requests"] / (res["duration_us"] / 1e6)
                    res["cpu_per_1k"] = res["cpu"] / max(res["requests"], 1) * 1000
                    runs[(probe, exporter)].append(res)
                    print(f"round {r + 1}/{a.rounds} {probe:4} {exporter:9} {res['rate']:8.0f} probes/s "
                          f"{res['cpu_per_1k']:.4f} CPU s/1k  failed {res['failures'] + res['bad_status'] + res['errors']}",
                          flush=True)
    except KeyboardInterrupt:
        raise SystemExit("interrupted")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
        tmp.cleanup()

    med = statistics.median
    failed = sum(r["failures"] + r["bad_status"] + r["errors"] for rs in runs.values() for r in rs)
    ports = " to ".join(open(PORT_RANGE).read().split())
    lines = [f"## On-demand probing vs blackbox_exporter ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores)", "",
             f"`{' '.join(shlex.quote(x) for x in ['bench/ondemand_vs_blackbox.py'] + sys.argv[1:])}`: "
             f"{version([a.bin, '--version'])} vs {version(['prometheus-blackbox-exporter', '--version'])}, "
             f"on 127.0.0.1, target `pathwatch sim` `/ping`. Load: wrk -t{a.threads} -c{a.connections}, "
             f"{a.rounds} rounds x {a.seconds} s per exporter and probe, alternating; medians over the rounds. "
             f"CPU: the exporter process's utime+stime. Ephemeral ports {ports}.", "",
             "| probe | exporter | probes/s | CPU s per 1,000 probes | exporter cores busy | p50 latency (ms) | RSS after the load (MiB) | failed answers |",
             "|---|---|---|---|---|---|---|---|"]
    for (probe, exporter), rs in runs.items():
        lines.append(f"| {probe} | {exporter} | {med(r['rate'] for r in rs):.0f} | {med(r['cpu_per_1k'] for r in rs):.4f} | "
                     f"{med(r['cpu'] / (r['duration_us'] / 1e6) for r in rs):.2f} | {med(r['p50_us'] for r in rs) / 1000:.2f} | "
                     f"{med(r['rss'] for r in rs):.1f} | "
                     f"{sum(r['failures'] + r['bad_status'] + r['errors'] for r in rs)} |")
    lines += ["", "| probe | throughput pathwatch / blackbox | CPU per probe pathwatch / blackbox | RSS pathwatch / blackbox | issue 8 goal (>= 2x, <= 0.5x) | issue 19 goal (>= 4x, <= 0.15x, RSS <= 0.5x) |",
              "|---|---|---|---|---|---|"]
    for probe in ("http", "tcp"):
        pw_rs, bb_rs = runs[(probe, "pathwatch")], runs[(probe, "blackbox")]
        thr = med(p["rate"] / b["rate"] for p, b in zip(pw_rs, bb_rs))
        cpu = med(p["cpu_per_1k"] / b["cpu_per_1k"] for p, b in zip(pw_rs, bb_rs))
        rss = med(p["rss"] / b["rss"] for p, b in zip(pw_rs, bb_rs))
        lines.append(f"| {probe} | {thr:.2f}x | {cpu:.2f}x | {rss:.2f}x | {'met' if thr >= 2 and cpu <= 0.5 else 'missed'} | "
                     f"{'met' if thr >= 4 and cpu <= 0.15 and rss <= 0.5 else 'missed'} |")
    lines += ["", "Goals: issue 8, pathwatch at least 2x blackbox_exporter's probes per second at most half its CPU per "
              "probe; issue 19, at least 4x, at most 0.15x, and at most half its resident memory under the same load.", ""]
    out = "\n".join(lines)
    print(out)
    if failed:
        raise SystemExit(f"{failed} answers were not 200 with probe_success 1: not written")
    if a.write:
        open("BENCHMARKS.md", "a").write(out + "\n")
        print("appended to BENCHMARKS.md")

if __name__ == "__main__":
    main()
