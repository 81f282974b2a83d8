"""A small client for any OpenAI-compatible chat-completions endpoint.

POST {llm.base_url}/chat/completions with {"model", "messages", "temperature",
"max_tokens"}; the reply's text is choices[0].message.content. What it adds:

- a total deadline on every request (llm.timeout_seconds for connect and the
  whole reply, outside.py), and on all of a caller's requests when it asks for
  one (`until`: a story's budget), so a model that drips its reply cannot hold a run;
- retries on 429, 5xx, timeouts, dropped connections and malformed bodies, with
  exponential backoff from llm.backoff_seconds, or exactly the server's
  Retry-After (seconds or an HTTP date), capped at llm.max_wait_seconds;
- a response cache on disk (llm.cache_dir; empty turns it off), keyed by a
  SHA-256 of the endpoint and the request body, so a re-run does not pay twice.
  A reply is cached only once the caller's `parse` accepted it: a garbage answer
  is never replayed from the cache.

Any failure that survives the retries raises LLMError with a reason a person can
act on; callers fail that one item and carry on.
"""

import copy
import email.utils
import hashlib
import json
import os
import re
import tempfile
import threading
import time

import requests

import outside

ROLES = ("generator", "critic", "image_filter", "vision")


class LLMError(Exception):
    """A request that failed for good (after retries) or a reply that was unusable."""


class Client:
    """One configured endpoint; safe to share between threads."""

    def __init__(self, config, session=None, sleep=None):
        llm = config["llm"]
        self.base_url = llm["base_url"].rstrip("/")
        self.api_key = llm["api_key"]
        self.models = dict(llm["models"])
        self.timeout = float(llm["timeout_seconds"])
        self.max_retries = int(llm["max_retries"])
        self.backoff = float(llm["backoff_seconds"])
        self.max_wait = float(llm["max_wait_seconds"])
        self.cache_dir = llm["cache_dir"]
        self.session = session or requests.Session()
        self.sleep = sleep or pause
        self.deadline = None  # monotonic; None: only each request's own timeout
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0}
        self._stats_lock = threading.Lock()

    def until(self, deadline):
        """This client (same session, cache and stats) with every request ending by `deadline`."""
        bounded = copy.copy(self)
        bounded.deadline = deadline if self.deadline is None else min(deadline, self.deadline)
        return bounded

    def chat(self, role, messages, parse=None, temperature=0.2, max_tokens=2048):
        """Ask the model for `role`; return parse(text) (or the text). Raises LLMError.

        `parse` raises ValueError on a reply it cannot use; the reply is then not cached
        and the error propagates as LLMError naming what was wrong.
        """
        if role not in self.models:
            raise ValueError(f"unknown model role {role!r}")
        body = {
            "model": self.models[role],
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        url = f"{self.base_url}/chat/completions"
        key = hashlib.sha256(json.dumps({"url": url, "body": body}, sort_keys=True).encode()).hexdigest()
        cached = self._cache_get(key)
        if cached is not None:
            try:
                value = parse(cached) if parse else cached
            except ValueError:
                pass  # stale or foreign entry: ask again
            else:
                self._count("cache_hits")
                return value
        try:
            text = self._post(url, body)
        except LLMError as e:
            e.role = role  # the run record names the model that failed
            raise
        try:
            value = parse(text) if parse else text
        except ValueError as e:
            error = LLMError(f"{role} model ({body['model']}) gave an unusable reply: {e}")
            error.role = role
            raise error from None
        self._cache_put(key, text)
        return value

    # --- HTTP with retries ---------------------------------------------------

    def _post(self, url, body):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        reason = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._count("retries")
            self._count("requests")
            wait = None
            limit = outside.deadline_in(self.timeout)
            if self.deadline is not None:
                if self.deadline - time.monotonic() <= 0:
                    raise LLMError(f"the budget for this work ran out ({reason})")
                limit = min(limit, self.deadline)
            try:
                response = outside.post(url, limit, session=self.session, json=body, headers=headers)
            except outside.Stopped:
                raise LLMError("stopped: the process is shutting down") from None
            except requests.Timeout:
                reason = "the budget ran out" if limit == self.deadline else f"no reply within {self.timeout:g}s"
            except requests.ConnectionError as e:
                reason = f"connection failed: {type(e).__name__}"
            else:
                status = response.status_code
                if status == 429 or status >= 500:
                    reason = f"HTTP {status} from {url}"
                    wait = retry_after(response.headers.get("Retry-After"))
                elif status >= 400:
                    # 400/401/403/404 will not get better by asking again
                    raise LLMError(f"HTTP {status} from {url}: {response.text[:200].strip()}")
                else:
                    try:
                        return reply_text(response.json())
                    except ValueError as e:
                        reason = f"malformed response body: {e}"
            if attempt == self.max_retries:
                break
            delay = min(wait if wait is not None else self.backoff * (2**attempt), self.max_wait)
            if self.deadline is not None and time.monotonic() + delay >= self.deadline:
                raise LLMError(f"{reason}; waiting {delay:g}s more would pass the budget")
            self.sleep(delay)
        raise LLMError(f"{reason} (gave up after {self.max_retries + 1} attempts)")

    def _count(self, name):
        with self._stats_lock:
            self.stats[name] += 1

    # --- Cache ---------------------------------------------------------------

    def _cache_path(self, key):
        return os.path.join(self.cache_dir, key[:2], key + ".json")

    def _cache_get(self, key):
        if not self.cache_dir:
            return None
        try:
            with open(self._cache_path(key), encoding="utf-8") as f:
                return json.load(f)["content"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _cache_put(self, key, text):
        if not self.cache_dir:
            return
        path = self._cache_path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # temp file + rename: a killed run never leaves half an entry behind
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"content": text, "stored_at": time.time()}, f)
        os.replace(tmp, path)


def pause(seconds):
    """Sleep, but wake (and give up) when the process is told to stop."""
    if outside.STOP.wait(seconds):
        raise LLMError("stopped: the process is shutting down")


def reply_text(data):
    """choices[0].message.content of a chat-completions body, or ValueError."""
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("no choices[0].message.content") from None
    if not isinstance(content, str):
        raise ValueError("message content is not text")
    return content


def retry_after(value):
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- Reading model replies ---------------------------------------------------

THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def strip_reasoning(text):
    """Drop <think> blocks some reasoning models put before the answer."""
    text = THINK.sub("", text)
    if "</think>" in text:  # an opening tag lost to truncation
        text = text.split("</think>", 1)[1]
    return text.strip()


def find_json_object(text):
    """The first JSON object in a reply, tolerating fences and chatter around it."""
    text = strip_reasoning(text)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("no JSON object in the reply")


SCORE = re.compile(r"^\s*(?:score\s*[:=]?\s*)?(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*$", re.IGNORECASE)


def parse_score(value):
    """A 1-10 score from what models write for one: 8, "8", 8.0, "8/10", "score: 8"; clamped.

    The one reader of scores for every model reply (critic, image metadata, vision), so a
    reply one of them accepts is never refused by another. ValueError when there is no score.
    """
    if isinstance(value, bool):
        raise ValueError("no numeric score")
    if isinstance(value, str):
        match = SCORE.match(value)
        if not match:
            raise ValueError(f"no numeric score in {value[:40]!r}")
        value = float(match.group(1))
    if not isinstance(value, (int, float)) or value != value:  # NaN is no score
        raise ValueError("no numeric score")
    return min(10.0, max(1.0, float(value)))
