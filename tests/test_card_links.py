"""No dead ends: a card that card text names has a page, and the name links to it."""

import re

import pytest
from helpers import card_texts

import store
import workflow

# Cards a points-and-miles reader may be pointed to. Card text that names one of these
# must name a card in the reference (its name or a keyword), so the name becomes a link;
# add the card (or stop naming it) before the test passes.
CARD_NAMES = [
    "United Explorer",
    "United Quest",
    "United Gateway",
    "United Club Infinite",
    "AAdvantage Platinum Select",
    "AAdvantage MileUp",
    "AAdvantage Executive",
    "Atmos Rewards Ascent",
    "Atmos Rewards Summit",
    "Blue Business Plus",
    "Blue Business Cash",
    "Venture X Business",
    "Venture X",
    "VentureOne",
    "Spark Cash Plus",
    "Spark Miles",
    "Quicksilver",
    "Savor",
    "Sapphire Reserve for Business",
    "Sapphire Reserve",
    "Sapphire Preferred",
    "Ink Business Premier",
    "Ink Business Preferred",
    "Ink Business Cash",
    "Ink Business Unlimited",
    "Freedom Flex",
    "Freedom Unlimited",
    "Freedom Rise",
    "Delta SkyMiles Blue",
    "Delta SkyMiles Gold",
    "Delta SkyMiles Platinum",
    "Delta SkyMiles Reserve",
    "Hilton Honors Surpass",
    "Hilton Honors Aspire",
    "Hilton Honors Business",
    "Marriott Bonvoy Bevy",
    "Marriott Bonvoy Bold",
    "Marriott Bonvoy Brilliant",
    "Marriott Bonvoy Boundless",
    "World of Hyatt Business",
    "IHG One Rewards Traveler",
    "IHG One Rewards Premier",
    "Southwest Rapid Rewards Plus",
    "Southwest Rapid Rewards Premier",
    "Southwest Rapid Rewards Priority",
    "JetBlue Premier",
    "Amex EveryDay",
    "Blue Cash Everyday",
    "Blue Cash Preferred",
    "Business Platinum",
    "Business Gold",
    "Amex Green",
    "Citi Rewards+",
    "Custom Cash",
    "Double Cash",
    "Strata Premier",
    "Strata Elite",
    "Autograph Journey",
    "Active Cash",
    "Premium Rewards Elite",
    "Customized Cash Rewards",
    "Unlimited Cash Rewards",
    "Discover it Miles",
]


@pytest.fixture(scope="module")
def cards():
    return store.load_seed_cards()


@pytest.fixture(scope="module")
def linker(cards):
    return workflow.CardLinker(cards)


def test_every_card_that_card_text_names_has_a_page_and_is_linked(cards, linker):
    dead_ends = []
    for card in cards:
        for where, text in card_texts(card):
            normalised, spans = linker.spans(text)
            for name in CARD_NAMES:
                for hit in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", normalised, re.IGNORECASE):
                    if not any(start <= hit.start() and hit.end() <= end for start, end, _ in spans):
                        dead_ends.append(f"{card['slug']} {where}: {name!r}")
    assert dead_ends == []


def test_a_card_page_links_each_other_card_its_text_names(client, seeded, linker):
    card = store.get_card(seeded, "united-club-infinite")
    named = {slug for _, text in card_texts(card) for _, _, slug in linker.spans(text)[1]} - {card["slug"]}
    assert named, "the United Club Infinite's text names the cheaper United cards"
    page = client.get("/cards/united-club-infinite").html
    links = [a["href"] for a in page.select(".verdict a, .card-section li a")]
    linked = {href.removeprefix("/cards/") for href in links if href.startswith("/cards/")}  # not the sources
    assert named <= linked
    for slug in linked:
        client.get(f"/cards/{slug}")  # every link has a page (a 404 would fail here)
