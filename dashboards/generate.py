#!/usr/bin/env python3
"""Generates the Grafana dashboards in this folder with Grafana's own builder library,
grafana-foundation-sdk (the build for Grafana 11.6, pinned in SDK_PIN). Edit this file, never the
JSON; CI (.ci/lint-deploy) fails when a committed dashboard differs from what this writes.

  python3 dashboards/generate.py            write dashboards/*.json
  python3 dashboards/generate.py --check    compare instead; exit 1 naming each stale file
  python3 dashboards/generate.py --out DIR  write elsewhere

Install the SDK with pip (a venv, pyenv or `pip install --user`; Debian has no package of it):
  python3 -m pip install 'grafana-foundation-sdk==1769699379!11.6.0'

One source keeps the five dashboards consistent: the same datasource variable, the same
probe/incident variables, stable uids, and thresholds equal to the bundled criteria (DB connect
10 s, startup 30 s, golden path 60 s). One function per dashboard; add panels there.
"""
import argparse, glob, importlib.metadata, os, sys

SDK_PIN = "1769699379!11.6.0"
try:
    from grafana_foundation_sdk.builders import (bargauge, dashboard as dash, heatmap, prometheus,
                                                 stat, statetimeline, table, timeseries)
    from grafana_foundation_sdk.builders.common import (GraphThresholdsStyleConfig, ReduceDataOptions,
                                                        StackingConfig)
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models.dashboard import (
        DataSourceRef, DataTransformerConfig, DynamicConfigValue, DashboardCursorSync,
        DashboardLinkType, FieldColorModeId, GridPos, Threshold, ThresholdsMode, ValueMap,
        ValueMappingResult, VariableRefresh, VariableSort)
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
except ImportError:
    sys.exit(f"generate: grafana-foundation-sdk is missing; run: "
             f"python3 -m pip install 'grafana-foundation-sdk=={SDK_PIN}'")
# Another build writes other JSON (defaults, schemaVersion): only the pinned one may write or check.
if (found := importlib.metadata.version("grafana-foundation-sdk")) != SDK_PIN:
    sys.exit(f"generate: grafana-foundation-sdk {found} is installed, this needs {SDK_PIN}; run: "
             f"python3 -m pip install 'grafana-foundation-sdk=={SDK_PIN}'")

HERE = os.path.dirname(os.path.abspath(__file__))
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
# The bundled criteria (examples/staging.yaml, alerts/pathwatch.rules.yml).
CONNECTIONS_WARN = 0.8  # alerts/pathwatch.rules.yml, PathwatchDatabaseConnectionsSaturated
DB_CONNECT_MAX, STARTUP_MAX, GOLDEN_MAX = 10, 30, 60
INC = 'incident=~"$incident"'
PRB = 'probe=~"$probe"'


# --- Helpers for the patterns every dashboard repeats ----------------------------------------

def q(expr, legend="", ref="A", instant=False, fmt=PromQueryFormat.TIME_SERIES):
    """A PromQL target on the dashboard's datasource variable."""
    t = (prometheus.Dataquery().datasource(DS).expr(expr).legend_format(legend).ref_id(ref)
         .format(fmt))
    return t.instant() if instant else t


def steps(*pairs):
    """Absolute thresholds from (value, color) pairs; the first value is None (the base)."""
    return (dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=v, color=c) for v, c in pairs]))


def value_map(*entries):
    """A value mapping from (value, text, color) entries, in display order."""
    return [ValueMap(options={str(v): ValueMappingResult(text=t, color=c, index=i)
                              for i, (v, t, c) in enumerate(entries)})]


def last_value(p):
    """Single-value panels (stat, bar gauge) show each series' last value, Grafana's default made
    explicit: the SDK writes an empty calcs list otherwise."""
    return p.reduce_options(ReduceDataOptions().values(False).calcs(["lastNotNull"]))


def panel(builder, title, pos, *targets, unit=None, description=""):
    """The parts of every panel: title, description, datasource, position (x, y, w, h), queries."""
    x, y, w, h = pos
    p = (builder.title(title).description(description).datasource(DS)
         .grid_pos(GridPos(x=x, y=y, w=w, h=h)).targets(list(targets)))
    return p.unit(unit) if unit else p


def criterion_line(p, bound):
    """A red line and area from the criterion's bound up (time series panels)."""
    return (p.thresholds(steps((None, "green"), (bound, "red")))
            .thresholds_style(GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.LINE_AND_AREA)))


def bars(p, stacked=False):
    """Bars for per-run values and counts per interval; `stacked` adds up phases to the total."""
    p = p.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    return p.stacking(StackingConfig().mode(common.StackingMode.NORMAL)) if stacked else p


def ratio(p):
    """A 0..1 axis: success, criteria met."""
    return p.min(0).max(1)


def status_colors(p):
    """An incident's status as words and colors: RESOLVED green, PRESENT red, UNKNOWN gray."""
    return (p.mappings(STATUS).color_scheme(dash.FieldColor().mode(FieldColorModeId.THRESHOLDS))
            .thresholds(steps((None, "green"), (1, "red"), (2, "gray"))))


def met_table(p, rename, merge=False):
    """A table of instant series (label columns, Time and job hidden) whose `met` column reads
    PASS/FAIL on a colored cell; `rename` names the value columns, `merge` joins several queries."""
    organize = DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True},
        "renameByName": rename})
    merged = [DataTransformerConfig(id_val="merge", options={})] if merge else []
    return (p.transformations(merged + [organize])
            .override_by_name("met", [DynamicConfigValue(id_val="mappings", value=MET),
                                      DynamicConfigValue(id_val="custom.cellOptions",
                                                         value={"type": "color-background"})]))


def query_variable(name, expr):
    """A probe/incident picker: multi-select with All (`.*`), refreshed with the time range."""
    return (dash.QueryVariable(name).label(name).datasource(DS)
            .query({"query": expr, "refId": "var"}).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True).multi(True).all_value(".*").sort(VariableSort.ALPHABETICAL_ASC))


def dashboard(uid, title, variables, panels):
    d = (dash.Dashboard(title).uid(uid).tags(["pathwatch"]).editable().timezone("browser")
         .refresh("30s").time("now-6h", "now").tooltip(DashboardCursorSync.CROSSHAIR).version(1)
         .annotations([])
         .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
         .link(dash.DashboardLink("pathwatch").type(DashboardLinkType.DASHBOARDS)
               .tags(["pathwatch"]).as_dropdown(True)))
    for v in variables:
        d = d.with_variable(v)
    for i, p in enumerate(panels, 1):
        d = d.with_panel(p.id(i))
    return d.build()


STATUS = value_map((0, "RESOLVED", "green"), (1, "PRESENT", "red"), (2, "UNKNOWN", "gray"))
# pathwatch_grpc_health_status: grpc.health.v1's ServingStatus.
SERVING = value_map((0, "UNKNOWN", "gray"), (1, "SERVING", "green"), (2, "NOT_SERVING", "red"),
                    (3, "SERVICE_UNKNOWN", "orange"))
# pathwatch_dns_rcode: the response codes a resolver answers most.
RCODES = value_map((0, "NOERROR", "green"), (2, "SERVFAIL", "red"), (3, "NXDOMAIN", "red"),
                   (5, "REFUSED", "red"))
MET = value_map((0, "FAIL", "red"), (1, "PASS", "green"))


# --- The dashboards ---------------------------------------------------------------------------

def incidents():
    return dashboard("pathwatch-incidents", "pathwatch / Incidents", [
        query_variable("incident", "label_values(pathwatch_incident_status, incident)"),
    ], [
        status_colors(panel(last_value(stat.Panel()), "Incident status", (0, 0, 8, 6),
                            q(f"pathwatch_incident_status{{{INC}}}", "{{incident}}", instant=True),
                            description="0 resolved, 1 present, 2 unknown (no or stale data)."))
        .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE),
        panel(last_value(stat.Panel()), "Since last status change", (8, 0, 8, 6),
              q(f"time() - pathwatch_incident_last_change_timestamp_seconds{{{INC}}}", "{{incident}}",
                instant=True), unit="s"),
        panel(last_value(stat.Panel()), "Status changes (30 min)", (16, 0, 8, 6),
              q(f"increase(pathwatch_incident_status_changes_total{{{INC}}}[30m])", "{{incident}}",
                instant=True))
        .thresholds(steps((None, "green"), (1, "orange"))),
        met_table(panel(table.Panel(), "Resolution criteria: value against bound", (0, 6, 24, 9),
                        q(f"pathwatch_incident_criterion_met{{{INC}}}", ref="A", instant=True,
                          fmt=PromQueryFormat.TABLE),
                        q(f"pathwatch_incident_criterion_value{{{INC}}}", ref="B", instant=True,
                          fmt=PromQueryFormat.TABLE),
                        q(f"pathwatch_incident_criterion_threshold{{{INC}}}", ref="C", instant=True,
                          fmt=PromQueryFormat.TABLE)),
                  {"Value #A": "met", "Value #B": "value", "Value #C": "bound"}, merge=True),
        status_colors(panel(statetimeline.Panel(), "Status over time", (0, 15, 24, 6),
                            q(f"pathwatch_incident_status{{{INC}}}", "{{incident}}"))),
        ratio(panel(timeseries.Panel(), "Criteria met over time", (0, 21, 24, 8),
                    q(f"pathwatch_incident_criterion_met{{{INC}}}", "{{incident}} {{criterion}}"))),
    ])


def database():
    def connect_quantile(quantile, ref):
        return q(f"histogram_quantile({quantile}, sum by (probe, le) "
                 f"(rate(pathwatch_db_connect_seconds_bucket{{{PRB}}}[$__rate_interval])))",
                 f"p{round(quantile * 100)} {{{{probe}}}}", ref)

    return dashboard("pathwatch-database", "pathwatch / Database", [
        query_variable("probe", 'label_values(pathwatch_probe_success{kind=~"postgres|tcp|redis"}, probe)'),
    ], [
        criterion_line(panel(timeseries.Panel(), "Time to a usable session (p50, p95, p99)",
                             (0, 0, 16, 9), connect_quantile(0.5, "A"),
                             connect_quantile(0.95, "B"), connect_quantile(0.99, "C"), unit="s",
                             description=f"Criterion: under {DB_CONNECT_MAX} s (the red line). "
                                         "Hangs count at the timeout."), DB_CONNECT_MAX),
        panel(last_value(stat.Panel()), "Last connect", (16, 0, 8, 9),
              q(f'pathwatch_probe_duration_seconds{{kind="postgres",{PRB}}}', "{{probe}}",
                instant=True), unit="s")
        .thresholds(steps((None, "green"), (DB_CONNECT_MAX, "red"))),
        panel(heatmap.Panel(), "Connect time distribution", (0, 9, 12, 9),
              q(f"sum by (le) (increase(pathwatch_db_connect_seconds_bucket{{{PRB}}}[$__rate_interval]))",
                "{{le}}", fmt=PromQueryFormat.HEATMAP))
        .calculate(False).y_axis(heatmap.YAxisConfig().unit("s")).cell_gap(1),
        bars(panel(timeseries.Panel(), "Phases of the last run", (12, 9, 12, 9),
                   q(f'pathwatch_probe_phase_duration_seconds{{kind="postgres",{PRB}}}',
                     "{{probe}} {{phase}}"), unit="s"), stacked=True),
        bars(panel(timeseries.Panel(), "Failures by reason", (0, 18, 12, 8),
                   q("sum by (probe, reason) (increase(pathwatch_probe_runs_total"
                     f'{{kind=~"postgres|tcp",result="failure",{PRB}}}[$__rate_interval]))',
                     "{{probe}} {{reason}}"))),
        ratio(panel(timeseries.Panel(), "Probe success", (12, 18, 12, 8),
                    q(f'pathwatch_probe_success{{kind=~"postgres|tcp|redis",{PRB}}}', "{{probe}}"))),
        ratio(criterion_line(panel(timeseries.Panel(), "Connection slots in use", (0, 26, 12, 8),
                                   q(f"pathwatch_db_connections_used_ratio{{{PRB}}}", "{{probe}}"),
                                   unit="percentunit",
                                   description="Client sessions over the slots an ordinary role "
                                               "can take (max_connections - reserved): the alert "
                                               "warns at 80 % (the red line); at 100 % connects "
                                               "fail. Probes with connections: true."),
                             CONNECTIONS_WARN)),
        bars(panel(timeseries.Panel(), "Sessions by database and state", (12, 26, 12, 8),
                   q(f"pathwatch_db_connections{{{PRB}}}", "{{database}} {{state}}")),
             stacked=True),
    ])


def golden_path():
    def events(metric, legend, ref):
        return q(f"sum(increase(pathwatch_golden_path_{metric}_events_total{{{PRB}}}[1h]))", legend,
                 ref, instant=True)

    return dashboard("pathwatch-golden-path", "pathwatch / Golden path", [
        query_variable("probe", 'label_values(pathwatch_probe_success{kind="golden_path"}, probe)'),
    ], [
        criterion_line(panel(timeseries.Panel(), "Login to final answer", (0, 0, 16, 9),
                             q("histogram_quantile(0.95, sum by (probe, le) (rate("
                               f"pathwatch_golden_path_seconds_bucket{{{PRB}}}[$__rate_interval])))",
                               "p95 {{probe}}", "A"),
                             q(f'pathwatch_probe_duration_seconds{{kind="golden_path",{PRB}}}',
                               "last {{probe}}", "B"), unit="s",
                             description=f"Criterion: under {GOLDEN_MAX} s (the red line)."),
                       GOLDEN_MAX),
        panel(last_value(stat.Panel()), "Events delivered / expected", (16, 0, 8, 9),
              q(f"pathwatch_golden_path_events_delivered{{{PRB}}}", "delivered {{probe}}", "A",
                instant=True),
              q(f"pathwatch_golden_path_events_expected{{{PRB}}}", "expected {{probe}}", "B",
                instant=True)),
        panel(last_value(bargauge.Panel()), "Time from message to each event (last run)", (0, 9, 12, 9),
              q(f"pathwatch_golden_path_event_seconds{{{PRB}}}", "{{event}}", instant=True), unit="s")
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT),
        bars(panel(timeseries.Panel(), "Steps of the last run", (12, 9, 12, 9),
                   q(f'pathwatch_probe_phase_duration_seconds{{kind="golden_path",{PRB}}}',
                     "{{phase}}"), unit="s"), stacked=True),
        bars(panel(timeseries.Panel(), "Failures by step and reason", (0, 18, 12, 8),
                   q("sum by (step, reason) (increase("
                     f"pathwatch_golden_path_failures_total{{{PRB}}}[$__rate_interval]))",
                     "{{step}} {{reason}}"))),
        panel(last_value(stat.Panel()), "Crosstalk, duplicate and unexpected events (1 h)", (12, 18, 12, 8),
              events("crosstalk", "crosstalk", "A"), events("duplicate", "duplicates", "B"),
              events("unexpected", "unexpected", "C"))
        .thresholds(steps((None, "green"), (1, "red"))),
    ])


def startup():
    return dashboard("pathwatch-startup", "pathwatch / Startup and health", [
        query_variable("probe", 'label_values(pathwatch_probe_success{kind="startup"}, probe)'),
    ], [
        criterion_line(panel(timeseries.Panel(), "Startup time", (0, 0, 16, 9),
                             q(f"pathwatch_startup_seconds{{{PRB}}}", "{{probe}}"), unit="s",
                             description=f"Criterion: under {STARTUP_MAX} s (the red line)."),
                       STARTUP_MAX),
        panel(statetimeline.Panel(), "Starting", (16, 0, 8, 9),
              q(f"pathwatch_startup_in_progress{{{PRB}}}", "{{probe}}"))
        .mappings(value_map((0, "up", "green"), (1, "starting", "orange"))),
        panel(timeseries.Panel(), "Unhealthy answers while starting", (0, 9, 12, 8),
              q("sum by (probe) (increase("
                f"pathwatch_startup_unhealthy_answers_total{{{PRB}}}[$__rate_interval]))", "{{probe}}")),
        panel(timeseries.Panel(), "HTTP status codes", (12, 9, 12, 8),
              q("pathwatch_http_status_code", "{{probe}}"))
        .thresholds(steps((None, "green"), (400, "orange"), (500, "red"))),
        panel(timeseries.Panel(), "HTTP checks: time by phase", (0, 17, 24, 8),
              q('pathwatch_probe_phase_duration_seconds{kind="http"}', "{{probe}} {{phase}}"),
              unit="s"),
        panel(statetimeline.Panel(), "gRPC serving status", (0, 30, 24, 6),
              q("pathwatch_grpc_health_status", "{{probe}}"),
              description="What each grpc probe's grpc.health.v1 Check answered; a gap is a run "
                          "that got no status (refused, a failed call).")
        .mappings(SERVING),
        panel(last_value(stat.Panel()), "Last container exit code", (0, 25, 24, 5),
              q('pathwatch_log_pattern_last_value{pattern="container_exit"}', "{{probe}}"),
              description="The code of the last 'Container called exit(N).' line in the service's "
                          "logs (a logs probe's container_exit pattern): 3 is the incident's "
                          "'Application startup failed. Exiting.'")
        .thresholds(steps((None, "green"), (1, "red"))),
    ])


def infrastructure():
    return dashboard("pathwatch-infrastructure", "pathwatch / Infrastructure", [], [
        panel(statetimeline.Panel(), "GCP resource state", (0, 0, 24, 7),
              q("pathwatch_gcp_resource_state == 1", "{{probe}}: {{state}}"),
              description="The state the API reports: VPC connector READY and Cloud SQL RUNNABLE "
                          "are healthy."),
        met_table(panel(table.Panel(), "GCP expectations (Cloud Run drift, connector sizing)", (0, 7, 12, 8),
                        q("pathwatch_gcp_expectation_met", instant=True, fmt=PromQueryFormat.TABLE)),
                  {"Value": "met"}),
        panel(timeseries.Panel(), "VPC connector instances", (12, 7, 12, 8),
              q("pathwatch_gcp_vpc_connector_instances", "{{probe}} {{bound}}")),
        panel(timeseries.Panel(), "Failure lines in the service's logs", (0, 15, 12, 8),
              q("sum by (probe, pattern) (rate(pathwatch_log_pattern_matches_total[$__rate_interval]))",
                "{{pattern}}", "A"),
              q("pathwatch_log_pattern_window_matches", "{{pattern}} (window)", "B")),
        ratio(panel(timeseries.Panel(), "Data tiers up (Redis, PostgreSQL, ClickHouse, HTTP)",
                    (12, 15, 12, 8),
                    q('pathwatch_probe_success{kind=~"redis|postgres|http"}', "{{probe}}"))),
        panel(last_value(stat.Panel()), "TLS certificate: days left", (0, 23, 24, 5),
              q("(pathwatch_tls_cert_expiry_timestamp_seconds - time()) / 86400", "{{probe}}"),
              description="Days until the leaf certificate a tls_cert probe was last shown ends "
                          "(PathwatchTlsCertExpiringSoon pages under 14).")
        .thresholds(steps((None, "red"), (14, "orange"), (30, "green"))),
        panel(timeseries.Panel(), "DNS: time to an answer", (0, 28, 12, 8),
              q('pathwatch_probe_duration_seconds{kind="dns"}', "{{probe}}"), unit="s",
              description="Query sent to answer read, the TCP retry of a truncated answer "
                          "included (dns probes)."),
        panel(statetimeline.Panel(), "DNS response code", (12, 28, 12, 8),
              q("pathwatch_dns_rcode", "{{probe}}"),
              description="The last answer's rcode; other codes show as their number.")
        .mappings(RCODES),
        panel(timeseries.Panel(), "ICMP round trip", (0, 36, 12, 8),
              q('pathwatch_probe_phase_duration_seconds{kind="icmp",phase="request"}', "{{probe}}"),
              unit="s", description="Echo request to reply (icmp probes)."),
        panel(last_value(stat.Panel()), "ICMP reply TTL", (12, 36, 12, 8),
              q("pathwatch_icmp_reply_ttl", "{{probe}}", instant=True),
              description="TTL (IPv6: hop limit) of the last reply as it arrived: the sender's "
                          "initial TTL (64 on Linux) minus the hops it crossed."),
    ])


DASHBOARDS = (incidents, database, golden_path, startup, infrastructure)


def files():
    """{file name: JSON text} for every dashboard; the name is the uid without `pathwatch-`."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    out = {}
    for make in DASHBOARDS:
        d = make()
        out[d.uid.removeprefix("pathwatch-") + ".json"] = encoder.encode(d) + "\n"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=HERE, help="directory to write (or check) the JSON files in")
    ap.add_argument("--check", action="store_true", help="fail (exit 1) when a file differs")
    args = ap.parse_args(argv)
    wanted = files()
    present = {os.path.basename(p) for p in glob.glob(os.path.join(args.out, "*.json"))}
    if args.check:
        stale = [f"{name}: stray (not generated)" for name in sorted(present - set(wanted))]
        for name, text in wanted.items():
            path = os.path.join(args.out, name)
            if not os.path.exists(path):
                stale.append(f"{name}: missing")
            elif open(path).read() != text:
                stale.append(f"{name}: differs from the generator")
        for s in stale:
            print(f"dashboards/generate.py --check: {s}", file=sys.stderr)
        if stale:
            print("run: python3 dashboards/generate.py", file=sys.stderr)
            return 1
        return 0
    os.makedirs(args.out, exist_ok=True)
    for name, text in wanted.items():
        with open(os.path.join(args.out, name), "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
