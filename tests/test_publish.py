"""Reader pages published as files: what each change re-renders, removes, and never half-writes."""

import gzip
import os
import subprocess
import sys
import threading

import pytest
import webtest
from helpers import ROOT, approved_article, login, make_article, post_action, seed_sample_cards, wait_for

import app as milesahead
import publish as publishing
import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open


@pytest.fixture
def cards(conn):
    return seed_sample_cards(conn)


@pytest.fixture
def publisher(app):
    return milesahead.publisher(app)


@pytest.fixture
def public(publisher):
    return publisher.directory


def snapshot(directory):
    """Each published page and the inode it has: a rewrite (temp + rename) gets a new one.

    The page's .gz twin is written and removed with it (see the gzip test)."""
    found = {}
    for folder, _dirs, names in os.walk(directory):
        for name in names:
            if name.endswith(".gz"):
                continue
            path = os.path.join(folder, name)
            found[os.path.relpath(path, directory)] = os.stat(path).st_ino
    return found


def rewritten(before, after):
    return {name for name in after if before.get(name) != after[name]}


def read(public, name):
    with open(os.path.join(public, name), "rb") as f:
        return f.read()


def test_every_reader_url_is_published_with_the_bytes_the_app_serves(client, conn, cards, publisher, public):
    article = approved_article(conn, title="Sapphire Reserve bonus climbs")
    report = publisher.publish_all()

    pages = publishing.all_pages(conn)
    assert f"/articles/{article['slug']}" in pages and "/cards/venture-x" in pages and "/api/cards/amex-gold" in pages
    for url in pages:
        assert read(public, publishing.file_for(url)) == client.get(url).body, url
    assert read(public, "static/style.css") == client.get("/static/style.css").body
    assert len(report.written) == len(pages) + len(publishing.static_files(milesahead.STATIC))
    mode = os.stat(os.path.join(public, "cards/venture-x.html")).st_mode & 0o777
    assert mode == 0o644  # Caddy runs as another user

    again = publisher.publish_all()
    assert again.written == [] and again.removed == []  # unchanged bytes are left alone (stable ETags)


def test_published_folders_are_open_to_caddy_whatever_the_umask(conn, cards, publisher, public):
    approved_article(conn, title="Sapphire Reserve bonus climbs")
    previous = os.umask(0o027)  # the systemd unit's
    try:
        publisher.publish_all()
    finally:
        os.umask(previous)
    for folder in (public, *(os.path.join(public, d) for d in ("articles", "cards", "api/articles", "static"))):
        assert os.stat(folder).st_mode & 0o777 == 0o755, folder


def test_each_page_has_a_gzip_twin_that_follows_it(editor, conn, cards, publisher, public):
    publisher.publish_all()
    article_id = make_article(conn, title="Venture X adds a lounge", type="summary")
    post_action(editor, article_id, "approve")
    slug = store.get_article(conn, article_id)["slug"]
    for url in publishing.all_pages(conn):
        name = publishing.file_for(url)
        assert gzip.decompress(read(public, name + ".gz")) == read(public, name), url
    assert not os.path.exists(os.path.join(public, "static/style.css.gz"))  # Caddy compresses static itself

    post_action(editor, article_id, "unpublish")
    assert not os.path.exists(os.path.join(public, f"articles/{slug}.html.gz"))
    assert gzip.decompress(read(public, "index.html.gz")) == read(public, "index.html")


def test_url_to_file_layout():
    assert publishing.file_for("/") == "index.html"
    assert publishing.file_for("/deals") == "deals.html"
    assert publishing.file_for("/articles/a-b-2") == "articles/a-b-2.html"
    assert publishing.file_for("/feed.xml") == "feed.xml"
    assert publishing.file_for("/api/cards/venture-x") == "api/cards/venture-x.json"
    assert publishing.file_for("/static/style.css") == "static/style.css"
    for bad in ("/../etc/passwd", "/Cards", "relative", "/a//b"):
        with pytest.raises(publishing.PublishError):
            publishing.file_for(bad)


def test_approving_rewrites_exactly_the_pages_that_changed(editor, conn, cards, publisher, public):
    approved_article(conn, title="An older news item about lounges", type="summary")
    publisher.publish_all()
    before = snapshot(public)
    article_id = make_article(conn, title="Sapphire Reserve bonus climbs to 100,000 points", type="deal")
    slug = store.get_article(conn, article_id)["slug"]

    post_action(editor, article_id, "approve")

    assert rewritten(before, snapshot(public)) == {
        f"articles/{slug}.html",
        f"api/articles/{slug}.json",
        "index.html",
        "deals.html",  # a deal: /news does not list it, so news.html keeps its bytes
        "feed.xml",
        "sitemap.xml",
        "api/articles.json",
        "cards/sapphire-reserve.html",  # the card it mentions gains a Recent Change
        "api/cards/sapphire-reserve.json",
    }
    assert f'href="/articles/{slug}"'.encode() in read(public, "cards/sapphire-reserve.html")


def test_unpublishing_removes_the_article_and_rebuilds_what_listed_it(editor, conn, cards, publisher, public):
    article_id = make_article(conn, title="Venture X adds a lounge", type="summary")
    post_action(editor, article_id, "approve")
    slug = store.get_article(conn, article_id)["slug"]
    assert os.path.exists(os.path.join(public, f"articles/{slug}.html"))
    before = snapshot(public)

    post_action(editor, article_id, "unpublish")

    after = snapshot(public)
    assert f"articles/{slug}.html" not in after and f"api/articles/{slug}.json" not in after
    assert rewritten(before, after) == {
        "index.html",
        "news.html",
        "feed.xml",
        "sitemap.xml",
        "api/articles.json",
        "cards/venture-x.html",
        "api/cards/venture-x.json",
    }
    for name in ("index.html", "news.html", "feed.xml", "sitemap.xml", "cards/venture-x.html"):
        assert slug.encode() not in read(public, name), name


def test_editing_a_live_article_follows_its_cards(editor, conn, cards, publisher, public):
    article_id = make_article(conn, title="Sapphire Reserve bonus climbs", body_html="<p>Only one card.</p>")
    post_action(editor, article_id, "approve")
    slug = store.get_article(conn, article_id)["slug"]
    before = snapshot(public)

    editor.post(
        f"/admin/articles/{article_id}/edit",
        {
            "csrf_token": editor.get("/api/admin/session").json["csrf_token"],
            "title": "Venture X bonus climbs",  # no longer mentions the Sapphire Reserve
            "note": "wrong card",
        },
        status=302,
    )

    changed = rewritten(before, snapshot(public))
    assert {f"articles/{slug}.html", "cards/venture-x.html", "cards/sapphire-reserve.html"} <= changed
    assert b"Venture X bonus climbs" in read(public, f"articles/{slug}.html")
    assert slug.encode() not in read(public, "cards/sapphire-reserve.html")
    assert not {"cards/amex-gold.html", "cards.html", "robots.txt"} & changed


def test_a_draft_change_publishes_nothing(editor, conn, cards, publisher, public):
    publisher.publish_all()
    before = snapshot(public)
    article_id = make_article(conn)
    post_action(editor, article_id, "request-revision", feedback="Name the minimum spend.")
    assert snapshot(public) == before


def test_seeding_cards_republishes_the_card_pages(tmp_path):
    data = tmp_path / "site"
    data.mkdir()
    env = dict(os.environ, MILESAHEAD_RELEASE="publish-test")
    env.pop("MILESAHEAD_CONFIG", None)
    app_py = os.path.join(ROOT, "app.py")

    def run(*args):
        result = subprocess.run([sys.executable, app_py, *args], cwd=data, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "published reader pages" in run("seed-cards")  # every card inserted: the card pages appear
    public = data / "data" / "public"
    page = public / "cards" / "chase-sapphire-reserve.html"
    assert page.exists()
    seeded = page.read_bytes()
    database = store.connect(str(data / "data" / "milesahead.db"))
    database.execute(
        "UPDATE cards SET verdict = 'A stale verdict', content_hash = '' WHERE slug = ?", ("chase-sapphire-reserve",)
    )
    database.commit()
    database.close()
    run("publish")
    assert b"A stale verdict" in page.read_bytes()

    output = run("seed-cards")  # puts the seed's verdict back, and the page with it
    assert "1 updated" in output and "published reader pages: 3 written" in output  # card, its API, /api/cards
    assert page.read_bytes() == seeded
    assert "published reader pages" not in run("seed-cards")  # nothing changed: nothing to publish
    assert "0 written, 0 removed" in run("publish")


def test_a_full_publish_removes_pages_that_should_not_exist(conn, cards, publisher, public):
    publisher.publish_all()
    stale = os.path.join(public, "articles", "gone-article.html")
    crashed = os.path.join(public, "cards", ".venture-x.html.abc123.tmp")
    os.makedirs(os.path.dirname(stale), exist_ok=True)
    for path in (stale, crashed):
        with open(path, "w") as f:
            f.write("left over")
    report = publisher.publish_all()
    assert not os.path.exists(stale) and not os.path.exists(crashed)
    assert report.removed == ["articles/gone-article.html"]


def test_a_page_that_fails_to_render_replaces_nothing(conn, cards, publisher, public):
    good = approved_article(conn, title="Venture X adds a lounge", type="summary")
    publisher.publish_all()
    before = snapshot(public)
    home = read(public, "index.html")
    approved_article(conn, title="A second story")
    conn.execute("UPDATE articles SET key_details = 'not json' WHERE slug = ?", (good["slug"],))
    conn.commit()

    with pytest.raises(publishing.PublishError, match="rendered 500; no page was replaced"):
        publisher.publish_all()

    assert snapshot(public) == before and read(public, "index.html") == home
    assert not [n for n in os.listdir(os.path.join(public, "articles")) if n.startswith(".")]  # temps cleaned


def test_health_waits_for_the_pages_and_reports_a_failed_publish(app, client, conn, cards):
    app.state.startup_publish = "running"
    assert client.get("/healthz", status=503).json["reason"] == "publishing reader pages"

    milesahead.start_publishing(app)
    wait_for(lambda: app.state.startup_publish != "running", what="the start-up publish")
    assert client.get("/healthz").json["status"] == "ok"

    article = approved_article(conn, title="Venture X adds a lounge")
    conn.execute("UPDATE articles SET key_details = 'not json' WHERE id = ?", (article["id"],))
    conn.commit()
    milesahead.start_publishing(app)  # a release whose pages do not render must not pass the gate
    wait_for(lambda: app.state.startup_publish != "running", what="the start-up publish")
    reason = client.get("/healthz", status=503).json["reason"]
    assert reason.startswith("publishing failed:") and "rendered 500" in reason


def test_the_desk_keeps_the_change_and_says_so_when_pages_cannot_be_written(tmp_path, config, conn, cards):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config["publish"]["dir"] = str(blocker / "public")
    desk = webtest.TestApp(milesahead.create_app(config))
    login(desk)
    article_id = make_article(conn)
    page = post_action(desk, article_id, "approve").follow()
    assert store.get_article(conn, article_id)["status"] == "approved"  # the approval stands
    assert "the reader pages could not be updated" in page.text


def test_readers_never_see_half_a_page(conn, cards, publisher, public):
    """Rewrite the home page over and over while a reader reads it: every read is whole."""
    article = approved_article(conn, title="Venture X adds a lounge", type="summary")
    publisher.publish_all()
    versions, seen, stop = {read(public, "index.html")}, [], threading.Event()

    def reader():
        path = os.path.join(public, "index.html")
        while not stop.is_set():
            with open(path, "rb") as f:
                seen.append(f.read())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(40):
            # A longer or shorter title each time: an in-place write would show a torn file.
            conn.execute("UPDATE articles SET title = ? WHERE id = ?", ("Lounge " * (1 + n % 7 * 40), article["id"]))
            conn.commit()
            publisher.publish(["/"])
            versions.add(read(public, "index.html"))
    finally:
        stop.set()
        thread.join()
    assert len(versions) == 8
    assert len(seen) > 100
    assert all(page in versions for page in seen)  # never empty, never cut short


def test_app_pages_carry_the_cache_headers_caddy_sends(client, conn, cards):
    assert client.get("/").headers["Cache-Control"] == "public, max-age=60"
    assert client.get("/api/cards").headers["Cache-Control"] == "public, max-age=60"
    stylesheet = client.get("/").html.find("link", rel="stylesheet")["href"]
    assert stylesheet.startswith("/static/style.css?v=")
    assert client.get(stylesheet).headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/static/style.css").headers["Cache-Control"] == "public, max-age=3600"
    # A missing page or file is never cached as if it existed.
    assert client.get("/static/missing.css?v=0123456789ab", status=404).headers["Cache-Control"] == "no-store"
    assert client.get("/cards/no-such-card", status=404).headers["Cache-Control"] == "no-store"
    assert client.get("/admin/login").headers["Cache-Control"] == "no-store"
