"""Publishing links an article to the cards it mentions; unpublishing undoes it; no duplicates."""

import pytest
from helpers import make_article, post_action, seed_sample_cards

import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open


@pytest.fixture
def cards(conn):
    return seed_sample_cards(conn)


def recent_changes(client, card_slug):
    return client.get(f"/api/cards/{card_slug}").json["recent_changes"]


def test_approve_links_every_mentioned_card_both_ways(editor, client, conn, cards):
    article_id = make_article(
        conn,
        title="sapphire reserve and venture x both raise bonuses",
        body_html="<p>Nothing about gold cards here: the Goldcard is not a card.</p>",
    )
    slug = store.get_article(conn, article_id)["slug"]
    assert "sapphire reserve and venture x" not in client.get("/cards/sapphire-reserve").text
    post_action(editor, article_id, "approve")
    for card in ("sapphire-reserve", "venture-x"):
        assert [c["slug"] for c in recent_changes(client, card)] == [slug]
        page = client.get(f"/cards/{card}")
        assert f'href="/articles/{slug}"' in page.text
    assert recent_changes(client, "amex-gold") == []
    article_page = client.get(f"/articles/{slug}")
    assert 'href="/cards/sapphire-reserve"' in article_page.text
    assert 'href="/cards/venture-x"' in article_page.text
    assert 'href="/cards/amex-gold"' not in article_page.text


def test_the_review_page_says_which_cards_approval_will_link(editor, conn, cards):
    article_id = make_article(conn)
    page = editor.get(f"/admin/articles/{article_id}")
    assert "Approving links it to these cards" in page.text
    assert 'href="/cards/sapphire-reserve"' in page.text
    assert 'href="/cards/venture-x"' not in page.text


def test_unpublish_removes_the_entries_and_reapproval_does_not_duplicate(editor, client, conn, cards):
    article_id = make_article(conn)
    slug = store.get_article(conn, article_id)["slug"]
    post_action(editor, article_id, "approve")
    assert len(recent_changes(client, "sapphire-reserve")) == 1
    post_action(editor, article_id, "unpublish")
    assert recent_changes(client, "sapphire-reserve") == []
    assert f"/articles/{slug}" not in client.get("/cards/sapphire-reserve").text
    rows = conn.execute("SELECT COUNT(*) FROM card_changes WHERE article_id = ?", (article_id,)).fetchone()[0]
    assert rows == 0
    post_action(editor, article_id, "approve")
    post_action(editor, article_id, "unpublish")
    post_action(editor, article_id, "approve")
    assert [c["slug"] for c in recent_changes(client, "sapphire-reserve")] == [slug]
    assert client.get("/cards/sapphire-reserve").text.count(f'href="/articles/{slug}"') == 1
    rows = conn.execute("SELECT COUNT(*) FROM card_changes WHERE article_id = ?", (article_id,)).fetchone()[0]
    assert rows == 1


def test_editing_a_live_article_relinks_its_cards(editor, client, conn, cards):
    article_id = make_article(conn)
    post_action(editor, article_id, "approve")
    post_action(editor, article_id, "edit", title="Venture X bonus climbs", tldr="Only the Venture X.")
    assert recent_changes(client, "sapphire-reserve") == []
    assert len(recent_changes(client, "venture-x")) == 1


def test_reseeding_cards_keeps_recent_changes(editor, client, conn, cards):
    article_id = make_article(conn)
    post_action(editor, article_id, "approve")
    seed_sample_cards(conn)
    store.seed_cards(conn, [dict(store.get_card(conn, "sapphire-reserve"), verdict="Updated verdict.")])
    assert len(recent_changes(client, "sapphire-reserve")) == 1
