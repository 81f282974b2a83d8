"""Links from outside never carry script: not from a feed, an image API, a model or the card data.

A hostile feed, hostile image APIs and a model that writes script links go through a real
pipeline run; the drafts are reviewed and approved at the desk; then every place that
prints a link is parsed: the desk's review page, its preview, the admin API, the reader
page, its published file, the public API and the Atom feed. The one URL policy is urls.py;
each dropped URL is named in the run record. A second set of tests writes hostile URLs
straight into the database (a row older than the policy) and checks that rendering alone
still prints none of them.
"""

import json
from pathlib import Path

import pytest
from helpers import HOSTILE, post_action, sample_card, seed_sample_cards, stored_before_the_policy
from link_checks import unsafe_urls_in_html, unsafe_urls_in_json, unsafe_urls_in_xml

import pipeline
import publish
import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open


def run_record(conn, run_id):
    row = conn.execute("SELECT status, errors FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone()
    return row["status"], json.loads(row["errors"])


def drafts(conn):
    return [store.get_article(conn, r["id"]) for r in conn.execute("SELECT id FROM articles ORDER BY id")]


def test_a_run_keeps_no_script_link_and_says_which_it_dropped(config, hostile_world, conn):
    status, errors = run_record(conn, pipeline.run(config))
    assert status == "partial"  # the run record flags what it refused
    assert all("dropped" in e for e in errors), errors
    feed_drops = [e for e in errors if e.startswith("feed ")]
    assert len(feed_drops) == 5 and all(e.endswith("(only http(s) links are kept)") for e in feed_drops)
    assert any("fetch('/api/admin/session')" in e for e in feed_drops)
    assert any(r"jav\tascript:" in e for e in feed_drops)
    assert any("the model's link" in e and "vbscript:" in e for e in errors)
    assert any("unsplash image u1: page" in e for e in errors)
    assert any("pexels image p2: url" in e for e in errors)

    stored = drafts(conn)
    assert len(stored) == 2  # every story still written, from items that lost only their links
    for article in stored:
        assert unsafe_urls_in_json(article) == []
        assert article["sources"] and all(s["url"] == "" for s in article["sources"])
        assert "javascript" not in article["body_html"].lower() and "vbscript" not in article["body_html"].lower()
    deal = next(a for a in stored if a["type"] == "deal")
    assert deal["links"] == [{"title": "Issuer page", "url": "https://issuer.example/offer"}]
    assert deal["image_url"].endswith("/img/u1.jpg") and deal["image_attribution"]["link"] == ""


def test_the_desk_the_reader_pages_the_files_and_the_apis_print_no_script_link(config, hostile_world, conn, editor):
    pipeline.run(config)
    public = Path(publish.public_dir(config))
    for article in drafts(conn):
        review = editor.get(f"/admin/articles/{article['id']}")
        assert unsafe_urls_in_html(review.text) == []
        assert "Chase Sapphire Preferred" in review.text or "MileagePlus" in review.text  # sources shown, as text
        assert unsafe_urls_in_html(editor.get(f"/admin/articles/{article['id']}/preview").text) == []
        assert unsafe_urls_in_json(editor.get(f"/api/admin/articles/{article['id']}").json) == []

        post_action(editor, article["id"], "approve")
        slug = article["slug"]
        reader = editor.get(f"/articles/{slug}")
        assert unsafe_urls_in_html(reader.text) == []
        assert reader.html.select("aside .panel a[href='https://issuer.example/offer']") or article["type"] != "deal"
        assert unsafe_urls_in_html((public / f"articles/{slug}.html").read_text()) == []
        assert unsafe_urls_in_json(editor.get(f"/api/articles/{slug}").body) == []
        assert unsafe_urls_in_json((public / f"api/articles/{slug}.json").read_bytes()) == []
    for page in ["/", "/deals", "/news"]:
        assert unsafe_urls_in_html(editor.get(page).text) == [], page
    assert unsafe_urls_in_json(editor.get("/api/articles").body) == []
    assert unsafe_urls_in_xml(editor.get("/feed.xml").body) == []
    assert unsafe_urls_in_xml((public / "feed.xml").read_bytes()) == []


# --- Rows older than the policy: rendering alone must hold ----------------------------


def test_a_row_with_script_links_renders_none_of_them(config, conn, editor):
    seed_sample_cards(conn)
    conn.execute("UPDATE cards SET official_url = ? WHERE slug = 'sapphire-reserve'", (HOSTILE[0],))
    conn.commit()
    article_id = stored_before_the_policy(conn)
    public = Path(publish.public_dir(config))

    review = editor.get(f"/admin/articles/{article_id}")
    assert unsafe_urls_in_html(review.text) == []
    assert "Source 0" in review.text and "Link 0" in review.text  # the text stays, the link goes
    assert unsafe_urls_in_html(editor.get(f"/admin/articles/{article_id}/preview").text) == []
    assert unsafe_urls_in_json(editor.get(f"/api/admin/articles/{article_id}").json) == []

    post_action(editor, article_id, "approve")
    slug = store.get_article(conn, article_id)["slug"]
    for page in [f"/articles/{slug}", "/", "/deals", "/cards/sapphire-reserve"]:
        assert unsafe_urls_in_html(editor.get(page).text) == [], page
    for api in [f"/api/articles/{slug}", "/api/articles", "/api/cards/sapphire-reserve", "/api/cards"]:
        assert unsafe_urls_in_json(editor.get(api).body) == [], api
    for name in [f"articles/{slug}.html", "index.html", "cards/sapphire-reserve.html"]:
        assert unsafe_urls_in_html((public / name).read_text()) == [], name
    for name in [f"api/articles/{slug}.json", "api/cards/sapphire-reserve.json"]:
        assert unsafe_urls_in_json((public / name).read_bytes()) == [], name


def test_card_data_with_a_script_link_is_refused_at_seed_time(conn):
    card = seed_sample_cards(conn)["venture-x"]

    for url in [*HOSTILE, "https:no-host"]:
        with pytest.raises(store.CardError, match="field 'official_url'"):
            store.seed_cards(conn, [sample_card(slug="venture-x", name="Capital One Venture X", official_url=url)])
    assert store.get_card(conn, "venture-x")["official_url"] == card["official_url"]
