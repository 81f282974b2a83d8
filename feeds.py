"""News feeds: fetch, normalise, store each item once, and group items into stories.

Sections: sources, fetching, normalising and storing, stories (clustering).

Fetching is a conditional GET (If-None-Match / If-Modified-Since from the last
reply) with a total deadline (outside.py); a 304 costs nothing. feedparser reads
RSS and Atom from the bytes we fetched, so the deadline and headers stay ours.
The validators are saved only when the whole document parsed: a feed cut short
(a 200 with a complete-looking ETag) keeps the items that did parse, records the
feed's error, and is read in full next time instead of answering 304.

An item's identity is a SHA-256 of its normalised title and summary (not its
URL: the same wire story syndicated under two URLs is one item); the column is
UNIQUE, so a second copy is skipped and counted.

Stories: TF-IDF vectors over each item's title (counted twice) and summary,
cosine similarity, and single-link grouping of every pair at or above
pipeline.cluster_threshold, among items from the last pipeline.window_hours.
Only groups citing pipeline.min_sites different sites become stories. An item
that joins a story already written about attaches to it instead of starting a
new one, so a story is written once.
"""

import calendar
import datetime
import hashlib
import math
import re
import urllib.parse
from collections import Counter

import feedparser
import requests

import outside
import store
import urls
from text import STOPWORDS, html_to_line

# --- Sources -----------------------------------------------------------------


def sync_sources(conn, feeds):
    """Upsert pipeline.feeds ({name, url, site?}) into feed_sources; return the configured rows.

    Without `site`, each item's site is its link's host name (a feed hosted elsewhere, say
    on a feed proxy, still cites the publisher).
    """
    rows = []
    with store.transaction(conn):
        for feed in feeds:
            url = feed["url"]
            site = feed.get("site") or ""  # empty: each item's own link names its site
            name = feed.get("name") or hostname(url)
            rows.append(store.upsert_feed_source(conn, name, url, site))
    return rows


def hostname(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    return host.removeprefix("www.")


# --- Fetching ----------------------------------------------------------------


def fetch(conn, source, session, timeout, user_agent, deadline=None):
    """Fetch one feed and store its new items. Returns {"status", "new", "duplicates", "error"}.

    status is "ok", "not_modified" or "error"; an error is recorded on the source
    and returned, never raised, so one dead feed never stops the others. The call
    ends by min(deadline, now + timeout), the whole document included.
    """
    limit = outside.deadline_in(timeout) if deadline is None else min(deadline, outside.deadline_in(timeout))
    headers = {"User-Agent": user_agent, "Accept": "application/rss+xml, application/atom+xml, */*;q=0.5"}
    if source["etag"]:
        headers["If-None-Match"] = source["etag"]
    if source["last_modified"]:
        headers["If-Modified-Since"] = source["last_modified"]
    result = {"status": "ok", "new": 0, "duplicates": 0, "error": "", "dropped_links": []}
    whole = False
    try:
        response = outside.get(source["url"], limit, session=session, headers=headers, read_timeout=timeout)
        if response.status_code == 304:
            result["status"] = "not_modified"
        elif response.status_code != 200:
            raise FeedError(f"HTTP {response.status_code}")
        else:
            parsed = feedparser.parse(
                response.content,
                response_headers={
                    "content-location": source["url"],
                    "content-type": response.headers.get("Content-Type", ""),
                },
            )
            if parsed.bozo and not parsed.entries:
                raise FeedError(f"not a feed ({type(parsed.bozo_exception).__name__})")
            items = [normalise(entry, source["site"], hostname(source["url"])) for entry in parsed.entries]
            items = [i for i in items if i]
            result["new"], result["duplicates"] = store_items(conn, source["id"], items)
            result["dropped_links"] = [
                f"{source['url']}: item {i['title'][:60]!r}: link {i['dropped_link'][:100]!r} dropped"
                " (only http(s) links are kept)"
                for i in items
                if "dropped_link" in i
            ]
            if parsed.bozo and not isinstance(parsed.bozo_exception, HARMLESS):
                reason = type(parsed.bozo_exception).__name__
                raise FeedError(f"not a whole feed ({reason}); kept {len(parsed.entries)} items, will read it again")
            whole = True
    except (requests.RequestException, FeedError) as e:
        result.update(status="error", error=f"{source['url']}: {describe(e)}")
    validators = (response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")) if whole else None
    store.record_fetch(conn, source["id"], result["error"], validators)
    return result


class FeedError(Exception):
    pass


# bozo flags that say how the document was decoded, not that any of it is missing
HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


def describe(error):
    return outside.describe(error, "document") or str(error) or type(error).__name__


# --- Normalising and storing -------------------------------------------------


def plain_text(value):
    """Feed HTML to one line of text: tags dropped, entities decoded, whitespace collapsed."""
    return html_to_line(value, nfkc=True)


def content_hash(title, summary):
    """Identity of an item: case, markup and spacing differences do not make a new item."""
    canonical = plain_text(title).lower() + "\n" + plain_text(summary).lower()
    return hashlib.sha256(canonical.encode()).hexdigest()


def normalise(entry, site, fallback_site=""):
    """A feedparser entry as a raw_items row, or None when it has no title.

    The item's link goes through the one URL policy (urls.py): a feed controls it, and
    feedparser passes javascript: and data: links through. A refused link leaves the
    item without one (it is still news) and is named in `dropped_link` for the run record.
    """
    title = plain_text(entry.get("title"))
    if not title:
        return None
    summary = entry.get("summary") or ""
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value", "")
    summary = plain_text(summary)
    link = entry.get("link") or ""
    url = urls.safe_url(link) or ""
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    published_at = None
    if published:
        stamp = datetime.datetime.fromtimestamp(calendar.timegm(published), datetime.UTC)
        published_at = stamp.replace(microsecond=0).isoformat()
    row = {
        "site": site or hostname(url) or fallback_site,
        "url": url,
        "title": title[:300],
        "summary": summary[:4000],
        "published_at": published_at,
        "content_hash": content_hash(title, summary),
    }
    if link and not url:
        row["dropped_link"] = link
    return row


def store_items(conn, source_id, items):
    """Insert items; a content hash already stored is a duplicate. Returns (new, duplicates)."""
    new = store.add_items(conn, source_id, items)
    return new, len(items) - new


# --- Stories -----------------------------------------------------------------


def tokens(text):
    return [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in STOPWORDS and len(t) > 1]


def tfidf(texts):
    """Unit-length TF-IDF vectors (sublinear tf, smoothed idf) as {term: weight} dicts."""
    counts = [Counter(tokens(t)) for t in texts]
    df = Counter(term for c in counts for term in c)
    n = len(texts)
    vectors = []
    for c in counts:
        v = {t: (1 + math.log(k)) * (math.log((1 + n) / (1 + df[t])) + 1) for t, k in c.items()}
        norm = math.sqrt(sum(w * w for w in v.values())) or 1.0
        vectors.append({t: w / norm for t, w in v.items()})
    return vectors


def cosine(a, b):
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def group(texts, threshold):
    """Single-link groups (lists of indexes) of texts whose cosine similarity >= threshold."""
    vectors = tfidf(texts)
    parent = list(range(len(texts)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if cosine(vectors[i], vectors[j]) >= threshold:
                parent[root(j)] = root(i)
    groups = {}
    for i in range(len(texts)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def story_type(texts, keywords):
    """'deal' when 2+ different deal keywords appear across the story's items."""
    text = " ".join(texts).lower()
    found = {k for k in keywords if re.search(r"\b" + re.escape(k.lower()) + r"\b", text)}
    return "deal" if len(found) >= 2 else "summary"


def group_stories(conn, pipeline_config):
    """Group recent items into stories; returns {"stories": new story ids, "attached": n}."""
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=pipeline_config["window_hours"])
    rows = store.recent_items(conn, cutoff.replace(microsecond=0).isoformat())
    texts = [f"{r['title']} {r['title']} {r['summary']}" for r in rows]
    result = {"stories": [], "attached": 0}
    for members in group(texts, pipeline_config["cluster_threshold"]):
        items = [rows[i] for i in members]
        existing = sorted({r["cluster_id"] for r in items if r["cluster_id"]})
        sites = {r["site"] for r in items}
        with store.transaction(conn):
            if existing:
                loose = [r["id"] for r in items if not r["cluster_id"]]
                store.attach_items(conn, existing[0], loose)
                result["attached"] += len(loose)
                continue
            if len(sites) < pipeline_config["min_sites"]:
                continue
            fingerprint = hashlib.sha256("".join(sorted(r["content_hash"] for r in items)).encode()).hexdigest()
            kind = story_type([texts[i] for i in members], pipeline_config["deal_keywords"])
            story_id = store.add_story(conn, fingerprint, items[0]["title"], kind, len(sites))
            store.attach_items(conn, story_id, [r["id"] for r in items])
        result["stories"].append(story_id)
    return result
