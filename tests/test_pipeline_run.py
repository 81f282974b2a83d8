"""A whole pipeline run against the stand-ins: feeds -> stories -> checked drafts with images -> the page."""

import json

import pytest
from standins.openai import newsroom

import metrics
import pipeline
import store
import workflow


def drafts(conn):
    return [store.get_article(conn, r["id"]) for r in conn.execute("SELECT id FROM articles ORDER BY id")]


def run_row(conn, run_id):
    row = dict(conn.execute("SELECT * FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone())
    for key in ("stages", "counts", "errors", "failures"):
        row[key] = json.loads(row[key])
    return row


def sample(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0


def test_a_run_turns_two_stories_into_checked_illustrated_drafts(config, world, conn):
    critic_count = sample("milesahead_critic_score_count")
    run_id = pipeline.run(config, trigger="cli")
    run = run_row(conn, run_id)
    assert run["status"] == "ok", run["errors"]
    assert run["counts"]["drafts_written"] == 2 and run["counts"]["items_new"] == 6
    assert {"fetch", "cluster", "generate", "image", "feedback", "total"} <= set(run["stages"])

    articles = {a["type"]: a for a in drafts(conn)}
    deal = articles["deal"]
    assert deal["status"] == "draft"
    assert deal["title"] == "Chase Sapphire Preferred bonus jumps to 100,000 points"
    # critic found an issue, the revision fixed it, the better version (8 > 6) was kept
    assert deal["critic_score"] == 8 and deal["critic_issues"] == []
    assert "end date is confirmed" in deal["body_html"]
    assert "<script" not in deal["body_html"]  # sanitised on the way in
    # missing key details and links were filled; sources are the real feed items
    assert deal["key_details"][0] == ["Bonus", "100,000 points"]
    assert deal["links"] == [{"title": "Issuer page", "url": "https://issuer.example/offer"}]
    assert {s["site"] for s in deal["sources"]} == {"pointsblog.example", "milesnews.example", "dealdigest.example"}
    assert deal["persona_take"].startswith("Worth opening")
    assert deal["image_url"].endswith("/img/u1.jpg")
    assert deal["image_attribution"]["license"] == "Unsplash License"
    assert deal["image_thumb_url"].startswith("data:image/jpeg;base64,")
    assert any(c["chosen"] for c in deal["image_candidates"])
    assert articles["summary"]["title"].startswith("United MileagePlus")
    assert sample("milesahead_critic_score_count") == critic_count + 2
    assert sample("milesahead_pipeline_runs_total", outcome="ok") >= 1


def test_an_approved_draft_renders_with_its_image_and_attribution(config, world, conn, client):
    pipeline.run(config)
    deal = next(a for a in drafts(conn) if a["type"] == "deal")
    client.get(f"/articles/{deal['slug']}", status=404)  # drafts are never public
    workflow.transition(conn, deal["id"], "approved", "editor")
    page = client.get(f"/articles/{deal['slug']}")
    image = page.html.select_one("figure.hero img")
    assert image["src"] == deal["image_url"]
    assert image["alt"] == "Credit card on a wooden desk"
    caption = page.html.select_one("figure.hero figcaption").get_text(" ", strip=True)
    assert "Ana Photographer" in caption and "Unsplash" in caption and "Unsplash License" in caption
    assert page.html.select_one("figure.hero figcaption a")["href"].startswith("https://unsplash.example/photos/u1")
    assert "Scout's Take" in page.text and "Worth opening" in page.text
    assert (
        "pointsblog.example" in page.text and "<script" not in page.text.split("</header>", 1)[1].split("<footer", 1)[0]
    )
    client.get("/metrics").mustcontain("milesahead_image_search_total", "milesahead_pipeline_runs_total")


def test_a_second_run_writes_nothing_twice_and_pays_for_nothing(config, world, conn):
    pipeline.run(config)
    asked = len(world.model.requests)
    second = run_row(conn, pipeline.run(config))
    assert second["status"] == "ok"
    assert second["counts"].get("feeds_not_modified") == 3  # ETags honoured
    assert second["counts"].get("drafts_written", 0) == 0
    assert len(drafts(conn)) == 2
    assert len(world.model.requests) == asked


def test_new_feed_content_with_the_same_text_is_a_counted_duplicate(config, world, conn):
    pipeline.run(config)
    copy = dict(world.feeds.feeds["points-blog"]["items"][0], link="https://copycat.example/x")
    world.feeds.feeds["copycat"] = {"kind": "rss", "site": "copycat.example", "items": [copy]}
    config["pipeline"]["feeds"] = world.feeds.config_feeds()
    run = run_row(conn, pipeline.run(config))
    assert run["counts"]["items_duplicate"] == 1 and run["counts"].get("items_new", 0) == 0


def test_unusable_model_output_fails_that_story_and_the_run_goes_on(config, world, conn):
    def write(body):
        if "MileagePlus" in json.dumps(body["messages"]):  # first try and the retry alike
            return "Sorry, I can't write that."
        return newsroom("write_article", body["messages"])

    world.model.overrides["write_article"] = write
    run = run_row(conn, pipeline.run(config))
    assert run["status"] == "partial"
    assert run["counts"]["drafts_written"] == 1 and run["counts"]["stories_failed"] == 1
    assert any("unusable reply" in e and "after one retry" in e for e in run["errors"])
    failed = conn.execute("SELECT * FROM clusters WHERE status = 'failed'").fetchone()
    assert "MileagePlus" in failed["title"] and "unusable" in failed["error"]
    assert [a["type"] for a in drafts(conn)] == ["deal"]


def test_rate_limits_and_server_errors_are_ridden_out(config, world, conn):
    world.model.retry_after = "0"
    world.model.faults = ["429", "500", "malformed", None, "503", None, "slow"]
    world.model.slow_seconds = 1.0
    config["llm"]["timeout_seconds"] = 0.5
    run = run_row(conn, pipeline.run(config))
    assert run["status"] == "ok", run["errors"]
    assert run["counts"]["drafts_written"] == 2


def test_a_dead_model_fails_the_stories_and_the_next_run_retries_them(config, world, conn):
    config["llm"]["max_retries"] = 1
    url = config["llm"]["base_url"]
    config["llm"]["base_url"] = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    run = run_row(conn, pipeline.run(config))
    assert run["status"] == "partial" and run["counts"]["stories_failed"] == 2
    assert all("connection failed" in e for e in run["errors"])
    assert drafts(conn) == []
    config["llm"]["base_url"] = url
    run = run_row(conn, pipeline.run(config))
    assert run["counts"]["drafts_written"] == 2


def test_a_dead_image_source_costs_only_that_source(config, world, conn):
    world.images["unsplash"].stop()
    run = run_row(conn, pipeline.run(config))
    assert run["status"] == "partial"  # recorded, and the run went on
    assert {f.get("source") for f in run["failures"]} == {"unsplash"}
    assert run["counts"]["drafts_written"] == 2
    deal = next(a for a in drafts(conn) if a["type"] == "deal")
    assert deal["image_url"].endswith("/img/p1.jpg")
    assert deal["image_attribution"]["source"] == "Pexels"


def test_no_good_image_means_a_draft_without_one(config, world, conn):
    world.model.overrides["score_image"] = '{"score": 3, "reason": "generic"}'
    pipeline.run(config)
    for article in drafts(conn):
        assert article["image_url"] == "" and article["image_attribution"] == {}


def test_without_an_api_key_nothing_happens_and_it_says_why(config, world, conn):
    config["llm"]["api_key"] = ""
    with pytest.raises(pipeline.NotConfigured, match="NVIDIA_API_KEY"):
        pipeline.run(config)
    started, message = pipeline.trigger_run(config)
    assert not started and "Not started: no LLM API key" in message
    assert conn.execute("SELECT COUNT(*) FROM pipeline_runs").fetchone()[0] == 0
    assert world.feeds.requests == [] and world.model.requests == []
    assert pipeline.is_configured(config)[0] is False


def test_max_stories_per_run_writes_the_newest_first(config, world, conn):
    config["pipeline"]["max_stories_per_run"] = 1
    run = run_row(conn, pipeline.run(config))
    assert run["counts"]["drafts_written"] == 1 and run["counts"]["stories_new"] == 2
    run = run_row(conn, pipeline.run(config))
    assert run["counts"]["drafts_written"] == 1
    assert len(drafts(conn)) == 2
