"""The dashboard is importable as it is, explains every panel, and asks Loki and Prometheus
only for the labels Alloy really ships (infra/templates/config.alloy.j2)."""

import json
import os
import re

import jinja2
from helpers import ROOT

GRAFANA = os.path.join(ROOT, "infra", "grafana")
TEMPLATES = os.path.join(ROOT, "infra", "templates")
HOST = "web1"


def dashboard():
    with open(os.path.join(GRAFANA, "milesahead.json")) as f:
        return json.load(f)


def panels():
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def alloy():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    return env.get_template("config.alloy.j2").render(app_name="milesahead", app_port=8080, inventory_hostname=HOST)


def blocks(text, kind):
    """The bodies of every `kind "label" { ... }` block (no nested braces at the top level we read)."""
    return re.findall(kind + r' "\w+" \{(.*?)\n\}', text, re.S)


def journal_labels():
    """{label: value} of every loki.source.journal in the rendered Alloy config."""
    shipped = []
    for body in blocks(alloy(), r"loki\.source\.journal"):
        pairs = re.search(r"labels\s*=\s*\{(.*?)\}", body).group(1)
        shipped.append(dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', pairs)))
    return shipped


def test_the_data_sources_are_variables_so_it_imports_anywhere():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["loki"]["type"] == "datasource" and variables["loki"]["query"] == "loki"
    for panel in panels():
        for target in [panel, *panel["targets"]]:
            assert target["datasource"]["uid"] in ("${datasource}", "${loki}"), panel["title"]
    assert dashboard()["uid"] == "milesahead" and "__inputs" not in dashboard()


def test_every_panel_says_what_normal_looks_like():
    for panel in panels():
        assert "Normal" in panel["description"], panel["title"]
        assert len(panel["description"]) > 80, panel["title"]


def test_panels_have_unique_ids_and_do_not_overlap():
    everything = dashboard()["panels"]
    assert len({p["id"] for p in everything}) == len(everything)
    cells = set()
    for p in everything:
        g = p["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        assert g["x"] + g["w"] <= 24
        cells |= mine


def test_prometheus_queries_select_the_job_alloy_scrapes():
    scrape = blocks(alloy(), r"prometheus\.scrape")[0]
    job = re.search(r'job_name\s*=\s*"([^"]+)"', scrape).group(1)
    assert f'"instance" = "{HOST}"' in scrape
    for panel in panels():
        for target in panel["targets"]:
            if target["datasource"]["type"] == "prometheus":
                assert f'job="{job}"' in target["expr"], panel["title"]


def test_the_journal_is_shipped_with_few_fixed_labels_the_log_panel_queries():
    shipped = journal_labels()
    assert len(shipped) == 2  # the app's unit, and the backup script run by cron
    for labels in shipped:
        assert set(labels) == {"job", "host", "unit"}
        # fixed per host: nothing per request, per process or per article
        assert labels["job"] == "milesahead" and labels["host"] == HOST
    assert {labels["unit"] for labels in shipped} == {"milesahead.service", "milesahead-backup"}
    assert "relabel" not in alloy()  # no journal field becomes a label behind our back

    logs = [p for p in panels() if p["datasource"]["type"] == "loki"]
    assert logs, "a Loki panel for the journal"
    for panel in logs:
        for target in panel["targets"]:
            selector = re.match(r"\{(.*?)\}", target["expr"]).group(1)
            matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', selector)
            assert matchers
            for name, op, value in matchers:
                assert all(name in labels for labels in shipped), name
                if op == "=":
                    assert any(labels[name] == value for labels in shipped), (name, value)
