"""Seeding the reference cards: validated, idempotent, never erases Recent Changes."""

import json
import pathlib
from collections import Counter

import pytest
from helpers import approved_article

import app as milesahead
import store


def test_seed_loads_every_card_in_the_file(conn):
    cards = store.load_seed_cards()
    counts = store.seed_cards(conn, cards)
    assert counts == {"inserted": len(cards), "updated": 0, "unchanged": 0}
    assert store.count_cards(conn) == len(cards)
    groups = dict(store.cards_by_category(conn))
    assert {c: len(group) for c, group in groups.items()} == Counter(card["category"] for card in cards)


def test_seeding_twice_changes_nothing(conn):
    cards = store.load_seed_cards()
    store.seed_cards(conn, cards)
    before = [dict(r) for r in conn.execute("SELECT * FROM cards ORDER BY id")]
    assert store.seed_cards(conn, cards) == {"inserted": 0, "updated": 0, "unchanged": len(cards)}
    assert [dict(r) for r in conn.execute("SELECT * FROM cards ORDER BY id")] == before


def test_a_changed_card_is_updated_and_keeps_its_recent_changes(seeded):
    card = store.get_card(seeded, "chase-sapphire-reserve")
    article = approved_article(seeded, "Sapphire Reserve news")
    seeded.execute(
        "INSERT INTO card_changes (card_id, article_id, created_at) VALUES (?, ?, ?)",
        (card["id"], article["id"], store.now()),
    )
    cards = store.load_seed_cards()
    for c in cards:
        if c["slug"] == "chase-sapphire-reserve":
            c["verdict"] = "A changed verdict."
    assert store.seed_cards(seeded, cards) == {"inserted": 0, "updated": 1, "unchanged": len(cards) - 1}
    updated = store.get_card(seeded, "chase-sapphire-reserve")
    assert updated["verdict"] == "A changed verdict."
    assert updated["id"] == card["id"]
    assert [c["slug"] for c in store.card_recent_changes(seeded, card["id"])] == [article["slug"]]


def test_malformed_card_is_rejected_naming_card_and_field(tmp_path):
    data = json.loads(pathlib.Path(store.CARDS_FILE).read_text())
    data["cards"][3]["annual_fee_usd"] = "free"
    name = data["cards"][3]["name"]
    bad = tmp_path / "cards.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(store.CardError) as e:
        store.load_seed_cards(str(bad))
    assert name in str(e.value)
    assert "annual_fee_usd" in str(e.value)


def test_missing_section_is_rejected_naming_the_field(tmp_path):
    data = json.loads(pathlib.Path(store.CARDS_FILE).read_text())
    del data["cards"][0]["sections"]["drawbacks"]
    bad = tmp_path / "cards.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(store.CardError) as e:
        store.load_seed_cards(str(bad))
    assert data["cards"][0]["name"] in str(e.value)
    assert "drawbacks" in str(e.value)


def test_cli_seed_cards_is_idempotent(config, tmp_path, capsys):
    config_file = tmp_path / "cli.yaml"
    config_file.write_text(f"database:\n  path: {config['database']['path']}\n")
    count = len(store.load_seed_cards())
    milesahead.main(["--config", str(config_file), "seed-cards"])
    assert f"{count} inserted" in capsys.readouterr().out
    milesahead.main(["--config", str(config_file), "seed-cards"])
    assert f"0 inserted, 0 updated, {count} unchanged" in capsys.readouterr().out


def rejected(tmp_path, data):
    bad = tmp_path / "cards.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(store.CardError) as e:
        store.load_seed_cards(str(bad))
    return str(e.value)


def test_a_checked_card_must_date_its_welcome_offer(tmp_path):
    data = json.loads(pathlib.Path(store.CARDS_FILE).read_text())
    card = next(c for c in data["cards"] if c["sources"])
    card["sections"]["welcome_bonus"][0] = "Recently: a big bonus"
    message = rejected(tmp_path, data)
    assert card["name"] in message and "welcome_bonus" in message


def test_a_card_without_sources_cannot_claim_a_check_date(tmp_path):
    data = json.loads(pathlib.Path(store.CARDS_FILE).read_text())
    card = next(c for c in data["cards"] if c["sources"])
    card["sources"] = []
    assert card["name"] in rejected(tmp_path, data)


def test_a_source_needs_the_day_it_was_read(tmp_path):
    data = json.loads(pathlib.Path(store.CARDS_FILE).read_text())
    card = next(c for c in data["cards"] if c["sources"])
    del card["sources"][0]["read"]
    message = rejected(tmp_path, data)
    assert card["name"] in message and "sources" in message


def test_a_card_may_leave_out_a_network_no_source_confirms(tmp_path, conn):
    data = json.loads(pathlib.Path(store.CARDS_FILE).read_text())
    card = next(c for c in data["cards"] if c["sources"])
    del card["network"]
    path = tmp_path / "cards.json"
    path.write_text(json.dumps(data))
    store.seed_cards(conn, store.load_seed_cards(str(path)))
    assert store.get_card(conn, card["slug"])["network"] == ""
