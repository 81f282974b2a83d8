"""No article an editor has not approved is reachable from any reader URL, feed, sitemap or API."""

import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from helpers import login, make_article, post_action, seed_sample_cards

import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open


@pytest.fixture
def newsroom(client, conn):
    """One article in every status, each naming a card; the unpublished one was live before."""
    seed_sample_cards(conn)
    hidden = {}
    for status in ("draft", "pending", "revision_requested", "rejected"):
        hidden[status] = make_article(conn, status=status, title=f"Hiddenmark {status} Sapphire Reserve news")
    was_live = make_article(conn, status="draft", title="Hiddenmark unpublished Sapphire Reserve news")
    login(client)
    post_action(client, was_live, "approve")
    post_action(client, was_live, "unpublish")
    hidden["unpublished"] = was_live
    # A stale link row must not leak either: reader queries filter on status themselves.
    card = store.get_card(conn, "sapphire-reserve")
    conn.execute(
        "INSERT INTO card_changes (card_id, article_id, created_at) VALUES (?, ?, ?)",
        (card["id"], hidden["draft"], store.now()),
    )
    conn.execute("INSERT INTO article_cards (article_id, card_id) VALUES (?, ?)", (hidden["draft"], card["id"]))
    live = make_article(conn, status="draft", title="Visiblemark Sapphire Reserve news")
    post_action(client, live, "approve")
    post_action(client, live, "edit", type="roundup")  # so the deal lists have only hidden deals to leak
    client.reset()  # readers from here on
    slugs = {status: store.get_article(conn, i)["slug"] for status, i in hidden.items()}
    return slugs, store.get_article(conn, live)["slug"]


def links(text):
    found = re.findall(r'(?:href|src)="([^"]+)"|<loc>([^<]+)</loc>|"url": "([^"]+)"', text)
    for groups in found:
        url = unescape(next(g for g in groups if g))
        parts = urlsplit(url)
        if parts.netloc in ("", "testserver") and parts.path.startswith("/"):
            yield parts.path + (f"?{parts.query}" if parts.query else "")


def crawl(client, start):
    seen, queue, pages = set(), list(start), {}
    while queue:
        path = queue.pop(0)
        if path in seen or path.startswith(("/admin", "/api/admin", "/static")):
            continue
        seen.add(path)
        response = client.get(path, status="*")
        pages[path] = (response.status_int, response.text)
        if response.status_int == 200:
            queue.extend(links(response.text))
    return pages


READER_START = [
    "/",
    "/deals",
    "/news",
    "/cards",
    "/feed.xml",
    "/sitemap.xml",
    "/robots.txt",
    "/api/articles",
    "/api/articles?type=deal",
    "/api/articles?type=summary",
    "/api/articles?limit=500",
    "/api/cards",
]


def test_only_approved_articles_reach_readers(client, newsroom):
    hidden, visible = newsroom
    card_apis = [f"/api/cards/{c['slug']}" for c in client.get("/api/cards").json["cards"]]
    pages = crawl(client, READER_START + card_apis + [f"/api/articles/{visible}"])
    assert f"/articles/{visible}" in pages  # the crawl does reach published articles
    assert any("Visiblemark" in text for _, text in pages.values())
    assert "/cards/sapphire-reserve" in pages and "/api/cards/sapphire-reserve" in pages
    for path, (status, text) in pages.items():
        assert "Hiddenmark" not in text, path
        for slug in hidden.values():
            assert slug not in text, path
        assert status in (200, 404), path


def test_direct_urls_of_unapproved_articles_are_404(client, newsroom):
    hidden, visible = newsroom
    client.get(f"/articles/{visible}", status=200)
    for slug in hidden.values():
        page = client.get(f"/articles/{slug}", status=404)
        assert "Hiddenmark" not in page.text
        assert "Hiddenmark" not in client.get(f"/api/articles/{slug}", status=404).text


def test_card_recent_changes_list_only_the_published_article(client, newsroom):
    hidden, visible = newsroom
    changes = client.get("/api/cards/sapphire-reserve").json["recent_changes"]
    assert [c["slug"] for c in changes] == [visible]


def test_the_desk_and_its_api_are_closed_to_readers(client, conn, newsroom):
    hidden, _ = newsroom
    draft_id = conn.execute("SELECT id FROM articles WHERE slug = ?", (hidden["draft"],)).fetchone()[0]
    for path in ("/admin", f"/admin/articles/{draft_id}", f"/admin/articles/{draft_id}/preview", "/admin/runs"):
        response = client.get(path, status=302)
        assert "Hiddenmark" not in response.text
    for path in ("/api/admin/articles", f"/api/admin/articles/{draft_id}", f"/api/admin/articles/{draft_id}/diff"):
        assert "Hiddenmark" not in client.get(path, status=401).text
    assert "Disallow: /admin" in client.get("/robots.txt").text


def test_the_workflow_never_published_anything_on_its_own(conn, newsroom):
    counts = store.status_counts(conn)
    assert counts["approved"] == 1
