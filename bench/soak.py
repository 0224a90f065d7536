#!/usr/bin/env python3
"""A bounded soak (issues 16 and 34): N probes at 1 s (default 100), half passing and half
failing, while clients scrape /metrics and /api/status, call /probe, and leave idle sockets,
and (with --reload-every) the config is changed and reloaded over POST /-/reload. Samples
resident memory, open file descriptors and threads every --sample-every seconds; reports
their start, end and max, the drift of their floor from the second minute to the last (a
leak shows as a rising floor, not as warm-up or as the clients' idle sockets coming and
going), and the least-squares slope over the last 30 minutes (the last half of a shorter
run), which tells a slow leak from the allocator settling.

Loopback only: every target is a listener of this script on 127.0.0.1.

Probes, a quarter each: tcp to a listener that accepts (pass), tcp to a closed port (fail:
refused), http answering 200 with a matching body (pass), http answering 500 or a body that
fails its assertion (fail).

Usage: bench/soak.py [--bin target/release/pathwatch] [--minutes 10] [--probes 100]
                     [--reload-every SECONDS] [--sample-every 2] [--write]
Issue 34's hour: --minutes 60 --probes 200 --reload-every 15 --sample-every 10
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


def threads(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def config(tcp_ok, tcp_closed, http_port, probes=100, generation=0):
    """`probes` probes, a quarter of each kind. `generation` changes one probe's URL (and a
    comment), so that each reload has something to apply."""
    lines = [f"# generation {generation}", "defaults: { interval: 1s, timeout: 2s }", "probes:"]
    for i in range(probes // 4):
        lines.append(f"  - {{ name: tcp-ok-{i}, kind: tcp, host: 127.0.0.1, port: {tcp_ok} }}")
        lines.append(f"  - {{ name: tcp-fail-{i}, kind: tcp, host: 127.0.0.1, port: {tcp_closed} }}")
        ok_path = f"/ok/{i}" if i or generation % 2 == 0 else f"/ok/{i}/alt"
        lines.append(f"  - {{ name: http-ok-{i}, kind: http, url: \"http://127.0.0.1:{http_port}{ok_path}\","
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


def reloader(base, path, ports, probes, every, stop, counts):
    """Rewrites the config (one probe's URL flips) and POSTs /-/reload every `every` s."""
    generation = 0
    while not stop.wait(every):
        generation += 1
        tmp = path + ".new"
        try:
            # Inside the try: a full disk (it happened, on a shared machine) costs one
            # reload, not every reload left in the run.
            open(tmp, "w").write(config(*ports, probes=probes, generation=generation))
            os.replace(tmp, path)
            req = urllib.request.Request(base + "/-/reload", method="POST", data=b"")
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
                counts["ok" if r.status == 200 else "failed"] += 1
        except Exception as e:
            counts["failed"] += 1
            print(f"  reload: {e}", file=sys.stderr)


def slope_per_hour(points):
    """Least-squares slope of (seconds, value) points, per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return float("nan")
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx * 3600


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--probes", type=int, default=100, help="how many probes (a quarter of each kind)")
    ap.add_argument("--reload-every", type=float, default=0,
                    help="seconds between config changes reloaded over POST /-/reload (0: none)")
    ap.add_argument("--sample-every", type=float, default=2, help="seconds between samples")
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    a = ap.parse_args()
    if a.probes < 4:
        raise SystemExit("--probes: at least 4 (one of each kind)")
    tcp_ok, http_port = listener(), http_target()
    tcp_closed = free_port()
    ports = (tcp_ok, tcp_closed, http_port)
    reloads = {"ok": 0, "failed": 0}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "soak.yaml")
        open(path, "w").write(config(*ports, probes=a.probes))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        p = subprocess.Popen([a.bin, "serve", "--config", path, "--listen", f"127.0.0.1:{port}",
                              "--log-level", "error"], stderr=subprocess.DEVNULL)
        stop = threading.Event()
        try:
            wait_up(base + "/healthz", proc=p)
            t = threading.Thread(target=clients, args=(base, http_port, tcp_ok, stop), daemon=True)
            t.start()
            if a.reload_every > 0:
                threading.Thread(target=reloader, daemon=True,
                                 args=(base, path, ports, a.probes, a.reload_every, stop, reloads)).start()
            samples = []  # (seconds, rss MiB, fds, threads)
            start = time.time()
            end = start + a.minutes * 60
            sample = lambda: (time.time() - start, rss_mib(p.pid), fds(p.pid), threads(p.pid))
            while time.time() < end:
                if p.poll() is not None:
                    raise SystemExit(f"pathwatch exited with {p.returncode} during the soak")
                samples.append(sample())
                if a.sample_every >= 10:
                    print("  {:6.0f} s  RSS {:6.1f} MiB  fds {:4d}  threads {:3d}".format(*samples[-1]),
                          file=sys.stderr, flush=True)
                time.sleep(min(a.sample_every, max(0.1, end - time.time())))
            samples.append(sample())
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
        return tuple(min(x[i] for x in xs) for i in (1, 2, 3))
    total = samples[-1][0]
    warm = floor(60, 120)
    last = floor(total - 60, total + 1)
    # The slope of the last 30 minutes, or of the last half of a shorter run.
    window = min(30 * 60, total / 2)
    tail = [s for s in samples if s[0] >= total - window]
    slopes = [slope_per_hour([(s[0], s[i]) for s in tail]) for i in (1, 2, 3)]
    rows = []
    for i, (what, fmt) in enumerate([("RSS (MiB)", "{:.1f}"), ("open fds", "{:d}"), ("threads", "{:d}")], 1):
        v = [s[i] for s in samples]
        f = fmt.format
        rows.append(f"| {what} | {f(v[0])} | {f(v[-1])} | {f(max(v))} | {f(warm[i - 1])} | {f(last[i - 1])} | "
                    f"{slopes[i - 1]:+.2f} |")
    reload_text = (f"; the config changed and reloaded every {a.reload_every:g} s over POST /-/reload "
                   f"({reloads['ok']} reloads answered 200, {reloads['failed']} not)" if a.reload_every > 0 else "")
    out = [
        f"## Soak: {a.probes} probes at 1 s for {a.minutes:g} min ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(time.time() - total))}, "
        f"{os.uname().nodename}, {os.cpu_count()} cores)",
        "",
        f"`bench/soak.py --bin {a.bin} --minutes {a.minutes:g} --probes {a.probes}"
        f"{f' --reload-every {a.reload_every:g}' if a.reload_every > 0 else ''} --sample-every {a.sample_every:g}` "
        f"({build_kind(a.bin)}), {len(samples)} samples.",
        "",
        f"Start (first sample, as /healthz answers), end, max; the lowest value of the 2nd and of the last "
        f"minute (a leak shows as a floor that rises); least-squares slope over the last {window / 60:.1f} min.",
        "",
        f"| | start | end | max | 2nd-minute floor | last-minute floor | slope, last {window / 60:.1f} min (per hour) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"{runs:.0f} probe runs, {panics:.0f} panics; clients scraped /metrics and /api/status, "
        f"called /probe twice and opened 20 idle sockets every second (closed every 10 s){reload_text}.",
    ]
    print("\n".join(out))
    if a.write:
        with open("BENCHMARKS.md", "a") as f:
            f.write("\n" + "\n".join(out) + "\n")


if __name__ == "__main__":
    main()
