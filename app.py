"""milesahead: the web app (Bottle on waitress) and its command line.

Sections, top to bottom: release and app factory, reader pages, feeds, JSON API,
health and metrics, routes, CLI. What every handler shares (state, database,
rendering, security headers, errors) is in web.py; the editorial desk is desk.py
and auth.py. No module of the app imports this one (tests do, for create_app): it is
the entry point, `python app.py`.
Only `approved` articles ever reach a reader URL; every reader query goes
through store.list_published / store.get_published_article.
"""

import argparse
import errno
import getpass
import logging
import os
import socket
import sqlite3
import sys
import threading
import xml.etree.ElementTree as ET

import bottle
from bottle import request, response

import config as configuration
import desk
import metrics
import pipeline
import publish
import store
import urls
import workflow
from web import (
    HERE,
    STATIC,
    CommandError,
    State,
    absolute_url,
    cacheable,
    cfg,
    check_request,
    db,
    end_request,
    error_page,
    json_response,
    publisher,
    render,
    render_article,
    state,
    with_safe_urls,
    with_security_headers,
)

STATIC_CACHE = "public, max-age=3600"
FINGERPRINTED_CACHE = "public, max-age=31536000, immutable"


def release_id():
    """Which release is running: the toolkit writes RELEASE into every release it builds."""
    if os.environ.get("MILESAHEAD_RELEASE"):
        return os.environ["MILESAHEAD_RELEASE"]
    try:
        with open(os.path.join(HERE, "RELEASE"), encoding="utf-8") as f:
            return f.read().strip() or "dev"
    except FileNotFoundError:
        return "dev"


def commit_id():
    """The commit the release was built from (COMMIT, written by the toolkit; "-dirty" if
    its files differed from it), or "unknown"."""
    try:
        with open(os.path.join(HERE, "COMMIT"), encoding="utf-8") as f:
            return f.read().strip() or "unknown"
    except FileNotFoundError:
        return "unknown"


def create_app(config):
    """Build a fresh app for one config (tests build one per temp database)."""
    app = bottle.Bottle()
    app.state = State(config, release_id(), commit_id())
    app.state.publisher = publish.Publisher(app, publish.public_dir(config), STATIC)
    bottle.BaseRequest.MEMFILE_MAX = config["server"]["max_body_bytes"]

    with store.connected(config["database"]["path"]) as conn:
        store.migrate(conn)
    metrics.set_build_info(app.state.release, store.SCHEMA_VERSION)

    app.add_hook("before_request", check_request)
    app.add_hook("after_request", end_request)
    for path, callback in READER_ROUTES:
        app.route(path, "GET", cacheable(callback))
    for path, callback in ROUTES:
        app.route(path, "GET", callback)
    for code in (400, 401, 403, 404, 405, 409, 413, 429, 500, 503):
        app.error(code)(error_page)
    app.wsgi = with_security_headers(metrics.instrument(app.wsgi))
    desk.install(app)  # the editorial desk adds its routes to the same app
    return app


# --- Reader pages ------------------------------------------------------------


def home():
    articles = store.list_published(db(), limit=30)
    return render(
        "home", cfg()["site"]["title"], articles=articles, heading="Latest", show_empty_help=True, card_count=None
    )


def deals():
    articles = store.list_published(db(), type="deal")
    description = "Current credit-card offers and elevated bonuses, checked by an editor."
    return render("home", "Deals", description, articles=articles, heading="Deals", show_empty_help=False)


def news():
    articles = store.list_published(db(), exclude_type="deal")
    description = "Points and miles news: program changes, new cards, roundups."
    return render("home", "News", description, articles=articles, heading="News", show_empty_help=False)


def article_page(slug):
    article = store.get_published_article(db(), slug)
    if article is None:
        bottle.abort(404, "No published article at this address.")
    return render_article(article)


def cards_index():
    return render(
        "cards",
        "Credit card reference",
        f"{store.count_cards(db())} credit cards: fees, earning rates, transfer partners and {cfg()['site']['persona_name']}'s verdict.",
        groups=store.cards_by_category(db()),
        fee_label=store.fee_label,
    )


def card_page(slug):
    card = store.get_card(db(), slug)
    if card is None:
        bottle.abort(404, "No card at this address.")
    linker = workflow.CardLinker(store.card_summaries(db()))
    return render(
        "card",
        card["name"],
        card["verdict"],
        card=card,
        sections=store.SECTIONS,
        changes=store.card_recent_changes(db(), card["id"]),
        fee_label=store.fee_label,
        linked=lambda text: linker.html(text, own_slug=card["slug"]),
    )


def static_file(path):
    served = bottle.static_file(path, root=STATIC)
    if served.status_code < 400:  # a missing file must not be cached for a year
        served.set_header("Cache-Control", FINGERPRINTED_CACHE if request.query.get("v") else STATIC_CACHE)
    return served


# --- Feeds -------------------------------------------------------------------

ATOM = "http://www.w3.org/2005/Atom"


def atom_feed():
    """Atom 1.0 (RFC 4287): feed id/title/updated/link, each entry id/title/updated/link."""
    articles = store.list_published(db(), limit=50)
    site = cfg()["site"]
    feed = ET.Element("feed", xmlns=ATOM)
    ET.SubElement(feed, "title").text = site["title"]
    ET.SubElement(feed, "subtitle").text = site["description"]
    ET.SubElement(feed, "id").text = absolute_url("/")
    ET.SubElement(feed, "link", href=absolute_url("/feed.xml"), rel="self")
    ET.SubElement(feed, "link", href=absolute_url("/"), rel="alternate")
    updated = articles[0]["published_at"] if articles else "2026-01-01T00:00:00+00:00"
    ET.SubElement(feed, "updated").text = updated
    author = ET.SubElement(feed, "author")
    ET.SubElement(author, "name").text = site["title"]
    for article in articles:
        url = absolute_url(f"/articles/{article['slug']}")
        entry = ET.SubElement(feed, "entry")
        ET.SubElement(entry, "title").text = article["title"]
        ET.SubElement(entry, "id").text = url
        ET.SubElement(entry, "link", href=url, rel="alternate")
        ET.SubElement(entry, "updated").text = article["updated_at"]
        ET.SubElement(entry, "published").text = article["published_at"]
        ET.SubElement(entry, "summary").text = article["tldr"]
        ET.SubElement(entry, "category", term=article["type"])
    response.content_type = "application/atom+xml; charset=utf-8"
    return xml_document(feed)


def xml_document(root):
    """The document's bytes. Its namespace is the root's own xmlns attribute, never named
    process-wide (ET.register_namespace): concurrent requests for the other document
    renamed this one's elements to `ns0:`, so its bytes and ETag changed with its data not."""
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"


def sitemap():
    conn = db()
    urlset = ET.Element("urlset", xmlns=SITEMAP)

    def add(path, lastmod=None):
        url = ET.SubElement(urlset, "url")
        ET.SubElement(url, "loc").text = absolute_url(path)
        if lastmod:
            ET.SubElement(url, "lastmod").text = lastmod[:10]

    for path in ("/", "/deals", "/news", "/cards"):
        add(path)
    for card in store.card_summaries(conn):
        add(f"/cards/{card['slug']}", card["facts_checked"])
    for article in store.list_published(conn, limit=5000):
        add(f"/articles/{article['slug']}", article["updated_at"])
    response.content_type = "application/xml; charset=utf-8"
    return xml_document(urlset)


def robots():
    response.content_type = "text/plain; charset=utf-8"
    return f"User-agent: *\nDisallow: /admin\nDisallow: /api/admin\n\nSitemap: {absolute_url('/sitemap.xml')}\n"


# --- JSON API (read-only, published content only) ----------------------------


def public_article(article):
    data = {k: v for k, v in with_safe_urls(article).items() if k in store.PUBLIC_ARTICLE_FIELDS}
    data["url"] = absolute_url(f"/articles/{article['slug']}")
    return data


def public_card(card):
    data = {k: card[k] for k in ("slug", "name", "issuer", "category", "annual_fee_usd")}
    data["network"] = card["network"] or None  # empty where no source confirmed it
    data.update(
        official_url=urls.safe_url(card["official_url"]) or "",
        first_year_fee_usd=card["first_year_fee_usd"],
        fee_tiers=card["fee_tiers"],
        fee=store.fee_label(card),
        facts_checked=card["facts_checked"] or None,
        sources=[dict(s, url=urls.safe_url(s["url"])) for s in card["sources"] if urls.is_safe_url(s["url"])],
        verdict=card["verdict"],
        keywords=card["keywords"],
        sections=card["sections"],
        url=absolute_url(f"/cards/{card['slug']}"),
    )
    return data


def api_articles():
    try:
        limit = min(max(int(request.query.get("limit", 50)), 1), 500)
    except ValueError:
        bottle.abort(400, "limit must be a whole number")
    kind = request.query.get("type") or None
    if kind and kind not in store.ARTICLE_TYPES:
        bottle.abort(400, f"type must be one of {', '.join(store.ARTICLE_TYPES)}")
    articles = store.list_published(db(), type=kind, limit=limit)
    return json_response({"articles": [public_article(a) for a in articles]})


def api_article(slug):
    article = store.get_published_article(db(), slug)
    if article is None:
        bottle.abort(404, "No published article with that slug.")
    return json_response(public_article(article))


def api_cards():
    return json_response({"cards": [public_card(c) for c in store.list_cards(db())]})


def api_card(slug):
    card = store.get_card(db(), slug)
    if card is None:
        bottle.abort(404, "No card with that slug.")
    data = public_card(card)
    data["recent_changes"] = store.card_recent_changes(db(), card["id"])
    return json_response(data)


# --- Health and metrics ------------------------------------------------------


def healthz():
    """The deploy gate: 200 only when the database answers at the expected schema and the
    reader pages have been published by this release.

    The reasons name internal paths and errors, so they are for this host alone (the
    deploy's health gate asks on loopback): through Caddy, or from any other address,
    the answer says only ok or not.
    """
    report = health(request.app)
    status = 200 if report["status"] == "ok" else 503
    if not asked_on_this_host():
        report = {"status": report["status"]}
    return json_response(report, status)


PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def asked_on_this_host():
    """A request from loopback that no proxy passed on (Caddy always adds X-Forwarded-For,
    and behind it waitress may put the reader's address in REMOTE_ADDR). A request with
    no address at all never came over the network: it is the app calling itself."""
    environ = request.environ
    address = environ.get("REMOTE_ADDR")
    return address in (None, "127.0.0.1", "::1") and not any(h in environ for h in PROXY_HEADERS)


def health(app):
    """/healthz's body: {"status": "ok", ...}, or {"status": "error", "reason": ...}."""
    release = state(app).release
    published = state(app).startup_publish
    if published == "running":
        return {"status": "error", "release": release, "reason": "publishing reader pages"}
    if published not in (None, "ok"):
        return {"status": "error", "release": release, "reason": f"publishing failed: {published}"}
    try:
        with store.connected(state(app).config["database"]["path"]) as conn:  # fresh: see the file as it is now
            version = store.schema_version(conn)
            cards = store.count_cards(conn)
    except Exception as e:  # any failure here means "do not send traffic"
        return {"status": "error", "release": release, "reason": f"database unusable: {e}"}
    if version != store.SCHEMA_VERSION:
        reason = f"schema version {version}, this release expects {store.SCHEMA_VERSION}"
        return {"status": "error", "release": release, "reason": reason}
    commit = state(app).commit
    return {"status": "ok", "release": release, "commit": commit, "schema_version": version, "cards": cards}


def metrics_page():
    """Prometheus text format: also what runs in other processes counted (see metrics.py)."""
    healthy = health(request.app)["status"] == "ok"
    try:
        conn = db()
        totals, state = store.metric_totals(conn), store.observed_state(conn)
    except Exception:  # an unusable database: still answer, with milesahead_healthy 0
        totals = state = None
    response.content_type = "text/plain; version=0.0.4; charset=utf-8"
    return metrics.exposition(totals, state, cfg(), healthy)


# Every reader URL: publish.py renders exactly these into public/ for Caddy.
READER_ROUTES = [
    ("/", home),
    ("/deals", deals),
    ("/news", news),
    ("/articles/<slug>", article_page),
    ("/cards", cards_index),
    ("/cards/<slug>", card_page),
    ("/feed.xml", atom_feed),
    ("/sitemap.xml", sitemap),
    ("/robots.txt", robots),
    ("/api/articles", api_articles),
    ("/api/articles/<slug>", api_article),
    ("/api/cards", api_cards),
    ("/api/cards/<slug>", api_card),
]
ROUTES = [
    ("/healthz", healthz),
    ("/metrics", metrics_page),
    ("/static/<path:path>", static_file),
]


# --- Command line ------------------------------------------------------------


def serve(config, host=None, port=None):
    """Bind first, then publish: a second `serve` on the same data fails at the port
    before it has touched public/ (nothing is published by a process not serving)."""
    # stderr goes to the journal under systemd; the pipeline and the desk log through this
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    host = host or config["server"]["host"]
    port = port or config["server"]["port"]
    server = listen(app, config, host, port)
    try:
        publisher(app).check()
    except publish.PublishError:
        server.close()
        raise
    print(
        f"milesahead {app.state.release} on "
        + " ".join(f"http://{address}/" for address in listen_addresses(host, port)),
        flush=True,
    )
    pipeline.start_scheduler(config)  # the in-process schedule; off unless pipeline.schedule_minutes
    start_publishing(app)
    stop_runs_on_sigterm(config)
    server.run()


def stop_runs_on_sigterm(config):
    """systemd's stop (or a deploy's restart) ends a pipeline run in flight as `interrupted`.

    The handler lets the run record itself (a few seconds at most), then dies of SIGTERM as
    before, so systemd sees the same clean stop.
    """
    import signal

    def stop(signum, frame):
        pipeline.stop_runs(config)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, stop)


def listen(app, config, host, port):
    """waitress's server, bound to host:port, or a CommandError saying why it cannot be."""
    import waitress.server

    for address in str(host).split():  # waitress resolves them too, but says only "Invalid host/port specified"
        try:
            socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise CommandError(
                f"cannot resolve host {address!r} ({e.strerror}); set server.host or --host to an address of this machine"
            ) from None
    try:
        return waitress.server.create_server(app, **server_options(config, host, port))
    except OSError as e:
        hint = {
            errno.EADDRINUSE: "is another `serve` running? Stop it, or choose server.port or --port",
            errno.EADDRNOTAVAIL: "that address is not on this machine; set server.host or --host",
            errno.EACCES: "ports below 1024 need privileges; choose server.port or --port above 1023",
        }.get(e.errno, "check server.host and server.port")
        raise CommandError(f"cannot listen on {host}:{port}: {e.strerror}; {hint}") from None


# waitress answers a body at or over its own cap in plain text, before the app sees it.
# Its cap sits this far above server.max_body_bytes (and above the 10 MB Caddy lets
# through), so every oversized body a client can send through Caddy gets the app's own
# 413 page, or JSON under /api/; only beyond it does waitress stop reading.
WAITRESS_BODY_SLACK = 16 * 1024 * 1024


def listen_addresses(host, port):
    """host:port for each address in server.host: loopback, and the network a containerised Caddy comes from."""
    return [f"{address}:{port}" for address in str(host).split()]


def server_options(config, host, port):
    """waitress's settings for this config (serve, and the tests' live servers)."""
    options = dict(
        listen=" ".join(listen_addresses(host, port)),
        threads=config["server"]["threads"],
        max_request_body_size=config["server"]["max_body_bytes"] + WAITRESS_BODY_SLACK,
        ident="milesahead",
        # poll(), not select(): select() fails outright on a descriptor past 1024, which a
        # long-lived process (or a long test run) with many files open reaches.
        asyncore_use_poll=True,
    )
    if config["server"]["trust_proxy_headers"]:
        # Caddy on the same host sets these; without a proxy they would be forgeable.
        trusted = config["server"]["trusted_proxy"]
        options.update(trusted_proxy=trusted, trusted_proxy_headers={"x-forwarded-proto", "x-forwarded-for"})
    return options


def start_publishing(app):
    """Publish every reader page with this release's templates, beside the server starting.

    /healthz answers 503 until it is done, so a deploy's health gate passes only once
    readers get this release's pages; until then Caddy keeps serving the previous ones.
    """
    app.state.startup_publish = "running"

    def run():
        try:
            report = publisher(app).publish_all()
        except Exception as e:  # the gate reports it; the old pages stay in place
            logging.getLogger("milesahead.publish").exception("publishing reader pages failed")
            app.state.startup_publish = str(e) or type(e).__name__
            return
        print(f"published reader pages: {report}", flush=True)
        app.state.startup_publish = "ok"

    threading.Thread(target=run, name="publish-at-start", daemon=True).start()


def cmd_publish(config):
    app = create_app(config)
    report = publisher(app).publish_all()
    print(f"published to {publisher(app).directory}: {report}")


def cmd_migrate(config):
    with store.connected(config["database"]["path"]) as conn:
        applied = store.migrate(conn)
        version = store.schema_version(conn)
    print(f"schema at version {version}" + (f"; applied: {', '.join(applied)}" if applied else "; nothing to do"))


def cmd_seed_cards(config):
    cards = store.load_seed_cards()
    with store.connected(config["database"]["path"]) as conn:
        store.migrate(conn)
        counts = store.seed_cards(conn, cards)
    print("cards: {inserted} inserted, {updated} updated, {unchanged} unchanged".format(**counts))
    if counts["inserted"] or counts["updated"]:
        # Card pages and the lists, the sitemap and the articles that show card names.
        report = publisher(create_app(config)).publish_all()
        print(f"published reader pages: {report}")


def cmd_cards_report(config):
    """Print each card's facts age and its sources' ages, oldest first, for the editor."""
    with store.connected(config["database"]["path"]) as conn:
        store.migrate(conn)
        rows = store.cards_report(conn)
    if not rows:
        print("no cards in the database: run `app.py seed-cards` first")
        return
    for row in rows:
        if row["oldest_age_days"] is None:
            print(f"  no sources  {row['name']} ({row['slug']}): not checked against any cited source")
            continue
        print(
            f"{row['oldest_age_days']:>5} days  {row['name']} ({row['slug']}):"
            f" facts checked {row['facts_checked']}, {row['checked_age_days']} days ago"
        )
        for source in row["sources"]:
            when = f"undated, read {source['read']}" if source["undated"] else source["dated"]
            print(f"{source['age_days']:>11} days  {when}  {source['publisher']}: {source['title']}")


def cmd_backup(config, dest):
    with store.connected(config["database"]["path"]) as conn:
        try:
            path = store.backup(conn, dest)
        except OSError as e:
            raise CommandError(
                f"cannot write the backup to {dest} ({e.strerror}); choose a path this user can write"
            ) from None
        except sqlite3.Error as e:
            raise CommandError(f"cannot write the backup to {dest} ({e}); choose a path this user can write") from None
    print(f"backup written to {path} (integrity ok)")


def cmd_hash_password():
    """Print a bcrypt hash for admin.password_hash; the password is never echoed."""
    import bcrypt

    if sys.stdin.isatty():
        password = getpass.getpass("Admin password: ")
        if password != getpass.getpass("Again: "):
            raise SystemExit("error: the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise SystemExit("error: empty password")
    if len(password.encode()) > 72:
        raise SystemExit("error: password is longer than 72 bytes, which bcrypt cannot use; choose a shorter one")
    print(bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode())


def port_number(text):
    """--port: a TCP port, checked as server.port is."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port between 1 and 65535")
    return int(text)


def parser():
    """The command line; tests read its commands from here."""
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="milesahead web app: serve the site and manage its database.",
        epilog="Config: --config PATH, else $MILESAHEAD_CONFIG, else ./config.yaml, else built-in defaults.",
    )
    parser.add_argument("--config", metavar="PATH", help="YAML config file (see config.example.yaml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("serve", help="migrate, then serve the site with waitress")
    p.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    p.add_argument("--port", type=port_number, help="port to bind, 1-65535 (default: server.port, 8080)")
    commands.add_parser("migrate", help="create or migrate the database schema")
    commands.add_parser("publish", help="re-render every reader page into the public/ directory Caddy serves")
    commands.add_parser("seed-cards", help="upsert the reference cards from seed-cards/cards.json")
    commands.add_parser(
        "cards-report",
        help="list each card's facts-checked age and its sources' ages, oldest first (what to re-check)",
        description="For each card in the database: days since its facts were checked, and each source's"
        " own date (published or updated, else the day it was read) with its age. Oldest first.",
    )
    p = commands.add_parser("backup", help="write a consistent online copy of the database")
    p.add_argument("dest", help="file to write (replaced atomically)")
    commands.add_parser("hash-password", help="read a password (no echo) and print its bcrypt hash")
    return parser


def main(argv=None):
    args = parser().parse_args(argv)

    if args.command == "hash-password":
        return cmd_hash_password()
    try:
        config = configuration.load_config(args.config)
    except configuration.ConfigError as e:
        raise SystemExit(f"config error: {e}") from None
    try:
        if args.command == "serve":
            serve(config, args.host, args.port)
        elif args.command == "migrate":
            cmd_migrate(config)
        elif args.command == "publish":
            cmd_publish(config)
        elif args.command == "seed-cards":
            cmd_seed_cards(config)
        elif args.command == "cards-report":
            cmd_cards_report(config)
        elif args.command == "backup":
            cmd_backup(config, args.dest)
    except store.CardError as e:
        raise SystemExit(f"seed error: {e}") from None
    except publish.PublishError as e:
        raise SystemExit(f"publish error: {e}") from None
    except store.DatabaseError as e:
        raise SystemExit(f"database error: {e}") from None
    except sqlite3.Error as e:  # opened, then refused a read or write (read-only file, full disk)
        path = config["database"]["path"]
        raise SystemExit(f"database error: {path}: {e}; {store.USABLE_DATABASE}") from None
    except CommandError as e:
        raise SystemExit(f"error: {e}") from None
    except BrokenPipeError:
        # The reader of our output left (`cards-report | head`): stop quietly, as other
        # Unix tools do, and keep Python from complaining again while it flushes stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None


if __name__ == "__main__":
    main()
