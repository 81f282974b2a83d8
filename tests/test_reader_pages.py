"""Reader pages: content, empty states, head tags, 404s; only approved articles show."""

import re

import pytest
from helpers import approved_article

import store

PAGES = ["/", "/deals", "/news", "/cards", "/cards/amex-platinum"]


def test_home_empty_state_points_to_the_cards(client, seeded):
    page = client.get("/")
    assert "No articles published yet" in page.text
    assert page.html.find("a", class_="button")["href"] == "/cards"


def test_home_lists_published_articles_and_deals_stand_out(client, seeded):
    approved_article(seeded, "Amex Platinum offer: 175,000 points", type="deal")
    approved_article(seeded, "United changes award pricing", type="summary")
    page = client.get("/")
    items = page.html.select("article.item")
    assert [i.h2.get_text(strip=True) for i in items] == [
        "United changes award pricing",
        "Amex Platinum offer: 175,000 points",
    ]
    assert "item-deal" in items[1]["class"]
    assert "item-deal" not in items[0]["class"]


def test_deals_and_news_split_by_type(client, seeded):
    approved_article(seeded, "A deal story", type="deal")
    approved_article(seeded, "A news story", type="summary")
    approved_article(seeded, "A roundup story", type="roundup")
    deals = client.get("/deals").text
    news = client.get("/news").text
    assert "A deal story" in deals and "A news story" not in deals
    assert "A news story" in news and "A roundup story" in news and "A deal story" not in news


def test_article_page_has_body_and_sidebar(client, seeded):
    article = approved_article(
        seeded,
        "Venture X lounge changes",
        image_url="https://images.example/photo.jpg",
        image_alt="An airport lounge",
        image_attribution={
            "author": "Jo Doe",
            "source": "Unsplash",
            "license": "Unsplash License",
            "link": "https://u.example/p",
        },
    )
    page = client.get(f"/articles/{article['slug']}")
    body = page.html.select_one(".article-body")
    side = page.html.select_one("aside.article-side")
    assert "Body text." in body.text
    assert side.select_one("dl.details dt").text == "Bonus"
    assert "Scout's Take" in side.text and "Worth it if you travel." in side.text
    assert "Source story" in side.text and "Issuer page" in side.text
    assert "Jo Doe" in side.text and "Unsplash License" in side.text
    assert body.img["alt"] == "An airport lounge"


def test_unapproved_articles_are_never_visible(client, seeded):
    for status in ["draft", "pending", "revision_requested", "rejected", "unpublished"]:
        article_id = store.insert_article(seeded, title=f"Secret {status} story", status=status, tldr="hidden")
        slug = store.get_article(seeded, article_id)["slug"]
        client.get(f"/articles/{slug}", status=404)
        client.get(f"/api/articles/{slug}", status=404)
    for url in ["/", "/deals", "/news", "/feed.xml", "/sitemap.xml", "/api/articles"]:
        assert "Secret" not in client.get(url).text, url


def test_cards_index_groups_every_card_by_category(client, seeded):
    page = client.get("/cards")
    sections = page.html.select("section.category")
    assert [s.h2.text for s in sections] == store.CATEGORIES
    assert sum(len(s.select("li.card-tile")) for s in sections) == len(store.load_seed_cards())


def test_card_page_has_verdict_nine_sections_and_recent_changes(client, seeded):
    card = store.get_card(seeded, "chase-sapphire-reserve")
    page = client.get("/cards/chase-sapphire-reserve")
    assert page.html.h1.text == card["name"]
    assert "Scout's Verdict" in page.html.select_one(".verdict h2").text
    headings = [h.text for h in page.html.select(".card-section h2")]
    assert headings == [label for _, label in store.SECTIONS] + ["Recent Changes", "Sources"]
    assert "No published news about this card yet." in page.text
    assert card["facts_checked"] in page.html.select_one(".fee-line time")["datetime"]


def test_card_recent_changes_lists_linked_published_articles(client, seeded):
    card = store.get_card(seeded, "amex-platinum")
    article = approved_article(seeded, "Platinum lounge news")
    seeded.execute(
        "INSERT INTO card_changes (card_id, article_id, created_at) VALUES (?, ?, ?)",
        (card["id"], article["id"], store.now()),
    )
    recent = client.get("/cards/amex-platinum").html.select_one("#recent-changes")
    assert recent.a["href"] == f"/articles/{article['slug']}"


@pytest.mark.parametrize("url", ["/cards/no-such-card", "/articles/no-such-story", "/nowhere"])
def test_unknown_addresses_get_a_real_404_page(client, seeded, url):
    page = client.get(url, status=404)
    assert page.content_type == "text/html"
    assert "Page not found" in page.text
    assert "Traceback" not in page.text


def test_wrong_method_is_a_405_page_not_a_traceback(client, seeded):
    page = client.post("/cards", status=405)
    assert "Traceback" not in page.text


def test_persona_name_comes_from_config(config, seeded):
    import webtest

    import app as milesahead

    config["site"]["persona_name"] = "Pathfinder"
    client = webtest.TestApp(milesahead.create_app(config))
    assert "Pathfinder's Verdict" in client.get("/cards/amex-platinum").text


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_title_description_canonical_and_open_graph(client, seeded, url):
    page = client.get(url)
    head = page.html.head
    assert head.title.text.strip()
    assert head.find("meta", attrs={"name": "description"})["content"].strip()
    assert head.find("link", rel="canonical")["href"] == "http://testserver" + url
    for prop in ["og:title", "og:description", "og:type", "og:url"]:
        assert head.find("meta", property=prop)["content"].strip(), prop


@pytest.mark.parametrize("url", PAGES)
def test_pages_have_landmarks_and_no_external_resources(client, seeded, url):
    page = client.get(url)
    assert page.html.find("header") and page.html.find("main") and page.html.find("footer")
    assert page.html.find("nav")
    for tag in page.html.find_all(["script", "link", "img"]):
        ref = tag.get("src") or tag.get("href") or ""
        if tag.name == "link" and tag.get("rel") == ["canonical"]:
            continue
        assert not re.match(r"https?://", ref) or tag.name == "img", f"external resource {ref}"


def test_article_html_is_sanitised_when_written(seeded, client):
    article = approved_article(seeded, "Sanitised story", body_html='<p onclick="x()">Hi<script>alert(1)</script></p>')
    stored = store.get_article(seeded, article["id"])["body_html"]
    assert "script" not in stored and "onclick" not in stored
    assert "<p>Hi</p>" in stored


def test_templates_escape_titles(seeded, client):
    article = approved_article(seeded, "<b>bold</b> & co")
    page = client.get(f"/articles/{article['slug']}")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page.text


def test_bilt_shows_its_three_tiers_not_no_annual_fee(client, seeded):
    page = client.get("/cards/bilt-mastercard").html
    assert page.select_one(".fee-line").text.startswith("$0, $95 or $495 annual fee, by tier")
    tile = client.get("/cards").html.find("a", href="/cards/bilt-mastercard").find_parent("li")
    assert "No annual fee" not in tile.text


def test_a_first_year_waiver_shows_on_the_card_and_in_the_list(client, seeded):
    assert "$0 annual fee the first year, then $150" in client.get("/cards/united-explorer").text
    tile = client.get("/cards").html.find("a", href="/cards/united-explorer").find_parent("li")
    assert tile.select_one(".fee").text == "$0 annual fee the first year, then $150"
