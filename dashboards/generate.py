#!/usr/bin/env python3
"""Generates the Grafana dashboards in this folder (run it after editing; commit the JSON).

One Python source keeps the five dashboards consistent: the same datasource variable, the same
probe/incident variables, stable uids, and thresholds equal to the bundled criteria (DB connect
10 s, startup 30 s, golden path 60 s).
"""
import json, os

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
# The bundled criteria (examples/staging.yaml, alerts/pathwatch.rules.yml).
DB_CONNECT_MAX, STARTUP_MAX, GOLDEN_MAX = 10, 30, 60


def var_datasource():
    return {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1}


def var_query(name, expr, label=None):
    return {"name": name, "label": label or name, "type": "query", "datasource": DS,
            "query": {"query": expr, "refId": "var"}, "definition": expr, "refresh": 2,
            "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "sort": 1, "hide": 0}


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "format": fmt}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def panel(kind, title, targets, x, y, w, h, unit=None, th=None, show_threshold=False, extra=None,
          description=""):
    defaults = {}
    if unit:
        defaults["unit"] = unit
    if th:
        defaults["thresholds"] = th
    if show_threshold:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
    p = {"type": kind, "title": title, "description": description, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
         "fieldConfig": {"defaults": defaults, "overrides": []}, "options": {}}
    if extra:
        for k, v in extra.items():
            if k == "defaults":
                p["fieldConfig"]["defaults"].update(v)
            else:
                p[k] = v
    return p


def dashboard(uid, title, panels, variables, tags=("pathwatch",)):
    for i, p in enumerate(panels, 1):
        p["id"] = i
    return {"uid": uid, "title": title, "tags": list(tags), "schemaVersion": SCHEMA_VERSION,
            "version": 1, "editable": True, "timezone": "browser", "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "graphTooltip": 1,
            "templating": {"list": [var_datasource()] + variables}, "panels": panels,
            "annotations": {"list": []}, "links": [{"title": "pathwatch", "type": "dashboards",
                                                    "tags": ["pathwatch"], "asDropdown": True}]}


STATUS_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "RESOLVED", "color": "green", "index": 0},
    "1": {"text": "PRESENT", "color": "red", "index": 1},
    "2": {"text": "UNKNOWN", "color": "gray", "index": 2}}}]
MET_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "FAIL", "color": "red", "index": 0}, "1": {"text": "PASS", "color": "green", "index": 1}}}]

INC = 'incident=~"$incident"'
PRB = 'probe=~"$probe"'

incidents = dashboard("pathwatch-incidents", "pathwatch / Incidents", [
    panel("stat", "Incident status", [target(f"pathwatch_incident_status{{{INC}}}", "{{incident}}", instant=True)],
          0, 0, 8, 6, extra={"defaults": {"mappings": STATUS_MAPPINGS, "color": {"mode": "thresholds"}},
                             "options": {"colorMode": "background", "graphMode": "none"}},
          th=thresholds((None, "green"), (1, "red"), (2, "gray")),
          description="0 resolved, 1 present, 2 unknown (no or stale data)."),
    panel("stat", "Since last status change", [target(f"time() - pathwatch_incident_last_change_timestamp_seconds{{{INC}}}", "{{incident}}", instant=True)],
          8, 0, 8, 6, unit="s"),
    panel("stat", "Status changes (30 min)", [target(f"increase(pathwatch_incident_status_changes_total{{{INC}}}[30m])", "{{incident}}", instant=True)],
          16, 0, 8, 6, th=thresholds((None, "green"), (1, "orange"))),
    panel("table", "Resolution criteria: value against bound", [
        target(f"pathwatch_incident_criterion_met{{{INC}}}", ref="A", instant=True, fmt="table"),
        target(f"pathwatch_incident_criterion_value{{{INC}}}", ref="B", instant=True, fmt="table"),
        target(f"pathwatch_incident_criterion_threshold{{{INC}}}", ref="C", instant=True, fmt="table")],
          0, 6, 24, 9, extra={"transformations": [
              {"id": "merge", "options": {}},
              {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True},
                                             "renameByName": {"Value #A": "met", "Value #B": "value", "Value #C": "bound"}}}],
              "fieldConfig": {"defaults": {}, "overrides": [
                  {"matcher": {"id": "byName", "options": "met"}, "properties": [
                      {"id": "mappings", "value": MET_MAPPINGS}, {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]}}),
    panel("state-timeline", "Status over time", [target(f"pathwatch_incident_status{{{INC}}}", "{{incident}}")],
          0, 15, 24, 6, extra={"defaults": {"mappings": STATUS_MAPPINGS, "color": {"mode": "thresholds"}}},
          th=thresholds((None, "green"), (1, "red"), (2, "gray"))),
    panel("timeseries", "Criteria met over time", [target(f"pathwatch_incident_criterion_met{{{INC}}}", "{{incident}} {{criterion}}")],
          0, 21, 24, 8, extra={"defaults": {"min": 0, "max": 1}}),
], [var_query("incident", "label_values(pathwatch_incident_status, incident)")])

database = dashboard("pathwatch-database", "pathwatch / Database", [
    panel("timeseries", "Time to a usable session (p50, p95, p99)", [
        target(f'histogram_quantile(0.5, sum by (probe, le) (rate(pathwatch_db_connect_seconds_bucket{{{PRB}}}[$__rate_interval])))', "p50 {{probe}}", "A"),
        target(f'histogram_quantile(0.95, sum by (probe, le) (rate(pathwatch_db_connect_seconds_bucket{{{PRB}}}[$__rate_interval])))', "p95 {{probe}}", "B"),
        target(f'histogram_quantile(0.99, sum by (probe, le) (rate(pathwatch_db_connect_seconds_bucket{{{PRB}}}[$__rate_interval])))', "p99 {{probe}}", "C")],
          0, 0, 16, 9, unit="s", th=thresholds((None, "green"), (DB_CONNECT_MAX, "red")), show_threshold=True,
          description=f"Criterion: under {DB_CONNECT_MAX} s (the red line). Hangs count at the timeout."),
    panel("stat", "Last connect", [target(f'pathwatch_probe_duration_seconds{{kind="postgres",{PRB}}}', "{{probe}}", instant=True)],
          16, 0, 8, 9, unit="s", th=thresholds((None, "green"), (DB_CONNECT_MAX, "red"))),
    panel("heatmap", "Connect time distribution", [
        target(f'sum by (le) (increase(pathwatch_db_connect_seconds_bucket{{{PRB}}}[$__rate_interval]))', "{{le}}", fmt="heatmap")],
          0, 9, 12, 9, extra={"options": {"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1}}),
    panel("timeseries", "Phases of the last run", [
        target(f'pathwatch_probe_phase_duration_seconds{{kind="postgres",{PRB}}}', "{{probe}} {{phase}}")],
          12, 9, 12, 9, unit="s", extra={"defaults": {"custom": {"stacking": {"mode": "normal"}, "drawStyle": "bars", "fillOpacity": 80}}}),
    panel("timeseries", "Failures by reason", [
        target(f'sum by (probe, reason) (increase(pathwatch_probe_runs_total{{kind=~"postgres|tcp",result="failure",{PRB}}}[$__rate_interval]))', "{{probe}} {{reason}}")],
          0, 18, 12, 8, extra={"defaults": {"custom": {"drawStyle": "bars", "fillOpacity": 80}}}),
    panel("timeseries", "Probe success", [
        target(f'pathwatch_probe_success{{kind=~"postgres|tcp|redis",{PRB}}}', "{{probe}}")],
          12, 18, 12, 8, extra={"defaults": {"min": 0, "max": 1}}),
], [var_query("probe", 'label_values(pathwatch_probe_success{kind=~"postgres|tcp|redis"}, probe)')])

golden = dashboard("pathwatch-golden-path", "pathwatch / Golden path", [
    panel("timeseries", "Login to final answer", [
        target(f'histogram_quantile(0.95, sum by (probe, le) (rate(pathwatch_golden_path_seconds_bucket{{{PRB}}}[$__rate_interval])))', "p95 {{probe}}", "A"),
        target(f'pathwatch_probe_duration_seconds{{kind="golden_path",{PRB}}}', "last {{probe}}", "B")],
          0, 0, 16, 9, unit="s", th=thresholds((None, "green"), (GOLDEN_MAX, "red")), show_threshold=True,
          description=f"Criterion: under {GOLDEN_MAX} s (the red line)."),
    panel("stat", "Events delivered / expected", [
        target(f'pathwatch_golden_path_events_delivered{{{PRB}}}', "delivered {{probe}}", "A", instant=True),
        target(f'pathwatch_golden_path_events_expected{{{PRB}}}', "expected {{probe}}", "B", instant=True)],
          16, 0, 8, 9),
    panel("bargauge", "Time from message to each event (last run)", [
        target(f'pathwatch_golden_path_event_seconds{{{PRB}}}', "{{event}}", instant=True)],
          0, 9, 12, 9, unit="s", extra={"options": {"orientation": "horizontal", "displayMode": "gradient"}}),
    panel("timeseries", "Steps of the last run", [
        target(f'pathwatch_probe_phase_duration_seconds{{kind="golden_path",{PRB}}}', "{{phase}}")],
          12, 9, 12, 9, unit="s", extra={"defaults": {"custom": {"stacking": {"mode": "normal"}, "drawStyle": "bars", "fillOpacity": 80}}}),
    panel("timeseries", "Failures by step and reason", [
        target(f'sum by (step, reason) (increase(pathwatch_golden_path_failures_total{{{PRB}}}[$__rate_interval]))', "{{step}} {{reason}}")],
          0, 18, 12, 8, extra={"defaults": {"custom": {"drawStyle": "bars", "fillOpacity": 80}}}),
    panel("stat", "Crosstalk, duplicate and unexpected events (1 h)", [
        target(f'sum(increase(pathwatch_golden_path_crosstalk_events_total{{{PRB}}}[1h]))', "crosstalk", "A", instant=True),
        target(f'sum(increase(pathwatch_golden_path_duplicate_events_total{{{PRB}}}[1h]))', "duplicates", "B", instant=True),
        target(f'sum(increase(pathwatch_golden_path_unexpected_events_total{{{PRB}}}[1h]))', "unexpected", "C", instant=True)],
          12, 18, 12, 8, th=thresholds((None, "green"), (1, "red"))),
], [var_query("probe", 'label_values(pathwatch_probe_success{kind="golden_path"}, probe)')])

startup = dashboard("pathwatch-startup", "pathwatch / Startup and health", [
    panel("timeseries", "Startup time", [target(f'pathwatch_startup_seconds{{{PRB}}}', "{{probe}}")],
          0, 0, 16, 9, unit="s", th=thresholds((None, "green"), (STARTUP_MAX, "red")), show_threshold=True,
          description=f"Criterion: under {STARTUP_MAX} s (the red line)."),
    panel("state-timeline", "Starting", [target(f'pathwatch_startup_in_progress{{{PRB}}}', "{{probe}}")],
          16, 0, 8, 9, extra={"defaults": {"mappings": [{"type": "value", "options": {
              "0": {"text": "up", "color": "green"}, "1": {"text": "starting", "color": "orange"}}}]}}),
    panel("timeseries", "Unhealthy answers while starting", [
        target(f'sum by (probe) (increase(pathwatch_startup_unhealthy_answers_total{{{PRB}}}[$__rate_interval]))', "{{probe}}")],
          0, 9, 12, 8),
    panel("timeseries", "HTTP status codes", [target('pathwatch_http_status_code', "{{probe}}")],
          12, 9, 12, 8, th=thresholds((None, "green"), (400, "orange"), (500, "red"))),
    panel("timeseries", "HTTP checks: time by phase", [
        target('pathwatch_probe_phase_duration_seconds{kind="http"}', "{{probe}} {{phase}}")],
          0, 17, 24, 8, unit="s"),
], [var_query("probe", 'label_values(pathwatch_probe_success{kind="startup"}, probe)')])

infra = dashboard("pathwatch-infrastructure", "pathwatch / Infrastructure", [
    panel("state-timeline", "GCP resource state", [target('pathwatch_gcp_resource_state == 1', "{{probe}}: {{state}}")],
          0, 0, 24, 7, description="The state the API reports: VPC connector READY and Cloud SQL RUNNABLE are healthy."),
    panel("table", "Cloud Run expectations (configuration drift)", [
        target('pathwatch_gcp_expectation_met', instant=True, fmt="table")],
          0, 7, 12, 8, extra={"transformations": [{"id": "organize", "options": {
              "excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True},
              "renameByName": {"Value": "met"}}}],
              "fieldConfig": {"defaults": {}, "overrides": [{"matcher": {"id": "byName", "options": "met"}, "properties": [
                  {"id": "mappings", "value": MET_MAPPINGS}, {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]}}),
    panel("timeseries", "VPC connector instances", [
        target('pathwatch_gcp_vpc_connector_instances', "{{probe}} {{bound}}")], 12, 7, 12, 8),
    panel("timeseries", "Failure lines in the service's logs", [
        target('sum by (probe, pattern) (rate(pathwatch_log_pattern_matches_total[$__rate_interval]))', "{{pattern}}", "A"),
        target('pathwatch_log_pattern_window_matches', "{{pattern}} (window)", "B")],
          0, 15, 12, 8),
    panel("timeseries", "Data tiers up (Redis, PostgreSQL, ClickHouse, HTTP)", [
        target('pathwatch_probe_success{kind=~"redis|postgres|http"}', "{{probe}}")],
          12, 15, 12, 8, extra={"defaults": {"min": 0, "max": 1}}),
], [])

import sys
# `generate.py [OUT_DIR]`: the tests write to a temp dir and compare with the committed files.
here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
for d in (incidents, database, golden, startup, infra):
    with open(os.path.join(here, d["uid"].removeprefix("pathwatch-") + ".json"), "w") as f:
        json.dump(d, f, indent=2)
        f.write("\n")
