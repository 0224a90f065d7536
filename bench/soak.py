#!/usr/bin/env python3
"""A bounded soak (issue 16): 100 probes at 1 s, half passing and half failing, for 10
minutes, while clients scrape /metrics and /api/status, call /probe, and leave idle sockets.
Reports resident memory and open file descriptors every 2 s, and the drift of their floor
from the second minute to the last (a leak shows as a rising floor, not as warm-up or as the
clients' idle sockets coming and going).

Loopback only: every target is a listener of this script on 127.0.0.1.

Probes: 25 tcp to a listener that accepts (pass), 25 tcp to a closed port (fail: refused),
25 http answering 200 with a matching body (pass), 25 http answering 500 or a body that
fails its assertion (fail).

Usage: bench/soak.py [--bin target/release/pathwatch] [--minutes 10] [--write]
"""
import argparse, http.server, os, socket, subprocess, sys, tempfile, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_kind, free_port, listener, rss_mib, wait_up  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/ok"):
            code, body = 200, b'{"status":"healthy"}'
        elif self.path.startswith("/err"):
            code, body = 500, b'{"status":"down"}'
        else:
            code, body = 200, b'{"status":"degraded"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


def http_target():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def config(tcp_ok, tcp_closed, http_port):
    lines = ["defaults: { interval: 1s, timeout: 2s }", "probes:"]
    for i in range(25):
        lines.append(f"  - {{ name: tcp-ok-{i}, kind: tcp, host: 127.0.0.1, port: {tcp_ok} }}")
        lines.append(f"  - {{ name: tcp-fail-{i}, kind: tcp, host: 127.0.0.1, port: {tcp_closed} }}")
        lines.append(f"  - {{ name: http-ok-{i}, kind: http, url: \"http://127.0.0.1:{http_port}/ok/{i}\","
                     " assert: [{ json_pointer: /status, equals: healthy }] }")
        path = "err" if i % 2 else "assert"
        lines.append(f"  - {{ name: http-fail-{i}, kind: http, url: \"http://127.0.0.1:{http_port}/{path}/{i}\","
                     " assert: [{ json_pointer: /status, equals: healthy }] }")
    lines += ["on_demand:", "  allowed_targets: [\"127.0.0.1:*\", \"http://127.0.0.1:*\"]"]
    return "\n".join(lines) + "\n"


def clients(base, http_port, tcp_ok, stop):
    """Scrapes, status reads, on-demand runs and idle sockets, until `stop` is set."""
    idle = []
    n = 0
    while not stop.is_set():
        for path in ("/metrics", "/api/status", f"/probe?module=tcp-ok-0&target=127.0.0.1:{tcp_ok}",
                     f"/probe?module=http-ok-0&target=http://127.0.0.1:{http_port}/ok/x"):
            try:
                with urllib.request.urlopen(base + path, timeout=10) as r:
                    r.read()
            except Exception as e:
                print(f"  {path}: {e}", file=sys.stderr)
        # 20 idle sockets opened every round, all closed every 10 rounds.
        for _ in range(20):
            try:
                s = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
                idle.append(s)
            except OSError:
                pass
        n += 1
        if n % 10 == 0:
            for s in idle:
                s.close()
            idle = []
        stop.wait(1.0)
    for s in idle:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    a = ap.parse_args()
    tcp_ok, http_port = listener(), http_target()
    tcp_closed = free_port()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "soak.yaml")
        open(path, "w").write(config(tcp_ok, tcp_closed, http_port))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        p = subprocess.Popen([a.bin, "serve", "--config", path, "--listen", f"127.0.0.1:{port}",
                              "--log-level", "error"], stderr=subprocess.DEVNULL)
        stop = threading.Event()
        try:
            wait_up(base + "/healthz", proc=p)
            t = threading.Thread(target=clients, args=(base, http_port, tcp_ok, stop), daemon=True)
            t.start()
            samples = []  # (seconds, rss MiB, fds)
            start = time.time()
            end = start + a.minutes * 60
            while time.time() < end:
                if p.poll() is not None:
                    raise SystemExit(f"pathwatch exited with {p.returncode} during the soak")
                samples.append((time.time() - start, rss_mib(p.pid), fds(p.pid)))
                time.sleep(min(2, max(0.1, end - time.time())))
            samples.append((time.time() - start, rss_mib(p.pid), fds(p.pid)))
            with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
                m = r.read().decode()
            runs = sum(float(line.rsplit(" ", 1)[1]) for line in m.splitlines()
                       if line.startswith("pathwatch_probe_runs_total{"))
            panics = sum(float(line.rsplit(" ", 1)[1]) for line in m.splitlines()
                         if line.startswith("pathwatch_probe_runs_total{") and 'reason="panic"' in line)
        finally:
            stop.set()
            p.terminate()
            p.wait()
    # The clients' idle sockets come and go every 10 s: a minute's floor is what stays open.
    def floor(lo, hi):
        xs = [s for s in samples if lo <= s[0] < hi] or samples[-1:]
        return min(x[1] for x in xs), min(x[2] for x in xs)
    total = samples[-1][0]
    warm = floor(60, 120)
    last = floor(total - 60, total + 1)
    rss_max = max(s[1] for s in samples)
    fd_max = max(s[2] for s in samples)
    out = [
        f"## Soak: 100 probes at 1 s for {a.minutes:g} min ({time.strftime('%Y-%m-%d')}, "
        f"{os.uname().nodename}, {os.cpu_count()} cores)",
        "",
        f"`bench/soak.py --bin {a.bin} --minutes {a.minutes:g}` ({build_kind(a.bin)}).",
        "",
        "Lowest value of the 2nd minute and of the last minute (a leak shows as a floor that rises).",
        "",
        "| | 2nd minute | last minute | drift | max |",
        "|---|---|---|---|---|",
        f"| RSS (MiB) | {warm[0]:.1f} | {last[0]:.1f} | {last[0] - warm[0]:+.1f} | {rss_max:.1f} |",
        f"| open fds | {warm[1]} | {last[1]} | {last[1] - warm[1]:+d} | {fd_max} |",
        "",
        f"{runs:.0f} probe runs, {panics:.0f} panics; clients scraped /metrics and /api/status, "
        "called /probe twice and opened 20 idle sockets every second (closed every 10 s).",
    ]
    print("\n".join(out))
    if a.write:
        with open("BENCHMARKS.md", "a") as f:
            f.write("\n" + "\n".join(out) + "\n")


if __name__ == "__main__":
    main()
