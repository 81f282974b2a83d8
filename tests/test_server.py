"""The real thing: waitress on a free loopback port, in-process and as `app.py serve`."""

import os
import subprocess
import sys
import threading

import pytest
import requests
from helpers import ROOT, free_port, wait_until_up

import app as milesahead
import store


def test_pages_over_http_on_waitress(live_server, seeded):
    for path in ["/", "/cards", "/cards/chase-sapphire-reserve", "/feed.xml", "/api/cards"]:
        reply = requests.get(live_server + path, timeout=5)
        assert reply.status_code == 200, path
    assert requests.get(live_server + "/cards/nope", timeout=5).status_code == 404


@pytest.fixture
def many_open_files():
    """Over FD_SETSIZE (1024) descriptors open, as in a long-lived process or a long test run."""
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    yield
    for fd in fds:
        os.close(fd)


def test_the_server_answers_when_the_process_has_many_files_open(many_open_files, app):
    """select() cannot watch a descriptor past 1024; the server must not depend on it."""
    import waitress.server

    port = free_port()
    server = waitress.server.create_server(app, **milesahead.server_options(app.state.config, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code in (200, 503)
    finally:
        server.close()
        thread.join(timeout=5)


def test_oversized_request_body_is_refused(live_server):
    reply = requests.post(live_server + "/admin/login", data=b"x" * 2_000_000, timeout=10)
    assert reply.status_code == 413


def test_app_py_serve_migrates_and_answers_health(tmp_path):
    """What `make run` does, on a fresh directory: migrate, seed, serve."""
    port = free_port()
    env = dict(os.environ, MILESAHEAD_RELEASE="smoke-1")
    env.pop("MILESAHEAD_CONFIG", None)
    app_py = os.path.join(ROOT, "app.py")
    subprocess.run([sys.executable, app_py, "seed-cards"], cwd=tmp_path, env=env, check=True, capture_output=True)
    command = [sys.executable, app_py, "serve", "--port", str(port)]
    with subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as server:
        try:
            reply = wait_until_up(f"http://127.0.0.1:{port}/healthz")
            assert reply.json() == {
                "status": "ok",
                "release": "smoke-1",
                "commit": "unknown",  # a checkout, not a release: no COMMIT file
                "schema_version": store.SCHEMA_VERSION,
                "cards": len(store.load_seed_cards()),
            }
            assert (tmp_path / "data" / "milesahead.db").exists()
        finally:
            server.terminate()
            output = server.communicate(timeout=10)[0].decode()
    assert f"on http://127.0.0.1:{port}/" in output


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("server:\n  port: eighty\n")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "app.py"), "--config", str(bad), "migrate"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "server.port" in result.stderr and str(bad) in result.stderr
    assert "Traceback" not in result.stderr


def test_app_py_serve_listens_on_every_address_in_server_host(tmp_path):
    """Loopback and a second address (a containerised Caddy's network gateway), one port."""
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f'server:\n  host: "127.0.0.1 127.0.0.2"\n  port: {port}\n')
    command = [sys.executable, os.path.join(ROOT, "app.py"), "--config", str(config), "serve"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as server:
        try:
            for address in ("127.0.0.1", "127.0.0.2"):
                assert wait_until_up(f"http://{address}:{port}/healthz").status_code == 200
        finally:
            server.terminate()
            output = server.communicate(timeout=10)[0].decode()
    assert f"on http://127.0.0.1:{port}/ http://127.0.0.2:{port}/" in output


def test_a_second_serve_fails_at_the_port_without_touching_public(tmp_path):
    """Same database, same public/, same port, another title: only the serving process publishes."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MILESAHEAD_CONFIG"}
    app_py = os.path.join(ROOT, "app.py")
    public = tmp_path / "public"

    def config(title):
        path = tmp_path / f"{title}.yaml"
        path.write_text(
            f"site:\n  title: {title}\nserver:\n  port: {port}\n"
            f"database:\n  path: {tmp_path}/milesahead.db\npublish:\n  dir: {public}\n"
        )
        return str(path)

    first = subprocess.Popen(
        [sys.executable, app_py, "--config", config("First"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until_up(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200
        before = published(public)
        assert b"<title>First</title>" in before["index.html"][1]
        second = subprocess.run(
            [sys.executable, app_py, "--config", config("Second"), "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0
        assert published(public) == before  # not one file written, replaced or removed
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr and "Traceback" not in second.stderr
        assert "First" in requests.get(f"http://127.0.0.1:{port}/", timeout=30).text
    finally:
        first.terminate()
        first.wait(timeout=30)


def published(directory):
    """Each file under directory: (inode, bytes). A rewrite (temp file + rename) gets a new inode."""
    found = {}
    for folder, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = (os.stat(path).st_ino, f.read())
    return found
