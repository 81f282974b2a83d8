"""Helpers for the desk's tests: a real bcrypt hash, sample cards, logging in over HTTP."""

import bcrypt
import pytest
from test_migrations import sample_card

import store

PASSWORD = "correct horse battery staple"
CLIENT = {"REMOTE_ADDR": "192.0.2.10"}


@pytest.fixture(scope="session")
def password_hash():
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


def desk_config(config, password_hash):
    config["admin"]["password_hash"] = password_hash
    return config


@pytest.fixture
def config(config, password_hash):
    """The app's config with the desk open (a real bcrypt hash); import it to use it."""
    return desk_config(config, password_hash)


@pytest.fixture
def editor(client):
    """A WebTest client logged in to the desk."""
    login(client)
    return client


def seed_sample_cards(conn):
    cards = [
        sample_card(slug="sapphire-reserve", name="Chase Sapphire Reserve", keywords=["Sapphire Reserve", "CSR"]),
        sample_card(slug="venture-x", name="Capital One Venture X", keywords=["Venture X"]),
        sample_card(slug="amex-gold", name="American Express Gold Card", keywords=["Amex Gold", "Gold Card"]),
    ]
    store.seed_cards(conn, cards)
    return {c["slug"]: store.get_card(conn, c["slug"]) for c in cards}


def make_article(conn, status="draft", title="Sapphire Reserve bonus climbs to 100,000 points", **fields):
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
