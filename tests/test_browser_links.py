"""In Debian's Chromium: the editor clicks every link on the review page of a hostile draft, and nothing changes.

The attack this guards against (issue 11): a feed item's link is `javascript:` code that
reads the desk's CSRF token from /api/admin/session and approves every draft. Here the
drafts come from a real pipeline run over hostile stand-ins (test_hostile_links.py), plus a
row written as if before the URL policy existed; the editor logs in, opens each review
page and clicks every link on it and in its preview. No script may run, no desk API may
be called, and every article must be exactly as it was.
"""

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, PASSWORD, stored_before_the_policy
from link_checks import scheme_of
from playwright.sync_api import Error as PlaywrightError

import pipeline
import store

pytestmark = [pytest.mark.browser, pytest.mark.desk_open]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def every_article(conn):
    return [store.get_article(conn, r["id"]) for r in conn.execute("SELECT id FROM articles ORDER BY id")]


def desk_state(conn):
    """Everything a click could change: the articles, their history, the runs."""
    counts = [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("article_events", "pipeline_runs")]  # noqa: S608
    return every_article(conn), counts


def test_clicking_every_link_on_a_hostile_draft_changes_nothing(config, hostile_world, conn, live_server, browser):
    pipeline.run(config)
    deal = next(a["id"] for a in every_article(conn) if a["type"] == "deal")
    drafts = [deal, stored_before_the_policy(conn)]
    before = desk_state(conn)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    seen = {"dialogs": [], "desk_api": [], "posts": [], "script_errors": []}
    # Nothing may leave the machine: a link to a source's site gets a stand-in page.
    outside = {"status": 200, "content_type": "text/html", "body": "<p>another site</p>"}
    context.route(lambda url: not url.startswith(live_server), lambda route: route.fulfill(**outside))
    context.on("request", lambda r: r.url.startswith(live_server + "/api/admin") and seen["desk_api"].append(r.url))
    context.on("request", lambda r: r.method != "GET" and seen["posts"].append(r.url))
    context.on("page", lambda popup: popup.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss())))
    page = context.new_page()
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["script_errors"].append(str(e)))

    page.goto(f"{live_server}/admin/login?next=/admin/articles/{drafts[0]}")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    seen["posts"].clear()  # the login itself

    clicked = 0
    for article_id in drafts:
        review = f"{live_server}/admin/articles/{article_id}"
        page.goto(review)
        preview = page.frame_locator("iframe.preview")
        preview.locator("h1").wait_for()
        assert preview.locator("a.skip").bounding_box()["x"] < 0  # its stylesheet applies, sandbox and all
        for where in ("page", "preview"):
            page.goto(review)
            preview.locator("h1").wait_for()
            links = (page if where == "page" else preview).locator("a[href]")
            hrefs = [links.nth(n).get_attribute("href") for n in range(links.count())]
            assert len(hrefs) > 5, where
            for n, href in enumerate(hrefs):
                if href in hrefs[:n]:
                    continue  # the same link twice (the nav bar, a card named twice)
                page.goto(review)
                frame = page.locator("iframe.preview").element_handle().content_frame()
                frame.wait_for_selector("h1")
                link = (page if where == "page" else frame).locator("a[href]").nth(n)
                # A click as the editor's would be, whether or not the link is on screen,
                # waiting for what the link does: a place on the page, a new tab, a page.
                if href.startswith("#"):
                    link.dispatch_event("click")
                elif scheme_of(href) not in (None, "http", "https"):  # what this test looks for
                    link.dispatch_event("click")
                    page.wait_for_timeout(1000)  # time for its script to run and be seen
                elif link.get_attribute("target") == "_blank":
                    with context.expect_page() as opened:
                        link.dispatch_event("click")
                    opened.value.wait_for_load_state()
                    opened.value.close()
                else:
                    try:
                        with (page if where == "page" else frame).expect_navigation():
                            link.dispatch_event("click")
                    except PlaywrightError as e:
                        # The site's own pages refuse to be framed (frame-ancestors 'none')
                        if where != "preview" or "ERR_BLOCKED_BY_RESPONSE" not in str(e):
                            raise
                clicked += 1
    context.close()
    assert clicked > 20
    assert seen == {"dialogs": [], "desk_api": [], "posts": [], "script_errors": []}
    assert desk_state(conn) == before
