"""Plain helpers the tests share: paths and ports, waiting, sample rows, logging in, command lines.

Fixtures live in conftest.py; everything here is an ordinary function or constant,
imported by name (`from helpers import make_article`), so importing it changes no fixture.
"""

import argparse
import os
import socket
import subprocess
import sys
import time

import requests

import store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- ports and waiting ----------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout=20, what="condition"):
    """Poll until condition() is true; for work that finishes on another thread or process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} not met within {timeout}s")


def wait_until_up(url, timeout=15):
    """The first answer that is not a 503: a starting server says 503 while it publishes its pages."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = requests.get(url, timeout=1)
            if reply.status_code != 503:
                return reply
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer (other than 503) within {timeout}s")


def finished_runs(conn):
    return conn.execute("SELECT COUNT(*) FROM pipeline_runs WHERE status != 'running'").fetchone()[0]


# --- config ---------------------------------------------------------------------------


def write_config(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- command lines --------------------------------------------------------------------


def commands_of(parser):
    """The subcommand names an argparse parser accepts, in the order it lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def pipeline_cli(*args, cwd=None, env=None):
    """`python pipeline.py ARGS` in a subprocess, as an operator runs it."""
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "pipeline.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


def start_cli_run(config_file, tmp_path):
    """`pipeline.py run` started in the background, its output in tmp_path/pipeline.log."""
    with open(tmp_path / "pipeline.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "pipeline.py"), "--config", str(config_file), "-q", "run"],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


# --- articles and cards ---------------------------------------------------------------


def approved_article(conn, title="Chase Sapphire Reserve bonus climbs", type="deal", **fields):
    """An approved article, written through the store like the desk would."""
    values = dict(
        type=type,
        tldr="A short summary.",
        body_html="<p>Body text.</p>",
        key_details=[["Bonus", "100,000 points"]],
        links=[{"title": "Issuer page", "url": "https://example.com/offer"}],
        sources=[{"title": "Source story", "url": "https://example.com/story", "site": "example.com"}],
        persona_take="Worth it if you travel.",
    )
    values.update(fields)
    article_id = store.insert_article(conn, title=title, status="approved", **values)
    return store.get_article(conn, article_id)


def make_article(conn, status="draft", title="Sapphire Reserve bonus climbs to 100,000 points", **fields):
    """An article in any state, as the pipeline would store it; returns its id."""
    values = dict(
        type="deal",
        tldr="A bigger bonus for a limited time.",
        body_html="<p>The offer runs until March.</p>",
        key_details=[["Bonus", "100,000 points"]],
        links=[{"title": "Issuer page", "url": "https://example.com/offer"}],
        sources=[
            {"title": "Story one", "url": "https://one.example/story", "site": "one.example"},
            {"title": "Story two", "url": "https://two.example/story", "site": "two.example"},
        ],
        persona_take="Worth it if you already fly often.",
        critic_score=7.5,
        critic_issues=["Mention the minimum spend."],
    )
    values.update(fields)
    return store.insert_article(conn, title=title, status=status, **values)


def sample_card(**overrides):
    """A card that passes the seed checks, with any field replaced."""
    card = {
        "slug": "sample-card",
        "name": "Sample Card",
        "issuer": "Sample Bank",
        "network": "Visa",
        "category": "Travel",
        "annual_fee_usd": 95,
        "official_url": "https://example.com/card",
        "facts_checked": "2026-11-01",
        "sources": [
            {
                "url": "https://example.com/card",
                "title": "Sample Card",
                "publisher": "Sample Bank",
                "read": "2026-11-01",
            }
        ],
        "verdict": "Fine.",
        "keywords": ["Sample Card"],
        "sections": {key: ["A fact."] for key, _ in store.SECTIONS},
    }
    card.update(overrides)
    return card


def seed_sample_cards(conn):
    cards = [
        sample_card(slug="sapphire-reserve", name="Chase Sapphire Reserve", keywords=["Sapphire Reserve", "CSR"]),
        sample_card(slug="venture-x", name="Capital One Venture X", keywords=["Venture X"]),
        sample_card(slug="amex-gold", name="American Express Gold Card", keywords=["Amex Gold", "Gold Card"]),
    ]
    store.seed_cards(conn, cards)
    return {c["slug"]: store.get_card(conn, c["slug"]) for c in cards}


def report_cards(conn):
    """Two cards checked the same day, one with a source far older: the cards report's sample."""
    store.seed_cards(
        conn,
        [
            sample_card(
                slug="fresh",
                name="Fresh",
                keywords=["Fresh"],
                facts_checked="2026-11-30",
                sources=[{"url": "https://a.example/", "title": "A", "publisher": "Pub A", "read": "2026-11-30"}],
            ),
            sample_card(
                slug="stale",
                name="Stale",
                keywords=["Stale"],
                facts_checked="2026-11-30",
                sources=[
                    {"url": "https://b.example/", "title": "B", "publisher": "Pub B", "read": "2026-11-30"},
                    {
                        "url": "https://c.example/",
                        "title": "C review",
                        "publisher": "Pub C",
                        "published": "2025-06-30",
                        "read": "2026-11-30",
                    },
                ],
            ),
        ],
    )


def card_texts(card):
    """(where, text) for every piece of reader-facing text on a card."""
    yield "verdict", card["verdict"]
    for key, points in card["sections"].items():
        for n, point in enumerate(points):
            yield f"{key}[{n}]", point


# --- the desk -------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"
CLIENT = {"REMOTE_ADDR": "192.0.2.10"}


def desk_config(config, password_hash):
    """The config with the desk open: its password is PASSWORD."""
    config["admin"]["password_hash"] = password_hash
    return config


def login(client, password=PASSWORD, status=302, environ=CLIENT):
    page = client.get("/admin/login", extra_environ=environ)
    form = page.forms[0]
    form["password"] = password
    return form.submit(status=status, extra_environ=environ)


def csrf_token(client):
    """The session's CSRF token, as a script would read it."""
    return client.get("/api/admin/session").json["csrf_token"]


def post_action(client, article_id, action, status=302, **fields):
    data = {"csrf_token": csrf_token(client), **fields}
    return client.post(f"/admin/articles/{article_id}/{action}", data, status=status)


# --- hostile links --------------------------------------------------------------------

# As a browser reads them, every one of these runs script (or a page of the sender's) on click.
HOSTILE = [
    "javascript:fetch('/api/admin/session').then(r => r.json())",
    "JavaScript:alert(document.domain)",
    " jav\tascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
]


def stored_before_the_policy(conn):
    """An article whose every URL field holds a script link, written as an old row would be."""
    return make_article(
        conn,
        title="Sapphire Reserve bonus, with a row from before the URL policy",
        links=[{"title": f"Link {n}", "url": url} for n, url in enumerate(HOSTILE)],
        sources=[{"title": f"Source {n}", "url": url, "site": "one.example"} for n, url in enumerate(HOSTILE)],
        image_url=HOSTILE[1],
        image_thumb_url=HOSTILE[3],
        image_alt="A hostile image",
        image_attribution={
            "title": "A hostile photo",
            "author": "Mallory",
            "author_url": HOSTILE[2],
            "source": "Unsplash",
            "license": "x",
            "license_url": HOSTILE[4],
            "link": HOSTILE[0],
        },
        image_candidates=[{"source": "pexels", "url": u, "thumbnail": u, "page": u} for u in HOSTILE],
    )


# --- the browser ----------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
