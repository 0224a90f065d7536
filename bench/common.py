"""What every benchmark script needs: free ports, waiting for a server, a process's CPU and
resident memory from /proc, and a local TCP listener that accepts and closes."""
import contextlib, ipaddress, os, re, socket, subprocess, threading, time, urllib.parse, urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")

# The Accept header Prometheus 2.42 scrapes with: pathwatch answers it with OpenMetrics (what
# Prometheus reads), and everyone else with the 0.0.4 text format.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def get_metrics(url, timeout=60):
    """GET a /metrics (or /probe) URL as Prometheus does; returns the body."""
    req = urllib.request.Request(url, headers={"Accept": PROMETHEUS_ACCEPT})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


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


@contextlib.contextmanager
def two_builds(a, b, config_path, secs=30):
    """Builds A and B serving the same config side by side on 127.0.0.1 (an A/B record):
    yields {"A": (process, port), "B": (process, port)} once both answer, stops both after."""
    procs = {}
    try:
        for name, binary in (("A", a), ("B", b)):
            port = free_port()
            p = subprocess.Popen([binary, "serve", "--config", config_path, "--listen", f"127.0.0.1:{port}"],
                                 stderr=subprocess.DEVNULL)
            procs[name] = (p, port)
            wait_up(f"http://127.0.0.1:{port}/healthz", secs=secs, proc=p)
        yield procs
    finally:
        for p, _ in procs.values():
            p.terminate(); p.wait()


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
        body = get_metrics(f"{base}/metrics")
        if i > 0:
            gets.append((time.perf_counter() - t) * 1000)
            encodes.append(next(float(line.split()[1]) * 1000 for line in body.decode().splitlines()
                                if line.startswith("pathwatch_metrics_encode_seconds ")))
    return gets, encodes, body


# Where a shipped example may send traffic once rewritten: loopback, or a Unix socket directory.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ADDRESS_KEYS = {"host", "url", "api_base", "metadata_host"}


def _is_loopback(value):
    """True for a loopback host, URL or host:port, and for an absolute path (a socket dir)."""
    if value.startswith("/"):
        return True
    host = urllib.parse.urlsplit(value).hostname if "://" in value else value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    host = (host or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addresses(node, key=None):
    """Every address-bearing string in a parsed config: values of host/url/api_base/... keys."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _addresses(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _addresses(v, key)
    elif isinstance(node, str) and (key in _ADDRESS_KEYS or "://" in node):
        yield node


def loopback_example(path, sim, redis):
    """The shipped example at `path`, rewritten so that every probe targets the local reference
    service (`pathwatch sim` at `sim`, host:port, with its Redis at `redis`): the examples name
    private addresses and the Google APIs, and no benchmark may send traffic beyond loopback.
    Variables are expanded here with local values; the Google probes get the reference
    service as API base and metadata server. Fails loudly if any address is left that is not
    loopback (or a Unix socket directory, which stays on this machine)."""
    import yaml
    base = f"http://{sim}"
    local = {
        "BACKEND_URL": base, "AUTH_URL": base, "CLICKHOUSE_URL": base, "WS_URL": f"ws://{sim}/ws",
        "CLOUDSQL_PRIVATE_IP": "127.0.0.1", "REDIS_HOST": redis.rsplit(":", 1)[0],
        "E2E_PASSWORD": SIM_PASSWORD, "REDIS_PASSWORD": SIM_PASSWORD,
        # Not empty: an empty expansion would leave a YAML null where a string belongs.
        "POSTGRES_PASSWORD": "bench", "CLICKHOUSE_PASSWORD": "bench",
    }
    text = _VAR.sub(lambda m: local.get(m.group(1), m.group(2) or ""), open(path).read())
    text = text.replace("port: 6379", f"port: {redis.rsplit(':', 1)[1]}")
    google = 'api_base: {b}\n{i}credentials: {{ metadata_host: "{s}" }}'
    out = []
    for line in text.splitlines():
        out.append(line)
        m = re.match(r"^(\s+)(kind: gcp_\w+|cloud_logging:)$", line)
        if m:
            indent = m.group(1) + ("  " if m.group(2) == "cloud_logging:" else "")
            out.append(indent + google.format(b=base, i=indent, s=sim))
    text = "\n".join(out) + "\n"
    beyond = [a for a in _addresses(yaml.safe_load(text)) if not _is_loopback(a)]
    if beyond:
        raise SystemExit(f"{path}: addresses beyond loopback left after the rewrite: {beyond}")
    return text


# `pathwatch sim`'s default password for the golden path's login.
SIM_PASSWORD = "pathwatch-demo"


def start_sim(binary):
    """`pathwatch sim` on free loopback ports; returns (process, "host:port", redis "host:port")."""
    port, redis_port = free_port(), free_port()
    p = subprocess.Popen([binary, "sim", "--listen", f"127.0.0.1:{port}",
                          "--redis-listen", f"127.0.0.1:{redis_port}"], stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/health", proc=p)
    return p, f"127.0.0.1:{port}", f"127.0.0.1:{redis_port}"
