"""Shared fixtures: a config on a temp SQLite file, the app, WebTest, a live waitress."""

import os
import socket
import sys
import threading
import time

import pytest
import requests
import webtest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import app as milesahead  # noqa: E402
import config as configuration  # noqa: E402
import store  # noqa: E402


@pytest.fixture
def servers(config):
    """The five image APIs' stand-ins on loopback, with the config pointed at them."""
    from standins.images import ImageServers

    with ImageServers() as s:
        s.configure(config)
        yield s


@pytest.fixture
def config(tmp_path):
    """Defaults, pointed at a fresh database file in a temp dir."""
    cfg = configuration.load_config(str(write_config(tmp_path, "")))
    cfg["database"]["path"] = str(tmp_path / "milesahead.db")
    cfg["llm"]["cache_dir"] = str(tmp_path / "llm-cache")
    cfg["site"]["base_url"] = "http://testserver"
    return cfg


def write_config(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def app(config):
    return milesahead.create_app(config)


@pytest.fixture
def conn(app, config):
    connection = store.connect(config["database"]["path"])
    yield connection
    connection.close()


@pytest.fixture
def seeded(conn):
    store.seed_cards(conn, store.load_seed_cards())
    return conn


@pytest.fixture
def client(app):
    return webtest.TestApp(app)


def publish(conn, title="Chase Sapphire Reserve bonus climbs", type="deal", **fields):
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


def finished_runs(conn):
    return conn.execute("SELECT COUNT(*) FROM pipeline_runs WHERE status != 'running'").fetchone()[0]


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


@pytest.fixture
def world(config, app):
    """The pipeline's outside world (model, image APIs, feeds) as loopback stand-ins."""
    from standins.world import World

    with World(config) as w:
        yield w


@pytest.fixture
def live_server(app):
    """The real app on a real waitress set up as `serve` sets it, on a free loopback port."""
    import waitress.server

    port = free_port()
    options = milesahead.server_options(app.state.config, "127.0.0.1", port)
    server = waitress.server.create_server(app, **options)
    stopping = threading.Event()

    def run():
        try:
            server.run()
        except OSError:  # closing the socket under the running loop ends it this way
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/healthz")
    yield base
    stopping.set()
    server.close()
    thread.join(timeout=5)
