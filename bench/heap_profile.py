#!/usr/bin/env python3
"""Where pathwatch's memory goes (issue 19): a heap profile of an idle exporter and of one with
10,000 tcp probes, and the resident memory of the same cases split by mapping.

What: two cases, each run twice.
  - idle: examples/staging.yaml rewritten to the local reference service (`pathwatch sim`,
    bench/common.py loopback_example(): the example names private addresses);
  - 10,000 tcp probes against one local listener, interval 1h (every probe has run once:
    the history, the latest result and the per-probe series all exist, then it idles).
First under valgrind's massif (Debian package valgrind): once the exporter is up and its first
runs are done, `vgdb` asks massif for a detailed snapshot of the live heap; every allocation
is charged to the first pathwatch function on its stack (the crate's own code that asked for
it, directly or through a library), and the table lists the largest. Then without valgrind:
VmRSS split by mapping from /proc/PID/smaps (the binary's code and read-only data, its
writable data, the heap and anonymous maps, shared libraries), since an idle exporter's
resident memory is mostly the binary's pages, which no heap profile shows.

Needs a binary with symbols: the release build keeps its symbol table (Cargo.toml), as does
`cargo build --profile profiling`. Valgrind runs the exporter 20-50x slower, so the
10,000-probe case takes a few minutes.

Usage: bench/heap_profile.py [--bin target/release/pathwatch] [--probes 10000] [--top 12]
       [--quick] [--write]
--quick: 500 probes and the idle case, for a smoke run. --write appends the section to
BENCHMARKS.md.
"""
import argparse, collections, os, re, shutil, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, listener, loopback_example, start_sim, wait_up  # noqa: E402

# Frames that only pass an allocation through: the charge goes to the pathwatch frame above.
PASS_THROUGH = re.compile(r"^(<?alloc::|<?core::|<?std::|__rust|hashbrown::|<hashbrown|malloc|calloc|realloc|"
                          r"operator new|\?\?\?)")


def parse_massif_tree(lines):
    """The heap tree of one detailed snapshot: (bytes, function, children) nodes."""
    pos = 0

    def node(depth):
        nonlocal pos
        m = re.match(r"^\s*n(\d+): (\d+) (.*)$", lines[pos])
        pos += 1
        count, size, what = int(m.group(1)), int(m.group(2)), m.group(3)
        # "0x4A3B2C: pathwatch::store::State::record (store/mod.rs:250)" or "in 12 places, ..."
        fm = re.match(r"^0x[0-9A-Fa-f]+: (.*?)(?: \([^()]*\))?$", what)
        func = fm.group(1) if fm else what
        return (size, func, [node(depth + 1) for _ in range(count)])

    return node(0)


def charge(tree):
    """Bytes per first pathwatch function down each path from the allocator; a path with
    none is charged to its first frame that is not allocation plumbing (a library's)."""
    out = collections.Counter()

    def walk(n, first):
        size, func, children = n
        if func.startswith("pathwatch::"):
            out[short(func)] += size
            return
        if first is None and not PASS_THROUGH.match(func) and not func.startswith("in "):
            first = func
        if not children:
            out[short(first or func)] += size
            return
        for c in children:
            walk(c, first)

    for c in tree[2]:
        walk(c, None)
    return out


def short(func):
    """`pathwatch::store::State::record` from a demangled name with generics and hashes."""
    func = re.sub(r"::h[0-9a-f]{16}$", "", func)
    depth, out = 0, []
    for ch in func:
        depth += ch == "<"
        if depth == 0:
            out.append(ch)
        depth -= ch == ">" and depth > 0
    return "".join(out).replace("{{closure}}", "{closure}")[:110]


def massif(binary, config, settle, tmp):
    """Runs `pathwatch serve` under massif; a detailed snapshot after `settle` s of service."""
    out = os.path.join(tmp, "massif.out")
    snap = os.path.join(tmp, "snapshot.out")
    port = free_port()
    p = subprocess.Popen(["valgrind", "--tool=massif", "--vgdb=yes", f"--massif-out-file={out}",
                          "--threshold=0.1", binary, "serve", "--config", config,
                          "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz", secs=600, proc=p)
        time.sleep(settle)
        subprocess.run(["vgdb", f"--pid={p.pid}", "detailed_snapshot", snap], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()
    lines = open(snap).read().splitlines()
    heap = int(next(l.split("=")[1] for l in lines if l.startswith("mem_heap_B=")))
    extra = int(next(l.split("=")[1] for l in lines if l.startswith("mem_heap_extra_B=")))
    start = next(i for i, l in enumerate(lines) if l.startswith("heap_tree="))
    return heap, extra, charge(parse_massif_tree(lines[start + 1:]))


def smaps(binary, config, settle):
    """VmRSS by mapping (kB): the binary, shared libraries, heap and anonymous maps."""
    port = free_port()
    p = subprocess.Popen([binary, "serve", "--config", config, "--listen", f"127.0.0.1:{port}"],
                         stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz", proc=p)
        time.sleep(settle)
        parts, name, perms = collections.Counter(), "", ""
        exe = os.path.realpath(binary)
        for line in open(f"/proc/{p.pid}/smaps"):
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if m:
                perms, name = m.group(1), m.group(2)
            elif line.startswith("Rss:"):
                kb = int(line.split()[1])
                if name == exe:
                    # .data.rel.ro is read-only after relocation (RELRO): it counts as read-only data.
                    key = ("binary: code" if "x" in perms else "binary: writable data" if "w" in perms
                           else "binary: read-only data and relocated pointers")
                elif name.startswith("/"):
                    key = "shared libraries (libc, libm, ...)"
                elif name == "[stack]" or name == "":
                    key = "heap arenas, thread stacks, anonymous maps"
                elif name == "[heap]":
                    key = "heap (brk)"
                else:
                    key = "other"
                parts[key] += kb
        return parts
    finally:
        p.terminate(); p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release/pathwatch")
    ap.add_argument("--probes", type=int, default=10000)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--quick", action="store_true", help="smoke run: 500 probes")
    ap.add_argument("--write", action="store_true", help="append the section to BENCHMARKS.md")
    a = ap.parse_args()
    if a.quick:
        a.probes = 500
    for tool in ("valgrind", "vgdb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing: {tool}. Install with: apt-get install valgrind")
    if b"pathwatch::" not in subprocess.run(["nm", "-C", a.bin], capture_output=True).stdout[:10_000_000]:
        print(f"warning: {a.bin} has no symbols: build it with Cargo.toml's release profile", file=sys.stderr)
    target = listener()
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        sim, sim_addr, redis_addr = start_sim(a.bin)
        try:
            idle = os.path.join(tmp, "staging.yaml")
            open(idle, "w").write(loopback_example("examples/staging.yaml", sim_addr, redis_addr))
            many = os.path.join(tmp, "many.yaml")
            open(many, "w").write("defaults: { interval: 1h, timeout: 5s }\nprobes:\n" + "".join(
                f"  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: {target} }}\n" for i in range(a.probes)))
            cases = [("idle, examples/staging.yaml against `pathwatch sim`", idle, 5, 15),
                     (f"{a.probes} tcp probes after their first runs", many, 15, 60)]
            for what, cfg, settle, vsettle in cases:
                print(f"{what}: massif", flush=True)
                heap, extra, by = massif(a.bin, cfg, vsettle, tmp)
                print(f"{what}: smaps", flush=True)
                rss = smaps(a.bin, cfg, settle)
                sections.append((what, heap, extra, by, rss))
        finally:
            sim.terminate(); sim.wait()

    mib = lambda b: b / 2**20
    lines = [f"## Heap profile and resident memory by mapping ({time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores)", "",
             f"`bench/heap_profile.py{' --quick' if a.quick else ''} --bin {a.bin}`: the live heap from a massif detailed "
             "snapshot (`vgdb ... detailed_snapshot`) once the first runs are done, each allocation charged to the first "
             "pathwatch function on its stack; then VmRSS of the same case without valgrind, split by mapping "
             "(/proc/PID/smaps).", ""]
    for what, heap, extra, by, rss in sections:
        per = f" ({heap / a.probes:.0f} bytes a probe)" if "tcp probes" in what else ""
        lines += [f"### {what}", "",
                  f"Live heap {mib(heap):.2f} MiB{per} + {mib(extra):.2f} MiB allocator overhead. "
                  f"VmRSS {sum(rss.values()) / 1024:.1f} MiB: "
                  + ", ".join(f"{k} {v / 1024:.1f}" for k, v in rss.most_common()) + " (MiB).", "",
                  "| charged to | live heap (KiB) | share |", "|---|---|---|"]
        for func, size in by.most_common(a.top):
            lines.append(f"| `{func}` | {size / 1024:.0f} | {size / max(heap, 1) * 100:.1f} % |")
        rest = heap - sum(s for _, s in by.most_common(a.top))
        lines += [f"| everything else | {rest / 1024:.0f} | {rest / max(heap, 1) * 100:.1f} % |", ""]
    out = "\n".join(lines)
    print(out)
    if a.write:
        open("BENCHMARKS.md", "a").write(out + "\n")


if __name__ == "__main__":
    main()
