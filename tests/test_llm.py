"""The chat-completions client: retries, backoff, Retry-After, timeouts, cache, bad replies."""

import time

import pytest
from standins import use_llm
from standins.openai import OpenAIStandin

import llm
import writer

HELLO = [{"role": "user", "content": "Task: persona_take. Say something."}]


@pytest.fixture
def server():
    with OpenAIStandin() as standin:
        yield standin


@pytest.fixture
def client(config, server):
    return llm.Client(use_llm(config, server))


def test_reply_text_model_and_bearer_key_are_sent(client, server):
    assert client.chat("generator", HELLO).startswith("Worth opening")
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer test-key"
    assert b'"model": "test/generator"' in request["body"]


def test_429_waits_for_retry_after_then_succeeds(client, server):
    server.faults = ["429"]
    started = time.monotonic()
    assert client.chat("generator", HELLO)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1, not the 0.01 s backoff
    assert len(server.requests) == 2


def test_retry_after_is_capped_by_max_wait(config, server):
    server.retry_after = "3600"
    server.faults = ["429"]
    client = llm.Client(use_llm(config, server, max_wait_seconds=0.05))
    started = time.monotonic()
    assert client.chat("generator", HELLO)
    assert time.monotonic() - started < 1


def test_retry_after_accepts_seconds_and_http_dates():
    assert llm.retry_after("7") == 7
    assert llm.retry_after("") is None
    assert llm.retry_after("soon") is None
    assert 0 <= llm.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0  # in the past: no wait


def test_500s_back_off_exponentially(config, server):
    waits = []
    client = llm.Client(use_llm(config, server, backoff_seconds=0.5), sleep=waits.append)
    server.faults = ["500", "503", "500"]
    assert client.chat("generator", HELLO)
    assert waits == [0.5, 1.0, 2.0]


def test_persistent_5xx_gives_up_with_the_reason(client, server):
    server.faults = ["500"] * 4
    with pytest.raises(llm.LLMError, match=r"HTTP 500 .*after 4 attempts"):
        client.chat("generator", HELLO)


def test_a_slow_reply_times_out_and_is_retried(config, server):
    server.slow_seconds = 1.0
    server.faults = ["slow"]
    client = llm.Client(use_llm(config, server, timeout_seconds=0.2))
    assert client.chat("generator", HELLO)
    assert len(server.requests) == 2


def test_timeouts_every_time_fail_with_the_reason(config, server):
    server.slow_seconds = 0.5
    server.faults = ["slow"] * 2
    client = llm.Client(use_llm(config, server, timeout_seconds=0.1, max_retries=1))
    with pytest.raises(llm.LLMError, match="no reply within 0.1s"):
        client.chat("generator", HELLO)


def test_malformed_json_body_is_retried(client, server):
    server.faults = ["malformed"]
    assert client.chat("generator", HELLO)
    assert len(server.requests) == 2


def test_bad_key_fails_at_once_without_retries(config, server):
    config = use_llm(config, server)
    config["llm"]["api_key"] = "wrong"
    with pytest.raises(llm.LLMError, match="HTTP 401"):
        llm.Client(config).chat("generator", HELLO)
    assert len(server.requests) == 1


def test_nobody_listening_is_an_llm_error(config, server):
    config = use_llm(config, server, max_retries=1)
    server.stop()
    with pytest.raises(llm.LLMError, match="connection failed"):
        llm.Client(config).chat("generator", HELLO)


def test_same_request_is_answered_from_the_cache(config, server):
    config = use_llm(config, server)
    assert llm.Client(config).chat("generator", HELLO)
    again = llm.Client(config)  # a new process would build a new client
    assert again.chat("generator", HELLO)
    assert len(server.requests) == 1
    assert again.stats["cache_hits"] == 1


def test_a_reply_the_caller_rejects_is_not_cached(config, server):
    config = use_llm(config, server)
    server.faults = ["garbage"]
    with pytest.raises(llm.LLMError, match="unusable reply"):
        llm.Client(config).chat("critic", HELLO, parse=writer.parse_critique)
    # asking again goes to the model instead of replaying the garbage
    server.overrides["persona_take"] = '{"score": 8, "issues": []}'
    assert llm.Client(config).chat("critic", HELLO, parse=writer.parse_critique)["score"] == 8
    assert len(server.requests) == 2


def test_garbage_output_is_asked_for_once_more_with_the_reason(client, server):
    server.faults = ["garbage"]
    critique = writer.ask(client, "critic", "Task: critique_article.", "article", writer.parse_critique)
    assert critique == {"score": 6.0, "issues": ["State the offer's end date."]}
    retry = server.requests[1]["body"].decode()
    assert "could not be used" in retry and "no JSON object" in retry


def test_garbage_twice_fails_that_item(client, server):
    server.faults = ["garbage", "garbage"]
    with pytest.raises(writer.UnusableReply, match="after one retry"):
        writer.ask(client, "critic", "Task: critique_article.", "article", writer.parse_critique)


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"score": 7, "issues": ["a"]}', {"score": 7.0, "issues": ["a"]}),
        ('Sure! ```json\n{"score": "8/10", "issues": "one"}\n```', {"score": 8.0, "issues": ["one"]}),
        ('<think>{"score": 1}</think>{"score": 14, "issues": []}', {"score": 10.0, "issues": []}),
    ],
)
def test_critique_replies_are_read_tolerantly(reply, expected):
    assert writer.parse_critique(reply) == expected


def test_article_replies_are_read_tolerantly():
    reply = (
        'Here you go: {"title": " Big  bonus ", "body": "First paragraph is long enough to count.\\n\\nSecond.",'
        ' "key_details": {"Bonus": "100k"}, "links": ["https://x.example/a", "javascript:alert(1)"]}'
    )
    article = writer.parse_article(reply)
    assert article["title"] == "Big bonus"
    assert article["body_html"] == "<p>First paragraph is long enough to count.</p><p>Second.</p>"
    assert article["key_details"] == [["Bonus", "100k"]]
    assert article["links"] == [{"title": "https://x.example/a", "url": "https://x.example/a"}]
    with pytest.raises(ValueError, match="no title"):
        writer.parse_article('{"body_html": "<p>long enough body text for the check to pass</p>"}')
