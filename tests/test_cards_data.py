"""The seed data for the 41 reference cards: shape, counts and linking keywords."""

import datetime
import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

import store

SEED = Path(__file__).resolve().parent.parent / "seed-cards"

EXPECTED_CATEGORIES = {
    "Travel": 10,
    "Cash-back": 9,
    "Airline": 6,
    "Business": 5,
    "Hotel": 5,
    "Rewards": 6,
}

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


def test_there_are_41_cards_in_the_expected_categories(cards):
    assert len(cards) == 41
    assert Counter(card["category"] for card in cards) == EXPECTED_CATEGORIES


def test_slugs_and_names_are_unique(cards):
    slugs = [card["slug"] for card in cards]
    names = [card["name"] for card in cards]
    assert len(set(slugs)) == len(slugs)
    assert len(set(names)) == len(names)


def test_each_keyword_links_to_exactly_one_card(cards):
    owners = Counter(kw.casefold() for card in cards for kw in set(card["keywords"]))
    shared = sorted(kw for kw, count in owners.items() if count > 1)
    assert shared == []


def test_facts_checked_is_a_real_date_not_in_the_future(cards):
    today = datetime.date.today()
    for card in cards:
        checked = datetime.date.fromisoformat(card["facts_checked"])
        assert checked <= today, card["slug"]


def test_the_named_cards_are_present(cards):
    assert REQUIRED_SLUGS <= {card["slug"] for card in cards}
