"""The shell steps of deploy and rollback, run with sh on a temporary /opt/milesahead.

Lock, atomic swap, restoring the links after a failed deploy, unpacking, and pruning
old releases are decided on the host at run time; here they run against a real
directory tree, so their edge cases are checked without a server.
"""

import io
import os
import subprocess
import tarfile
import time

import pytest

from infra.tasks import ship as steps


def sh(command, check=True):
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


@pytest.fixture
def root(tmp_path):
    for rid in ("r1", "r2", "r3"):
        (tmp_path / "releases" / rid).mkdir(parents=True)
        (tmp_path / "releases" / rid / "app.py").write_text(f"# {rid}\n")
    return tmp_path


def link(root, name):
    path = root / name
    return os.readlink(path) if path.is_symlink() else None


def test_swap_moves_current_and_remembers_previous(root):
    sh(steps.swap_command(root, "r1"))
    assert (link(root, "current"), link(root, "previous")) == ("releases/r1", None)
    sh(steps.swap_command(root, "r2"))
    assert (link(root, "current"), link(root, "previous")) == ("releases/r2", "releases/r1")
    sh(steps.swap_command(root, "r2"))  # the same release again changes nothing
    assert link(root, "previous") == "releases/r1"
    assert not (root / "current.new").exists()


def test_swap_refuses_a_release_without_app_py(root):
    sh(steps.swap_command(root, "r1"))
    (root / "releases" / "empty").mkdir()
    assert sh(steps.swap_command(root, "empty"), check=False).returncode != 0
    assert link(root, "current") == "releases/r1"


def test_lock_is_exclusive_and_names_its_holder(root):
    sh(steps.swap_command(root, "r1"))
    sh(steps.lock_command(root, "alice@laptop", "deploy r2"))
    assert "alice@laptop deploy r2" in (root / "deploy.lock" / "owner").read_text()
    second = sh(steps.lock_command(root, "ci", "deploy r3"), check=False)
    assert second.returncode != 0
    assert "held by: alice@laptop deploy r2" in second.stderr and "STALE" not in second.stderr


def test_an_old_lock_is_reported_stale_not_broken(root):
    sh(steps.lock_command(root, "alice@laptop", "deploy r2"))
    old = time.time() - 3600
    os.utime(root / "deploy.lock", (old, old))
    second = sh(steps.lock_command(root, "ci", "deploy r3"), check=False)
    assert second.returncode != 0 and "STALE" in second.stderr and "python -m infra unlock" in second.stderr
    assert (root / "deploy.lock" / "owner").exists()  # still there: a human decides


def test_failed_deploy_puts_both_links_back(root):
    sh(steps.swap_command(root, "r1"))
    sh(steps.swap_command(root, "r2"))
    sh(steps.lock_command(root, "me", "deploy r3"))
    sh(steps.swap_command(root, "r3"))
    assert link(root, "previous") == "releases/r2"
    sh(steps.restore_links_command(root))
    assert (link(root, "current"), link(root, "previous")) == ("releases/r2", "releases/r1")


def test_unpack_renames_into_place_and_never_leaves_half_a_release(root):
    rel = root / "releases" / "new"
    data = b"print('hi')\n"
    with tarfile.open(f"{rel}.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("new/app.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    sh(steps.unpack_command(rel))
    assert (rel / "app.py").read_bytes() == data and not (root / "releases" / "new.tmp").exists()

    (root / "releases" / "bad.tar.gz").write_bytes(b"not a tarball")
    assert sh(steps.unpack_command(root / "releases" / "bad"), check=False).returncode != 0
    assert not (root / "releases" / "bad").exists()


def test_prune_keeps_the_newest_and_never_current_or_previous(root):
    for rid in ["r4", "r5", "r6", "r7"]:
        (root / "releases" / rid).mkdir()
        (root / "releases" / rid / "app.py").write_text("")
    now = time.time()
    order = ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]  # oldest first
    for age, rid in enumerate(reversed(order)):
        os.utime(root / "releases" / rid, (now - 100 * age, now - 100 * age))
    os.symlink("releases/r2", root / "current")  # rolled back to an old one
    os.symlink("releases/r1", root / "previous")
    sh(steps.prune_command(root, 3))
    kept = sorted(p.name for p in (root / "releases").iterdir())
    assert kept == ["r1", "r2", "r5", "r6", "r7"]
