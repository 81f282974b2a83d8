"""Feeds: conditional fetches, normalisation, SHA-256 dedupe, and grouping items into stories."""

import pytest
import requests
from standins.feeds import FeedStandin, item, render, sample_feeds

import feeds
import store

UA = "milesahead-test"


@pytest.fixture
def server():
    with FeedStandin() as standin:
        yield standin


def fetch_all(conn, server, timeout=2):
    sources = feeds.sync_sources(conn, server.config_feeds())
    session = requests.Session()
    return {s["name"]: feeds.fetch(conn, s, session, timeout, UA) for s in sources}


def test_rss_and_atom_items_are_stored_normalised(conn, server):
    results = fetch_all(conn, server)
    assert {r["status"] for r in results.values()} == {"ok"}
    assert sum(r["new"] for r in results.values()) == 6
    row = conn.execute("SELECT * FROM raw_items WHERE url LIKE '%csp-100k'").fetchone()
    assert row["site"] == "pointsblog.example"
    assert row["summary"].startswith("The Chase Sapphire Preferred welcome bonus is now")  # tags gone
    assert row["published_at"].endswith("+00:00")
    atom = conn.execute("SELECT * FROM raw_items WHERE site = 'milesnews.example'").fetchall()
    assert len(atom) == 2 and all(r["url"].startswith("https://milesnews.example/") for r in atom)


def test_second_fetch_is_conditional_and_gets_304(conn, server):
    fetch_all(conn, server)
    again = fetch_all(conn, server)
    assert {r["status"] for r in again.values()} == {"not_modified"}
    assert server.not_modified_count() == 3
    assert conn.execute("SELECT COUNT(*) FROM raw_items").fetchone()[0] == 6


def test_changed_feed_stores_only_the_new_item_and_counts_duplicates(conn, server):
    fetch_all(conn, server)
    server.feeds["points-blog"]["items"].append(item("pointsblog.example", "x", "Amex Gold gets a refresh", "More."))
    result = fetch_all(conn, server)["points-blog"]
    assert (result["status"], result["new"], result["duplicates"]) == ("ok", 1, 2)


def test_same_story_text_in_two_feeds_is_stored_once(conn, server):
    copy = dict(server.feeds["points-blog"]["items"][0], link="https://mirror.example/copy")
    server.feeds["mirror"] = {"kind": "atom", "site": "mirror.example", "items": [copy]}
    results = fetch_all(conn, server)
    assert results["mirror"]["duplicates"] == 1
    assert feeds.content_hash("A  <b>Title</b>", "Body&nbsp;text") == feeds.content_hash("a title", "body text")


def test_a_broken_feed_is_recorded_and_the_others_still_fetched(conn, server):
    server.feeds["down"] = {"kind": "rss", "site": "down.example", "items": [], "status": 500}
    server.feeds["html"] = {"kind": "rss", "site": "html.example", "items": [], "body": b"<html>hi</html>"}
    server.feeds["slow"] = {"kind": "rss", "site": "slow.example", "items": [], "delay": 1}
    sources = feeds.sync_sources(conn, server.config_feeds() + [{"name": "gone", "url": "http://127.0.0.1:9/x.xml"}])
    results = {s["name"]: feeds.fetch(conn, s, requests.Session(), 0.3, UA) for s in sources}
    assert results["points-blog"]["new"] == 2
    assert results["down"]["error"].endswith("HTTP 500")
    assert "not a feed" in results["html"]["error"]
    assert results["slow"]["error"].endswith("timed out")
    assert results["gone"]["error"].endswith("connection failed")
    recorded = conn.execute("SELECT last_error FROM feed_sources WHERE name = 'down'").fetchone()[0]
    assert "HTTP 500" in recorded


def test_stories_need_two_sites_and_get_a_type(conn, server, config):
    fetch_all(conn, server)
    result = feeds.group_stories(conn, config["pipeline"])
    stories = [store.get_story(conn, cid) for cid in result["stories"]]
    by_type = {s["type"]: s for s in stories}
    assert sorted(by_type) == ["deal", "summary"]
    assert {i["site"] for i in by_type["deal"]["items"]} == {
        "pointsblog.example",
        "milesnews.example",
        "dealdigest.example",
    }
    assert "MileagePlus" in by_type["summary"]["title"]
    lone = conn.execute("SELECT cluster_id FROM raw_items WHERE url LIKE '%lisbon-hotel'").fetchone()[0]
    assert lone is None


def test_clustering_again_makes_no_new_story_and_latecomers_join_theirs(conn, server, config):
    fetch_all(conn, server)
    first = feeds.group_stories(conn, config["pipeline"])
    late = item("late.example", "csp", "Sapphire Preferred 100,000 points bonus offer", "Chase Sapphire Preferred.")
    server.feeds["late"] = {"kind": "rss", "site": "late.example", "items": [late]}
    fetch_all(conn, server)
    second = feeds.group_stories(conn, config["pipeline"])
    assert second == {"stories": [], "attached": 1}
    assert len(store.get_story(conn, first["stories"][0])["items"]) == 4


def test_items_outside_the_window_are_not_clustered(conn, config):
    server = FeedStandin(
        {
            name: dict(feed, items=[dict(i, published=i["published"].replace(year=2020)) for i in feed["items"]])
            for name, feed in sample_feeds().items()
        }
    )
    with server:
        fetch_all(conn, server)
    assert feeds.group_stories(conn, config["pipeline"])["stories"] == []


def test_tfidf_cosine_tells_related_from_unrelated():
    vectors = feeds.tfidf(
        [
            "Chase Sapphire Preferred bonus 100,000 points",
            "Sapphire Preferred 100,000 point bonus from Chase",
            "Lisbon boutique hotel opens by the river",
        ]
    )
    assert feeds.cosine(vectors[0], vectors[1]) > 0.5
    assert feeds.cosine(vectors[0], vectors[2]) == 0
    assert feeds.cosine(vectors[0], vectors[0]) == pytest.approx(1.0)
    assert feeds.group(["gold card bonus", "gold card offer", "river hotel opens"], 0.3) == [[0, 1], [2]]


def test_story_type_counts_distinct_keywords():
    keywords = ["bonus", "offer", "points"]
    assert feeds.story_type(["A bonus", "the same bonus"], keywords) == "summary"
    assert feeds.story_type(["A bonus", "an offer"], keywords) == "deal"
    assert feeds.story_type(["bonuses galore"], keywords) == "summary"


def test_sync_sources_is_an_upsert(conn):
    feeds.sync_sources(conn, [{"name": "A", "url": "https://a.example/feed"}])
    rows = feeds.sync_sources(conn, [{"name": "A renamed", "url": "https://a.example/feed", "site": "a.example"}])
    assert [(r["name"], r["site"]) for r in rows] == [("A renamed", "a.example")]
    assert conn.execute("SELECT COUNT(*) FROM feed_sources").fetchone()[0] == 1
    assert store.now()


def test_a_feed_cut_short_keeps_what_parsed_but_not_its_validators(conn, server):
    whole = server.feeds["points-blog"]
    server.feeds = {"points-blog": whole}
    document = render("points-blog", whole)
    whole["truncate"] = document.index("<item>", document.index("</item>")) + 40  # the second item cut mid-way
    cut = fetch_all(conn, server)["points-blog"]
    assert cut["status"] == "error" and "not a whole feed" in cut["error"] and "will read it again" in cut["error"]
    assert cut["new"] == 1  # the item that arrived whole is kept
    row = conn.execute("SELECT etag, last_modified, last_error FROM feed_sources").fetchone()
    assert row["etag"] == "" and row["last_modified"] == "" and "not a whole feed" in row["last_error"]

    del whole["truncate"]
    again = fetch_all(conn, server)["points-blog"]
    assert "if-none-match" not in server.requests[-1]["headers"]  # asked in full, not 304'd
    assert again["status"] == "ok" and again["new"] == 1 and again["duplicates"] == 1
    assert conn.execute("SELECT etag FROM feed_sources").fetchone()["etag"]  # now it is saved


def test_a_feed_that_drips_is_cut_at_its_deadline(conn, server):
    server.feeds = {"slow": {**server.feeds["points-blog"], "drip": 0.5}}
    result = fetch_all(conn, server, timeout=2)["slow"]
    assert result["status"] == "error" and "no whole document within the deadline" in result["error"]
