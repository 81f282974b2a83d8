"""Images: five sources searched concurrently, two-phase scoring, no image rather than a wrong one."""

import base64
import io
import time

import pytest
from PIL import Image
from standins import use_llm
from standins.images import ImageServers, jpeg
from standins.openai import OpenAIStandin

import images
import llm
import metrics

ARTICLE = {
    "title": "Chase Sapphire Preferred bonus jumps to 100,000 points",
    "tldr": "The welcome offer is the highest in years, for a limited time.",
}


@pytest.fixture
def model(config):
    with OpenAIStandin() as standin:
        use_llm(config, standin)
        yield standin


@pytest.fixture
def client(config, model):
    return llm.Client(config)


def counter(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0


def test_query_terms_come_from_title_and_tldr():
    assert images.query_terms(ARTICLE["title"], ARTICLE["tldr"]) == [
        "Chase Sapphire Preferred bonus",
        "welcome offer highest",
    ]
    assert images.query_terms("Amex", "") == ["Amex"]


def test_the_best_specific_image_wins_with_its_attribution(config, servers, client):
    before = counter("milesahead_image_scoring_total", phase="vision", outcome="bad_image")
    result = images.find_image(config, client, ARTICLE)
    fields = result["fields"]
    assert fields["image_url"] == servers["unsplash"].img({"id": "u1"})
    assert fields["image_attribution"] == {
        "title": "Credit card on a wooden desk",
        "author": "Ana Photographer",
        "author_url": "https://unsplash.example/@ana?utm_source=milesahead&utm_medium=referral",
        "license_url": "https://unsplash.com/license",
        "source": "Unsplash",
        "license": "Unsplash License",
        "link": "https://unsplash.example/photos/u1?utm_source=milesahead&utm_medium=referral",
    }
    assert fields["image_alt"] == "Credit card on a wooden desk"
    thumb = Image.open(io.BytesIO(base64.b64decode(fields["image_thumb_url"].split(",", 1)[1])))
    assert thumb.format == "JPEG" and max(thumb.size) <= images.THUMB_PX
    # the not-an-image and the huge file were turned away, not scored
    weighed = {c["url"].rsplit("/", 1)[1]: c for c in result["candidates"]}
    assert weighed["o1.jpg"]["outcome"] == "bad_image" and "not an image" in weighed["o1.jpg"]["note"]
    assert weighed["w1.jpg"]["outcome"] == "bad_image" and "too large" in weighed["w1.jpg"]["note"]
    assert weighed["p1.jpg"]["outcome"] == "above_floor" and weighed["x1.jpg"]["outcome"] == "below_floor"
    assert weighed["u1.jpg"]["chosen"] and weighed["u2.jpg"]["text_score"] == 3
    assert counter("milesahead_image_scoring_total", phase="vision", outcome="bad_image") == before + 2
    assert len(servers["unsplash"].requests) >= 1
    assert any(r["path"] == "/download/u1" for r in servers["unsplash"].requests)  # Unsplash download tracking


def test_every_source_is_asked_in_its_documented_shape(config, servers, client):
    result = images.find_image(config, client, ARTICLE)
    assert {s: set(o) for s, o in result["outcomes"].items()} == {s: {"ok"} for s in images.SOURCES}
    sources = {c["source"] for c in result["candidates"]}
    assert sources == set(images.SOURCES)
    wikimedia = [c for c in result["candidates"] if c["source"] == "wikimedia"]
    assert all(not c["url"].endswith("w3.jpg") for c in wikimedia)  # the SVG is no photo
    openverse = next(c for c in result["candidates"] if c["source"] == "openverse")
    assert openverse["license"] == "CC BY 2.0"
    assert servers["pixabay"].searches[0]["query"]["per_page"] == "3"


def test_candidates_are_deduped_and_capped(config, servers, client):
    config["images"]["max_candidates"] = 7
    candidates, _ = images.search_all(config, ["credit card", "points bonus"])
    urls = [c["url"] for c in candidates]
    assert len(urls) == len(set(urls)) == 7
    per_source = {s: sum(c["source"] == s for c in candidates) for s in images.SOURCES}
    assert max(per_source.values()) <= 3 and min(per_source.values()) >= 1  # interleaved, none crowded out
    assert not any(c["url"].endswith("u4.jpg") for c in candidates)  # beyond per_page


def test_a_source_without_a_key_is_skipped_and_counted(config, servers, client):
    config["images"]["pexels"]["key"] = ""
    before = counter("milesahead_image_search_total", source="pexels", outcome="skipped")
    result = images.find_image(config, client, ARTICLE)
    assert result["outcomes"]["pexels"] == ["skipped"]
    assert servers["pexels"].requests == []
    assert counter("milesahead_image_search_total", source="pexels", outcome="skipped") == before + 1
    assert result["fields"]["image_url"].endswith("u1.jpg")


def test_a_dead_or_failing_source_does_not_stop_the_others(config, servers, client):
    servers["unsplash"].stop()
    servers["pixabay"].status = 500
    result = images.find_image(config, client, ARTICLE)
    assert set(result["outcomes"]["unsplash"]) == {"error"}
    assert set(result["outcomes"]["pixabay"]) == {"error"}
    assert result["fields"]["image_url"].endswith("p1.jpg")  # the next best, still above the floor


def test_nothing_good_enough_means_no_image(config, servers, client, model):
    model.overrides["score_image"] = '{"score": 4, "reason": "generic"}'
    result = images.find_image(config, client, ARTICLE)
    assert result["fields"] == {}
    assert "no candidate scored 6" in result["note"]
    assert not any(c["chosen"] for c in result["candidates"])


def test_vision_garbage_for_a_candidate_counts_as_error_not_a_pick(config, servers, client, model):
    model.overrides["score_image"] = "This looks like a nice photo."
    result = images.find_image(config, client, ARTICLE)
    assert result["fields"] == {}
    assert {c["outcome"] for c in result["candidates"] if c["outcome"]} == {"error", "bad_image"}


def test_phase_one_failure_still_lets_vision_decide(config, servers, client, model):
    model.faults = ["500"] * 4
    result = images.find_image(config, client, ARTICLE)
    assert result["fields"]["image_url"].endswith("u1.jpg")
    assert all(c["text_score"] is None for c in result["candidates"])


def test_no_candidates_at_all(config, servers, client):
    for name in images.SOURCES:
        servers[name].photos = []
    result = images.find_image(config, client, ARTICLE)
    assert result == {**result, "fields": {}, "note": "no candidates found"}


def test_sources_are_searched_concurrently(config):
    with ImageServers(delays={name: 0.3 for name in images.SOURCES}) as servers:
        servers.configure(config)
        started = time.monotonic()
        candidates, outcomes = images.search_all(config, ["credit card", "bonus"])
        elapsed = time.monotonic() - started
    assert all(set(o) == {"ok"} for o in outcomes.values())
    assert elapsed < 0.3 * 5 * 2 / 2  # sequential would be 3 s


def test_data_url_resizes_and_refuses_non_images():
    url = images.data_url(jpeg("red", (2000, 1000)), 512)
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.size == (512, 256)
    with pytest.raises(images.ImageRejected, match="not a readable image"):
        images.data_url(b"<html>nope</html>", 512)
