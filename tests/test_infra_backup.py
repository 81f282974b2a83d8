"""bin/backup.sh takes its settings from the app's config (database.path, backup.*), as cron runs it.

It runs here as on the host: from <root>/bin, with <root>/current the release (this
checkout) whose config loader reads <root>/config.yaml, on a real SQLite file.
"""

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from infra.tasks import ship as steps

ROOT = Path(__file__).resolve().parent.parent


def host_root(tmp_path, keep_daily=2):
    root = tmp_path / "opt"
    (root / "bin").mkdir(parents=True)
    for script in ("backup.sh", "replica.py"):  # as setup installs them; no replica is configured here
        shutil.copy2(ROOT / "infra" / "files" / script, root / "bin" / script)
    (root / "current").symlink_to(ROOT)  # its config.py reads the file below
    (root / "data").mkdir()
    db = sqlite3.connect(root / "data" / "site.db")
    db.execute("CREATE TABLE t (n)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    db.close()
    (root / "config.yaml").write_text(
        f"database:\n  path: {root / 'data' / 'site.db'}\n"
        f"backup:\n  dir: {root / 'copies'}\n  keep_daily: {keep_daily}\n  keep_weekly: 1\n"
    )
    return root


def backup(root, kind="daily"):
    # python3 as on the host, with the release's dependencies: this virtualenv's.
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(root)}
    return subprocess.run(["sh", str(root / "bin" / "backup.sh"), kind], capture_output=True, text=True, env=env)


def test_the_copy_goes_where_the_config_says_and_is_whole(tmp_path):
    root = host_root(tmp_path)
    result = backup(root)
    assert result.returncode == 0, result.stderr
    final = Path(result.stdout.strip())
    assert final.parent == root / "copies" / "daily"
    copy = tmp_path / "copy.db"
    copy.write_bytes(gzip.decompress(final.read_bytes()))
    assert sqlite3.connect(copy).execute("SELECT n FROM t").fetchall() == [(1,)]


def test_rotation_keeps_as_many_as_the_config_says(tmp_path):
    root = host_root(tmp_path, keep_daily=2)
    daily = root / "copies" / "daily"
    daily.mkdir(parents=True)
    for day in ("20200101", "20200102", "20200103"):
        (daily / f"milesahead-{day}T031700Z.db.gz").write_bytes(b"old")
    result = backup(root)
    assert result.returncode == 0, result.stderr
    kept = sorted(os.listdir(daily))
    assert kept == ["milesahead-20200103T031700Z.db.gz", Path(result.stdout.strip()).name]


def test_an_unreadable_config_is_a_clear_failure(tmp_path):
    root = host_root(tmp_path)
    (root / "config.yaml").write_text("database: [not a mapping\n")
    result = backup(root)
    assert result.returncode != 0
    assert "cannot read" in result.stderr and "config.yaml" in result.stderr


def test_a_fresh_hosts_restored_database_is_snapshotted_before_the_first_deploy(tmp_path):
    # A lost host's replacement: setup's Litestream restored the database from the
    # replica, and no release is current yet. The deploy's snapshot reads the config
    # with the release it is about to migrate with.
    root = host_root(tmp_path)
    (root / "current").unlink()
    (root / "releases").mkdir()
    (root / "releases" / "r1").symlink_to(ROOT)
    command = steps.snapshot_command(root, root / "data" / "site.db", root / "releases" / "r1", keep=5)
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(root)}
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    (copy,) = (root / "copies" / "pre-deploy").glob("milesahead-*.db.gz")
    restored = tmp_path / "restored.db"
    restored.write_bytes(gzip.decompress(copy.read_bytes()))
    assert sqlite3.connect(restored).execute("SELECT n FROM t").fetchall() == [(1,)]
