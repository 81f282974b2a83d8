"""SQLite storage shared by the web app, the pipeline and the toolkit's backups.

The one owner of the database: every SQL statement of the app is in a named function
here, and other modules call those (a new query is a new function here, not SQL in the
caller). Sections, in order: connections, migrations, cards (seed and read), articles
(the field table, write and read), revisions, events and card links, desk sessions,
feeds, items and stories, pipeline runs, metrics, backup.

Every write runs in a short BEGIN IMMEDIATE transaction so the web process and the
pipeline never deadlock on upgrade. A function that says "the caller's transaction"
writes inside one its caller holds (`with store.transaction(conn):`), so several writes
commit together; the others open their own.
"""

import contextlib
import datetime
import hashlib
import json
import os
import re
import sqlite3
import unicodedata

import jsonschema
import nh3

import urls

HERE = os.path.dirname(os.path.abspath(__file__))
CARDS_FILE = os.path.join(HERE, "seed-cards", "cards.json")
CARDS_SCHEMA_FILE = os.path.join(HERE, "seed-cards", "cards.schema.json")

CATEGORIES = ["Travel", "Cash-back", "Airline", "Business", "Hotel", "Rewards"]
SECTIONS = [
    ("welcome_bonus", "Welcome Bonus"),
    ("earning_rates", "Earning Rates"),
    ("annual_fee", "Annual Fee"),
    ("key_benefits", "Key Benefits"),
    ("transfer_partners", "Transfer Partners"),
    ("redemption_options", "Redemption Options"),
    ("drawbacks", "Drawbacks"),
    ("best_for", "Best For"),
]
ARTICLE_STATUSES = ["draft", "pending", "revision_requested", "approved", "rejected", "unpublished"]
ARTICLE_TYPES = ["deal", "summary", "roundup"]


def now():
    """UTC timestamp as ISO 8601 text: sortable, readable in the sqlite3 shell."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


# --- Connections -------------------------------------------------------------


class DatabaseError(Exception):
    """The database cannot be opened or written; the message names the file and what to do."""


USABLE_DATABASE = "database.path must name a SQLite database in a directory this user can write"


def connect(path):
    """Open the database with the settings every caller needs.

    isolation_level=None leaves transactions to `transaction()`, so nothing is
    held open between statements by the sqlite3 module's implicit BEGIN.
    A file that is not SQLite, or a directory that cannot hold one, is a
    DatabaseError naming the path, not a traceback from deep in sqlite3.

    On the server Litestream replicates this file and does the checkpointing: the
    busy timeout waits out its short write locks (its guidance: at least 5 s), and
    nothing here ever runs `wal_checkpoint` (a TRUNCATE behind its back makes it
    miss WAL frames). SQLite's default autocheckpoint stays: Litestream handles it,
    and it bounds the WAL where no Litestream runs.
    """
    if path != ":memory:":
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise DatabaseError(f"{path}: cannot create {folder} ({_why_not(folder, e)}); {USABLE_DATABASE}") from None
    try:
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise DatabaseError(f"{path}: {e}; {USABLE_DATABASE}") from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as e:
        conn.close()
        raise DatabaseError(f"{path}: {e}; {USABLE_DATABASE}") from None
    return conn


def _why_not(folder, error):
    """Why a directory cannot be made: most often a file stands where a directory should."""
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if os.path.isdir(existing):
        return error.strerror
    return "it is a file, not a directory" if existing == folder else f"{existing} is a file, not a directory"


@contextlib.contextmanager
def connected(path):
    """A connection for one piece of work, closed after it: `with store.connected(path) as conn:`.

    (Web requests reuse a connection per thread instead: web.db.)
    """
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(conn):
    """A short write transaction that takes the write lock up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


# --- Migrations --------------------------------------------------------------
# Ordered and append-only: never edit a migration that has shipped; add one.

MIGRATIONS = [
    (
        "cards",
        """
        CREATE TABLE cards (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            issuer TEXT NOT NULL,
            network TEXT NOT NULL,
            category TEXT NOT NULL,
            annual_fee_usd INTEGER NOT NULL,
            official_url TEXT NOT NULL,
            facts_checked TEXT NOT NULL,
            verdict TEXT NOT NULL,
            keywords TEXT NOT NULL,      -- JSON list of names/aliases for auto-linking
            sections TEXT NOT NULL,      -- JSON object: section key -> list of bullets
            content_hash TEXT NOT NULL,  -- lets seeding tell "unchanged" from "updated"
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    (
        "articles and editorial workflow",
        """
        CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN
                ('draft','pending','revision_requested','approved','rejected','unpublished')),
            type TEXT NOT NULL DEFAULT 'summary' CHECK (type IN ('deal','summary','roundup')),
            title TEXT NOT NULL,
            tldr TEXT NOT NULL DEFAULT '',
            key_details TEXT NOT NULL DEFAULT '[]',   -- JSON [[label, value], ...]
            body_html TEXT NOT NULL DEFAULT '',       -- sanitised on write
            links TEXT NOT NULL DEFAULT '[]',         -- JSON [{"title", "url"}]
            sources TEXT NOT NULL DEFAULT '[]',       -- JSON [{"title", "url", "site"}]
            persona_take TEXT NOT NULL DEFAULT '',
            critic_score REAL,
            critic_issues TEXT NOT NULL DEFAULT '[]', -- JSON list of strings
            image_url TEXT NOT NULL DEFAULT '',
            image_thumb_url TEXT NOT NULL DEFAULT '',
            image_alt TEXT NOT NULL DEFAULT '',
            image_attribution TEXT NOT NULL DEFAULT '{}',  -- JSON {author, source, license, link}
            image_candidates TEXT NOT NULL DEFAULT '[]',   -- JSON, what the pipeline weighed
            feedback TEXT NOT NULL DEFAULT '',        -- the editor's latest revision request
            cluster_id INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            published_at TEXT
        );
        CREATE INDEX articles_status_published ON articles (status, published_at);

        CREATE TABLE article_revisions (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            author TEXT NOT NULL,        -- 'pipeline' or the editor
            note TEXT NOT NULL DEFAULT '',
            type TEXT NOT NULL,
            title TEXT NOT NULL,
            tldr TEXT NOT NULL,
            body_html TEXT NOT NULL,
            key_details TEXT NOT NULL,
            persona_take TEXT NOT NULL,
            critic_score REAL,
            critic_issues TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (article_id, number)
        );

        CREATE TABLE article_events (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            from_status TEXT,
            to_status TEXT,
            feedback TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );

        CREATE TABLE article_cards (
            article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            card_id INTEGER NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
            PRIMARY KEY (article_id, card_id)
        );

        CREATE TABLE card_changes (
            id INTEGER PRIMARY KEY,
            card_id INTEGER NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
            article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            UNIQUE (card_id, article_id)
        );
        """,
    ),
    (
        "pipeline sources, items, clusters and runs",
        """
        CREATE TABLE feed_sources (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            url TEXT NOT NULL UNIQUE,
            site TEXT NOT NULL DEFAULT '',
            etag TEXT NOT NULL DEFAULT '',
            last_modified TEXT NOT NULL DEFAULT '',
            last_fetched_at TEXT,
            last_error TEXT NOT NULL DEFAULT ''
        );

        CREATE TABLE clusters (
            id INTEGER PRIMARY KEY,
            fingerprint TEXT NOT NULL UNIQUE,   -- hash of member item hashes
            title TEXT NOT NULL,
            type TEXT NOT NULL DEFAULT 'summary',
            site_count INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'new', -- new, generated, failed, skipped
            error TEXT NOT NULL DEFAULT '',
            article_id INTEGER REFERENCES articles (id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE raw_items (
            id INTEGER PRIMARY KEY,
            source_id INTEGER REFERENCES feed_sources (id) ON DELETE SET NULL,
            site TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '',
            published_at TEXT,
            content_hash TEXT NOT NULL UNIQUE,  -- SHA-256 of normalised title+summary
            cluster_id INTEGER REFERENCES clusters (id) ON DELETE SET NULL,
            fetched_at TEXT NOT NULL
        );
        CREATE INDEX raw_items_fetched ON raw_items (fetched_at);

        CREATE TABLE pipeline_runs (
            id INTEGER PRIMARY KEY,
            trigger TEXT NOT NULL,              -- schedule, admin, cli
            status TEXT NOT NULL DEFAULT 'running', -- running, ok, partial, failed, interrupted
            started_at TEXT NOT NULL,
            finished_at TEXT,
            stages TEXT NOT NULL DEFAULT '{}',  -- JSON stage -> seconds
            counts TEXT NOT NULL DEFAULT '{}',  -- JSON name -> number
            errors TEXT NOT NULL DEFAULT '[]'   -- JSON list of strings
        );
        """,
    ),
    (
        "admin session revocations",
        """
        CREATE TABLE revoked_sessions (
            nonce TEXT PRIMARY KEY,       -- the session cookie's random part
            expires_at INTEGER NOT NULL   -- unix time the cookie would have expired anyway
        );
        """,
    ),
    (
        "pipeline metric totals",
        """
        CREATE TABLE metric_totals (
            sample TEXT NOT NULL,   -- a Prometheus sample name, e.g. milesahead_image_search_total
            labels TEXT NOT NULL,   -- JSON [[name, value], ...], sorted by name
            value REAL NOT NULL,    -- the sum of what every run, in any process, counted
            PRIMARY KEY (sample, labels)
        );
        """,
    ),
    # sources: JSON [{url, title, publisher, published?, read}]; fee_tiers: JSON [{name, usd}],
    # cheapest first; first_year_fee_usd: NULL when the issuer waives nothing the first year.
    (
        "card sources and fee tiers",
        """
        ALTER TABLE cards ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE cards ADD COLUMN fee_tiers TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE cards ADD COLUMN first_year_fee_usd INTEGER;
        """,
    ),
    (
        "pipeline run failures",
        """
        ALTER TABLE pipeline_runs ADD COLUMN failures TEXT NOT NULL DEFAULT '[]';
        -- JSON list of failed outside calls: {"source"|"model"|"feed": name, "story", "reason"}
        """,
    ),
    (
        "article events by article",
        """
        -- /metrics asks every scrape when each waiting article entered its status
        CREATE INDEX article_events_article ON article_events (article_id, to_status);
        """,
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn):
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone()
    if not exists:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn, target=SCHEMA_VERSION):
    """Apply pending migrations in order, each in its own transaction. Returns names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    applied = []
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"database schema version {current} is newer than this code ({SCHEMA_VERSION})")
    for version, (name, sql) in enumerate(MIGRATIONS[:target], start=1):
        if version <= current:
            continue
        with transaction(conn):
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", (version, name, now())
            )
        applied.append(name)
    return applied


def _statements(sql):
    """Split a migration into statements (executescript would COMMIT our transaction)."""
    return [s.strip() for s in sql.split(";") if s.strip() and not s.strip().startswith("--")]


# --- Cards -------------------------------------------------------------------


class CardError(ValueError):
    """A card in the seed file is malformed; the message names the card and the field."""


def load_seed_cards(path=CARDS_FILE, schema_path=CARDS_SCHEMA_FILE):
    """Read and validate the seed file, naming the card and field of the first problem."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = list(error.absolute_path)
        card = "?"
        if len(where) >= 2 and where[0] == "cards" and isinstance(where[1], int):
            entry = data["cards"][where[1]]
            card = entry.get("name") or entry.get("slug") or f"#{where[1] + 1}"
            where = where[2:]
        field = ".".join(str(p) for p in where) or "(card)"
        raise CardError(f"{path}: card '{card}', field '{field}': {error.message}")
    return data["cards"]


def seed_cards(conn, cards):
    """Upsert cards by slug. Returns counts; touches no card whose content is unchanged.

    Recent Changes live in card_changes, keyed by card id, which an upsert keeps,
    so re-seeding never erases them.
    """
    for card in cards:  # the issuer links are printed as hrefs: the one URL policy, before anything is written
        if urls.safe_url(card["official_url"]) != card["official_url"]:
            raise CardError(
                f"card '{card.get('name') or card.get('slug')}', field 'official_url': "
                f"{card['official_url']!r} is not an absolute http(s) URL"
            )
        for n, source in enumerate(card.get("sources", [])):  # printed as hrefs under Sources
            if urls.safe_url(source["url"]) != source["url"]:
                raise CardError(
                    f"card '{card.get('name') or card.get('slug')}', field 'sources.{n}.url': "
                    f"{source['url']!r} is not an absolute http(s) URL"
                )
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    stamp = now()
    with transaction(conn):
        for card in cards:
            keywords = json.dumps(card["keywords"], ensure_ascii=False)
            sections = json.dumps(card["sections"], ensure_ascii=False, sort_keys=True)
            sources = json.dumps(card.get("sources", []), ensure_ascii=False)
            fee_tiers = json.dumps(card.get("fee_tiers", []), ensure_ascii=False)
            digest = hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()
            row = conn.execute("SELECT content_hash FROM cards WHERE slug = ?", (card["slug"],)).fetchone()
            if row and row["content_hash"] == digest:
                counts["unchanged"] += 1
                continue
            values = (
                card["name"],
                card["issuer"],
                card.get("network", ""),  # left out where no source confirms it
                card["category"],
                card["annual_fee_usd"],
                card["official_url"],
                card.get("facts_checked", ""),
                card["verdict"],
                keywords,
                sections,
                sources,
                fee_tiers,
                card.get("first_year_fee_usd"),
                digest,
                stamp,
            )
            if row:
                conn.execute(
                    "UPDATE cards SET name=?, issuer=?, network=?, category=?, annual_fee_usd=?, official_url=?,"
                    " facts_checked=?, verdict=?, keywords=?, sections=?, sources=?, fee_tiers=?, first_year_fee_usd=?,"
                    " content_hash=?, updated_at=?"
                    " WHERE slug=?",
                    (*values, card["slug"]),
                )
                counts["updated"] += 1
            else:
                conn.execute(
                    "INSERT INTO cards (name, issuer, network, category, annual_fee_usd, official_url,"
                    " facts_checked, verdict, keywords, sections, sources, fee_tiers, first_year_fee_usd,"
                    " content_hash, updated_at, slug, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, card["slug"], stamp),
                )
                counts["inserted"] += 1
    return counts


def _card(row):
    if row is None:
        return None
    card = dict(row)
    for field in ("keywords", "sections", "sources", "fee_tiers"):
        if field in card:
            card[field] = json.loads(card[field])
    return card


def list_cards(conn):
    rows = conn.execute("SELECT * FROM cards ORDER BY name").fetchall()
    return [_card(r) for r in rows]


def card_summaries(conn):
    """Just what lists and card links need: no sections or sources to decode."""
    rows = conn.execute(
        "SELECT id, slug, name, issuer, network, category, annual_fee_usd, first_year_fee_usd, fee_tiers,"
        " facts_checked, keywords FROM cards ORDER BY name"
    ).fetchall()
    return [_card(r) for r in rows]


def fee_label(card):
    """The annual fee as issuers state it: every tier, a first-year waiver, and
    "No annual fee" only when no version of the card charges one."""
    tiers = card.get("fee_tiers") or []
    if tiers:
        fees = [t["usd"] for t in tiers]
        if not any(fees):
            return "No annual fee"
        amounts = ["$" + str(usd) for usd in fees]
        return f"{', '.join(amounts[:-1])} or {amounts[-1]} annual fee, by tier"
    fee, first_year = card["annual_fee_usd"], card.get("first_year_fee_usd")
    if first_year is not None and first_year != fee:
        return f"${first_year} annual fee the first year, then ${fee}"
    return "No annual fee" if fee == 0 else f"${fee} annual fee"


def cards_by_category(conn):
    """[(category, [card summaries])] in the fixed category order readers see."""
    cards = card_summaries(conn)
    return [(c, [card for card in cards if card["category"] == c]) for c in CATEGORIES]


def get_card(conn, slug):
    return _card(conn.execute("SELECT * FROM cards WHERE slug = ?", (slug,)).fetchone())


def count_cards(conn):
    return conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0]


def cards_report(conn, today=None):
    """Per card, how old its facts and each of its sources are, oldest first: what to re-check.

    A source's date is its own published/updated date where it states one, else the day it
    was read; a card is as old as its oldest source.
    """
    today = today or datetime.date.today()
    rows = []
    for card in list_cards(conn):
        sources = []
        for source in card["sources"]:
            dated = source.get("published") or source["read"]
            age = (today - datetime.date.fromisoformat(dated)).days
            sources.append(dict(source, dated=dated, age_days=age, undated="published" not in source))
        # A card with no sources has not been checked against anything: it goes first.
        if sources:
            checked_age = (today - datetime.date.fromisoformat(card["facts_checked"])).days
            oldest = max([s["age_days"] for s in sources] + [checked_age])
        else:
            checked_age = oldest = None
        rows.append(
            {
                "slug": card["slug"],
                "name": card["name"],
                "facts_checked": card["facts_checked"],
                "checked_age_days": checked_age,
                "oldest_age_days": oldest,
                "sources": sources,
            }
        )
    rows.sort(key=lambda r: (r["oldest_age_days"] is not None, -(r["oldest_age_days"] or 0), r["name"]))
    return rows


def card_recent_changes(conn, card_id):
    """Published articles that mention the card, newest first."""
    rows = conn.execute(
        "SELECT a.slug, a.title, a.type, a.tldr, a.published_at, cc.created_at AS linked_at"
        " FROM card_changes cc JOIN articles a ON a.id = cc.article_id"
        " WHERE cc.card_id = ? AND a.status = 'approved' ORDER BY a.published_at DESC, a.id DESC",
        (card_id,),
    ).fetchall()
    return [dict(r) for r in rows]


# --- Articles ----------------------------------------------------------------

ALLOWED_TAGS = {
    "p",
    "br",
    "h2",
    "h3",
    "h4",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "b",
    "i",
    "a",
    "blockquote",
    "code",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}

# Every article field, once. Each list below is derived from this table, so a new field is
# one line here (and a migration). Columns: the name; stored as JSON text; sent by the public
# JSON API; its label in a revision's diff ("": not kept in revisions, which snapshot the
# text alone); written by the pipeline and the desk (the rest the store sets itself).
ARTICLE_FIELDS = [
    # name               JSON   public  revision label   written
    ("slug", False, True, "", False),
    ("title", False, True, "Title", True),
    ("tldr", False, True, "TL;DR", True),
    ("type", False, True, "Type", True),
    ("body_html", False, True, "Body", True),
    ("key_details", True, True, "Key details", True),
    ("persona_take", False, True, "Take", True),
    ("critic_score", False, False, "Critic score", True),
    ("critic_issues", True, False, "Critic issues", True),
    ("links", True, True, "", True),
    ("sources", True, True, "", True),
    ("image_url", False, True, "", True),
    ("image_thumb_url", False, False, "", True),
    ("image_alt", False, True, "", True),
    ("image_attribution", True, True, "", True),
    ("image_candidates", True, False, "", True),
    ("feedback", False, False, "", True),
    ("cluster_id", False, False, "", True),
    ("published_at", False, True, "", False),
    ("updated_at", False, True, "", False),
]
JSON_FIELDS = [name for name, is_json, _public, _label, _written in ARTICLE_FIELDS if is_json]
PUBLIC_ARTICLE_FIELDS = [name for name, _json, public, _label, _written in ARTICLE_FIELDS if public]
# (field, label) in the order a diff shows them
REVISION_FIELDS = [(name, label) for name, _json, _public, label, _written in ARTICLE_FIELDS if label]
ARTICLE_COLUMNS = {name for name, _json, _public, _label, written in ARTICLE_FIELDS if written}


def sanitize_html(html):
    """Article HTML comes from a model and from editors: keep structure, drop everything active."""
    return nh3.clean(
        html or "",
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow",
    )


def slugify(text, max_length=80):
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "article"


def _unique_slug(conn, title):
    base = slugify(title)
    slug, n = base, 2
    while conn.execute("SELECT 1 FROM articles WHERE slug = ?", (slug,)).fetchone():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _article(row):
    if row is None:
        return None
    article = dict(row)
    for field in JSON_FIELDS:
        article[field] = json.loads(article[field])
    return article


def _article_values(fields):
    """Column values for an insert/update: JSON encoded, body sanitised."""
    values = {}
    for key, value in fields.items():
        if key in JSON_FIELDS:
            value = json.dumps(value, ensure_ascii=False)
        elif key == "body_html":
            value = sanitize_html(value)
        values[key] = value
    return values


def insert_article(conn, author="pipeline", note="", status="draft", **fields):
    """Store a new article and its first revision in one transaction. Returns its id."""
    unknown = set(fields) - ARTICLE_COLUMNS
    if unknown:
        raise ValueError(f"unknown article fields: {sorted(unknown)}")
    if status not in ARTICLE_STATUSES:
        raise ValueError(f"unknown status {status!r}")
    values = _article_values(fields)
    stamp = now()
    with transaction(conn):
        values.update(
            slug=_unique_slug(conn, fields["title"]),
            status=status,
            created_at=stamp,
            updated_at=stamp,
            published_at=stamp if status == "approved" else None,
        )
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        # columns come from ARTICLE_COLUMNS (checked above), never from input
        sql = f"INSERT INTO articles ({columns}) VALUES ({marks})"  # noqa: S608
        article_id = conn.execute(sql, list(values.values())).lastrowid
        add_revision(conn, article_id, author, note)
    return article_id


def add_revision(conn, article_id, author, note=""):
    """Snapshot the article's current text as the next revision (caller holds the transaction)."""
    number = conn.execute(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM article_revisions WHERE article_id = ?", (article_id,)
    ).fetchone()[0]
    columns = ", ".join(field for field, _label in REVISION_FIELDS)  # from the table above, never input
    conn.execute(
        f"INSERT INTO article_revisions (article_id, number, author, note, {columns}, created_at)"  # noqa: S608
        f" SELECT id, ?, ?, ?, {columns}, ? FROM articles WHERE id = ?",
        (number, author, note, now(), article_id),
    )
    return number


SQLITE_INTEGERS = range(-(2**63), 2**63)  # an id outside it names no row (and sqlite3 would raise)


def get_article(conn, article_id):
    """Any article, whatever its status: for the desk and the pipeline, never for readers."""
    if article_id not in SQLITE_INTEGERS:
        return None
    return _article(conn.execute("SELECT * FROM articles WHERE id = ?", (article_id,)).fetchone())


def get_published_article(conn, slug):
    row = conn.execute("SELECT * FROM articles WHERE slug = ? AND status = 'approved'", (slug,)).fetchone()
    return _article(row)


def list_published(conn, type=None, exclude_type=None, limit=50):
    """Approved articles only: the one query every reader-facing list goes through."""
    sql = "SELECT * FROM articles WHERE status = 'approved'"
    params = []
    if type:
        sql += " AND type = ?"
        params.append(type)
    if exclude_type:
        sql += " AND type != ?"
        params.append(exclude_type)
    sql += " ORDER BY published_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return [_article(r) for r in conn.execute(sql, params).fetchall()]


def published_slugs(conn):
    """Slugs of every approved article: the article pages publish.py writes."""
    return [r[0] for r in conn.execute("SELECT slug FROM articles WHERE status = 'approved' ORDER BY id")]


def article_linked_cards(conn, article_id):
    rows = conn.execute(
        "SELECT c.slug, c.name FROM article_cards ac JOIN cards c ON c.id = ac.card_id"
        " WHERE ac.article_id = ? ORDER BY c.name",
        (article_id,),
    ).fetchall()
    return [dict(r) for r in rows]


def update_article(conn, article_id, **values):
    """Set these columns of one article (the caller's transaction): JSON encoded, body sanitised.

    Only the workflow's own literals and fields checked against ARTICLE_COLUMNS come here.
    """
    unknown = set(values) - ARTICLE_COLUMNS - {"status", "updated_at", "published_at"}
    if unknown:
        raise ValueError(f"unknown article fields: {sorted(unknown)}")
    values = _article_values(values)
    assignments = ", ".join(f"{column} = ?" for column in values)
    # column names are checked above, never raw input
    conn.execute(f"UPDATE articles SET {assignments} WHERE id = ?", [*values.values(), article_id])  # noqa: S608


def status_counts(conn):
    """{status: number of articles} for every status, zeros included (desk, pipeline, /metrics)."""
    counts = dict.fromkeys(ARTICLE_STATUSES, 0)
    counts.update(conn.execute("SELECT status, COUNT(*) FROM articles GROUP BY status").fetchall())
    return counts


def list_by_status(conn, status, limit=50):
    """One desk queue: the articles in a status, last changed first, without their long fields."""
    rows = conn.execute(
        "SELECT id, slug, status, type, title, tldr, critic_score, created_at, updated_at, published_at"
        " FROM articles WHERE status = ? ORDER BY updated_at DESC, id DESC LIMIT ?",
        (status, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def ids_with_status(conn, status):
    """Ids of every article in a status, the longest unchanged first (the pipeline's revisions)."""
    return [r[0] for r in conn.execute("SELECT id FROM articles WHERE status = ? ORDER BY updated_at", (status,))]


def article_for_story(conn, story_id):
    """The id of the article written from a story, or None."""
    row = conn.execute("SELECT id FROM articles WHERE cluster_id = ?", (story_id,)).fetchone()
    return row[0] if row else None


# --- Revisions, events and card links ----------------------------------------


def revisions(conn, article_id):
    """An article's revisions, oldest first, their JSON fields decoded."""
    rows = conn.execute("SELECT * FROM article_revisions WHERE article_id = ? ORDER BY number", (article_id,))
    result = []
    for row in rows.fetchall():
        revision = dict(row)
        for field in ("key_details", "critic_issues"):
            revision[field] = json.loads(revision[field])
        result.append(revision)
    return result


def add_event(conn, article_id, actor, action, from_status, to_status, feedback=""):
    """Record who did what to an article (the caller's transaction)."""
    conn.execute(
        "INSERT INTO article_events (article_id, actor, action, from_status, to_status, feedback, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (article_id, actor, action, from_status, to_status, feedback or "", now()),
    )


def events(conn, article_id):
    rows = conn.execute("SELECT * FROM article_events WHERE article_id = ? ORDER BY id", (article_id,)).fetchall()
    return [dict(r) for r in rows]


def set_card_links(conn, article_id, card_ids):
    """Link the article to exactly these cards, and list it in their Recent Changes (the caller's
    transaction). A link that exists keeps its date; cards not named lose the article."""
    marks = ",".join("?" for _ in card_ids)
    # marks are only "?" placeholders
    for table in ("article_cards", "card_changes"):
        sql = f"DELETE FROM {table} WHERE article_id = ? AND card_id NOT IN ({marks})"  # noqa: S608
        conn.execute(sql, [article_id, *card_ids])
    stamp = now()
    for card_id in card_ids:
        conn.execute("INSERT OR IGNORE INTO article_cards (article_id, card_id) VALUES (?, ?)", (article_id, card_id))
        conn.execute(
            "INSERT OR IGNORE INTO card_changes (card_id, article_id, created_at) VALUES (?, ?, ?)",
            (card_id, article_id, stamp),
        )


def issuer_urls(conn):
    """Every card's official URL: the issuers' sites an article may link to."""
    return [r[0] for r in conn.execute("SELECT official_url FROM cards")]


# --- Desk sessions -----------------------------------------------------------


def revoke_session(conn, nonce, expires_at, now_seconds):
    """Remember a logged-out session until it would have expired anyway; forget expired ones."""
    with transaction(conn):
        conn.execute("DELETE FROM revoked_sessions WHERE expires_at < ?", (now_seconds,))
        conn.execute("INSERT OR IGNORE INTO revoked_sessions (nonce, expires_at) VALUES (?, ?)", (nonce, expires_at))


def is_session_revoked(conn, nonce):
    return conn.execute("SELECT 1 FROM revoked_sessions WHERE nonce = ?", (nonce,)).fetchone() is not None


# --- Feeds, items and stories ------------------------------------------------
# A story is a group of items about one piece of news; its table is `clusters`.


def upsert_feed_source(conn, name, url, site):
    """Add or rename a configured feed (the caller's transaction); returns its row."""
    conn.execute(
        "INSERT INTO feed_sources (name, url, site) VALUES (?, ?, ?)"
        " ON CONFLICT (url) DO UPDATE SET name = excluded.name, site = excluded.site",
        (name, url, site),
    )
    return dict(conn.execute("SELECT * FROM feed_sources WHERE url = ?", (url,)).fetchone())


def record_fetch(conn, source_id, error, validators=None):
    """After a fetch: its time and error; the reply's (etag, last_modified) when the whole feed
    parsed, or blank ones after an error, so the next fetch asks for the whole document."""
    with transaction(conn):
        if validators is not None:
            conn.execute("UPDATE feed_sources SET etag = ?, last_modified = ? WHERE id = ?", (*validators, source_id))
        elif error:
            conn.execute("UPDATE feed_sources SET etag = '', last_modified = '' WHERE id = ?", (source_id,))
        conn.execute(
            "UPDATE feed_sources SET last_fetched_at = ?, last_error = ? WHERE id = ?", (now(), error, source_id)
        )


def add_items(conn, source_id, items):
    """Insert normalised items; one whose content hash is stored already is skipped. Returns how many were new."""
    new = 0
    stamp = now()
    with transaction(conn):
        for item in items:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO raw_items (source_id, site, url, title, summary, published_at,"
                " content_hash, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    source_id,
                    item["site"],
                    item["url"],
                    item["title"],
                    item["summary"],
                    item["published_at"],
                    item["content_hash"],
                    stamp,
                ),
            )
            new += cursor.rowcount
    return new


def recent_items(conn, since):
    """Items published (else fetched) since `since`, oldest first: what the stories are grouped from."""
    return conn.execute(
        "SELECT id, site, title, summary, content_hash, cluster_id FROM raw_items"
        " WHERE COALESCE(published_at, fetched_at) >= ? ORDER BY COALESCE(published_at, fetched_at), id",
        (since,),
    ).fetchall()


def attach_items(conn, story_id, item_ids):
    """Make these items part of a story (the caller's transaction)."""
    conn.executemany("UPDATE raw_items SET cluster_id = ? WHERE id = ?", [(story_id, i) for i in item_ids])


def add_story(conn, fingerprint, title, type, site_count):
    """A new story, status `new` (the caller's transaction; it attaches the items). Returns its id."""
    stamp = now()
    return conn.execute(
        "INSERT INTO clusters (fingerprint, title, type, site_count, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        (fingerprint, title, type, site_count, stamp, stamp),
    ).lastrowid


def get_story(conn, story_id):
    """A story with its items, oldest first, as the writer reads it."""
    row = conn.execute("SELECT * FROM clusters WHERE id = ?", (story_id,)).fetchone()
    items = conn.execute(
        "SELECT site, url, title, summary, published_at FROM raw_items WHERE cluster_id = ?"
        " ORDER BY COALESCE(published_at, fetched_at), id",
        (story_id,),
    ).fetchall()
    return {"id": row["id"], "title": row["title"], "type": row["type"], "items": [dict(i) for i in items]}


def stories_to_write(conn, limit):
    """New stories newest first, then ones that failed before (a transient failure gets another go)."""
    rows = conn.execute(
        "SELECT id FROM clusters WHERE status IN ('new', 'failed') AND article_id IS NULL"
        " ORDER BY status = 'failed', id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [r["id"] for r in rows]


def mark_story(conn, story_id, status, article_id=None, error=""):
    with transaction(conn):
        conn.execute(
            "UPDATE clusters SET status = ?, article_id = COALESCE(?, article_id), error = ?, updated_at = ?"
            " WHERE id = ?",
            (status, article_id, error[:1000], now(), story_id),
        )


def story_counts(conn):
    """{status: number of stories} (new, generated, failed, skipped; a status with none is absent)."""
    return dict(conn.execute("SELECT status, COUNT(*) FROM clusters GROUP BY status").fetchall())


# --- Pipeline runs -----------------------------------------------------------

RUN_JSON = (("stages", {}), ("counts", {}), ("errors", []), ("failures", []))


def _run(row):
    """A pipeline_runs row with its JSON columns decoded: the one place they are read."""
    if row is None:
        return None
    run = dict(row)
    for key, empty in RUN_JSON:
        try:
            run[key] = json.loads(run[key] or "null") or empty
        except ValueError:
            run[key] = empty
    return run


def start_run(conn, trigger):
    """A new `running` row (the caller's transaction). Returns its id."""
    return conn.execute("INSERT INTO pipeline_runs (trigger, started_at) VALUES (?, ?)", (trigger, now())).lastrowid


def save_run(conn, run_id, stages, counts, errors, failures, status=None):
    """What a run has recorded so far, and its final status when given (the caller's transaction)."""
    values = [json.dumps(stages), json.dumps(counts), json.dumps(errors), json.dumps(failures)]
    if status:
        sql = "UPDATE pipeline_runs SET stages = ?, counts = ?, errors = ?, failures = ?, status = ?, finished_at = ?"
        values += [status, now()]
    else:
        sql = "UPDATE pipeline_runs SET stages = ?, counts = ?, errors = ?, failures = ?"
    conn.execute(sql + " WHERE id = ?", [*values, run_id])


def get_run(conn, run_id):
    return _run(conn.execute("SELECT * FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone())


def list_runs(conn, limit=20):
    """Latest pipeline runs, newest first, with their JSON columns decoded (the desk and the CLI)."""
    return [_run(row) for row in conn.execute("SELECT * FROM pipeline_runs ORDER BY id DESC LIMIT ?", (limit,))]


def mark_runs_interrupted(conn, reason):
    """Mark every `running` row interrupted, adding `reason` to its errors (the caller's
    transaction; the caller holds the run lock). Returns their ids."""
    stopped = [_run(row) for row in conn.execute("SELECT * FROM pipeline_runs WHERE status = 'running'").fetchall()]
    for run in stopped:
        conn.execute(
            "UPDATE pipeline_runs SET status = 'interrupted', finished_at = ?, errors = ? WHERE id = ?",
            (now(), json.dumps([*run["errors"], reason]), run["id"]),
        )
    return [run["id"] for run in stopped]


# --- Metrics -----------------------------------------------------------------


def add_metric_totals(conn, increments):
    """Add a run's {(sample, labels): increase} to metric_totals (the caller's transaction)."""
    conn.executemany(
        "INSERT INTO metric_totals (sample, labels, value) VALUES (?, ?, ?)"
        " ON CONFLICT (sample, labels) DO UPDATE SET value = value + excluded.value",
        [(name, json.dumps(labels), value) for (name, labels), value in increments.items()],
    )


def metric_totals(conn):
    """{(sample, labels as sorted tuples): value} over every run so far (metrics.run_families)."""
    return {
        (row["sample"], tuple(tuple(pair) for pair in json.loads(row["labels"]))): row["value"]
        for row in conn.execute("SELECT sample, labels, value FROM metric_totals")
    }


def observed_state(conn):
    """What /metrics reports about the data: articles by status, the editor's oldest wait, the last good run."""
    articles = status_counts(conn)
    # waiting since it entered its status: the last event into it, else when it was written
    # (a join on the article_events_article index, cheap with thousands of articles)
    oldest = conn.execute(
        "SELECT MIN(since) FROM (SELECT COALESCE(MAX(e.created_at), a.created_at) AS since"
        " FROM articles a LEFT JOIN article_events e ON e.article_id = a.id AND e.to_status = a.status"
        " WHERE a.status IN ('draft', 'pending') GROUP BY a.id)"
    ).fetchone()[0]
    success = conn.execute("SELECT MAX(finished_at) FROM pipeline_runs WHERE status IN ('ok', 'partial')").fetchone()[0]
    return {"articles": articles, "oldest_waiting_since": oldest, "last_success_at": success}


# --- Backup ------------------------------------------------------------------


def backup(conn, dest):
    """A consistent online copy: backup API to a temp name, integrity check, rename.

    Safe while other connections write (WAL); a crash leaves only the temp file.
    """
    dest = os.path.abspath(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = dest + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    target = sqlite3.connect(tmp)
    try:
        conn.backup(target)
        result = target.execute("PRAGMA integrity_check").fetchone()[0]
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
    if result != "ok":
        os.remove(tmp)
        raise RuntimeError(f"backup failed integrity_check: {result}")
    os.replace(tmp, dest)
    return dest
