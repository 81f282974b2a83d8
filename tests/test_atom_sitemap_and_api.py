"""Atom feed, sitemap, robots.txt and the read-only JSON API."""

import xml.etree.ElementTree as ET

from helpers import approved_article, sample_card

import store

ATOM = "{http://www.w3.org/2005/Atom}"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def test_atom_feed_is_valid_atom_with_required_elements(client, seeded):
    approved_article(seeded, "Feed story one")
    approved_article(seeded, "Feed story two", type="summary")
    page = client.get("/feed.xml")
    assert page.content_type == "application/atom+xml"
    feed = ET.fromstring(page.body)
    assert feed.tag == f"{ATOM}feed"
    for required in ["id", "title", "updated"]:
        assert feed.find(f"{ATOM}{required}").text
    assert feed.find(f"{ATOM}author/{ATOM}name").text
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == ["Feed story two", "Feed story one"]
    for entry in entries:
        for required in ["id", "title", "updated"]:
            assert entry.find(f"{ATOM}{required}").text
        assert entry.find(f"{ATOM}link").get("href").startswith("http://testserver/articles/")


def test_empty_feed_is_still_valid(client, seeded):
    feed = ET.fromstring(client.get("/feed.xml").body)
    assert feed.find(f"{ATOM}updated").text
    assert feed.findall(f"{ATOM}entry") == []


def test_sitemap_lists_pages_cards_and_published_articles(client, seeded):
    article = approved_article(seeded, "Sitemap story")
    urlset = ET.fromstring(client.get("/sitemap.xml").body)
    locs = [u.find(f"{SM}loc").text for u in urlset.findall(f"{SM}url")]
    assert "http://testserver/" in locs
    assert "http://testserver/cards/amex-platinum" in locs
    assert f"http://testserver/articles/{article['slug']}" in locs
    assert len([loc for loc in locs if "/cards/" in loc]) == len(store.load_seed_cards())


def test_robots_points_to_sitemap_and_hides_admin(client, seeded):
    text = client.get("/robots.txt").text
    assert "Sitemap: http://testserver/sitemap.xml" in text
    assert "Disallow: /admin" in text


def test_api_cards_and_card(client, seeded):
    cards = client.get("/api/cards").json["cards"]
    assert len(cards) == len(store.load_seed_cards())
    card = client.get("/api/cards/citi-double-cash").json
    assert card["category"] == "Cash-back"
    assert set(card["sections"]) >= {"welcome_bonus", "earning_rates", "drawbacks", "best_for"}
    assert card["recent_changes"] == []
    assert client.get("/api/cards/nope", status=404).json["status"] == 404


def test_api_articles_published_only_with_filters(client, seeded):
    approved_article(seeded, "API deal", type="deal")
    approved_article(seeded, "API news", type="summary")
    all_articles = client.get("/api/articles").json["articles"]
    assert [a["title"] for a in all_articles] == ["API news", "API deal"]
    assert [a["title"] for a in client.get("/api/articles?type=deal").json["articles"]] == ["API deal"]
    assert "critic_score" not in all_articles[0]
    assert client.get("/api/articles?limit=abc", status=400).json["message"]
    assert client.get("/api/articles?type=bogus", status=400).json["status"] == 400


def test_api_card_carries_its_fee_as_stated_and_its_sources(client, seeded):
    card = client.get("/api/cards/bilt-mastercard").json
    assert card["fee"] == "$0, $95 or $495 annual fee, by tier"
    assert [t["usd"] for t in card["fee_tiers"]] == [0, 95, 495]
    assert card["sources"] and all(s["url"].startswith("https://") for s in card["sources"])
    assert card["facts_checked"] == store.get_card(seeded, "bilt-mastercard")["facts_checked"]
    bare = sample_card(slug="unchecked-card", name="Unchecked Card", keywords=["Unchecked Card"], sources=[])
    del bare["facts_checked"]  # every seeded card is checked now: a card that is not, made here
    store.seed_cards(seeded, [bare])
    unchecked = next(c for c in client.get("/api/cards").json["cards"] if c["slug"] == "unchecked-card")
    assert unchecked["facts_checked"] is None and unchecked["sources"] == []
