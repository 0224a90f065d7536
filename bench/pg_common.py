"""Shared by bench/pg_accuracy.py and bench/pg_baseline.py: a throwaway Postgres cluster, a
pathwatch `serve` process, one on-demand probe run (`/probe?module=`) parsed, and the markdown
section that `--write` appends to BENCHMARKS.md. Stdlib only.
"""
import glob, json, os, pwd, re, shutil, signal, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, wait_up  # noqa: E402,F401 (re-exported to the pg scripts)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pg_bindir():
    """PG_BIN, else the newest /usr/lib/postgresql/*/bin that has initdb (Debian's layout,
    like .ci/test), else wherever initdb is on PATH."""
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(f"{d}/initdb")]
    if dirs:
        return max(dirs, key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else "/usr/lib/postgresql/15/bin"


PG_BIN = _pg_bindir()


def exit_on_sigterm():
    """SIGTERM raises SystemExit, so `finally` blocks stop the cluster and the processes."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Postgres:
    """A throwaway cluster: initdb (trust auth) in a temp dir, its own port and socket dir,
    listening on 127.0.0.1 only, fsync off. Stopped and deleted on exit, even on error.
    As root, initdb and pg_ctl run as the `postgres` user (initdb refuses root)."""

    def __init__(self, extra_options=()):
        self.port = free_port()
        self.dir = None
        self.extra = list(extra_options)
        self.started = False

    def _run(self, *cmd):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        r = subprocess.run(prefix + list(cmd), capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="pathwatch-bench-pg-")
        try:
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            data = os.path.join(self.dir, "data")
            self._run(f"{PG_BIN}/initdb", "-D", data, "--auth=trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8", "--locale=C")
            opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.dir}",
                    "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
                    "-c max_connections=200", *self.extra]
            self._run(f"{PG_BIN}/pg_ctl", "-D", data, "-w", "-t", "30", "-l",
                      os.path.join(self.dir, "server.log"), "-o", " ".join(opts), "start")
            self.started = True
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.started:
                self._run(f"{PG_BIN}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-w",
                          "-m", "immediate", "stop")
                self.started = False
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None


class Pathwatch:
    """`pathwatch serve` with `config_text`; once up, waits until every probe has finished its
    scheduled first run (give probes a long interval so that no other run overlaps the
    benchmark's on-demand runs). Terminated on exit; its stderr is shown if it failed."""

    def __init__(self, binary, config_text, first_runs_within=30.0):
        self.binary, self.config_text, self.first_runs_within = binary, config_text, first_runs_within
        self.proc = None

    def __enter__(self):
        if not os.access(self.binary, os.X_OK):
            raise SystemExit(f"{self.binary} not found: run `cargo build --release` first")
        self.tmp = tempfile.TemporaryDirectory(prefix="pathwatch-bench-")
        path = os.path.join(self.tmp.name, "bench.yaml")
        with open(path, "w") as f:
            f.write(self.config_text)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.tmp.name, "stderr.log"), "w+")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", path, "--listen",
                                      f"127.0.0.1:{self.port}"], stderr=self.log, stdout=subprocess.DEVNULL)
        try:
            wait_up(f"{self.url}/healthz", proc=self.proc)
            end = time.time() + self.first_runs_within
            while True:
                probes = json.loads(get(f"{self.url}/api/status"))["probes"]
                if all(p["history"] for p in probes):
                    break
                if time.time() > end:
                    raise SystemExit("pathwatch's probes did not finish their first runs")
                time.sleep(0.1)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def probe(self, module):
        """Runs `module` once through /probe: (success, duration s, {phase: s})."""
        return parse_probe(get(f"{self.url}/probe?module={module}", timeout=120))

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()
            if exc and exc[0] is not None and exc[0] is not KeyboardInterrupt:
                self.log.seek(0)
                sys.stderr.write("pathwatch's stderr (last 2000 chars):\n" + self.log.read()[-2000:])
            self.log.close()
            self.tmp.cleanup()
            self.proc = None


_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)')


def parse_probe(text):
    ok, duration, phases = None, None, {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), dict(re.findall(r'(\w+)="([^"]*)"', m.group(2))), float(m.group(3))
        if name == "pathwatch_probe_success":
            ok = value == 1.0
        elif name == "pathwatch_probe_duration_seconds":
            duration = value
        elif name == "pathwatch_probe_phase_duration_seconds":
            phases[labels["phase"]] = value
    if ok is None or duration is None:
        raise SystemExit(f"unexpected /probe answer:\n{text}")
    return ok, duration, phases


class Load:
    """1-minute load averages seen during the run (call sample() after each round): a benchmark
    on a shared 2-core machine says how busy the machine was, since a compile beside it moves
    the figures by tens of percent."""

    def __init__(self):
        self.samples = [os.getloadavg()[0]]

    def sample(self):
        self.samples.append(os.getloadavg()[0])

    def note(self):
        cores = os.cpu_count() or 1
        text = f"1-min load average {self.samples[0]:.2f} at start, {max(self.samples):.2f} at most, on {cores} cores"
        if max(self.samples) > 0.5 * cores:
            text += " (busy: other work competed for the CPUs; figures are noisier than on an idle machine)"
        return text


def section(title, body_lines):
    """The markdown section: heading with date, host and cores, then the exact command."""
    cmd = " ".join(sys.argv)
    return "\n".join([f"## {title} ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores)",
                      "", f"`{cmd}`", "", *body_lines, ""])


def emit(text, write):
    print(text)
    if write:
        with open(os.path.join(ROOT, "BENCHMARKS.md"), "a") as f:
            f.write(text + "\n")
        print(f"(appended to {os.path.join(ROOT, 'BENCHMARKS.md')})", file=sys.stderr)
