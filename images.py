"""Finding a freely licensed image that fits an article, or none at all.

1. Query terms from the title and TL;DR (two short keyword phrases).
2. Five sources searched concurrently, every (source, term) pair in its own
   thread: Unsplash, Pexels, Pixabay (keys from config; no key = skipped, said
   once and counted as `skipped`), Openverse and Wikimedia Commons (no key).
   Each source's base URL is its API root; the documented path is appended.
3. At most images.per_source results per source per term; dedupe by image URL;
   at most images.per_source per source; at most images.max_candidates in all.
4. Phase 1: the text model scores every candidate's metadata 1-10 in one call;
   the best images.vision_top go on. (If that call fails, the first ones go on:
   phase 2 is the real guard.)
5. Phase 2: each finalist's image is downloaded (size-capped, checked by
   Pillow, resized, sent as a data URL) and the vision model scores how specific
   it is to the article. The best at or above images.score_floor wins; nothing
   that good means no image, never a wrong one.

The winner's attribution is TASL, as CC BY asks of every reuse: {title, author,
author_url, source, license, license_url, link (the work's page)}, from each API's
documented fields (Openverse's title/creator/license_url, Commons' ObjectName/
Artist/LicenseShortName/LicenseUrl; Unsplash, Pexels and Pixabay under their own
licences, linked). Every URL in it passes urls.safe_url. Every candidate and its
scores are kept for the editor in image_candidates.
"""

import base64
import concurrent.futures
import io
import json
import logging
import re
import threading
import time
import warnings

import requests
from PIL import Image, UnidentifiedImageError

import llm
import metrics
import outside
import urls
from text import QUERY_STOPWORDS, html_to_line

log = logging.getLogger("milesahead.images")

SOURCES = ("unsplash", "pexels", "pixabay", "openverse", "wikimedia")
KEYED = ("unsplash", "pexels", "pixabay")
VISION_PX = 512  # what the vision model sees
THUMB_PX = 320  # what is stored with the article (image_thumb_url)
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding

_said_skipped = set()
_said_lock = threading.Lock()


# The most results each API hands out per request; asking for more is refused (Openverse
# answers an anonymous page_size over 20 with a 401) or silently cut.
PAGE_LIMITS = {"unsplash": 30, "pexels": 80, "pixabay": 200, "openverse": 20, "wikimedia": 50}
RETRIES = 2  # for a 429 or 503, within the image budget


class ImageRejected(Exception):
    """A candidate whose file could not be used (not an image, too large, unreachable)."""


class SearchFailed(Exception):
    """An API that answered, but with an error (some say so in a 200: Wikimedia Commons)."""


# --- Query terms -------------------------------------------------------------


def query_terms(title, tldr="", count=2):
    """Short keyword phrases: the title's first significant words, then the TL;DR's."""

    def words(text):
        found = re.findall(r"[A-Za-z][A-Za-z'&-]+", text or "")
        return [w for w in found if w.lower() not in QUERY_STOPWORDS and len(w) > 2]

    first = words(title)[:4]
    seen = {w.lower() for w in first}
    second = [w for w in words(tldr) if w.lower() not in seen][:3] or words(title)[4:7]
    terms = [" ".join(t) for t in (first, second) if t]
    return list(dict.fromkeys(terms))[:count]


# --- Sources -----------------------------------------------------------------
# Each takes (settings, term, limit, get) and returns candidates:
# {source, id, url, thumb, page, title, tags, author, license, attribution}.


def search_unsplash(settings, term, limit, get):
    data = get(
        settings["base_url"] + "/search/photos",
        params={"query": term, "per_page": limit, "content_filter": "high"},
        headers={"Authorization": f"Client-ID {settings['key']}", "Accept-Version": "v1"},
    )
    found = []
    for photo in data.get("results", [])[:limit]:
        user = photo.get("user") or {}
        page = (photo.get("links") or {}).get("html", "")
        found.append(
            candidate(
                "unsplash",
                photo.get("id"),
                url=photo["urls"]["regular"],
                thumb=photo["urls"].get("small") or photo["urls"]["regular"],
                page=page,
                title=photo.get("description") or photo.get("alt_description") or "",
                tags=[t.get("title", "") for t in photo.get("tags") or [] if isinstance(t, dict)],
                author=user.get("name") or user.get("username") or "",
                author_url=referral((user.get("links") or {}).get("html", "")),
                shown_as="Unsplash",
                license="Unsplash License",
                license_url=LICENSE_PAGES["unsplash"],
                link=referral(page),
                download_location=(photo.get("links") or {}).get("download_location", ""),
            )
        )
    return found


def search_pexels(settings, term, limit, get):
    data = get(
        settings["base_url"] + "/v1/search",
        params={"query": term, "per_page": limit},
        headers={"Authorization": settings["key"]},
    )
    return [
        candidate(
            "pexels",
            photo.get("id"),
            url=photo["src"]["large"],
            thumb=photo["src"].get("medium") or photo["src"]["large"],
            page=photo.get("url", ""),
            title=photo.get("alt") or "",
            tags=[],
            author=photo.get("photographer", ""),
            author_url=photo.get("photographer_url", ""),
            shown_as="Pexels",
            license="Pexels License",
            license_url=LICENSE_PAGES["pexels"],
            link=photo.get("url", ""),
        )
        for photo in data.get("photos", [])[:limit]
    ]


def search_pixabay(settings, term, limit, get):
    data = get(
        settings["base_url"] + "/api/",
        # Pixabay accepts per_page 3-200 and queries up to 100 characters
        params={
            "key": settings["key"],
            "q": term[:100],
            "image_type": "photo",
            "safesearch": "true",
            "per_page": max(3, limit),
        },
    )
    return [
        candidate(
            "pixabay",
            hit.get("id"),
            url=hit["webformatURL"],
            thumb=hit["webformatURL"],
            page=hit.get("pageURL", ""),
            title="",
            tags=[t.strip() for t in (hit.get("tags") or "").split(",") if t.strip()],
            author=hit.get("user", ""),
            author_url=f"https://pixabay.com/users/{hit['user']}-{hit['user_id']}/" if hit.get("user_id") else "",
            shown_as="Pixabay",
            license="Pixabay Content License",
            license_url=LICENSE_PAGES["pixabay"],
            link=hit.get("pageURL", ""),
        )
        for hit in data.get("hits", [])[:limit]
    ]


def search_openverse(settings, term, limit, get):
    data = get(
        settings["base_url"] + "/v1/images/",
        params={"q": term, "page_size": limit, "license_type": "commercial", "mature": "false"},
    )
    found = []
    for image in data.get("results", [])[:limit]:
        provider = image.get("source") or image.get("provider") or ""
        found.append(
            candidate(
                "openverse",
                image.get("id"),
                url=image["url"],
                thumb=image.get("thumbnail") or image["url"],
                page=image.get("foreign_landing_url", ""),
                title=image.get("title") or "",
                tags=[t.get("name", "") for t in image.get("tags") or [] if isinstance(t, dict)],
                author=image.get("creator") or "",
                author_url=image.get("creator_url") or "",
                shown_as="Openverse" + (f" / {provider.title()}" if provider else ""),
                license=openverse_license(image.get("license", ""), image.get("license_version")),
                license_url=image.get("license_url") or "",
                link=image.get("foreign_landing_url", ""),
            )
        )
    return found


def openverse_license(code, version):
    code = (code or "").lower()
    if code == "pdm":
        return "Public Domain Mark"
    if code == "cc0":
        return "CC0 1.0"
    return f"CC {code.upper()} {version or ''}".strip()


WIKIMEDIA_FILE_TYPES = ("image/jpeg", "image/png", "image/webp")


def search_wikimedia(settings, term, limit, get):
    data = get(
        settings["base_url"] + "/w/api.php",
        params={
            "action": "query",
            "format": "json",
            "formatversion": "2",
            "generator": "search",
            "gsrsearch": term,
            "gsrnamespace": "6",
            "gsrlimit": limit,
            "prop": "imageinfo",
            "iiprop": "url|mime|size|extmetadata",
            "iiurlwidth": "1024",
        },
    )
    if data.get("error"):  # Commons reports errors (rate limits, bad parameters) in a 200
        error = data["error"]
        raise SearchFailed(f"API error {error.get('code', '')}: {str(error.get('info', ''))[:160]}")
    pages = (data.get("query") or {}).get("pages") or []
    if isinstance(pages, dict):  # formatversion=1 shape
        pages = list(pages.values())
    found = []
    for page in sorted(pages, key=lambda p: p.get("index", 0)):
        info = (page.get("imageinfo") or [{}])[0]
        if info.get("mime") not in WIKIMEDIA_FILE_TYPES:
            continue  # SVG, TIFF, PDF, video: not a photo to show
        meta = info.get("extmetadata") or {}

        def field(name, meta=meta):
            return html_to_line((meta.get(name) or {}).get("value", ""))

        file_name = page.get("title", "").removeprefix("File:").rsplit(".", 1)[0]

        found.append(
            candidate(
                "wikimedia",
                page.get("pageid"),
                url=info.get("thumburl") or info["url"],
                thumb=info.get("thumburl") or info["url"],
                page=info.get("descriptionurl", ""),
                title=field("ImageDescription") or file_name,
                work_title=field("ObjectName") or file_name,
                tags=[c for c in field("Categories").split("|") if c][:8],
                author=field("Artist"),
                shown_as="Wikimedia Commons",
                license=field("LicenseShortName"),
                license_url=field("LicenseUrl"),
                link=info.get("descriptionurl", ""),
            )
        )
    return found[:limit]


SEARCHES = {
    "unsplash": search_unsplash,
    "pexels": search_pexels,
    "pixabay": search_pixabay,
    "openverse": search_openverse,
    "wikimedia": search_wikimedia,
}


LICENSE_PAGES = {
    "unsplash": "https://unsplash.com/license",
    "pexels": "https://www.pexels.com/license/",
    "pixabay": "https://pixabay.com/service/license-summary/",
}


def referral(url):
    """Unsplash's guidelines: links back to Unsplash carry the app's UTM parameters."""
    if not url:
        return ""
    return url + ("&" if "?" in url else "?") + "utm_source=milesahead&utm_medium=referral"


def candidate(
    source,
    id,
    url,
    thumb,
    page,
    title,
    tags,
    author,
    shown_as,
    license,
    link,
    license_url="",
    author_url="",
    work_title=None,
    **extra,
):
    author = html_to_line(author)[:120]
    return {
        "source": source,
        "id": str(id),
        "url": url,
        "thumb": thumb,
        "page": page,
        "title": html_to_line(title)[:300],
        "tags": [t for t in tags if t][:10],
        "author": author,
        "attribution": {
            "title": html_to_line(title if work_title is None else work_title)[:200],
            "author": author,
            "author_url": author_url,
            "source": shown_as,
            "license": html_to_line(license)[:80],
            "license_url": license_url,
            "link": link,
        },
        **extra,
    }


# --- Searching all sources ---------------------------------------------------


def user_agent(config):
    # Wikimedia asks every API client to identify itself with a contact
    return f"milesahead-pipeline/1.0 (+{config['site']['base_url']})"


def search_all(config, terms, deadline=None, failures=None, refused=None):
    """Every source and term concurrently, all done by `deadline`. Returns (candidates, {source: [outcomes]}).

    A search that fails (or has not answered by the deadline) counts as `error` and is
    appended to `failures` as {"source", "term", "reason"}; the other sources carry on.
    URLs an API returned that the one URL policy refuses are described in `refused`.
    """
    refused = [] if refused is None else refused
    settings = config["images"]
    timeout = float(settings["timeout_seconds"])
    deadline = deadline or outside.deadline_in(float(settings["budget_seconds"]))
    failures = [] if failures is None else failures
    common = {"User-Agent": user_agent(config), "Accept": "application/json"}

    def get(url, params=None, headers=None):
        return get_json(
            url, min(deadline, outside.deadline_in(timeout)), timeout, params, {**common, **(headers or {})}
        )

    outcomes = {source: [] for source in SOURCES}
    jobs = {}
    results = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(SOURCES) * max(1, len(terms)))
    try:
        for source in SOURCES:
            if source in KEYED and not settings[source].get("key"):
                outcomes[source].append("skipped")
                metrics.IMAGE_SEARCHES.labels(source=source, outcome="skipped").inc()
                say_skipped_once(source)
                continue
            limit = min(settings["per_source"], PAGE_LIMITS[source])
            for term in terms:
                job = pool.submit(SEARCHES[source], dict(settings[source]), term, limit, get)
                jobs[job] = (source, term)
        done, late = concurrent.futures.wait(jobs, timeout=max(0.0, deadline - time.monotonic()))
        for job in jobs:
            source, term = jobs[job]
            reason = None
            if job in late:
                reason = "no answer within the image budget"
            else:
                try:
                    found = job.result()
                except (requests.RequestException, SearchFailed, ValueError, KeyError, TypeError, AttributeError) as e:
                    reason = describe(e)
            if reason:
                outcome, found = "error", []
                log.warning("image search %s %r failed: %s", source, term, reason)
                failures.append({"source": source, "term": term, "reason": reason})
            else:
                found = [c for c in found if keep_safe_urls(c, refused)]
                outcome = "ok" if found else "empty"
            outcomes[source].append(outcome)
            metrics.IMAGE_SEARCHES.labels(source=source, outcome=outcome).inc()
            results[(source, term)] = found
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a late search ends at its own deadline
    ordered = [results.get((s, t), []) for t in terms for s in SOURCES]
    return select(ordered, settings["per_source"], settings["max_candidates"]), outcomes


def get_json(url, deadline, timeout, params, headers):
    """One API search, whole by `deadline`; a 429 or 503 is asked again after Retry-After while time is left."""
    for attempt in range(RETRIES + 1):
        response = outside.get(url, deadline, params=params, headers=headers, read_timeout=timeout)
        if response.status_code in (429, 503) and attempt < RETRIES:
            wait = llm.retry_after(response.headers.get("Retry-After"))
            wait = 0.5 * 2**attempt if wait is None else wait
            if time.monotonic() + wait < deadline:
                if outside.STOP.wait(wait):
                    raise outside.Stopped("stopping")
                continue
        response.raise_for_status()
        if response.headers.get("MediaWiki-API-Error"):
            raise SearchFailed(api_error(response))
        try:
            return response.json()
        except ValueError:
            raise SearchFailed(f"not JSON: {response.text[:80].strip()!r}") from None
    raise AssertionError("unreachable")


def api_error(response):
    """`code: info` of a MediaWiki error answer (the header names the code, the body explains)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code") or response.headers.get("MediaWiki-API-Error", "")
    return f"API error {code}: {str(error.get('info', ''))[:160]}".strip().rstrip(":")


def keep_safe_urls(c, refused):
    """The one URL policy (urls.py) on a candidate, which an image API controls.

    No image without a safe url and thumbnail (False: drop the candidate); a refused
    page or attribution link is blanked. Each refusal is described in `refused`.
    """
    keep = True
    attribution = c["attribution"]
    for holder, field in (
        (c, "url"),
        (c, "thumb"),
        (c, "page"),
        (attribution, "link"),
        (attribution, "author_url"),
        (attribution, "license_url"),
    ):
        value = holder.get(field)
        if not value:
            continue
        holder[field] = urls.safe_url(value) or ""
        if not holder[field]:
            refused.append(
                f"{c['source']} image {c['id']}: {field} {str(value)[:100]!r} dropped (only http(s) is kept)"
            )
            keep = keep and field not in ("url", "thumb")
    return keep


def select(result_lists, per_source, max_candidates):
    """Dedupe by URL, cap per source, cap in all (interleaving sources so none crowds out the rest)."""
    seen, per = set(), {}
    queues = [list(r) for r in result_lists]
    chosen = []
    while any(queues) and len(chosen) < max_candidates:
        for queue in queues:
            if not queue:
                continue
            c = queue.pop(0)
            if c["url"] in seen or per.get(c["source"], 0) >= per_source:
                continue
            seen.add(c["url"])
            per[c["source"]] = per.get(c["source"], 0) + 1
            chosen.append(c)
            if len(chosen) >= max_candidates:
                break
    return chosen


def say_skipped_once(source):
    with _said_lock:
        if source in _said_skipped:
            return
        _said_skipped.add(source)
    log.warning("image source %s has no API key (images.%s.key): skipped", source, source)


def describe(error):
    transport = outside.describe(error, "answer")
    if transport:
        return transport
    if isinstance(error, outside.Stopped):
        return "stopped: the process is shutting down"
    if isinstance(error, requests.HTTPError) and error.response is not None:
        detail = " ".join(error.response.text[:120].split())
        retry = error.response.headers.get("Retry-After")
        return (
            f"HTTP {error.response.status_code}"
            + (f" (Retry-After {retry})" if retry else "")
            + (f": {detail}" if detail else "")
        )
    if isinstance(error, SearchFailed):
        return str(error)
    if isinstance(error, ValueError):
        return "malformed JSON"
    return f"unexpected response shape ({type(error).__name__}: {error})"


# --- Downloading and resizing ------------------------------------------------


def download(url, max_bytes, timeout, agent, deadline=None):
    """The image's bytes, whole by the deadline, refusing anything not an image or over max_bytes."""
    deadline = min(deadline or float("inf"), outside.deadline_in(timeout))
    try:
        response = outside.get(url, deadline, max_bytes=max_bytes, read_timeout=timeout, headers={"User-Agent": agent})
    except outside.TooLarge as e:
        raise ImageRejected(str(e)) from None
    except requests.RequestException as e:
        raise ImageRejected(describe(e)) from None
    if response.status_code != 200:
        raise ImageRejected(f"HTTP {response.status_code}")
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind and not kind.startswith("image/"):
        raise ImageRejected(f"not an image ({kind})")
    return response.content


def data_url(data, max_px):
    """A JPEG data URL of the image scaled to fit max_px, or ImageRejected."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise ImageRejected(f"too many pixels ({image.width}x{image.height})")
            image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageRejected(f"not a readable image ({type(e).__name__})") from None
    image = image.convert("RGB")
    image.thumbnail((max_px, max_px))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


# --- Scoring -----------------------------------------------------------------


def parse_scores(text):
    data = llm.find_json_object(text)
    entries = data.get("scores", data)
    scores = {}
    if isinstance(entries, dict):
        entries = [{"id": k, "score": v} for k, v in entries.items()]
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        try:
            scores[str(entry.get("id"))] = llm.parse_score(entry.get("score"))
        except ValueError:
            continue  # one unreadable entry leaves that candidate unscored
    if not scores:
        raise ValueError("no scores")
    return scores


def parse_vision(text):
    data = llm.find_json_object(text)
    return llm.parse_score(data.get("score")), str(data.get("reason") or "")[:200]


def score_metadata(client, article, candidates):
    """Phase 1: {candidate index (1-based, as text): score} from one text-model call."""
    listed = [
        {"id": n, "source": c["source"], "title": c["title"], "tags": c["tags"], "author": c["author"]}
        for n, c in enumerate(candidates, start=1)
    ]
    system = (
        "Task: score_image_metadata.\n"
        "You pick photos for a credit-card points and miles news site. For each candidate, judging only "
        "by its metadata, score 1-10 how well it could illustrate the article: specific to the story "
        "(the card, the bank, the airline, the hotel brand, the place) scores high; generic stock "
        "(money, laptops, smiling people) or unrelated scores low.\n"
        'Reply with only a JSON object: {"scores": [{"id": 1, "score": 7}, ...]}'
    )
    user = f"Article: {article['title']}\n{article.get('tldr', '')}\n\nCandidates:\n" + json.dumps(
        {"candidates": listed}, ensure_ascii=False
    )
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return client.chat("image_filter", messages, parse=parse_scores, temperature=0)


def score_image(client, article, image_data_url):
    """Phase 2: (score, reason) from the vision model looking at the image itself."""
    prompt = (
        "Task: score_image.\n"
        f"Article title: {article['title']}\nSummary: {article.get('tldr', '')}\n\n"
        "Score 1-10 how specific this image is to the article: 9-10 shows the very card, brand or "
        "place; 6-8 clearly related; 1-5 generic, misleading or unrelated. Also reject images with "
        "text or logos that contradict the article.\n"
        'Reply with only a JSON object: {"score": 7, "reason": "a few words"}'
    )
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": image_data_url}},
            ],
        }
    ]
    return client.chat("vision", messages, parse=parse_vision, temperature=0, max_tokens=200)


# --- The whole search --------------------------------------------------------


def find_image(config, client, article, deadline=None):
    """Search, score in two phases, choose, all within images.budget_seconds. Returns a dict:

    {"fields": article fields to store (empty when no image), "candidates": what was weighed,
     "outcomes": per-source search outcomes, "note": why there is or is no image,
     "failures": every outside call that failed: {"source"} or {"model"}, and "reason",
     "refused": URLs from the APIs that the URL policy dropped}

    What has not finished by the deadline is given up: no image rather than a stalled run.
    """
    settings = config["images"]
    deadline = deadline or outside.deadline_in(float(settings["budget_seconds"]))
    client = client.until(deadline)
    failures = []
    terms = query_terms(article["title"], article.get("tldr", ""))
    refused = []
    candidates, outcomes = search_all(config, terms, deadline, failures, refused)
    metrics.IMAGE_CANDIDATES.observe(len(candidates))
    result = {
        "fields": {},
        "candidates": [],
        "outcomes": outcomes,
        "terms": terms,
        "failures": failures,
        "refused": refused,
    }
    if not candidates:
        result["note"] = "no candidates found" + (f" ({len(failures)} searches failed)" if failures else "")
        return result

    # Phase 1: metadata, one call for all
    try:
        text_scores = score_metadata(client, article, candidates)
    except llm.LLMError as e:
        log.warning("image metadata scoring failed, passing the first candidates on: %s", e)
        failures.append({"model": "image_filter", "reason": f"phase-1 scoring: {e}"[:300]})
        text_scores = None
        for _ in candidates:
            metrics.IMAGE_SCORING.labels(phase="text", outcome="error").inc()
    for n, c in enumerate(candidates, start=1):
        c["text_score"] = text_scores.get(str(n)) if text_scores else None
    ranked = sorted(candidates, key=lambda c: -(c["text_score"] or 0)) if text_scores else candidates
    finalists = ranked[: settings["vision_top"]]
    if text_scores:
        for c in candidates:
            outcome = "kept" if c in finalists else ("dropped" if c["text_score"] is not None else "unscored")
            metrics.IMAGE_SCORING.labels(phase="text", outcome=outcome).inc()

    # Phase 2: look at each finalist
    agent = user_agent(config)

    def look(c):
        try:
            data = download(
                c["thumb"], settings["max_image_bytes"], float(settings["timeout_seconds"]), agent, deadline
            )
            c["_vision_url"] = data_url(data, VISION_PX)
            c["_thumb_url"] = data_url(data, THUMB_PX)
        except ImageRejected as e:
            c["outcome"] = "bad_image"
            c["note"] = str(e)
            return c
        try:
            c["vision_score"], c["note"] = score_image(client, article, c["_vision_url"])
        except llm.LLMError as e:
            c["outcome"] = "error"
            c["note"] = str(e)[:200]
            failures.append({"model": "vision", "reason": f"{c['source']} candidate: {e}"[:300]})
            return c
        c["outcome"] = "above_floor" if c["vision_score"] >= settings["score_floor"] else "below_floor"
        return c

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(finalists)))
    try:
        jobs = {pool.submit(look, c): c for c in finalists}
        _, late = concurrent.futures.wait(jobs, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a late download ends at its own deadline
    for job, c in jobs.items():
        if job in late:  # still downloading or being scored: given up, never picked
            c.update(outcome="timeout", note="not looked at within the image budget")
        metrics.IMAGE_SCORING.labels(phase="vision", outcome=c["outcome"]).inc()
    if late:
        failures.append({"source": "image hosts", "reason": f"{len(late)} finalists not looked at within the budget"})
    looked = [c for job, c in jobs.items() if job not in late]

    good = [c for c in looked if c["outcome"] == "above_floor"]
    winner = max(good, key=lambda c: c["vision_score"]) if good else None
    result["candidates"] = [
        {
            k: c.get(k)
            for k in ("source", "url", "page", "title", "author", "text_score", "vision_score", "outcome", "note")
        }
        | {"thumbnail": c["thumb"], "license": c["attribution"]["license"], "chosen": c is winner}
        for c in candidates
    ]
    if winner is None:
        result["note"] = f"no candidate scored {settings['score_floor']} or more"
        return result
    result["note"] = f"{winner['source']} image scored {winner['vision_score']:g}"
    result["fields"] = {
        "image_url": winner["url"],
        "image_thumb_url": winner["_thumb_url"],
        "image_alt": winner["title"] or article["title"],
        "image_attribution": winner["attribution"],
    }
    if winner.get("download_location"):
        track_unsplash_download(settings["unsplash"], winner["download_location"], agent, deadline)
    return result


def track_unsplash_download(settings, url, agent, deadline):
    """Unsplash's guidelines: report a photo that gets used to its download endpoint."""
    try:
        outside.get(
            url,
            min(deadline, outside.deadline_in(5)) if deadline > time.monotonic() else outside.deadline_in(5),
            headers={"Authorization": f"Client-ID {settings['key']}", "User-Agent": agent},
        )
    except requests.RequestException as e:
        log.warning("unsplash download tracking failed: %s", describe(e))
