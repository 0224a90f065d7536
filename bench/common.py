"""What every benchmark script needs: free ports, waiting for a server, a process's CPU and
resident memory from /proc, and a local TCP listener that accepts and closes."""
import os, socket, threading, time, urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def build_kind(binary):
    """What a table says of the binary it measured: a debug build's figures are no benchmark."""
    parts = os.path.normpath(binary).split(os.sep)
    return "DEBUG build, smoke run only" if "debug" in parts else "release build"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_up(url, secs=30, proc=None):
    """Polls `url` until it answers; fails loudly after `secs` or when `proc` exits."""
    end = time.time() + secs
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
            return
        except Exception:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up within {secs} s")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    # Fields after the command name (which may hold spaces): utime is 14th, stime 15th overall.
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def listener():
    """A 127.0.0.1 port whose connections are accepted and closed at once (a tcp probe's target)."""
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0)); srv.listen(4096)
    def loop():
        while True:
            try:
                c, _ = srv.accept(); c.close()
            except OSError:
                return
    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def quantile(xs, q):
    """The q-quantile of xs by rank (no interpolation)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def scrape_metrics(base, n):
    """GETs base/metrics n + 1 times. Each answer carries the previous one's encode time
    (pathwatch_metrics_encode_seconds), so the first is not counted. Returns the GET times
    and encode times in ms, and the last answer."""
    gets, encodes, body = [], [], b""
    for i in range(n + 1):
        t = time.perf_counter()
        with urllib.request.urlopen(f"{base}/metrics", timeout=60) as r:
            body = r.read()
        if i > 0:
            gets.append((time.perf_counter() - t) * 1000)
            encodes.append(next(float(line.split()[1]) * 1000 for line in body.decode().splitlines()
                                if line.startswith("pathwatch_metrics_encode_seconds ")))
    return gets, encodes, body
