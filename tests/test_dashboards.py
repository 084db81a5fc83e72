"""The Grafana dashboard and the Prometheus alerts in deploy/ say what the service exports.

- every PromQL expression (alert rules, panel targets, the template variables'
  ``label_values`` selectors) parses with promql_parser, Grafana's variables
  substituted first;
- every metric those expressions select is a sample name that /metrics of a
  running service really exports (Prometheus' own series, listed in BUILTINS,
  excepted);
- the rule file and the dashboard have the structure Prometheus and Grafana
  need, checked strictly here (no schema package is available offline), and
  the dashboard has the panels operators were promised.

Each checker returns its findings, so the tests also show that it finds a
misspelled metric, a broken expression or a broken layout.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from servers import Service, publish, wait_all_acked, wait_until
from test_operate import health_addr, http_get
from test_service import base_args

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "events-audit.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"

#: Series Prometheus makes itself for every target: not on /metrics.
BUILTINS = frozenset({"up"})
#: Values for Grafana's variables: its own (``$__rate_interval`` ...) and the
#: dashboard's template variables (checked to be defined, below).
GRAFANA_BUILTIN_VALUES = {"__rate_interval": "1m", "__interval": "30s", "__range": "6h"}
TEMPLATE_VALUES = {"job": "events-audit", "instance": "127.0.0.1:3000", "datasource": "prom"}
SEVERITIES = frozenset({"critical", "warning"})
PANEL_TYPES = frozenset({"timeseries", "stat", "state-timeline", "table", "gauge", "bargauge"})
GRID_COLUMNS = 24
DATASOURCE_REFS = frozenset({"${datasource}", "$datasource"})

STRUCTURED = b'{"id":"e-%d","type":"t","source":"s","timestamp":"2025-01-11T10:30:00Z"}'

# Prometheus' duration syntax (model.ParseDuration): units in this order, each once.
DURATION = re.compile(
    r"^(?:0|(?=\d)(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?)$"
)
ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+)|\[\[(\w+)(?::\w+)?\]\])")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[A-Za-z_]\w*)\)$")


# -- the files -----------------------------------------------------------------


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def load_rules() -> dict:
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Grafana's variables replaced by valid values; an unknown one is an error."""

    def value(match: re.Match) -> str:
        name = next(group for group in match.groups() if group)
        if name not in variables:
            raise KeyError(f"unknown Grafana variable ${name}")
        return variables[name]

    result = VARIABLE.sub(value, expr)
    if "$" in result:
        raise KeyError(f"a '$' left after substitution: {result!r}")
    return result


def dashboard_variables(dashboard: dict) -> dict[str, str]:
    defined = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    return {
        **GRAFANA_BUILTIN_VALUES,
        **{name: TEMPLATE_VALUES.get(name, "x") for name in defined},
    }


def rule_expressions(rules: dict) -> list[tuple[str, str]]:
    return [
        (f"alert {rule.get('alert')}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every label_values variable,
    Grafana's variables substituted."""
    variables = dashboard_variables(dashboard)
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            where = f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}"
            found.append((where, substitute(target["expr"], variables)))
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = LABEL_VALUES.match(text.strip())
        assert match, f"variable {variable['name']}: not label_values(selector, label): {text!r}"
        found.append((f"variable {variable['name']}", substitute(match["selector"], variables)))
    return found


# -- PromQL ----------------------------------------------------------------------


def nodes(expr: promql_parser.Expr) -> list[promql_parser.Expr]:
    seen: list[promql_parser.Expr] = []
    promql_parser.walk(expr, lambda node: seen.append(node))
    return seen


def selector_name(selector: promql_parser.VectorSelector) -> str:
    """The metric a selector names: its name or an equality __name__ matcher."""
    if selector.name:
        return selector.name
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return matcher.value
    raise ValueError(f"selector {selector} names no single metric")


def names_in(tree: promql_parser.Expr) -> set[str]:
    """Every metric a parsed expression selects."""
    return {
        selector_name(node)
        for node in nodes(tree)
        if isinstance(node, promql_parser.VectorSelector)
    }


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects, from the parsed AST."""
    return names_in(promql_parser.parse(expr))


def unknown_metrics(expressions: list[tuple[str, str]], exported: set[str]) -> list[str]:
    return sorted(
        f"{where}: {name}"
        for where, expr in expressions
        for name in metric_names(expr)
        if name not in exported and name not in BUILTINS
    )


def calls(tree: promql_parser.Expr, *functions: str) -> list[promql_parser.Call]:
    return [
        node
        for node in nodes(tree)
        if isinstance(node, promql_parser.Call) and node.func.name in functions
    ]


def aggregations(tree: promql_parser.Expr) -> list[promql_parser.AggregateExpr]:
    return [node for node in nodes(tree) if isinstance(node, promql_parser.AggregateExpr)]


def keeps(tree: promql_parser.Expr, label: str) -> bool:
    """No aggregation in the expression drops ``label``."""
    for aggregation in aggregations(tree):
        modifier = aggregation.modifier
        if modifier is None:
            return False
        kept = label in modifier.labels
        if (modifier.type == promql_parser.AggModifierType.By) != kept:
            return False
    return True


def rated(tree: promql_parser.Expr, metric: str) -> bool:
    """``metric`` is inside rate() / irate() / increase()."""
    return any(metric in names_in(call) for call in calls(tree, "rate", "irate", "increase"))


def quantiles(tree: promql_parser.Expr, metric: str) -> set[float]:
    """The quantiles of ``histogram_quantile`` over ``metric`` aggregated by le."""
    found = set()
    for call in calls(tree, "histogram_quantile"):
        level, inner = call.args
        if not isinstance(level, promql_parser.NumberLiteral):
            continue
        if metric in names_in(inner) and keeps(inner, "le") and rated(inner, metric):
            found.add(level.val)
    return found


# -- the rule file ---------------------------------------------------------------


def rule_problems(rules) -> list[str]:
    problems: list[str] = []
    if not isinstance(rules, dict) or set(rules) != {"groups"}:
        return ["the file must be a mapping with only 'groups'"]
    groups = rules["groups"]
    if not isinstance(groups, list) or not groups:
        return ["'groups' must be a non-empty list"]
    alerts: list[str] = []
    group_names: list[str] = []
    for g, group in enumerate(groups):
        if not isinstance(group, dict) or not set(group) <= {"name", "interval", "rules"}:
            problems.append(f"group {g}: only name, interval, rules")
            continue
        name = group.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"group {g}: no name")
        group_names.append(name)
        if "interval" in group and not _duration(group["interval"], zero=False):
            problems.append(f"group {name}: bad interval {group['interval']!r}")
        if not isinstance(group.get("rules"), list) or not group["rules"]:
            problems.append(f"group {name}: no rules")
            continue
        for r, rule in enumerate(group["rules"]):
            problems += [f"group {name} rule {r}: {p}" for p in _alert_problems(rule)]
            if isinstance(rule, dict):
                alerts.append(rule.get("alert"))
    for kind, names in (("alert", alerts), ("group", group_names)):
        duplicates = sorted({n for n in names if names.count(n) > 1}, key=str)
        if duplicates:
            problems.append(f"duplicate {kind} names: {duplicates}")
    return problems


def _duration(value, zero: bool) -> bool:
    """A Prometheus duration string (``zero``: 0 allowed, as ``for: 0m``)."""
    if not isinstance(value, str) or not DURATION.match(value):
        return False
    return zero or any(ch in "123456789" for ch in value)


def _alert_problems(rule) -> list[str]:
    if not isinstance(rule, dict):
        return ["not a mapping"]
    problems = []
    extra = set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    if extra:
        problems.append(f"unexpected keys {sorted(extra)} (only alerting rules here)")
    if not isinstance(rule.get("alert"), str) or not ALERT_NAME.match(rule["alert"]):
        problems.append(f"bad or missing alert name {rule.get('alert')!r}")
    expr = rule.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        problems.append("no expr")
    elif "$" in expr:
        problems.append("expr contains '$'")
    else:
        try:
            tree = promql_parser.parse(expr)
        except ValueError as exc:
            problems.append(f"expr does not parse: {exc}")
        else:
            if isinstance(tree, (promql_parser.NumberLiteral, promql_parser.StringLiteral)):
                problems.append("expr is not a vector")
    if "for" not in rule or not _duration(rule["for"], zero=True):
        problems.append(f"bad or missing for: {rule.get('for')!r}")
    labels = rule.get("labels")
    if not isinstance(labels, dict) or labels.get("severity") not in SEVERITIES:
        problems.append(f"labels.severity must be one of {sorted(SEVERITIES)}")
    elif not all(isinstance(v, str) for v in labels.values()):
        problems.append("label values must be strings")
    annotations = rule.get("annotations")
    if not isinstance(annotations, dict):
        problems.append("no annotations")
    else:
        for key in ("summary", "description"):
            text = annotations.get(key)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"no annotations.{key}")
            elif text.count("{{") != text.count("}}"):
                problems.append(f"annotations.{key}: unbalanced template braces")
    return problems


# -- the dashboard ---------------------------------------------------------------


def dashboard_problems(dashboard) -> list[str]:
    problems: list[str] = []
    if not isinstance(dashboard, dict):
        return ["not a JSON object"]
    for key in ("uid", "title", "refresh"):
        if not isinstance(dashboard.get(key), str) or not dashboard[key]:
            problems.append(f"no {key}")
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        problems.append("schemaVersion must be an integer >= 36 (Grafana 9 and later)")
    time_range = dashboard.get("time")
    if not isinstance(time_range, dict) or not all(
        isinstance(time_range.get(k), str) and time_range[k] for k in ("from", "to")
    ):
        problems.append("no time range (time.from, time.to)")
    variables = dashboard.get("templating", {}).get("list")
    if not isinstance(variables, list):
        return [*problems, "no templating.list"]
    names = [v.get("name") for v in variables]
    if len(set(names)) != len(names):
        problems.append(f"duplicate variables {names}")
    datasource = [v for v in variables if v.get("name") == "datasource"]
    if not datasource or datasource[0].get("type") != "datasource":
        problems.append("no variable 'datasource' of type datasource")
    elif datasource[0].get("query") != "prometheus":
        problems.append("the datasource variable must be of plugin type prometheus")
    for variable in variables:
        if variable.get("type") == "query" and not _is_ref(variable.get("datasource")):
            problems.append(f"variable {variable.get('name')}: datasource not $datasource")
    panels = dashboard.get("panels")
    if not isinstance(panels, list) or not panels:
        return [*problems, "no panels"]
    ids = [p.get("id") for p in panels if isinstance(p, dict)]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
        problems.append(f"panel ids must be unique integers: {ids}")
    boxes = []
    for panel in panels:
        where = f"panel {panel.get('id')}"
        problems += [f"{where}: {p}" for p in _panel_problems(panel)]
        pos = panel.get("gridPos")
        if isinstance(pos, dict) and all(isinstance(pos.get(k), int) for k in "xywh"):
            boxes.append((where, pos))
    for i, (a_where, a) in enumerate(boxes):
        for b_where, b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["w"]
                and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"]
                and b["y"] < a["y"] + a["h"]
            ):
                problems.append(f"{a_where} and {b_where} overlap")
    return problems


def _is_ref(datasource) -> bool:
    return (
        isinstance(datasource, dict)
        and datasource.get("type") == "prometheus"
        and datasource.get("uid") in DATASOURCE_REFS
    )


def _panel_problems(panel) -> list[str]:
    if not isinstance(panel, dict):
        return ["not an object"]
    problems = []
    if panel.get("type") not in PANEL_TYPES:
        problems.append(f"type {panel.get('type')!r} not one of {sorted(PANEL_TYPES)}")
    if not isinstance(panel.get("title"), str) or not panel["title"].strip():
        problems.append("no title")
    pos = panel.get("gridPos")
    if not isinstance(pos, dict) or set(pos) != set("xywh"):
        problems.append("gridPos must have exactly x, y, w, h")
    elif not all(type(pos[k]) is int for k in "xywh"):
        problems.append(f"gridPos values must be integers: {pos}")
    elif pos["x"] < 0 or pos["y"] < 0 or pos["w"] < 1 or pos["h"] < 1:
        problems.append(f"gridPos out of range: {pos}")
    elif pos["x"] + pos["w"] > GRID_COLUMNS:
        problems.append(f"gridPos x + w > {GRID_COLUMNS}: {pos}")
    if not _is_ref(panel.get("datasource")):
        problems.append("datasource must be {type: prometheus, uid: ${datasource}}")
    targets = panel.get("targets")
    if not isinstance(targets, list) or not targets:
        return [*problems, "no targets"]
    refs = []
    for target in targets:
        ref = target.get("refId") if isinstance(target, dict) else None
        if not isinstance(ref, str) or not ref:
            problems.append("a target without refId")
            continue
        refs.append(ref)
        if not isinstance(target.get("expr"), str) or not target["expr"].strip():
            problems.append(f"target {ref}: no expr")
        if "datasource" in target and not _is_ref(target["datasource"]):
            problems.append(f"target {ref}: datasource not $datasource")
    if len(set(refs)) != len(refs):
        problems.append(f"duplicate refIds {refs}")
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = override.get("matcher", {})
        if matcher.get("id") == "byFrameRefID" and matcher.get("options") not in refs:
            problems.append(f"override for refId {matcher.get('options')!r}: no such target")
    return problems


def _panel_trees(panel: dict, variables: dict[str, str]) -> list[promql_parser.Expr]:
    return [promql_parser.parse(substitute(t["expr"], variables)) for t in panel["targets"]]


def _names(trees) -> set[str]:
    return set().union(*map(names_in, trees))


def _by_kind(trees) -> bool:
    return any(
        rated(t, "events_audit_events_total") and aggregations(t) and keeps(t, "kind")
        for t in trees
    )


def _latency(trees) -> bool:
    found = set().union(*(quantiles(t, "events_audit_batch_seconds_bucket") for t in trees))
    return {0.5, 0.99} <= found


def _per_instance(metric: str):
    def check(trees) -> bool:
        return any(metric in names_in(t) and keeps(t, "instance") for t in trees)

    return check


def _uses(*metrics: str):
    return lambda trees: set(metrics) <= _names(trees)


#: The issue's panels: each must be one panel that shows all of it.
REQUIRED_PANELS = {
    "throughput by kind": _by_kind,
    "consumer lag and ack pending": _uses(
        "events_audit_consumer_num_pending", "events_audit_consumer_num_ack_pending"
    ),
    "batch latency p50/p99": _latency,
    "write errors, NAKs, TERMs, redeliveries": _uses(
        "events_audit_write_errors_total",
        "events_audit_naks_total",
        "events_audit_terms_total",
        "events_audit_redelivered_total",
    ),
    "reconnects and connected": _uses("events_audit_reconnects_total", "events_audit_connected"),
    "HA role per instance": _per_instance("events_audit_ha_active"),
    "HA failovers": _uses("events_audit_ha_failovers_total"),
    "bytes written": _uses("events_audit_bytes_written_total"),
    "given up / upstream lost": _uses(
        "events_audit_given_up_total", "events_audit_upstream_lost_total"
    ),
    "ready": _uses("events_audit_ready"),
}


def missing_panels(dashboard: dict) -> list[str]:
    variables = dashboard_variables(dashboard)
    panels = [_panel_trees(panel, variables) for panel in dashboard["panels"]]
    return [what for what, check in REQUIRED_PANELS.items() if not any(map(check, panels))]


# -- tests: PromQL -----------------------------------------------------------------


def all_expressions() -> list[tuple[str, str]]:
    return rule_expressions(load_rules()) + dashboard_expressions(load_dashboard())


def test_every_expression_parses() -> None:
    expressions = all_expressions()
    assert len(expressions) > 30
    failures = []
    for where, expr in expressions:
        try:
            names = metric_names(expr)
        except ValueError as exc:
            failures.append(f"{where}: {exc}\n    {expr}")
            continue
        if not names:
            failures.append(f"{where}: selects no metric\n    {expr}")
    assert not failures, "\n".join(failures)


def test_the_parse_check_can_fail() -> None:
    with pytest.raises(ValueError):
        metric_names("sum(rate(events_audit_events_total[5m])")  # unclosed
    with pytest.raises(ValueError):
        metric_names("rate(events_audit_events_total)")  # rate of an instant vector
    with pytest.raises(ValueError):
        metric_names('rate({__name__=~"events_audit_.+"}[5m])')  # no single metric
    with pytest.raises(KeyError):
        substitute("rate(events_audit_events_total{job=~'$jobs'}[5m])", {"job": "x"})
    with pytest.raises(ValueError):  # an unsubstituted Grafana interval does not parse
        metric_names("rate(events_audit_events_total[$__rate_interval])")
    assert metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(events_audit_batch_seconds_bucket[5m])))"
        ' and on () {__name__="events_audit_ready"} == 1 and on () up'
    ) == {"events_audit_batch_seconds_bucket", "events_audit_ready", "up"}
    assert substitute("x[${__rate_interval}] $job", {"__rate_interval": "1m", "job": "j"}) == (
        "x[1m] j"
    )


def scrape_sample_names(addr: str) -> set[str]:
    status, body = http_get(addr, "/metrics")
    assert status == 200
    return {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_every_metric_used_is_exported(nats_server, tmp_path) -> None:
    """Against a running service that logged events: its counters, gauges
    (the lag gauges appear with the first consumer info) and histograms."""
    publish(
        nats_server.url,
        [("events.s", STRUCTURED % i) for i in range(5)] + [("events.r", b"raw line")],
    )
    svc = Service(tmp_path, base_args(nats_server.url, "--log-level=info")).start()
    try:
        addr = health_addr(svc)
        wait_all_acked(nats_server.url, 6)
        exported = wait_until(
            lambda: (
                (names := scrape_sample_names(addr))
                and "events_audit_consumer_num_pending" in names
                and names
            ),
            15,
            "the lag gauges on /metrics",
        )
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert {
        "events_audit_events_total",
        "events_audit_batch_seconds_bucket",
        "events_audit_batch_seconds_sum",
        "events_audit_batch_seconds_count",
    } <= exported
    assert not BUILTINS & exported, "a 'built-in' the service exports itself"

    expressions = all_expressions()
    unknown = unknown_metrics(expressions, exported)
    assert not unknown, "metrics /metrics does not export:\n" + "\n".join(unknown)

    # the check finds a misspelling against the same scrape
    misspelled = [("probe", "sum(rate(events_audit_event_total[5m]))")]
    assert unknown_metrics(misspelled, exported) == ["probe: events_audit_event_total"]
    assert unknown_metrics([("probe", "events_audit_ready == 0 and up == 1")], exported) == []


# -- tests: the rule file --------------------------------------------------------


def test_rule_file_structure() -> None:
    rules = load_rules()
    assert rule_problems(rules) == []
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert len(alerts) >= 10


def test_the_alerts_cover_the_issue() -> None:
    """Each alert the issue asks for, by what its expression looks at."""
    rules = {r["alert"]: r for g in load_rules()["groups"] for r in g["rules"]}
    trees = {name: promql_parser.parse(rule["expr"]) for name, rule in rules.items()}

    def alerts_on(*metrics: str) -> list[str]:
        return [name for name, tree in trees.items() if set(metrics) <= names_in(tree)]

    lag = alerts_on("events_audit_consumer_num_pending")
    assert any(calls(trees[name], "deriv", "delta") for name in lag)
    stall = alerts_on("events_audit_events_total", "events_audit_consumer_num_pending")
    assert any(rated(trees[name], "events_audit_events_total") for name in stall)
    for counter in (
        "events_audit_write_errors_total",
        "events_audit_terms_total",
        "events_audit_upstream_lost_total",
        "events_audit_given_up_total",
        "events_audit_ha_failovers_total",
    ):
        assert any(rated(trees[name], counter) for name in alerts_on(counter)), counter
    assert alerts_on("events_audit_ready")
    assert alerts_on("up")
    no_active = alerts_on("events_audit_ha_active", "up")
    assert no_active and all(aggregations(trees[name]) for name in no_active)
    for name in (
        *alerts_on("events_audit_terms_total"),
        *alerts_on("events_audit_upstream_lost_total"),
        *alerts_on("events_audit_given_up_total"),
    ):
        assert rules[name]["labels"]["severity"] == "critical", name


def test_the_rule_check_can_fail() -> None:
    good = load_rules()

    def broken(change) -> list[str]:
        rules = copy.deepcopy(good)
        change(rules["groups"][0]["rules"])
        return rule_problems(rules)

    assert broken(lambda rules: rules[0].pop("for"))
    assert broken(lambda rules: rules[0].update({"for": "5 minutes"}))
    assert broken(lambda rules: rules[0].update({"for": 300}))
    assert broken(lambda rules: rules[0]["labels"].update({"severity": "page"}))
    assert broken(lambda rules: rules[0]["annotations"].pop("description"))
    assert broken(lambda rules: rules[0]["annotations"].update({"summary": "{{ $labels.x "}))
    assert broken(lambda rules: rules[0].update({"expr": "sum(rate(x[5m])"}))
    assert broken(lambda rules: rules[0].update({"expr": "up[$__rate_interval]"}))
    assert broken(lambda rules: rules.append(copy.deepcopy(rules[0])))  # duplicate name
    assert broken(lambda rules: rules.append({"record": "x:y", "expr": "up"}))
    assert rule_problems({"groups": []})
    assert _duration("1h30m", zero=False) and _duration("0m", zero=True)
    assert not _duration("0m", zero=False) and not _duration("30m1h", zero=True)


# -- tests: the dashboard --------------------------------------------------------


def test_dashboard_structure() -> None:
    dashboard = load_dashboard()
    assert dashboard_problems(dashboard) == []


def test_dashboard_has_the_issue_panels() -> None:
    assert missing_panels(load_dashboard()) == []


def test_the_dashboard_check_can_fail() -> None:
    good = load_dashboard()

    def broken(change) -> list[str]:
        dashboard = copy.deepcopy(good)
        change(dashboard)
        return dashboard_problems(dashboard)

    def panel(index: int, **values):
        return lambda d: d["panels"][index].update(values)

    assert broken(panel(1, id=good["panels"][0]["id"]))
    assert broken(panel(0, type=None))
    assert broken(panel(0, title=""))
    assert broken(panel(0, gridPos={"x": 20, "y": 0, "w": 8, "h": 4}))
    assert broken(panel(0, gridPos={"x": 0, "y": 0, "w": 4.0, "h": 4}))
    assert broken(panel(1, gridPos=dict(good["panels"][0]["gridPos"])))  # overlap
    assert broken(panel(0, datasource={"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}))
    assert broken(panel(0, targets=[]))
    assert broken(panel(0, targets=[{"expr": "up"}]))
    assert broken(panel(0, targets=[{"refId": "A"}]))
    assert broken(lambda d: d.pop("uid"))
    assert broken(lambda d: d["templating"]["list"].pop(0))

    unknown_variable = copy.deepcopy(good)
    unknown_variable["panels"][0]["targets"][0]["expr"] = "events_audit_ready{job=~'$cluster'}"
    with pytest.raises(KeyError):
        dashboard_expressions(unknown_variable)

    no_p99 = copy.deepcopy(good)
    for p in no_p99["panels"]:
        for t in p["targets"]:
            t["expr"] = t["expr"].replace("histogram_quantile(0.99,", "histogram_quantile(0.9,")
    assert missing_panels(no_p99) == ["batch latency p50/p99"]

    not_by_kind = copy.deepcopy(good)
    for p in not_by_kind["panels"]:
        for t in p["targets"]:
            t["expr"] = t["expr"].replace("sum by (kind)", "sum")
    assert missing_panels(not_by_kind) == ["throughput by kind"]
