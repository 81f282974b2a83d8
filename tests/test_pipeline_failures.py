"""Every failed outside call is in the run record, in the metrics and on the desk, and the run goes on."""

import json

import pytest
from helpers import pipeline_cli

import metrics
import pipeline
import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open


def run_row(conn, run_id):
    row = dict(conn.execute("SELECT * FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone())
    return {**row, **{k: json.loads(row[k]) for k in ("counts", "errors", "failures")}}


def counter(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0


@pytest.fixture
def bad_day(world, config):
    """Each image API failing the way it documents, and the image models answering nonsense."""
    world.images["unsplash"].status = 503
    world.images["pexels"].status = 429
    world.images["pexels"].retry_after = "3600"
    world.images["pixabay"].status = 400
    world.images["openverse"].status = 401
    world.images["wikimedia"].api_error = ("ratelimited", "You've exceeded your rate limit.")
    return world


def test_a_bad_day_for_every_image_source_is_recorded_source_by_source(config, bad_day, conn):
    before = counter("milesahead_pipeline_call_failures_total", service="unsplash", outcome="server_error")
    run = run_row(conn, pipeline.run(config))
    assert run["status"] == "partial" and run["counts"]["drafts_written"] == 2
    reasons = {}
    for f in run["failures"]:
        assert f["story"].startswith("story ")
        reasons.setdefault(f["source"], set()).add(f["reason"].split(" (search", 1)[0])
    assert reasons == {
        "unsplash": {'HTTP 503: {"errors": ["stand-in failure 503"]}'},
        "pexels": {'HTTP 429 (Retry-After 3600): {"errors": ["stand-in failure 429"]}'},
        "pixabay": {"HTTP 400: [ERROR 400] stand-in failure"},
        "openverse": {'HTTP 401: {"errors": ["stand-in failure 401"]}'},
        "wikimedia": {"API error ratelimited: You've exceeded your rate limit."},
    }
    assert len(run["failures"]) == 5 * 2 * 2  # five sources, two search terms, two stories
    assert counter("milesahead_pipeline_call_failures_total", service="unsplash", outcome="server_error") == before + 4


def test_failed_phase_one_and_vision_scoring_are_recorded_by_model(config, world, conn):
    world.model.overrides["score_image_metadata"] = "I would rather not score these."
    world.model.overrides["score_image"] = "A lovely photo."
    before = counter("milesahead_pipeline_call_failures_total", service="vision", outcome="bad_reply")
    run = run_row(conn, pipeline.run(config))
    assert run["status"] == "partial" and run["counts"]["drafts_written"] == 2
    models = [f for f in run["failures"] if "model" in f]
    assert {f["model"] for f in models} == {"image_filter", "vision"}
    assert all("unusable reply" in f["reason"] and f["story"].startswith("story ") for f in models)
    assert counter("milesahead_pipeline_call_failures_total", service="vision", outcome="bad_reply") > before


def test_the_desk_shows_each_failed_call(config, bad_day, conn, editor):
    pipeline.run(config)
    page = editor.get("/admin/runs")
    rows = [r.get_text(" ", strip=True) for r in page.html.select("details.failures tbody tr")]
    assert any(r.startswith("source wikimedia story 1") and "API error ratelimited" in r for r in rows)
    assert any(r.startswith("source pexels story 2") and "HTTP 429" in r for r in rows)
    assert "partial" in page.html.select_one(".status").get_text()


def test_the_command_line_exits_with_the_partial_status(config, bad_day, conn, tmp_path):
    result = pipeline_cli("--config", str(bad_day.config_file(tmp_path / "pipeline.yaml")), "-q", "run")
    assert result.returncode == pipeline.EXIT_PARTIAL, result.stderr
    assert "run 1: partial" in result.stdout
    assert "failed call: source wikimedia, story 1" in result.stdout
    assert store.list_runs(conn)[0]["status"] == "partial"


def test_a_story_that_overruns_its_budget_fails_recorded_and_the_run_goes_on(config, world, conn):
    config["pipeline"]["story_budget_seconds"] = 1
    config["llm"]["timeout_seconds"] = 30
    world.model.slow_seconds = 3
    world.model.faults = ["slow"]  # the first story's first model call takes longer than its whole budget
    run = run_row(conn, pipeline.run(config))
    assert run["status"] == "partial"
    assert run["counts"]["stories_failed"] == 1 and run["counts"]["drafts_written"] == 1
    failed = [f for f in run["failures"] if f.get("model") == "generator"]
    assert failed and "budget" in failed[0]["reason"]
