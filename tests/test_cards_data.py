"""The seed data for the reference cards: shape, categories, sources, dates and linking keywords."""

import datetime
import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

import store

SEED = Path(__file__).resolve().parent.parent / "seed-cards"

REQUIRED_SLUGS = {
    "amex-platinum",
    "chase-sapphire-reserve",
    "capital-one-venture-x",
    "citi-double-cash",
    "chase-freedom-flex",
    "discover-it-cash-back",
    "delta-skymiles-reserve",
    "united-club-infinite",
    "amex-business-platinum",
    "chase-ink-business-preferred",
    "hilton-honors-aspire",
    "marriott-bonvoy-brilliant",
    "bilt-mastercard",
    "bank-of-america-premium-rewards-elite",
}


@pytest.fixture(scope="module")
def cards():
    """The cards as seeding reads them: validated against the schema, itself checked first."""
    schema = json.loads((SEED / "cards.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return store.load_seed_cards()


def test_every_category_has_cards(cards):
    assert set(Counter(card["category"] for card in cards)) == set(store.CATEGORIES)


def test_slugs_and_names_are_unique(cards):
    slugs = [card["slug"] for card in cards]
    names = [card["name"] for card in cards]
    assert len(set(slugs)) == len(slugs)
    assert len(set(names)) == len(names)


def test_each_keyword_links_to_exactly_one_card(cards):
    owners = Counter(kw.casefold() for card in cards for kw in set(card["keywords"]))
    shared = sorted(kw for kw, count in owners.items() if count > 1)
    assert shared == []


def checked(cards):
    """The cards re-checked against cited sources; the others say they were not."""
    return [card for card in cards if card["sources"]]


def test_facts_checked_is_a_real_date_not_in_the_future(cards):
    today = datetime.date.today()
    for card in checked(cards):
        assert datetime.date.fromisoformat(card["facts_checked"]) <= today, card["slug"]


def test_each_card_was_checked_against_sources_read_by_then(cards):
    """facts_checked is the day the facts were compared with the sources: none read later."""
    for card in checked(cards):
        day = datetime.date.fromisoformat(card["facts_checked"])
        for source in card["sources"]:
            read = datetime.date.fromisoformat(source["read"])
            assert read <= day, (card["slug"], source["url"])
            if "published" in source:
                assert datetime.date.fromisoformat(source["published"]) <= read, (card["slug"], source["url"])


def test_a_card_without_sources_claims_no_check_date(cards):
    for card in cards:
        assert bool(card["sources"]) == ("facts_checked" in card), card["slug"]


def test_every_checked_welcome_offer_is_dated_by_a_month_no_later_than_the_check(cards):
    for card in checked(cards):
        offer = card["sections"]["welcome_bonus"][0]
        seen = datetime.datetime.strptime(offer.split(":")[0], "Seen %B %Y").date()
        assert seen <= datetime.date.fromisoformat(card["facts_checked"]), card["slug"]


def test_the_cards_the_issue_named_as_wrong_are_re_checked(cards):
    named = {"chase-sapphire-reserve", "chase-sapphire-preferred", "bilt-mastercard", "wells-fargo-autograph"}
    named |= {"wells-fargo-autograph-journey", "citi-custom-cash"}
    assert named <= {card["slug"] for card in checked(cards)}


def test_no_annual_fee_is_claimed_only_when_every_tier_is_free(cards):
    for card in cards:
        label = store.fee_label(card)
        free = card["annual_fee_usd"] == 0 and all(t["usd"] == 0 for t in card.get("fee_tiers", []))
        assert (label == "No annual fee") == free, card["slug"]
        claims_free = any("no annual fee" in point.lower() for point in card["sections"]["annual_fee"])
        assert not claims_free or free, card["slug"]


def test_the_named_cards_are_present(cards):
    assert REQUIRED_SLUGS <= {card["slug"] for card in cards}
