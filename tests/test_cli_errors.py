"""Operational errors: the real command line exits non-zero with one line that names the
file, key or path and what to do, never a traceback.

Each case runs `app.py` in a subprocess, as an operator would. The tests run as root in
CI, and root reads and writes whatever it likes; the permission cases drop the
capabilities that let it (setpriv), so file modes apply to it as to any user.
"""

import os
import socket
import subprocess
import sys

from helpers import ROOT, free_port

APP = os.path.join(ROOT, "app.py")
NO_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]


def run(tmp_path, *args, config="", config_bytes=None, unprivileged=False):
    """app.py with a config whose database and public/ live under tmp_path."""
    path = tmp_path / "config.yaml"
    if config_bytes is None:
        base = f"database:\n  path: {tmp_path}/data/milesahead.db\n"
        config_bytes = (config if "database:" in config else base + config).encode()
    if not path.is_dir():
        path.write_bytes(config_bytes)
    command = [sys.executable, APP, "--config", str(path), *args]
    if unprivileged and os.geteuid() == 0:
        command = NO_OVERRIDE + command
    env = {k: v for k, v in os.environ.items() if k != "MILESAHEAD_CONFIG"}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def one_line_error(result, *expected):
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


# --- The config file -----------------------------------------------------------------------


def test_config_naming_a_directory(tmp_path):
    (tmp_path / "config.yaml").mkdir()
    one_line_error(run(tmp_path, "migrate"), str(tmp_path / "config.yaml"), "is a directory")


def test_config_that_is_not_utf8(tmp_path):
    result = run(tmp_path, "migrate", config_bytes=b"site:\n  title: caf\xe9\n")
    one_line_error(result, "config.yaml", "not UTF-8", "save the file as UTF-8")


def test_config_that_cannot_be_read(tmp_path):
    (tmp_path / "config.yaml").write_text("site:\n  title: x\n")
    (tmp_path / "config.yaml").chmod(0)
    result = run(tmp_path, "migrate", config_bytes=b"", unprivileged=True)
    one_line_error(result, "config.yaml", "Permission denied", "readable")


def test_a_value_out_of_range_is_refused_at_load(tmp_path):
    """Every range check is in test_config.py; this is the one from the issue, end to end."""
    result = run(tmp_path, "serve", config="server:\n  port: 99999\n")
    one_line_error(result, "config.yaml", "'server.port' must be a port between 1 and 65535, got 99999")
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_port_out_of_range_on_the_command_line(tmp_path):
    result = run(tmp_path, "serve", "--port", "99999")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'99999' is not a port between 1 and 65535" in result.stderr


# --- The database ------------------------------------------------------------------------


def test_database_directory_not_writable(tmp_path):
    (tmp_path / "data").mkdir(mode=0o555)
    result = run(tmp_path, "migrate", unprivileged=True)
    one_line_error(result, "database error", str(tmp_path / "data" / "milesahead.db"), "directory this user can write")


def test_database_path_under_a_regular_file(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    result = run(tmp_path, "migrate", config=f"database:\n  path: {tmp_path}/file/milesahead.db\n")
    one_line_error(result, "database error", f"cannot create {tmp_path}/file (it is a file, not a directory)")


def test_database_file_that_is_not_sqlite(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "milesahead.db").write_text("hello, I am a text file\n" * 100)
    result = run(tmp_path, "migrate")
    one_line_error(result, "database error", "milesahead.db", "file is not a database", "SQLite")


def test_backup_to_an_impossible_path(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    result = run(tmp_path, "backup", str(tmp_path / "file" / "copy.db"))
    one_line_error(result, "cannot write the backup to", str(tmp_path / "file" / "copy.db"), "choose a path")


# --- Publishing and serving --------------------------------------------------------------


def test_publish_dir_that_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    config = f"publish:\n  dir: {tmp_path}/file/public\n"
    for command in ("publish", "serve"):
        args = [command] if command == "publish" else [command, "--port", str(free_port())]
        result = run(tmp_path, *args, config=config)
        one_line_error(result, "publish.dir", f"{tmp_path}/file/public", "Not a directory", "set publish.dir")


def test_serve_on_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path, "serve", "--port", str(port))
    one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use", "another `serve`")


def test_serve_on_a_host_that_does_not_resolve(tmp_path):
    result = run(tmp_path, "serve", "--host", "no-such-host.invalid", "--port", str(free_port()))
    one_line_error(result, "cannot resolve host 'no-such-host.invalid'", "server.host")


# --- The pipeline's command line ---------------------------------------------------------


def test_the_pipeline_names_a_database_that_is_not_sqlite(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "milesahead.db").write_text("hello, I am a text file\n" * 100)
    (tmp_path / "config.yaml").write_text(f"database:\n  path: {tmp_path}/data/milesahead.db\n")
    pipeline_py = os.path.join(ROOT, "pipeline.py")
    for command in ("status",):
        result = subprocess.run(
            [sys.executable, pipeline_py, "--config", str(tmp_path / "config.yaml"), "-q", command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        one_line_error(result, "database error", "milesahead.db", "file is not a database")
