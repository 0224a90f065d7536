#!/usr/bin/env python3
"""pathwatch's postgres probe against the physical baseline (issue 8, measurement 5).

What: the time to a usable Postgres session (TCP connect, startup and trust auth, `SELECT 1`)
as pathwatch reports it, against the same work done by a bare tokio-postgres loop, by libpq
(pgbench) and by psql, all on 127.0.0.1 against one throwaway cluster.

How: a throwaway cluster (initdb, trust auth, TCP on 127.0.0.1, fsync off). Alternating
rounds (default 28), each side doing N connects (default 50) per round; pathwatch and the
same loop behind HTTP run next to each other in every round (their order flips each round), the other
sides before or after them. Short rounds, many of them: on a shared VM the machine's speed
drifts by tens of percent over minutes, and pairing within a round cancels that drift.
- pathwatch: `serve` with a postgres probe (`sslmode: disable`, 24 h interval so only these
  runs happen); N on-demand runs (`/probe?module=`), each giving `pathwatch_probe_duration_seconds`
  (the runner's clock around the whole run: resolve, connect, auth, query, close) and the
  phases. A second probe with the default `sslmode: prefer` (SSLRequest refused, then plain
  text, as libpq's default) is shown for information.
- bare tokio-postgres: examples/pg_connect_loop.rs (`cargo build --release --example
  pg_connect_loop`), NoTls, N iterations of connect + `SELECT 1` timed with Instant, then close;
  once back to back, and once paced like pathwatch's runs (a pause between iterations equal to
  the median time between two of pathwatch's timed runs: HTTP answer, next request). On 2
  cores a connect right after a close competes with the previous backend's exit, and one after
  an idle pause wakes idle CPUs, so pacing moves the figure; the paced loop is the fair baseline.
- bare tokio-postgres behind HTTP: `pg_connect_loop serve`, one timed connect + `SELECT 1`
  per `GET /run`, driven by the same client, one request after the other, exactly like
  pathwatch's `/probe`. The paced loop's figure moved with pacing alone from 1.09x down to
  0.86x of pathwatch's on this VM (a 5 ms pause on both sides), so the goal is judged
  against this one: both processes wake for a request, run the session and answer.
- libpq: `pgbench -n -C -t N -f select1.sql` with `sslmode=disable`. pgbench gives means only:
  its `latency average` under -C covers connect + `SELECT 1` + disconnect per transaction, and
  `average connection time` covers connect + disconnect.
- psql: `psql -X -c 'select 1'` wall time, N/10 runs per round; this includes starting and
  ending the psql process, so it is no session time.
Medians are over every sample of every round; the spread is the range of the per-round medians.

Goal (issue 8): pathwatch's figure within 5 % of the bare tokio-postgres loop's. Judged on the
median over rounds of (pathwatch's median / the loop behind HTTP's median in the same round);
the ratios to the paced and back-to-back loops and of the pooled medians are shown too.

Usage: bench/pg_baseline.py [--quick] [--write] [--rounds 28] [--n 50] [--bin target/release/pathwatch]
       [--loop target/release/examples/pg_connect_loop]
Prints a markdown table; --write also appends it to BENCHMARKS.md. Stops by itself and
removes its cluster and processes, also on error or SIGTERM.
"""
import argparse, atexit, os, re, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_common import ROOT, Pathwatch, Postgres, Load, emit, exit_on_sigterm, get, section  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 4 rounds of 15 connects")
    ap.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    ap.add_argument("--rounds", type=int, help="rounds (default 28, quick 4)")
    ap.add_argument("--n", type=int, help="connects per side per round (default 50, quick 15)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/pathwatch"))
    ap.add_argument("--loop", default=os.path.join(ROOT, "target/release/examples/pg_connect_loop"))
    a = ap.parse_args()
    exit_on_sigterm()
    rounds = a.rounds or (4 if a.quick else 28)
    n = a.n or (15 if a.quick else 50)
    if not os.access(a.loop, os.X_OK):
        sys.exit(f"{a.loop} not found: run `cargo build --release --example pg_connect_loop` first")
    load = Load()

    with Postgres() as pg, tempfile.TemporaryDirectory(prefix="pathwatch-bench-") as tmp:
        script = os.path.join(tmp, "select1.sql")
        with open(script, "w") as f:
            f.write("SELECT 1;\n")
        env = dict(os.environ, PGSSLMODE="disable", PGCONNECT_TIMEOUT="10")
        conn = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
        cfg = f"""defaults: {{ interval: 24h, timeout: 10s }}
probes:
  - {{ name: pg, kind: postgres, host: 127.0.0.1, port: {pg.port}, user: postgres, sslmode: disable }}
  - {{ name: pg-prefer, kind: postgres, host: 127.0.0.1, port: {pg.port}, user: postgres }}
"""
        pw_s, pw_phases, prefer_s, gaps = [], [], [], []
        bare_s, paced_s, served_s, pgb_lat, pgb_conn, psql_s = [], [], [], [], [], []
        per_round = {k: [] for k in ("pathwatch", "bare", "paced", "served", "pgbench", "psql")}

        def pathwatch_runs(pw, count):
            got, last_end = [], None
            for _ in range(count):
                ok, secs, phases = pw.probe("pg")
                end = time.perf_counter()
                if not ok:
                    sys.exit("pathwatch's probe failed")
                if last_end is not None:
                    # From the end of one timed run to the start of the next (approximately:
                    # the request's wall time minus the run, plus the gap between requests).
                    gaps.append(end - last_end - secs)
                last_end = end
                got.append((secs, phases))
            return got

        def pathwatch_side(pw):
            got = pathwatch_runs(pw, n)
            pw_s.extend(s for s, _ in got); pw_phases.extend(p for _, p in got)
            per_round["pathwatch"].append(statistics.median(s for s, _ in got))
            for _ in range(max(1, n // 10)):
                ok, secs, _ = pw.probe("pg-prefer")
                if ok:
                    prefer_s.append(secs)

        def loop(pause_ms):
            r = subprocess.run([a.loop, f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres", str(n),
                                f"{pause_ms:.3f}"], capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                sys.exit(f"pg_connect_loop failed: {r.stderr.strip()}")
            return [int(x) / 1e6 for x in r.stdout.split()]

        def bare_side():
            got = loop(0)
            bare_s.extend(got); per_round["bare"].append(statistics.median(got))

        def paced_side():
            got = loop(statistics.median(gaps) * 1000)
            paced_s.extend(got); per_round["paced"].append(statistics.median(got))

        def served_side(url):
            # The same client, one request after the other, as pathwatch_runs.
            got = []
            for _ in range(n):
                text = get(url, timeout=120)
                try:
                    got.append(int(text) / 1e6)
                except ValueError:
                    sys.exit(f"pg_connect_loop serve: {text.strip()}")
            served_s.extend(got); per_round["served"].append(statistics.median(got))

        def pgbench_side():
            r = subprocess.run(["pgbench", "-n", "-C", "-t", str(n), "-f", script, *conn, "postgres"],
                               capture_output=True, text=True, env=env, timeout=600)
            lat = re.search(r"latency average = ([\d.]+) ms", r.stdout)
            con = re.search(r"average connection time = ([\d.]+) ms", r.stdout)
            if r.returncode != 0 or not lat or not con:
                sys.exit(f"pgbench failed:\n{r.stdout}{r.stderr}")
            pgb_lat.append(float(lat.group(1)) / 1000); pgb_conn.append(float(con.group(1)) / 1000)
            per_round["pgbench"].append(pgb_lat[-1])

        def psql_side():
            got = []
            for _ in range(max(1, n // 10)):
                t = time.perf_counter()
                r = subprocess.run(["psql", "-X", "-q", *conn, "-d", "postgres", "-c", "select 1"],
                                   capture_output=True, env=env, timeout=60)
                got.append(time.perf_counter() - t)
                if r.returncode != 0:
                    sys.exit(f"psql failed: {r.stderr.decode().strip()}")
            psql_s.extend(got); per_round["psql"].append(statistics.median(got))

        served = subprocess.Popen([a.loop, "serve", f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"],
                                  stdout=subprocess.PIPE, text=True)
        atexit.register(served.kill)  # also on sys.exit and SIGTERM
        try:
            served_url = f"http://127.0.0.1:{int(served.stdout.readline())}/run"
        except ValueError:
            served.kill(); sys.exit("pg_connect_loop serve did not print its port")
        with Pathwatch(a.bin, cfg) as pw:
            pathwatch_runs(pw, 20)  # warm-up; measures the time between runs for the paced loop
            for _ in range(20):
                get(served_url)
            # pathwatch next to its like-for-like baseline in every round, in flipping order.
            pair = [lambda: pathwatch_side(pw), lambda: served_side(served_url), paced_side]
            others = [bare_side, pgbench_side, psql_side]
            for r in range(rounds):
                order = pair if r % 2 == 0 else pair[::-1]
                order = order + others if r % 4 < 2 else others + order
                for side in order:
                    side()
                load.sample()
                print(f"round {r + 1}/{rounds} done", file=sys.stderr)
        served.terminate(); served.wait()

    ms = lambda s: f"{s * 1000:.3f}"  # noqa: E731
    spread = lambda k: f"{ms(min(per_round[k]))}-{ms(max(per_round[k]))}"  # noqa: E731
    pw_med, bare_med, paced_med = statistics.median(pw_s), statistics.median(bare_s), statistics.median(paced_s)
    served_med = statistics.median(served_s)
    ratios = sorted(p / q for p, q in zip(per_round["pathwatch"], per_round["served"]))
    ratio = statistics.median(ratios)
    paced_ratio = statistics.median(p / q for p, q in zip(per_round["pathwatch"], per_round["paced"]))
    result = "PASS" if ratio <= 1.05 else "MISS"
    ph = {p: statistics.median(x.get(p, 0.0) for x in pw_phases) for p in ("resolve", "connect", "auth", "query")}
    rest = statistics.median(s - sum(x.values()) for s, x in zip(pw_s, pw_phases))
    lines = [f"{rounds} alternating rounds of {n} connects per side (psql: {max(1, n // 10)}), TCP 127.0.0.1, "
             "trust auth, no TLS. Times in ms.", "",
             "| what | samples | median | per-round medians | pooled median / paced loop |", "|---|---|---|---|---|",
             f"| pathwatch `pathwatch_probe_duration_seconds` (`/probe`, sslmode disable) | {len(pw_s)} | {ms(pw_med)} "
             f"| {spread('pathwatch')} | {pw_med / paced_med:.3f} |",
             f"| bare tokio-postgres behind HTTP (`pg_connect_loop serve`: the same client and pacing as `/probe`) "
             f"| {len(served_s)} | {ms(served_med)} | {spread('served')} | {served_med / paced_med:.3f} |",
             f"| bare tokio-postgres loop, paced like pathwatch (pause {ms(statistics.median(gaps))} ms; connect + SELECT 1) "
             f"| {len(paced_s)} | {ms(paced_med)} | {spread('paced')} | 1.000 |",
             f"| bare tokio-postgres loop, back to back | {len(bare_s)} | {ms(bare_med)} "
             f"| {spread('bare')} | {bare_med / paced_med:.3f} |",
             f"| libpq: pgbench -C `latency average` (mean per round; connect + SELECT 1 + disconnect) | {len(pgb_lat)} "
             f"| {ms(statistics.median(pgb_lat))} | {spread('pgbench')} | {statistics.median(pgb_lat) / paced_med:.3f} |",
             f"| libpq: pgbench -C `average connection time` (mean per round; connect + disconnect) | {len(pgb_conn)} "
             f"| {ms(statistics.median(pgb_conn))} | | {statistics.median(pgb_conn) / paced_med:.3f} |",
             f"| psql -c 'select 1' wall time (includes process start and exit) | {len(psql_s)} "
             f"| {ms(statistics.median(psql_s))} | {spread('psql')} | {statistics.median(psql_s) / paced_med:.3f} |",
             f"| pathwatch, default sslmode prefer (SSLRequest refused, one more round trip; information) | {len(prefer_s)} "
             f"| {ms(statistics.median(prefer_s))} | | {statistics.median(prefer_s) / paced_med:.3f} |",
             "", "pathwatch's phases (medians, ms): " + ", ".join(f"{p} {ms(v)}" for p, v in ph.items())
             + f"; duration minus the phases (span, timeout, timer) {ms(rest)}.", "",
             f"Per-round ratio pathwatch / bare tokio-postgres behind HTTP: median {ratio:.3f}, quartiles {ratios[len(ratios) // 4]:.3f}-"
             f"{ratios[(3 * len(ratios)) // 4]:.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}.", "",
             f"Goal (issue 8): pathwatch within 5 % of the bare tokio-postgres loop: ratio {ratio:.3f} (median of the "
             f"per-round ratios to the same loop behind HTTP), **{result}**. Median per-round ratio to the paced "
             f"loop {paced_ratio:.3f}; pooled medians: {pw_med / served_med:.3f} to the loop behind HTTP, "
             f"{pw_med / paced_med:.3f} to the paced loop, {pw_med / bare_med:.3f} to the back-to-back loop. "
             f"{load.note()}."]
    emit(section("Postgres probe against the physical baseline", lines), a.write)


if __name__ == "__main__":
    main()
