"""Image APIs and hosts on a bad day: errors in a 200, rate limits, page-size limits, dripping hosts, budgets."""

import pytest
from standins import use_llm
from standins.images import ImageServers
from standins.openai import OpenAIStandin

import images
import llm
import metrics

ARTICLE = {
    "title": "Chase Sapphire Preferred bonus jumps to 100,000 points",
    "tldr": "The welcome offer is the highest in years, for a limited time.",
}


@pytest.fixture
def client(config):
    with OpenAIStandin() as standin:
        use_llm(config, standin)
        yield llm.Client(config)


def counter(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0


def failures_of(result, source):
    return [f["reason"] for f in result["failures"] if f.get("source") == source]


def test_a_commons_error_sent_as_a_200_is_an_error_with_its_code(config, servers, client):
    servers["wikimedia"].api_error = ("ratelimited", "You've exceeded your rate limit. Please wait.")
    before = counter("milesahead_image_search_total", source="wikimedia", outcome="error")
    result = images.find_image(config, client, ARTICLE)
    assert set(result["outcomes"]["wikimedia"]) == {"error"}
    assert counter("milesahead_image_search_total", source="wikimedia", outcome="error") == before + 2
    reasons = failures_of(result, "wikimedia")
    assert len(reasons) == 2 and all("API error ratelimited" in r and "rate limit" in r for r in reasons)
    assert result["fields"]["image_url"].endswith("u1.jpg")  # the others still count


def test_openverse_is_never_asked_for_more_than_an_anonymous_page(config, servers, client):
    config["images"]["per_source"] = 25
    candidates, outcomes = images.search_all(config, ["credit card"])
    assert outcomes["openverse"] == ["ok"]
    assert [r["query"]["page_size"] for r in servers["openverse"].searches] == ["20"]
    assert all(int(r["query"]["per_page"]) <= 30 for r in servers["unsplash"].searches)


def test_a_429_is_asked_again_after_its_retry_after(config, servers, client):
    servers["pexels"].faults = [429]
    servers["pexels"].retry_after = "1"
    servers["unsplash"].faults = [503]
    candidates, outcomes = images.search_all(config, ["credit card"])
    assert outcomes["pexels"] == ["ok"] and outcomes["unsplash"] == ["ok"]
    assert len(servers["pexels"].requests) == 2
    assert any(c["source"] == "pexels" for c in candidates)


def test_a_retry_after_beyond_the_budget_is_a_recorded_error_not_a_wait(config, servers, client):
    config["images"]["budget_seconds"] = 5
    servers["pexels"].status = 429
    servers["pexels"].retry_after = "3600"
    failures = []
    candidates, outcomes = images.search_all(config, ["credit card"], failures=failures)
    assert outcomes["pexels"] == ["error"]
    assert len(servers["pexels"].requests) == 1  # no hour-long wait, no hammering either
    assert failures == [{"source": "pexels", "term": "credit card", "reason": failures[0]["reason"]}]
    assert "HTTP 429 (Retry-After 3600)" in failures[0]["reason"]


def test_a_plain_text_error_is_recorded_with_what_it_said(config, servers, client):
    servers["pixabay"].status = 400
    failures = []
    images.search_all(config, ["credit card"], failures=failures)
    assert [f["reason"] for f in failures] == ["HTTP 400: [ERROR 400] stand-in failure"]


def test_a_host_that_drips_an_image_is_cut_at_the_deadline(config, servers, client):
    # 64 bytes a second, no Content-Length: a day to reach the size cap
    servers["unsplash"].photos = [dict(p, kind="drip") for p in servers["unsplash"].photos]
    config["images"]["timeout_seconds"] = 2
    result = images.find_image(config, client, ARTICLE)
    dripped = [c for c in result["candidates"] if c["source"] == "unsplash" and c["outcome"]]
    assert dripped and all(c["outcome"] == "bad_image" for c in dripped)
    assert all(c["note"] == "no whole answer within the deadline" for c in dripped)
    assert result["fields"]["image_url"].endswith("p1.jpg")  # the next best, found in time


def test_a_story_whose_image_search_overruns_its_budget_gets_no_image(config, client):
    config["images"]["budget_seconds"] = 1
    with ImageServers(delays={name: 4 for name in images.SOURCES}) as servers:
        servers.configure(config)
        result = images.find_image(config, client, ARTICLE)
    assert result["fields"] == {} and result["note"].startswith("no candidates found")
    reasons = [f["reason"] for f in result["failures"]]
    assert len(reasons) == 10 and set(reasons) == {"no answer within the image budget"}
