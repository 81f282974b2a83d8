"""The release archive: deterministic bytes, content-addressed ids, only what the server needs."""

import hashlib
import subprocess
import tarfile
from pathlib import Path

import pytest

from infra import release

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_build_dir(tmp_path, monkeypatch):
    # A private vendor cache: the build really runs pip, not a cached copy.
    monkeypatch.setattr(release, "BUILD_DIR", tmp_path / "cache")
    return tmp_path


def test_the_same_inputs_give_the_same_bytes(fresh_build_dir):
    rid1, first = release.build("x86_64", "3.11", source=ROOT, out=fresh_build_dir / "a")
    # Second build from scratch: a new vendor directory from a new pip run.
    release.BUILD_DIR = fresh_build_dir / "cache2"
    rid2, second = release.build("x86_64", "3.11", source=ROOT, out=fresh_build_dir / "b")
    assert rid1 == rid2
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_the_archive_holds_the_app_release_file_and_vendor_only(fresh_build_dir):
    rid, archive = release.build("aarch64", "3.12", source=ROOT, out=fresh_build_dir)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert tar.extractfile(f"{rid}/RELEASE").read() == f"{rid}\n".encode()
        assert tar.extractfile(f"{rid}/COMMIT").read() == f"{release.source_commit(ROOT)}\n".encode()
    assert names == sorted(names)
    assert all(name.startswith(f"{rid}/") for name in names)
    assert {f"{rid}/app.py", f"{rid}/requirements.txt"} <= set(names)
    assert any(name.startswith(f"{rid}/vendor/bottle") for name in names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert not any(name.startswith(f"{rid}/vendor/bin/") for name in names)  # host-specific shebangs
    assert not any(name.startswith(f"{rid}/tests/") or "/infra/" in name for name in names)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}


def test_the_release_id_follows_code_and_target(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("print('v1')\n")
    (source / "requirements.txt").write_text("bottle==0.13.4\n")
    first = release.release_id(source, "aarch64", "3.12")
    assert release.release_id(source, "arm64", "3.12") == first  # uname spellings agree
    assert release.release_id(source, "x86_64", "3.12") != first
    assert release.release_id(source, "aarch64", "3.11") != first
    (source / "app.py").write_text("print('v2')\n")
    assert release.release_id(source, "aarch64", "3.12") != first


def git(source, *args):
    subprocess.run(["git", "-C", str(source), *args], check=True, capture_output=True)


def test_the_release_records_its_commit_and_whether_the_tree_was_dirty(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    assert release.source_commit(source) == "unknown"  # not a checkout
    (source / "app.py").write_text("print('v1')\n")
    (source / "notes.txt").write_text("not part of a release\n")
    git(source, "init", "-q")
    git(source, "add", "app.py")
    git(source, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "v1")
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True)
    commit = head.stdout.strip()
    assert release.source_commit(source) == commit  # notes.txt does not ship: still clean
    (source / "scratch.py").write_text("x = 1\n")  # untracked, but it would ship
    assert release.source_commit(source) == f"{commit}-dirty"
    assert release.dirty_files(source) == ["scratch.py"]
    (source / "scratch.py").unlink()
    (source / "app.py").write_text("print('edited')\n")
    assert release.dirty_files(source) == ["app.py"]
    # The same files from another commit are another release.
    assert release.release_id(source, "x86_64", "3.12", "a" * 40) != release.release_id(
        source, "x86_64", "3.12", "b" * 40
    )


def test_pip_is_asked_for_the_targets_wheels_only():
    args = release.pip_target_args("arm64", "3.12")
    assert args[:2] == ["--python-version", "3.12"]
    assert "cp312" in args and "manylinux2014_aarch64" in args
    assert not any("x86_64" in a for a in args)


def test_a_tree_without_app_py_is_refused(tmp_path):
    with pytest.raises(release.ReleaseError, match="no app.py"):
        release.build("x86_64", "3.11", source=tmp_path, out=tmp_path)
