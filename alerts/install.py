#!/usr/bin/env python3
"""Writes an installable copy of alerts/pathwatch.rules.yml.

  python3 alerts/install.py OUT [--runbook-base URL] [--grafana-url URL] [--scale N]

--runbook-base  where docs/src/runbook.md is published: every alert's runbook_url is
                BASE#<alertname in lower case>. This is the one place the base is set.
--grafana-url   the Grafana that has dashboards/*.json: every dashboard_url starts with it.
--scale N       divides every duration of the rules by N: `for:`, range selectors such as
                [5m], and the groups' evaluation `interval:`; and, in an alert's summary and
                description, every duration written out in words ("2 minutes", "10 minutes")
                that is one of that alert's own `for:` or ranges, so the texts say what the
                copy does. Nothing else changes: the expressions stay the shipped ones, and
                thresholds ("under 10 s", "less than 14 days") are not durations of the rule.
                tests/it/paging.rs runs the real rules at --scale 30 (probes every 1 s
                instead of 30 s); the demo's walkthrough (alerts/walkthrough.sh) at 6.

The text is rewritten line by line (no YAML round trip), so comments and layout survive.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "alerts", "pathwatch.rules.yml")
# The bases the shipped file carries; --runbook-base and --grafana-url replace them.
RUNBOOK_BASE = "https://github.com/pathwatch/pathwatch/blob/main/docs/src/runbook.md"
GRAFANA_URL = "http://localhost:3000"

UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")


def parse_ms(text):
    """A Prometheus duration such as 1h30m or 500ms, in milliseconds."""
    total, pos = 0, 0
    for m in DURATION.finditer(text):
        if m.start() != pos:
            raise ValueError(f"not a duration: {text!r}")
        total += int(m.group(1)) * UNITS_MS[m.group(2)]
        pos = m.end()
    if pos != len(text) or total == 0:
        raise ValueError(f"not a duration: {text!r}")
    return total


def format_ms(ms):
    ms = max(1, round(ms))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


WORD_UNITS_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
# "2 minutes", "10 minutes", "1 hour": a duration written out in an annotation.
WORDS = re.compile(r"\b(\d+) (second|minute|hour|day)s?\b")
FOR_OR_INTERVAL = re.compile(r"^(\s*(?:for|interval): )([0-9a-z]+)(\s*)$")
RANGE = re.compile(r"\[([0-9a-z]+)\]")
TEXT = re.compile(r"^\s*(?:summary|description): ")
RULE_START = re.compile(r"^\s*- (?:alert|record|name): ")


def format_words(ms):
    """A duration in words, in the largest unit that divides it: 20 seconds, 1 minute, 333 ms."""
    ms = max(1, round(ms))
    for unit, size in sorted(WORD_UNITS_MS.items(), key=lambda u: -u[1]):
        if ms % size == 0:
            n = ms // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{ms} ms"


def rule_durations(lines):
    """The `for:` and range durations of one rule (its lines), in milliseconds."""
    found = set()
    for line in lines:
        if line.lstrip().startswith("#") or TEXT.match(line):
            continue
        m = FOR_OR_INTERVAL.match(line)
        if m and m.group(1).strip() == "for:":
            found.add(parse_ms(m.group(2)))
        found.update(parse_ms(r) for r in RANGE.findall(line))
    return found


def scale_rule(lines, n):
    """One rule's lines (or a group header's) with its durations divided by n."""
    own = rule_durations(lines)

    def key(m):
        return f"{m.group(1)}{format_ms(parse_ms(m.group(2)) / n)}{m.group(3)}"

    def rng(m):
        return f"[{format_ms(parse_ms(m.group(1)) / n)}]"

    def words(m):
        ms = int(m.group(1)) * WORD_UNITS_MS[m.group(2)]
        return format_words(ms / n) if ms in own else m.group(0)

    out = []
    for line in lines:
        line = FOR_OR_INTERVAL.sub(key, line)
        if TEXT.match(line):
            line = WORDS.sub(words, line)
        elif not line.lstrip().startswith("#"):
            line = RANGE.sub(rng, line)
        out.append(line)
    return out


def scale_text(text, n):
    """Divides `for:`/`interval:` values, [range] selectors and the texts' own durations by n."""
    out, rule = [], []
    for line in text.splitlines(keepends=True):
        if RULE_START.match(line):
            out += scale_rule(rule, n)
            rule = []
        rule.append(line)
    out += scale_rule(rule, n)
    return "".join(out)


def render(runbook_base=RUNBOOK_BASE, grafana_url=GRAFANA_URL, scale=1.0):
    with open(SOURCE) as f:
        text = f.read()
    text = text.replace(RUNBOOK_BASE + "#", runbook_base.rstrip("/") + "#")
    text = text.replace(GRAFANA_URL + "/d/", grafana_url.rstrip("/") + "/d/")
    if scale != 1:
        text = scale_text(text, scale)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="file to write ('-' for stdout)")
    ap.add_argument("--runbook-base", default=RUNBOOK_BASE)
    ap.add_argument("--grafana-url", default=GRAFANA_URL)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    if a.scale <= 0:
        sys.exit("--scale must be positive")
    text = render(a.runbook_base, a.grafana_url, a.scale)
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
