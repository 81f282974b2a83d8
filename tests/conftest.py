"""Every fixture the tests share: a config on a temp SQLite file, the app, WebTest, a live
waitress, the desk open or closed, and the pipeline's outside world as loopback stand-ins.

A test asks for what it needs by name. The desk is closed unless the test (or its module,
`pytestmark = pytest.mark.desk_open`) says otherwise; plain helpers are in helpers.py.
"""

import html
import threading

import bcrypt
import pytest
import webtest
from helpers import HOSTILE, PASSWORD, desk_config, free_port, login, wait_until_up, write_config

import app as milesahead
import config as configuration
import store

FAST = "not vm and not browser"


def pytest_configure(config):
    """A bare `pytest` (no path, no -m) is the fast suite: no VM lane, no browser.

    Naming a file or a directory runs what it names (`pytest tests/vm/test_shared_caddy_lane.py`),
    and a -m of your own selects as it says; `make test` passes one that selects every lane.
    """
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS and not config.option.markexpr:
        config.option.markexpr = FAST


@pytest.fixture(scope="session")
def password_hash():
    """A real bcrypt hash of helpers.PASSWORD, at bcrypt's lowest cost (tests log in often)."""
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture
def config(request, tmp_path):
    """Defaults, pointed at a fresh database file in a temp dir.

    Marked `desk_open`, the desk has a password (helpers.PASSWORD); else it is closed, as
    it is with no config at all.
    """
    cfg = configuration.load_config(str(write_config(tmp_path, "")))
    cfg["database"]["path"] = str(tmp_path / "milesahead.db")
    cfg["llm"]["cache_dir"] = str(tmp_path / "llm-cache")
    cfg["site"]["base_url"] = "http://testserver"
    if request.node.get_closest_marker("desk_open"):
        desk_config(cfg, request.getfixturevalue("password_hash"))
    return cfg


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


@pytest.fixture
def editor(client):
    """A WebTest client logged in to the desk (the test must have it open)."""
    login(client)
    return client


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


# --- the outside world, as stand-ins on loopback ----------------------------------------


@pytest.fixture
def servers(config):
    """The five image APIs' stand-ins on loopback, with the config pointed at them."""
    from standins.images import ImageServers

    with ImageServers() as s:
        s.configure(config)
        yield s


@pytest.fixture
def world(config, app):
    """The pipeline's outside world (model, image APIs, feeds) as loopback stand-ins."""
    from standins.world import World

    with World(config) as w:
        yield w


@pytest.fixture
def hostile_world(config, world):
    """The stand-ins' usual news, with every link an attacker controls turned against the editor."""
    from standins.openai import fenced, first_json, newsroom

    feeds = world.feeds.feeds
    feeds["points-blog"]["items"][0]["link"] = HOSTILE[0]
    feeds["miles-news"]["items"][0]["link"] = HOSTILE[1]
    feeds["deal-digest"]["items"][0]["link_xml"] = "jav&#9;ascript:alert(1)"  # a tab, once parsed
    feeds["miles-news"]["items"][1]["link"] = HOSTILE[3]
    feeds["deal-digest"]["items"][1]["link"] = HOSTILE[4]
    # Items without a usable link cannot name their site: the config does.
    config["pipeline"]["feeds"] = [
        {"name": name, "url": world.feeds.feed_url(name), "site": feed["site"]} for name, feed in feeds.items()
    ]

    for server in world.images.servers.values():
        server.photos = [dict(p) for p in server.photos]  # copies: the samples are shared
    photos = {p["id"]: p for server in world.images.servers.values() for p in server.photos}
    photos["u1"]["page"] = HOSTILE[0]  # the winner's attribution link
    photos["p1"]["page"] = HOSTILE[1]
    photos["p2"]["file"] = "data:image/svg+xml,<svg onload='alert(1)'/>"
    photos["x1"]["file"] = HOSTILE[1]
    photos["o2"]["page"] = HOSTILE[3]
    photos["w2"]["page"] = HOSTILE[4]

    def write_with_script_links(body):
        article = first_json(newsroom("write_article", body["messages"]))
        article["links"] = [{"title": f"Official page {n}", "url": url} for n, url in enumerate(HOSTILE)]
        article["links"].append({"title": "Issuer page", "url": "https://issuer.example/offer"})
        article["body_html"] += "".join(
            f'<p>Details <a href="{html.escape(url)}">here</a>.</p>' for url in [*HOSTILE, "jav&#9;ascript:alert(1)"]
        )
        return fenced(article)

    world.model.overrides["write_article"] = write_with_script_links
    return world
