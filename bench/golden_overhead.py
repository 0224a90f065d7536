#!/usr/bin/env python3
"""How much time pathwatch's golden_path probe adds to what it measures.

Runs the reference service (`pathwatch sim`) and `pathwatch serve` with one golden_path probe
against it, on 127.0.0.1. After every probe run, pairs pathwatch's per-event latency (from its
send to the event's arrival, `pathwatch_golden_path_event_seconds`) with the service's own
timeline of the same run (`/admin/runs`: from receiving the message to handing each event to
the socket). The difference is the overhead: loopback transfer, frame decoding and matching.

Usage: bench/golden_overhead.py [--runs 40] [--bin target/release/pathwatch]
Prints a table (and appends it to BENCHMARKS.md with --write). Stops by itself.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, quantile, wait_up  # noqa: E402

def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()

def sample(text, name, **labels):
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        body, value = line.rsplit(" ", 1)
        got = dict(re.findall(r'(\w+)="([^"]*)"', body))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 runs")
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    a = ap.parse_args()
    if a.quick:
        a.runs = 5
    sim_port, pw_port = free_port(), free_port()
    events = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"]
    cfg = f"""probes:
  - name: gp
    kind: golden_path
    interval: 3s
    timeout: 10s
    login: {{ url: "http://127.0.0.1:{sim_port}/auth/login", email: bench@example.com, password: pathwatch-demo }}
    websocket: {{ url: "ws://127.0.0.1:{sim_port}/ws" }}
"""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.yaml")
        open(path, "w").write(cfg)
        sim = subprocess.Popen([a.bin, "sim", "--listen", f"127.0.0.1:{sim_port}"], stderr=subprocess.DEVNULL)
        pw = subprocess.Popen([a.bin, "serve", "--config", path, "--listen", f"127.0.0.1:{pw_port}"], stderr=subprocess.DEVNULL)
        try:
            wait_up(f"http://127.0.0.1:{sim_port}/health", 20)
            wait_up(f"http://127.0.0.1:{pw_port}/healthz", 20)
            per_event = {e: [] for e in events}
            totals, last_ts = [], None
            deadline = time.time() + a.runs * 4 + 30
            while len(totals) < a.runs and time.time() < deadline:
                m = get(f"http://127.0.0.1:{pw_port}/metrics")
                ts = sample(m, "pathwatch_probe_last_run_timestamp_seconds", probe="gp")
                if ts is None or ts == last_ts or sample(m, "pathwatch_probe_success", probe="gp") != 1.0:
                    time.sleep(0.05); continue
                last_ts = ts
                # The run this result is about: the newest complete one received before it.
                runs = [r for r in json.loads(get(f"http://127.0.0.1:{sim_port}/admin/runs"))
                        if len(r["events"]) == len(events) and r["received_at_unix_ms"] < ts * 1000]
                if not runs:
                    continue
                server = dict(runs[-1]["events"])
                for e in events:
                    ours = sample(m, "pathwatch_golden_path_event_seconds", probe="gp", event=e)
                    per_event[e].append((ours - server[e] / 1000.0) * 1000.0)
                totals.append(sample(m, "pathwatch_golden_path_event_seconds", probe="gp", event="agent_completed") * 1000.0)
        finally:
            pw.terminate(); sim.terminate(); pw.wait(); sim.wait()
    if not totals:
        sys.exit("no paired runs")
    lines = [f"## golden_path overhead ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores)", "",
             f"`{' '.join(sys.argv)}`: {len(totals)} runs paired with the reference service's own timeline.", "",
             "| event | overhead median (ms) | p95 (ms) | max (ms) |", "|---|---|---|---|"]
    for e in events:
        xs = per_event[e]
        lines.append(f"| {e} | {statistics.median(xs):.3f} | {quantile(xs, 0.95):.3f} | {max(xs):.3f} |")
    lines += ["", f"Send to agent_completed as pathwatch measures it: median {statistics.median(totals):.1f} ms "
              f"(the service's pauses: 5 x 400 ms).", ""]
    out = "\n".join(lines)
    print(out)
    if a.write:
        with open("BENCHMARKS.md", "a") as f:
            f.write(out + "\n")

if __name__ == "__main__":
    main()
