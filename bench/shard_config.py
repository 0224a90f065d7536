#!/usr/bin/env python3
"""A sharding test config (issue 33): N tcp probes against one port, in blocks of 10 -- a
`base` probe with three that `depends_on` it (a group of 4) and six alone -- plus 20
incidents, each naming a probe of two blocks far apart (joining them into one group of 8).
The same shape as tests/it/shards.rs. `pathwatch shards` reads it: no run is needed.

Usage: bench/shard_config.py N [PORT[,PORT...]] > config.yaml  (probes take the ports in turn)
"""
import sys

n = int(sys.argv[1]); ports = (sys.argv[2] if len(sys.argv) > 2 else "9").split(",")
out = ["defaults: { interval: 30s, timeout: 2s }", "probes:"]
for i in range(n):
    out += [f"  - name: tcp-{i:06}", "    kind: tcp", "    host: 127.0.0.1", f"    port: {ports[i % len(ports)]}"]
    if i % 10 in (1, 2, 3):
        out.append(f"    depends_on: [tcp-{i - i % 10:06}]")
out.append("incidents:")
for k in range(20):
    a, b = (k * 10 + 1), (n // 2 + k * 10 + 2)
    out += [f"  - id: inc-{k}", "    criteria:",
            f"      - {{ name: a, probe: tcp-{a:06}, success: true }}",
            f"      - {{ name: b, probe: tcp-{b:06}, success: true }}"]
print("\n".join(out))
