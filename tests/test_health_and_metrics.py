"""/healthz is the deploy gate; /metrics speaks Prometheus text format."""

import os

import webtest
from prometheus_client.parser import text_string_to_metric_families

import app as milesahead
import store


def test_healthz_reports_release_schema_and_cards(client, seeded, monkeypatch):
    data = client.get("/healthz").json
    assert data == {
        "status": "ok",
        "release": "dev",
        "commit": "unknown",
        "schema_version": store.SCHEMA_VERSION,
        "cards": len(store.load_seed_cards()),
    }


def test_release_comes_from_env_then_release_file(config, monkeypatch, tmp_path):
    monkeypatch.setenv("MILESAHEAD_RELEASE", "20261127-abc")
    assert webtest.TestApp(milesahead.create_app(config)).get("/healthz").json["release"] == "20261127-abc"
    monkeypatch.delenv("MILESAHEAD_RELEASE")
    monkeypatch.setattr(milesahead, "HERE", str(tmp_path))
    (tmp_path / "RELEASE").write_text("from-file\n")
    assert milesahead.release_id() == "from-file"


def test_commit_comes_from_the_commit_file_the_toolkit_writes(config, monkeypatch, tmp_path):
    monkeypatch.setattr(milesahead, "HERE", str(tmp_path))
    assert milesahead.commit_id() == "unknown"
    (tmp_path / "COMMIT").write_text("0123abcd-dirty\n")
    assert milesahead.commit_id() == "0123abcd-dirty"


def test_healthz_is_503_with_reason_when_database_is_unusable(config, client):
    os.remove(config["database"]["path"])
    os.makedirs(config["database"]["path"])  # a directory where the file should be
    page = client.get("/healthz", status=503)
    assert page.json["status"] == "error"
    assert "database" in page.json["reason"]


def test_healthz_is_503_when_schema_is_behind(config, client, conn):
    conn.execute("DELETE FROM schema_migrations WHERE version = ?", (store.SCHEMA_VERSION,))
    page = client.get("/healthz", status=503)
    assert "schema version" in page.json["reason"]


def samples(text):
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_has_build_info_and_counts_requests_by_route_and_status(client, seeded):
    client.get("/cards/amex-platinum")
    before = samples(client.get("/metrics").text)
    client.get("/cards/amex-platinum")
    client.get("/cards/nope", status=404)
    client.get("/no/such/path", status=404)
    after = samples(client.get("/metrics").text)

    def delta(route, status):
        key = ("milesahead_http_requests_total", (("route", route), ("status", status)))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("/cards/<slug>", "200") == 1
    assert delta("/cards/<slug>", "404") == 1
    assert delta("unmatched", "404") == 1
    assert after[("milesahead_build_info", (("release", "dev"), ("schema_version", str(store.SCHEMA_VERSION))))] == 1


def test_an_unhandled_error_is_a_500_page_and_is_counted(app, seeded):
    def broken():
        raise RuntimeError("kaboom")

    app.route("/broken", "GET", broken)
    client = webtest.TestApp(app)
    before = samples(client.get("/metrics").text)
    page = client.get("/broken", status=500, expect_errors=True)
    assert "Something broke" in page.text and "kaboom" not in page.text and "Traceback" not in page.text
    after = samples(client.get("/metrics").text)
    key = ("milesahead_http_requests_total", (("route", "/broken"), ("status", "500")))
    assert after[key] - before.get(key, 0) == 1


def test_healthz_reasons_stay_on_this_host(app, client):
    """The deploy's gate asks on loopback and gets the reason; anyone else only ok or not."""
    app.state.startup_publish = "[Errno 20] Not a directory: '/etc/passwd/public'"
    local = client.get("/healthz", status=503, extra_environ={"REMOTE_ADDR": "127.0.0.1"}).json
    assert "/etc/passwd/public" in local["reason"]
    for environ in [
        {"REMOTE_ADDR": "203.0.113.7"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},  # through Caddy
    ]:
        reply = client.get("/healthz", status=503, extra_environ=environ)
        assert reply.json == {"status": "error"}
    app.state.startup_publish = "ok"
    public = client.get("/healthz", extra_environ={"REMOTE_ADDR": "203.0.113.7"}).json
    assert public == {"status": "ok"}
