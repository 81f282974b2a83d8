"""The desk's card-facts page: the cards-report list, behind the login."""

import pytest
from helpers import report_cards

pytestmark = pytest.mark.desk_open  # every test here has the desk open


def test_the_desk_lists_cards_oldest_facts_first(editor, conn):
    report_cards(conn)
    page = editor.get("/admin")
    assert page.html.select_one('.admin-bar a[href="/admin/cards"]').text == "Card facts"
    rows = editor.get("/admin/cards").html.select("table.cards-report tbody tr")
    assert [r.a.text for r in rows] == ["Stale", "Fresh"]
    assert "Pub C: C review" in rows[0].text


def test_the_card_facts_page_needs_a_login(client):
    page = client.get("/admin/cards", status=302)
    assert page.location.endswith("/admin/login?next=/admin/cards") or "/admin/login" in page.location
