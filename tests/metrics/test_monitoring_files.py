"""The dashboards and alert rules in monitoring/ name only metrics the portal really publishes.

Every PromQL expression (each dashboard panel and variable, each alert) is parsed for the metric
names it uses, and each must appear in a real /metrics answer after real traffic and a real job,
so a renamed metric breaks this test, not a dashboard in production. promtool checks the rules
and the Prometheus configuration when it is installed (always under CI=true).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from portal.models._time import utcnow
from portal.queueing import push
from portal.services import requests as svc
from portal.services import sla
from tests.jobs.test_worker import ROOT, _env, _flask
from tests.services.sla_helpers import make_definition

MONITORING = ROOT / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana").glob("*.json"))
PROMETHEUS_OWN = {"up"}  # written by Prometheus itself for every target
# On web targets and on worker-only hosts (`flask metrics serve`) alike; app_info is on web targets only.
EVERY_TARGET = PROMETHEUS_OWN | {"process_cpu_seconds_total"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan", "Inf", "NaN"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords, labels and variables left out)."""
    names = set()
    for found in re.finditer(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\}\s*)?,", expr):
        names.add(found.group(1))
    expr = re.sub(r"label_values\([^)]*\)", "", expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                      # label matchers (and $job in them)
    expr = re.sub(r"\[[^\]]*\]", "", expr)                     # ranges, $__rate_interval
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\w+", " ", expr)
    for found in re.finditer(r"(?<![\w$.])[A-Za-z_:][\w:]*", expr):
        if expr[found.end():].lstrip().startswith("(") or found.group(0) in KEYWORDS:
            continue
        names.add(found.group(0))
    return names


def test_the_parser_finds_metrics_and_only_metrics():
    assert metric_names('histogram_quantile(0.95, sum by (le, endpoint) '
                        '(rate(app_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))') == \
        {"app_request_duration_seconds_bucket"}
    assert metric_names("time() - max(backup_last_success_timestamp_seconds) > 26 * 3600") == \
        {"backup_last_success_timestamp_seconds"}
    assert metric_names("sum(increase(x_total[1d] offset 1h)) / 24 and on (a) y") == {"x_total", "y"}
    assert metric_names("label_values(app_info, job)") == {"app_info"}
    assert metric_names('label_values(up{job=~"portal.*"}, job)') == {"up"}


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expression) for every panel target and every query variable of every dashboard."""
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
                found.append((f"{path.name}: variable {variable['name']}", query))
    return found


def alert_rules() -> list[tuple[str, str]]:
    """(alert name, expression) from monitoring/alerts.yml (one-line expressions, as that file keeps them)."""
    rules, name = [], None
    for line in (MONITORING / "alerts.yml").read_text().splitlines():
        if match := re.match(r"\s*- alert:\s*(\S+)", line):
            name = match.group(1)
        elif match := re.match(r"\s*expr:\s*(.+)$", line):
            assert match.group(1).strip() not in ("|", ">", "|-", ">-"), f"{name}: keep expr on one line"
            rules.append((name, match.group(1).strip()))
    return rules


@pytest.fixture()
def live_names(app, ctx, client, factories) -> set[str]:
    """Metric names in a real /metrics answer after traffic, a failure of each kind, a breach and a job."""
    make_definition("hardware", "high", 1, 4)
    agent = factories.make_user("agent")
    req = factories.make_request(category="hardware", priority="high")
    svc.change_status(agent, req.id, "resolved")
    factories.make_request(category="hardware", priority="high")
    sla.check_all_breaches(now=utcnow() + timedelta(hours=5))
    client.get("/login")
    client.post("/login", data={"email": agent.email, "password": "not-the-password"})
    client.get("/api/v1/service-requests", headers={"Authorization": "Bearer nope"})
    original = app.view_functions["api.openapi"]
    app.view_functions["api.openapi"] = lambda: 1 / 0
    try:
        assert client.get("/api/v1/openapi.json").status_code == 500
    finally:
        app.view_functions["api.openapi"] = original
    push("tests.jobs.sample_jobs.nap", 0, queue="default")
    result = subprocess.run(_flask("jobs", "worker", "--queues", "default", "--burst"), cwd=ROOT, env=_env(app),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    response = client.get("/metrics")
    assert response.status_code == 200
    from tests.metrics.conftest import Samples

    samples = Samples(response.get_data(as_text=True))
    assert samples.value("jobs_total", status="finished") >= 1
    return samples.names


def test_there_are_the_three_dashboards_of_the_guide():
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {"Service Portal — System Health", "Service Portal — Business Metrics",
                      "Service Portal — Infrastructure"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_import_with_a_prometheus_data_source_variable(path):
    board = json.loads(path.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "id" not in board or board["id"] is None  # importable into any Grafana
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 6
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_every_dashboard_query_names_published_metrics(live_names):
    missing = {(where, name) for where, expr in dashboard_queries() for name in metric_names(expr)
               if name not in live_names | PROMETHEUS_OWN}
    assert missing == set()


def test_the_job_variable_offers_every_portal_scrape_job():
    """The `$job` choices come from a metric every portal target has, so the worker targets can be chosen too."""
    config = (MONITORING / "prometheus.yml").read_text()
    scrape_jobs = re.findall(r"^\s*- job_name:\s*(\S+)", config, re.MULTILINE)  # the commented-out ones left out
    assert {"portal-web", "portal-worker"} <= set(scrape_jobs)
    for path in DASHBOARDS:
        [query] = [expr for where, expr in dashboard_queries() if where == f"{path.name}: variable job"]
        assert metric_names(query) and metric_names(query) <= EVERY_TARGET, (path.name, query)
        matcher = re.search(r'\bjob=~"([^"]*)"', query)
        offered = {job for job in scrape_jobs if matcher is None or re.fullmatch(matcher.group(1), job)}
        assert offered == set(scrape_jobs), (path.name, query)


def test_every_alert_names_published_metrics(live_names):
    rules = alert_rules()
    assert rules
    missing = {(alert, name) for alert, expr in rules for name in metric_names(expr)
               if name not in live_names | PROMETHEUS_OWN}
    assert missing == set()


def test_the_alerts_an_operator_expects_are_there():
    names = {name for name, _ in alert_rules()}
    assert {"PortalHealthFailing", "PortalHighErrorRate", "PortalSlowResponses", "PortalQueueBacklog",
            "PortalDeadLettersGrowing", "PortalSlaCheckStale", "PortalSlaBreachesSpiking",
            "PortalNoVerifiedBackup", "PortalNoWorkerForQueue", "PortalSchedulerMissing"} <= names


def _promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("promtool is missing (apt-get install -y prometheus); CI must check the rules")
    pytest.skip("promtool is not installed (apt-get install -y prometheus); the metric-name checks still ran")


def test_promtool_accepts_the_rules_and_the_configuration(tmp_path):
    promtool = _promtool()
    rules = subprocess.run([promtool, "check", "rules", str(MONITORING / "alerts.yml")],
                           capture_output=True, text=True, timeout=60)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in rules.stdout + rules.stderr
    # The configuration names a token file that exists only on the Prometheus host: check a copy.
    token = tmp_path / "portal-metrics-token"
    token.write_text("token\n")
    config = (MONITORING / "prometheus.yml").read_text().replace("/etc/prometheus/portal-metrics-token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    checked = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_alert_rules_fire_when_they_should(tmp_path):
    """Unit tests of the rules with promtool's own series: stale SLA check, old backup, no worker."""
    promtool = _promtool()
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "alerts_test.yml").write_text(Path(__file__).with_name("alerts_test.yml").read_text())
    result = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
