#!/usr/bin/env bash
# The paging walkthrough: the demo, the shipped rules in Prometheus and the shipped
# alerts/alertmanager.yml in Alertmanager, all on 127.0.0.1, so the demo's incident pages and
# the page prints in this terminal (the demo's receiver takes the config's webhooks on
# 127.0.0.1:9095). Runs from the checkout as is; Ctrl-C stops everything and removes what it
# wrote. tests/it/walkthrough.rs runs this file, unchanged.
#
#   bash alerts/walkthrough.sh
#
# Needs python3 and Debian's `prometheus` and `prometheus-alertmanager` packages, and the
# ports 9778 (pathwatch), 9095 (the receiver), 9090 (Prometheus) and 9093 (Alertmanager).
# Environment (all optional):
#   PATHWATCH        the pathwatch binary (default: `cargo build --release`, then its binary)
#   SPEED            the demo's --speed (default 1: real time)
#   SCALE            alerts/install.py --scale (default: 30 s over the demo's probe interval,
#                    6 at SPEED 1 where the probes run every 5 s)
#   WALKTHROUGH_DIR  where rules, configs, data and logs go (default: a temporary directory,
#                    removed on exit; a directory given here is kept)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
speed=${SPEED:-1}
# The demo's probes run every 5 s / SPEED, never under 1 s; the rules assume 30 s.
scale=${SCALE:-$(awk -v s="$speed" 'BEGIN { i = 5 / s; if (i < 1) i = 1; print 30 / i }')}
# Prometheus scrapes and evaluates as often as the demo probes.
every=$(awk -v s="$scale" 'BEGIN { ms = int(30000 / s); if (ms < 1000) ms = 1000; print ms "ms" }')

say() { echo "walkthrough: $*"; }
for tool in python3 prometheus prometheus-alertmanager amtool; do
  if ! command -v "$tool" >/dev/null; then
    say "$tool is missing: sudo apt-get install python3 prometheus prometheus-alertmanager" >&2
    exit 1
  fi
done

if [ -n "${PATHWATCH:-}" ]; then
  bin=$PATHWATCH
else
  say "building pathwatch (cargo build --release: 4 to 7 minutes the first time)"
  (cd "$root" && cargo build --release --locked)
  bin=${CARGO_TARGET_DIR:-$root/target}/release/pathwatch
fi

if [ -n "${WALKTHROUGH_DIR:-}" ]; then
  dir=$WALKTHROUGH_DIR keep=1
  mkdir -p "$dir"
else
  dir=$(mktemp -d "${TMPDIR:-/tmp}/pathwatch-walkthrough.XXXXXX") keep=0
fi

names=() pids=()
cleanup() {
  local code=$? i
  trap - EXIT HUP INT TERM
  # Prometheus first (no more alerts), then Alertmanager (no more notifications), then the
  # demo that receives them: nothing is sent to a process that has gone.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [ -f "$dir/alertmanager.log" ]; then
    if grep -E 'level=(error|warn)' "$dir/alertmanager.log"; then
      say "Alertmanager logged the errors above"
    else
      say "Alertmanager logged no error"
    fi
  fi
  if [ "$keep" = 1 ]; then say "stopped; logs in $dir"; else rm -rf "$dir"; say "stopped"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOG COMMAND...: runs COMMAND in the background, its output in LOG, in a session
# of its own: Ctrl-C reaches only this script, whose cleanup stops them in order.
start() {
  local name=$1 log=$2
  shift 2
  setsid "$@" >"$log" 2>&1 &
  names+=("$name") pids+=($!)
}

# ready NAME URL: waits up to 30 s for URL to answer 200, or fails with NAME's log.
ready() {
  local name=$1 url=$2 i
  for ((i = 0; i < 300; i++)); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      say "$name exited:" >&2
      tail -n 20 "$dir/$name.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  say "$name did not answer $url within 30 s" >&2
  exit 1
}

cd "$dir"
python3 "$root/alerts/install.py" pathwatch.rules.yml --scale "$scale"
cat >prometheus.yml <<EOF
global: { scrape_interval: $every, evaluation_interval: $every }
rule_files: [pathwatch.rules.yml]
alerting: { alertmanagers: [ { static_configs: [ { targets: ["127.0.0.1:9093"] } ] } ] }
scrape_configs: [ { job_name: pathwatch, static_configs: [ { targets: ["127.0.0.1:9778"] } ] } ]
EOF

# The demo's lines (its acts, and one per alert Alertmanager sends) print here and go to
# demo.log; its own logs go to demo.err.
setsid "$bin" demo --speed "$speed" > >(tee demo.log) 2>demo.err &
names+=(demo) pids+=($!)
ready demo http://127.0.0.1:9778/metrics
for ((i = 0; i < 50; i++)); do
  grep -q 'Alertmanager notifications to' demo.log && break
  if grep -q "for Alertmanager's webhooks" demo.log; then
    say "the demo cannot receive the webhooks (see above): stop what listens on 127.0.0.1:9095" >&2
    exit 1
  fi
  sleep 0.1
done
start alertmanager alertmanager.log prometheus-alertmanager \
  --config.file="$root/alerts/alertmanager.yml" --storage.path=am \
  --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
ready alertmanager http://127.0.0.1:9093/-/ready
start prometheus prometheus.log prometheus --config.file=prometheus.yml \
  --storage.tsdb.path=data --web.listen-address=127.0.0.1:9090
ready prometheus http://127.0.0.1:9090/-/ready

say "rules at --scale $scale, scraped every $every; Prometheus http://127.0.0.1:9090/alerts, Alertmanager http://127.0.0.1:9093/"
say "the page prints here as 'webhook /pager: firing PathwatchIncidentPresent{incident=\"1278\", ...}' a few seconds into the outage; in another terminal:"
say "  watch -n 2 amtool --alertmanager.url=http://127.0.0.1:9093 alert query"
say "Ctrl-C stops everything"
# Until Ctrl-C, or until one of them stops by itself.
set +e
wait -n "${pids[@]}"
set -e
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[i]}" 2>/dev/null; then
    say "${names[i]} stopped by itself; its log:" >&2
    tail -n 20 "$dir/${names[i]}.log" "$dir/${names[i]}.err" 2>/dev/null >&2 || true
  fi
done
exit 1
