"""The app sends its security headers itself: a Content-Security-Policy on every answer, and
the frame, referrer and sniffing headers Caddy adds in production, so `make run` and these
tests see what readers get. Reader pages run no script at all; the desk only its own; the
desk's preview is framed by the desk alone and sandboxed.
"""

import pytest
from bs4 import BeautifulSoup
from helpers import make_article, seed_sample_cards

pytestmark = pytest.mark.desk_open  # every test here has the desk open


def policy(reply):
    """A Content-Security-Policy header as {directive: [values]}; exactly one must be sent."""
    sent = reply.headers.getall("Content-Security-Policy")
    assert len(sent) == 1, sent
    directives = [d.split() for d in sent[0].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


@pytest.fixture
def site(conn):
    """Three cards, one published deal and one draft."""
    seed_sample_cards(conn)
    published = make_article(conn, status="approved")
    draft = make_article(conn, title="Venture X offer returns")
    slug = conn.execute("SELECT slug FROM articles WHERE id = ?", (published,)).fetchone()[0]
    return {"slug": slug, "draft": draft}


def reader_urls(slug):
    return [
        "/",
        "/deals",
        "/news",
        f"/articles/{slug}",
        "/cards",
        "/cards/sapphire-reserve",
        "/feed.xml",
        "/sitemap.xml",
        "/robots.txt",
        "/api/articles",
        f"/api/articles/{slug}",
        "/api/cards",
        "/api/cards/sapphire-reserve",
        "/static/style.css",
    ]


def test_reader_answers_allow_no_script_and_carry_the_production_headers(client, site):
    answers = [client.get(url) for url in reader_urls(site["slug"])]
    answers += [client.get(url, status=404) for url in ["/articles/no-such-story", "/no-such-page", "/api/cards/x"]]
    for reply in answers:
        csp = policy(reply)
        assert csp["script-src"] == ["'none'"] and csp["default-src"] == ["'none'"], reply.request.path
        assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"]
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert reply.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_reader_pages_need_nothing_the_policy_forbids(client, site):
    """No inline script, style or event handler: the policy breaks nothing a reader sees."""
    for url in reader_urls(site["slug"])[:6]:
        page = BeautifulSoup(client.get(url).text, "html.parser")
        assert page.find_all(["script", "style", "iframe", "object", "embed", "form"]) == [], url
        for element in page.find_all(True):
            assert not any(name == "style" or name.startswith("on") for name in element.attrs), (url, element)
        sheets = [link["href"] for link in page.find_all("link", rel="stylesheet")]
        assert sheets and all(href.startswith("/static/") for href in sheets)  # 'self'


def test_desk_pages_allow_only_their_own_scripts(client, editor, site):
    replies = [
        client.get("/admin/login"),
        editor.get("/admin"),
        editor.get(f"/admin/articles/{site['draft']}"),
        editor.get("/admin/runs"),
        editor.get("/api/admin/session"),
        editor.get("/admin/articles/999999", status=404),
    ]
    for reply in replies:
        csp = policy(reply)
        assert csp["script-src"] == ["'self'"], reply.request.path  # no 'unsafe-inline', no hosts
        assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"] and reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "same-origin"  # a desk URL never leaks to a source's site


def test_the_preview_is_framed_by_the_desk_alone_and_sandboxed(editor, site):
    review = BeautifulSoup(editor.get(f"/admin/articles/{site['draft']}").text, "html.parser")
    frame = review.select_one("iframe.preview")
    assert frame["src"] == f"/admin/articles/{site['draft']}/preview"
    # No allow-scripts (nothing in it may run), no allow-same-origin (so even if something
    # did, its origin is opaque: it could not read the desk's session or CSRF token).
    assert frame.has_attr("sandbox") and not frame["sandbox"]  # present, and granting nothing

    preview = editor.get(frame["src"])
    csp = policy(preview)
    assert csp["frame-ancestors"] == ["'self'"] and preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert csp["script-src"] == ["'none'"] and "sandbox" in csp  # sandboxed in a tab of its own too
    assert preview.headers["Cache-Control"] == "no-store"


def test_a_crash_still_carries_the_headers(app, client):
    def broken():
        raise RuntimeError("boom")

    app.route("/boom", "GET", broken)
    reply = client.get("/boom", status=500, expect_errors=True)
    assert policy(reply)["script-src"] == ["'none'"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
