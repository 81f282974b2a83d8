"""The Grafana dashboard against a real Prometheus scraping the real app.

Debian's Prometheus scrapes `app.py serve` (waitress, on loopback) every second while a
`pipeline.py run` against the stand-ins (one image source failing), a backup by the real backup.sh, and some reader
and desk traffic happen. Then every panel's query, as Grafana would send it, must return
data, and must name only metrics and labels the app really exports: rename a metric in
metrics.py and this fails. The alert rules are loaded into the same Prometheus and must
evaluate without errors.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import bcrypt
import pytest
import requests
import yaml
from helpers import ROOT, free_port, wait_for, wait_until_up
from standins.world import World

GRAFANA = os.path.join(ROOT, "infra", "grafana")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"  # Debian's (scripts/system-deps.sh)
TOKEN = "dashboard-test-token"
INSTANCE = "test-host"

# What Grafana puts in place of its variables when it sends a query.
VARIABLES = {"$instance": ".*", "$__rate_interval": "15s", "$__interval": "15s", "$__range": "5m"}


def dashboard():
    with open(os.path.join(GRAFANA, "milesahead.json")) as f:
        return json.load(f)


def prometheus_targets():
    """(panel title, target) for every Prometheus query on the dashboard."""
    return [
        (panel["title"], target)
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == "prometheus"
    ]


def expand(expr):
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    """A real Prometheus that has watched the app through a pipeline run, a backup and some traffic."""
    import config as configuration

    tmp = tmp_path_factory.mktemp("prometheus")
    config = configuration.load_config(None)
    config["database"]["path"] = str(tmp / "data" / "milesahead.db")
    config["llm"]["cache_dir"] = str(tmp / "data" / "llm-cache")
    config["backup"]["dir"] = str(tmp / "backups")
    config["admin"]["password_hash"] = bcrypt.hashpw(b"right password", bcrypt.gensalt(rounds=4)).decode()
    config["admin"]["api_token"] = TOKEN
    app_port, prom_port = free_port(), free_port()
    with World(config) as world:
        world.images["pixabay"].status = 503  # a bad day for one source: failures to count
        config_path = world.config_file(tmp / "config.yaml")
        env = dict(os.environ, MILESAHEAD_RELEASE="dashboard-test")
        app_command = [sys.executable, os.path.join(ROOT, "app.py"), "--config", str(config_path)]
        app = subprocess.Popen(
            [*app_command, "serve", "--port", str(app_port)], cwd=tmp, env=env, stderr=subprocess.DEVNULL
        )
        (tmp / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [os.path.join(GRAFANA, "alerts.yaml")],
                    "scrape_configs": [
                        {
                            "job_name": "milesahead",  # as Alloy's scrape names it (config.alloy.j2)
                            "static_configs": [
                                {"targets": [f"127.0.0.1:{app_port}"], "labels": {"instance": INSTANCE}}
                            ],
                        }
                    ],
                }
            )
        )
        prometheus = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{prom_port}/api/v1"
        try:
            site = f"http://127.0.0.1:{app_port}"
            wait_until_up(site + "/healthz", timeout=60)
            wait_for(lambda: ready(prom_port), timeout=60, what="Prometheus ready")
            wait_for(lambda: value_of(api, "up") == 1, timeout=60, what="the first scrape")
            started = time.time()

            # twice, a scrape apart: a route's first request creates its series, the second moves it
            for _ in range(2):
                for path in ["/", "/cards", "/cards/amex-platinum", "/deals", "/feed.xml", "/api/cards", "/nope"]:
                    requests.get(site + path, timeout=10)
                time.sleep(2)
            requests.post(site + "/admin/login", data={"password": "wrong"}, timeout=10)  # refused: CSRF
            run = subprocess.run(
                [sys.executable, os.path.join(ROOT, "pipeline.py"), "--config", str(config_path), "-q", "run"],
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert run.returncode == 1 and ": partial in" in run.stdout, run.stdout + run.stderr  # pixabay failed
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            drafts = requests.get(site + "/api/admin/articles?status=draft", headers=bearer, timeout=10).json()
            first = drafts["articles"][0]["id"]
            approved = requests.post(f"{site}/api/admin/articles/{first}/approve", headers=bearer, json={}, timeout=30)
            assert approved.status_code == 200, approved.text
            # As on the host: bin/backup.sh (and replica.py, which finds no replica) beside the
            # release (current/), reading the database and backup dir from the app's config.
            host = tmp / "host"
            (host / "bin").mkdir(parents=True)
            for script in ("backup.sh", "replica.py"):
                shutil.copy2(os.path.join(ROOT, "infra", "files", script), host / "bin" / script)
            (host / "current").symlink_to(ROOT)
            backup_env = dict(
                os.environ,
                MILESAHEAD_CONFIG=str(config_path),
                PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
            )
            subprocess.run(
                ["sh", str(host / "bin" / "backup.sh"), "daily"],
                env=backup_env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            # scraped after all of it, and a few seconds more so rates have two points after it
            done = time.time()
            wait_for(lambda: (value_of(api, "timestamp(up)") or 0) > done + 1, timeout=60, what="a scrape after it all")
            time.sleep(5)
            yield {"api": api, "start": started, "end": time.time()}
        finally:
            prometheus.terminate()
            app.terminate()
            prometheus.wait(timeout=30)
            app.wait(timeout=30)


def ready(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def query(api, expr):
    reply = requests.get(f"{api}/query", params={"query": expr}, timeout=30).json()
    assert reply["status"] == "success", (expr, reply)
    return reply["data"]["result"]


def value_of(api, expr):
    """The single value of an instant query, or None while it has none."""
    result = query(api, expr)
    return float(result[0]["value"][1]) if result else None


def query_range(api, expr, start, end):
    params = {"query": expr, "start": start, "end": end, "step": "2s"}
    reply = requests.get(f"{api}/query_range", params=params, timeout=30).json()
    assert reply["status"] == "success", (expr, reply)
    return reply["data"]["result"]


def values(result):
    """Every number in a query result, NaN left out."""
    found = []
    for series in result:
        points = series.get("values") or [series["value"]]
        found += [float(v) for _, v in points if v != "NaN"]
    return found


@pytest.mark.parametrize(("title", "target"), prometheus_targets(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_panel_shows_data(scraped, title, target):
    expr = expand(target["expr"])
    if target.get("instant"):
        result = query(scraped["api"], expr)
    else:
        result = query_range(scraped["api"], expr, scraped["start"], time.time())
    found = values(result)
    assert found, f"{title}: {expr} returned no data"
    assert any(v > 0 for v in found), f"{title}: {expr} returned only zeros"
    legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
    for series in result:
        assert legend_labels <= set(series["metric"]), f"{title}: legend {legend_labels} vs {series['metric']}"


def test_the_deploy_annotation_marks_the_release_that_started(scraped):
    deploys = next(a for a in dashboard()["annotations"]["list"] if a["name"] == "Deploys")
    result = query_range(scraped["api"], expand(deploys["expr"]), scraped["start"], time.time())
    assert {series["metric"]["release"] for series in result} == {"dashboard-test"}


# --- The vocabulary: every name a query uses is one the app exports -----------

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}
FUNCTIONS_OR_AGGREGATIONS = re.compile(r"\b([a-z_]+)\s*\(")


def names_in(expr):
    """(metric names, label names) an expression uses: selectors, matchers and by/on clauses."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings say nothing about names
    labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"\"", expr))
    for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        labels |= {name.strip() for name in clause.split(",") if name.strip()}
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    calls = set(FUNCTIONS_OR_AGGREGATIONS.findall(bare))
    words = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", bare))
    metrics = {w for w in words - calls - KEYWORDS if not re.fullmatch(r"\d+[smhdwy]|e\d*|Inf|NaN", w)}
    return metrics, labels


def test_the_name_parser_finds_metrics_and_labels():
    metrics, labels = names_in(
        'histogram_quantile(0.95, sum by (route, le) (rate(milesahead_x_bucket{job="a", status=~"5.."}[5m])))'
        " / on (job) max(up offset 5m)"
    )
    assert metrics == {"milesahead_x_bucket", "up"}
    assert labels == {"route", "le", "job", "status"}


def test_no_query_names_a_metric_or_label_the_app_does_not_export(scraped):
    api = scraped["api"]
    exported = set(requests.get(f"{api}/label/__name__/values", timeout=30).json()["data"])
    exprs = [target["expr"] for _, target in prometheus_targets()]
    exprs += [a["expr"] for a in dashboard()["annotations"]["list"] if "expr" in a]
    exprs += [v["query"]["query"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    for expr in exprs:
        expr = re.sub(r"label_values\((.*),\s*(\w+)\)", r"count by (\2) (\1)", expand(expr))
        metrics, labels = names_in(expr)
        assert metrics, expr
        assert metrics <= exported, f"{expr}: not exported: {metrics - exported}"
        series = [s for m in metrics for s in series_of(api, m)]
        known = {label for s in series for label in s}
        assert labels <= known, f"{expr}: labels not on {metrics}: {labels - known}"


def series_of(api, metric):
    reply = requests.get(f"{api}/series", params={"match[]": metric, "start": 0}, timeout=30).json()
    return reply["data"]


def test_the_alert_rules_load_and_evaluate_in_prometheus(scraped):
    groups = requests.get(f"{scraped['api']}/rules", timeout=30).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 10
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    active = {rule["name"]: rule for rule in rules if rule["type"] == "alerting" and rule["state"] != "inactive"}
    # a fresh, healthy site (a backup just taken, a run just done, a draft minutes old) but for
    # pixabay, which failed every search: on its way to firing, after its 30 minutes
    assert set(active) - {"MilesaheadDown"} == {"MilesaheadImageSourceFailing"}, set(active)
    failing = active["MilesaheadImageSourceFailing"]
    assert failing["state"] == "pending"
    assert [alert["labels"]["source"] for alert in failing["alerts"]] == ["pixabay"]
