"""A card page: dated offers, fees as issuers state them, sources, links to other cards' pages."""

import datetime
import json
import os
import subprocess
import sys

import pytest
from helpers import report_cards, sample_card

import app as milesahead
import store


def seed(conn, *cards):
    store.seed_cards(conn, list(cards))


def test_sources_are_listed_with_links_and_the_date_they_were_read(client, conn):
    sources = [
        {"url": "https://bank.example/card", "title": "Card terms", "publisher": "Sample Bank", "read": "2026-11-30"},
        {
            "url": "https://review.example/card",
            "title": "Card review",
            "publisher": "Review Site",
            "published": "2026-10-02",
            "read": "2026-11-30",
        },
    ]
    seed(conn, sample_card(sources=sources, facts_checked="2026-11-30"))
    section = client.get("/cards/sample-card").html.select_one("#sources")
    assert section.h2.text == "Sources"
    assert [a["href"] for a in section.select("a")] == ["https://bank.example/card", "https://review.example/card"]
    assert "30 Nov 2026" in section.text and "2 Oct 2026" in section.text
    assert [t["datetime"] for t in section.select("li time")] == ["2026-11-30", "2026-11-30"]


def test_seeding_refuses_a_source_that_is_not_http(conn):
    bad = {"url": "javascript:alert(1)", "title": "Odd source", "publisher": "Nobody", "read": "2026-11-30"}
    with pytest.raises(store.CardError, match="sources.0.url"):
        seed(conn, sample_card(sources=[bad]))
    assert store.get_card(conn, "sample-card") is None


def test_a_stored_source_that_is_not_http_is_shown_but_never_linked(client, conn):
    """A row written before the URL policy, or by a path that forgot it, still prints no bad link."""
    seed(conn, sample_card())
    bad = {"url": "javascript:alert(1)", "title": "Odd source", "publisher": "Nobody", "read": "2026-11-30"}
    conn.execute("UPDATE cards SET sources = ? WHERE slug = 'sample-card'", (json.dumps([bad]),))
    page = client.get("/cards/sample-card")
    section = page.html.select_one("#sources")
    assert "Odd source" in section.text
    assert section.select("a") == []
    assert "javascript:" not in page.text


def test_a_card_whose_network_no_source_confirms_names_none(client, conn):
    card = sample_card()
    del card["network"]
    seed(conn, card)
    meta = client.get("/cards/sample-card").html.select_one(".card-page .meta")
    assert meta.text.split(" · ") == ["Travel", "Sample Bank"]
    assert client.get("/api/cards/sample-card").json["network"] is None


def test_the_welcome_offer_says_offers_change_and_links_the_issuer(client, conn):
    sections = {key: ["A fact."] for key, _ in store.SECTIONS}
    sections["welcome_bonus"] = ["Seen November 2026: 60,000 points after $4,000 in 3 months"]
    seed(conn, sample_card(sections=sections))
    offer = client.get("/cards/sample-card").html.select_one("#welcome-bonus")
    assert offer.li.text.startswith("Seen November 2026: ")
    note = offer.select_one(".offer-note")
    assert "Offers change" in note.text
    assert note.a["href"] == "https://example.com/card"


def fee_lines(client, slug):
    card_page = client.get(f"/cards/{slug}").html.select_one(".fee-line").text
    tile = client.get("/cards").html.find("a", href=f"/cards/{slug}").find_parent("li").select_one(".fee").text
    return card_page, tile


def test_fees_are_stated_by_tier_and_first_year_and_free_only_when_every_tier_is(client, conn):
    tiers = [{"name": "Blue", "usd": 0}, {"name": "Obsidian", "usd": 95}, {"name": "Palladium", "usd": 495}]
    seed(
        conn,
        sample_card(slug="tiered", name="Tiered", keywords=["Tiered"], annual_fee_usd=0, fee_tiers=tiers),
        sample_card(slug="waived", name="Waived", keywords=["Waived"], annual_fee_usd=95, first_year_fee_usd=0),
        sample_card(slug="free", name="Free", keywords=["Free"], annual_fee_usd=0),
        sample_card(slug="plain", name="Plain", keywords=["Plain"], annual_fee_usd=550),
    )
    page, tile = fee_lines(client, "tiered")
    assert "$0, $95 or $495 annual fee, by tier" in page and "No annual fee" not in page
    assert tile == "$0, $95 or $495 annual fee, by tier"
    tiers_text = client.get("/cards/tiered").html.select_one("#annual-fee .fee-tiers").text
    assert tiers_text == "Blue: no annual fee, Obsidian: $95, Palladium: $495"
    page, tile = fee_lines(client, "waived")
    assert "$0 annual fee the first year, then $95" in page and tile == "$0 annual fee the first year, then $95"
    assert fee_lines(client, "free")[1] == "No annual fee"
    assert fee_lines(client, "plain")[1] == "$550 annual fee"


def test_card_text_links_the_other_cards_it_names_but_not_itself(client, conn):
    sections = {key: ["A fact."] for key, _ in store.SECTIONS}
    sections["best_for"] = [
        "If you fly less, the Explorer Card does most of this for less; the Sample Card is for <b>you</b>"
    ]
    seed(
        conn,
        sample_card(sections=sections, verdict="Pick the explorer card instead."),
        sample_card(slug="explorer", name="Explorer Card", keywords=["Explorer Card"]),
    )
    page = client.get("/cards/sample-card").html
    assert [a["href"] for a in page.select("#best-for li a")] == ["/cards/explorer"]
    assert page.select_one(".verdict a")["href"] == "/cards/explorer"
    assert "<b>you</b>" in page.select_one("#best-for li").text  # card text is escaped, not HTML


def test_cards_report_lists_oldest_facts_first_with_each_sources_age(conn):
    report_cards(conn)
    rows = store.cards_report(conn, today=datetime.date(2026, 12, 1))
    assert [r["slug"] for r in rows] == ["stale", "fresh"]
    assert rows[0]["oldest_age_days"] == 519
    assert [(s["dated"], s["age_days"]) for s in rows[0]["sources"]] == [("2026-11-30", 1), ("2025-06-30", 519)]


def test_a_card_without_sources_says_so_and_heads_the_report(client, conn):
    report_cards(conn)
    seed(conn, sample_card(slug="unsourced", name="Unsourced", keywords=["Unsourced"], sources=[]))
    assert "Not yet re-checked" in client.get("/cards/unsourced").html.select_one(".fee-line").text
    assert client.get("/cards/unsourced").html.select_one("#sources") is None
    rows = store.cards_report(conn, today=datetime.date(2026, 12, 1))
    assert [r["slug"] for r in rows] == ["unsourced", "stale", "fresh"]
    assert rows[0]["oldest_age_days"] is None


def test_cards_report_command_prints_the_same_order(config, conn, tmp_path, capsys):
    report_cards(conn)
    config_file = tmp_path / "cli.yaml"
    config_file.write_text(f"database:\n  path: {config['database']['path']}\n")
    milesahead.main(["--config", str(config_file), "cards-report"])
    out = capsys.readouterr().out
    assert out.index("Stale (stale)") < out.index("Fresh (fresh)")
    assert "2025-06-30  Pub C: C review" in out
    assert "undated, read 2026-11-30  Pub B: B" in out


def test_cards_report_piped_into_head_ends_quietly(config, conn, tmp_path):
    """`cards-report | head` closes the pipe early: the command stops without a traceback."""
    store.seed_cards(
        conn, [sample_card(slug=f"card-{n}", name=f"Card {n}", keywords=[f"Card {n}"]) for n in range(400)]
    )
    config_file = tmp_path / "cli.yaml"
    config_file.write_text(f"database:\n  path: {config['database']['path']}\n")
    report = subprocess.Popen(
        [sys.executable, "app.py", "--config", str(config_file), "cards-report"],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    report.stdout.close()  # head, gone before the report's first write (the report is > 8 KB)
    _, errors = report.communicate(timeout=60)
    assert b"Traceback" not in errors, errors.decode()
    assert report.returncode != 0
