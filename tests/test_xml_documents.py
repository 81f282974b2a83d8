"""The Atom feed and the sitemap are the same bytes for the same data, however many readers ask at once.

Their ETags (and the publisher's "write only when the bytes changed") depend on it. Both
documents use a default XML namespace; naming it process-wide (ET.register_namespace) let
one document's request rename the other's elements to `ns0:` mid-flight.
"""

import concurrent.futures

import requests
from helpers import approved_article


def test_feed_and_sitemap_bytes_do_not_change_under_concurrent_requests(conn, live_server):
    for n in range(5):
        approved_article(conn, title=f"Sapphire Reserve bonus number {n}")
    urls = [live_server + "/feed.xml", live_server + "/sitemap.xml"] * 150
    expected = {url: requests.get(url, timeout=10).content for url in urls[:2]}
    assert expected[urls[0]].startswith(b"<?xml") and b'<feed xmlns="http://www.w3.org/2005/Atom">' in expected[urls[0]]
    assert b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' in expected[urls[1]]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda url: (url, requests.get(url, timeout=30).content), urls))
    changed = [url for url, body in bodies if body != expected[url]]
    assert changed == [], f"{len(changed)} of {len(bodies)} answers differed, e.g. {changed[:2]}"
