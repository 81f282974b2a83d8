"""News feeds: RSS 2.0 and Atom 1.0 documents with ETag / Last-Modified and 304s.

`feeds[name] = {"kind": "rss"|"atom", "site": host, "items": [...]}` serves
GET /<name>.xml; each item is {"title", "link", "summary", "published": datetime}, and
may carry "link_xml": the link exactly as written into the document (character
references such as `jav&#9;ascript:` that the XML parser, not the feed, turns into text).
The ETag is a hash of the document, so it changes exactly when the content does;
If-None-Match or If-Modified-Since that match get a bodiless 304. A feed may set
"status" (an HTTP error to answer with), "delay" (seconds before answering) or
"body" (raw bytes, e.g. an HTML page that is not a feed), "truncate" (send only
that many bytes of the document, as a 200 with the whole document's ETag and a
matching Content-Length: a proxy or origin that cut it short) or "drip" (send
the document a few bytes a second).
"""

import datetime
import email.utils
import hashlib
import time
from xml.sax.saxutils import escape

from . import Standin


class FeedStandin(Standin):
    def __init__(self, feeds=None):
        super().__init__()
        self.feeds = feeds if feeds is not None else sample_feeds()

    def feed_url(self, name):
        return f"{self.url}/{name}.xml"

    def config_feeds(self):
        return [{"name": name, "url": self.feed_url(name)} for name in self.feeds]

    def handle(self, handler, request):
        name = request["path"].strip("/").removesuffix(".xml")
        feed = self.feeds.get(name)
        if feed is None:
            return handler.reply(404, "no such feed", "text/plain")
        time.sleep(feed.get("delay", 0))
        if feed.get("status"):
            return handler.reply(feed["status"], "feed server error", "text/plain")
        if "body" in feed:
            return handler.reply(200, feed["body"], "text/html")
        body = render(name, feed).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        newest = max(
            (i["published"] for i in feed["items"]), default=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        )
        last_modified = email.utils.format_datetime(newest, usegmt=True)
        headers = request["headers"]
        if headers.get("if-none-match") == etag or (
            "if-none-match" not in headers and headers.get("if-modified-since") == last_modified
        ):
            return handler.reply(304, b"", headers={"ETag": etag, "Last-Modified": last_modified})
        content_type = "application/rss+xml" if feed["kind"] == "rss" else "application/atom+xml"
        if feed.get("drip"):
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Connection", "close")
            handler.end_headers()
            for start in range(0, len(body), 16):
                handler.wfile.write(body[start : start + 16])
                handler.wfile.flush()
                time.sleep(feed["drip"])
            handler.close_connection = True
            return None
        body = body[: feed["truncate"]] if feed.get("truncate") else body
        handler.reply(200, body, content_type, headers={"ETag": etag, "Last-Modified": last_modified})

    def not_modified_count(self):
        return sum(1 for r in self.requests if "if-none-match" in r["headers"])


def render(name, feed):
    site = feed["site"]
    if feed["kind"] == "rss":
        items = "".join(
            f"<item><title>{escape(i['title'])}</title><link>{link_xml(i)}</link>"
            f"<guid>{link_xml(i)}</guid><description>{escape(i['summary'])}</description>"
            f"<pubDate>{email.utils.format_datetime(i['published'])}</pubDate></item>"
            for i in feed["items"]
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{escape(name)}</title><link>https://{site}/</link><description>News</description>"
            f"{items}</channel></rss>"
        )
    entries = "".join(
        f'<entry><title>{escape(i["title"])}</title><link rel="alternate" href="{link_xml(i)}"/>'
        f"<id>{link_xml(i)}</id><updated>{i['published'].isoformat()}</updated>"
        f'<summary type="html">{escape(i["summary"])}</summary></entry>'
        for i in feed["items"]
    )
    updated = max((i["published"] for i in feed["items"]), default=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(name)}</title><id>https://{site}/</id><updated>{updated.isoformat()}</updated>"
        f'<link rel="alternate" href="https://{site}/"/>{entries}</feed>'
    )


def link_xml(item):
    return item.get("link_xml") or escape(item["link"], {'"': "&quot;"})


def item(site, slug, title, summary, hours_ago=2):
    published = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=hours_ago)
    return {"title": title, "link": f"https://{site}/{slug}", "summary": summary, "published": published}


def sample_feeds():
    """Three sites: one deal story on all three, one news story on two, one lone item."""
    return {
        "points-blog": {
            "kind": "rss",
            "site": "pointsblog.example",
            "items": [
                item(
                    "pointsblog.example",
                    "csp-100k",
                    "Chase Sapphire Preferred bonus jumps to 100,000 points",
                    "<p>The Chase Sapphire Preferred welcome <b>bonus</b> is now 100,000 points after "
                    "$5,000 spend in three months, a limited time offer.</p>",
                ),
                item(
                    "pointsblog.example",
                    "lisbon-hotel",
                    "A quiet boutique hotel opens in Lisbon",
                    "A small independent property opened near the river this week.",
                ),
            ],
        },
        "miles-news": {
            "kind": "atom",
            "site": "milesnews.example",
            "items": [
                item(
                    "milesnews.example",
                    "sapphire-preferred-offer",
                    "Sapphire Preferred offer: 100,000 bonus points for new cardholders",
                    "Chase raised the Sapphire Preferred sign-up bonus to 100,000 points; spend $5,000 "
                    "in the first three months. The elevated offer is for a limited time.",
                ),
                item(
                    "milesnews.example",
                    "united-partner-awards",
                    "United MileagePlus changes partner award pricing on Star Alliance flights",
                    "United's MileagePlus program now prices Star Alliance partner awards dynamically.",
                ),
            ],
        },
        "deal-digest": {
            "kind": "rss",
            "site": "dealdigest.example",
            "items": [
                item(
                    "dealdigest.example",
                    "csp",
                    "Chase Sapphire Preferred: 100,000-point bonus is back",
                    "The Sapphire Preferred card's bonus returns to 100,000 points after $5,000 in spend.",
                ),
                item(
                    "dealdigest.example",
                    "united",
                    "MileagePlus partner award pricing on Star Alliance flights goes dynamic",
                    "Star Alliance partner awards booked with United MileagePlus now use dynamic pricing.",
                ),
            ],
        },
    }
