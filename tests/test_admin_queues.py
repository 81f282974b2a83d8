"""The desk's pages: queues with counts, the review page's panels, the reader preview, runs."""

import json
import re

import pytest
from helpers import csrf_token, finished_runs, make_article, wait_for
from standins.world import World

import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open


def test_queues_count_and_list_every_status(editor, conn):
    made = {}
    for n, status in enumerate(store.ARTICLE_STATUSES * 2):
        made.setdefault(status, []).append(make_article(conn, status=status, title=f"{status} story {n}"))
    page = editor.get("/admin")
    for status, ids in made.items():
        assert re.search(rf'data-status="{status}">2<', page.text), status
        section = page.text[page.text.index(f'id="queue-{status}"') :]
        section = section[: section.index("</section>")]
        assert all(f'href="/admin/articles/{i}"' in section for i in ids), status
    only = editor.get("/admin?status=rejected")
    assert 'id="queue-rejected"' in only.text and 'id="queue-draft"' not in only.text
    editor.get("/admin?status=bogus", status=400)


def test_review_page_shows_critic_sources_details_image_and_candidates(editor, conn):
    article_id = make_article(
        conn,
        critic_score=6.5,
        critic_issues=["The bonus expiry date is missing."],
        image_url="https://images.example/chosen.jpg",
        image_thumb_url="https://images.example/chosen-thumb.jpg",
        image_alt="A metal card on a table",
        image_attribution={
            "author": "Jo Photographer",
            "source": "Openverse",
            "license": "CC BY 4.0",
            "link": "https://openverse.example/1",
        },
        image_candidates=[
            {"source": "openverse", "url": "https://images.example/chosen.jpg", "text_score": 8, "vision_score": 9},
            {"source": "wikimedia", "url": "https://images.example/other.jpg", "text_score": 7, "vision_score": 4},
        ],
    )
    page = editor.get(f"/admin/articles/{article_id}")
    text = page.text
    assert "6.5 / 10" in text and "The bonus expiry date is missing." in text
    assert "https://one.example/story" in text and "https://two.example/story" in text
    assert "<dt>Bonus</dt><dd>100,000 points</dd>" in text
    assert "Jo Photographer" in text and "CC BY 4.0" in text
    assert "https://images.example/other.jpg" in text and "vision score: 4" in text
    assert f'src="/admin/articles/{article_id}/preview"' in text


def normalise(html):
    """Drop what legitimately differs by URL: canonical and og:url, and the request path in nav."""
    return re.sub(r'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>', "", html)


def test_preview_is_exactly_the_reader_page(editor, client, conn):
    article_id = make_article(
        conn,
        status="approved",
        image_url="https://images.example/a.jpg",
        image_attribution={"author": "A", "license": "CC0"},
    )
    slug = store.get_article(conn, article_id)["slug"]
    preview = editor.get(f"/admin/articles/{article_id}/preview")
    reader = client.get(f"/articles/{slug}")
    assert normalise(preview.text) == normalise(reader.text)
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "noindex" in preview.headers["X-Robots-Tag"]


def test_preview_renders_unpublished_drafts_for_the_editor_only(editor, app, conn):
    import webtest

    article_id = make_article(conn, title="Secret draft headline")
    assert "Secret draft headline" in editor.get(f"/admin/articles/{article_id}/preview").text
    stranger = webtest.TestApp(app)
    response = stranger.get(f"/admin/articles/{article_id}/preview", status=302)
    assert "/admin/login" in response.location


def add_run(conn, **values):
    row = dict(
        trigger="schedule",
        status="ok",
        started_at="2026-11-27T10:00:00+00:00",
        finished_at="2026-11-27T10:03:00+00:00",
        counts=json.dumps({"articles": 3}),
        errors="[]",
    )
    row.update(values)
    conn.execute(
        "INSERT INTO pipeline_runs (trigger, status, started_at, finished_at, counts, errors)"
        " VALUES (:trigger, :status, :started_at, :finished_at, :counts, :errors)",
        row,
    )


def test_runs_are_listed_with_their_errors(editor, conn):
    add_run(conn)
    add_run(conn, trigger="admin", status="partial", errors=json.dumps(["feed timed out"]))
    page = editor.get("/admin/runs")
    assert page.text.index("#2") < page.text.index("#1")  # newest first
    assert "feed timed out" in page.text and "articles: 3" in page.text
    assert "#2" in editor.get("/admin").text


def test_the_run_button_says_the_pipeline_is_not_configured(editor, config):
    config["llm"]["api_key"] = ""
    page = editor.get("/admin")
    assert "Pipeline not configured" in page.text and "no LLM API key" in page.text
    assert not any(f.action == "/admin/runs" for f in page.forms.values())
    page = editor.post("/admin/runs", {"csrf_token": csrf_token(editor)}).follow()
    assert "no LLM API key" in page.text


def test_the_run_button_starts_a_run(editor, config, conn):
    with World(config):
        page = editor.get("/admin/runs")
        form = next(f for f in page.forms.values() if f.action == "/admin/runs")
        assert "Pipeline run started" in form.submit().follow().text
        wait_for(lambda: finished_runs(conn) >= 1, timeout=30, what="a finished pipeline run")
