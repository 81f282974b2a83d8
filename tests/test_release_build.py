"""The release builder: archives for the server (Ubuntu 24.04 on arm64) and for this machine.

`infra.release.build` makes the archive `deploy` uploads: the app, RELEASE, and vendor/ with
every runtime dependency as wheels for the target CPU and Python. Here we build one for
linux/aarch64 with Python 3.12 and one for this machine (x86_64, its python3), check what is
inside (compiled extensions for the right machine and Python), and run the x86_64 one the way
the server does: unpacked, with the system python3 and PYTHONPATH=vendor, no virtualenv.

The archive itself comes after: the same inputs give the same bytes (two builds from
scratch), its id is a hash of its content, target and commit, it records that commit and
whether the tree was dirty, and it holds only what the server needs.

pip fetches the wheels from PyPI on the first run; release.py caches them under .build/.
"""

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests
import yaml
from helpers import ROOT, free_port, wait_until_up

import store
from infra import release

CHECKOUT = Path(ROOT)
# ELF e_machine values (System V ABI): what a compiled extension runs on.
EM_X86_64 = 62
EM_AARCH64 = 183
APP_FILES = ["app.py", "store.py", "config.py", "auth.py", "desk.py", "web.py", "workflow.py", "requirements.txt"]
APP_DIRS = ["views/", "static/", "seed-cards/"]
# Runtime dependencies (requirements.txt) as the app imports them.
IMPORTS = ["bottle", "waitress", "requests", "PIL.Image", "prometheus_client", "bcrypt", "feedparser", "nh3", "yaml"]
IMPORTS += ["jsonschema"]
# What a release must never carry: tests, the toolkit, local state, secrets, bytecode.
NEVER = re.compile(r"^(tests|infra|bench|data|\.git|\.build|\.venv)/|^config\.yaml$|__pycache__|\.pyc$")


def system_python():
    """The interpreter the server uses: /usr/bin/python3 (else this venv's base interpreter)."""
    path = shutil.which("python3", path="/usr/bin:/bin")
    return path or getattr(sys, "_base_executable", sys.executable)


def python_version(python):
    out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True)
    return out.stdout.decode().strip()


def elf_machine(data):
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2 and data[5] == 1, "expected 64-bit little-endian ELF"
    return int.from_bytes(data[18:20], "little")


class Archive:
    """A built release, read once: its id, path and members by path below `<id>/`."""

    def __init__(self, rid, path):
        self.rid, self.path = rid, path
        with tarfile.open(path) as tar:
            self.members = tar.getmembers()
            self.files = {}
            for m in self.members:
                assert m.name.startswith(f"{rid}/"), f"{m.name} outside the release directory"
                if m.isfile():
                    self.files[m.name[len(rid) + 1 :]] = tar.extractfile(m).read()

    def names(self, prefix=""):
        return sorted(n for n in self.files if n.startswith(prefix))


def build(tmp_path_factory, arch, python):
    out = tmp_path_factory.mktemp(f"release-{arch}")
    try:
        rid, path = release.build(arch, python, source=ROOT, out=out)
    except release.ReleaseError as e:
        pytest.fail(f"release build for {arch} python {python} failed: {e}")
    return Archive(rid, path)


@pytest.fixture(scope="module")
def arm64(tmp_path_factory):
    return build(tmp_path_factory, "arm64", "3.12")  # the `uname -m` spelling Ubuntu on Ampere reports


@pytest.fixture(scope="module")
def host_python():
    python = system_python()
    return python, python_version(python)


@pytest.fixture(scope="module")
def x86_64(tmp_path_factory, host_python):
    assert os.uname().machine == "x86_64", "the run-from-archive check needs an x86_64 host"
    return build(tmp_path_factory, "x86_64", host_python[1])


def check_contents(archive, machine, python):
    files = archive.files
    assert files["RELEASE"].decode().strip() == archive.rid
    for name in APP_FILES:
        assert name in files, f"{name} missing from the release"
    for folder in APP_DIRS:
        assert archive.names(folder), f"{folder} missing from the release"
    assert "views/article.tpl" in files and "static/style.css" in files
    assert "seed-cards/cards.json" in files
    stray = [n for n in files if NEVER.search(n)]
    assert stray == [], f"files that must not ship: {stray[:10]}"

    assert "vendor/bottle.py" in files
    assert "vendor/waitress/__init__.py" in files
    bcrypt_so = [n for n in archive.names("vendor/bcrypt/") if n.endswith(".so")]
    assert bcrypt_so, "bcrypt's compiled extension is missing"

    # Every compiled file runs on the target CPU and, unless abi3, is built for its Python.
    tag = "cpython-" + python.replace(".", "")
    shared = [n for n in archive.names("vendor/") if n.endswith(".so") or ".so." in n]
    for name in shared:
        assert elf_machine(files[name]) == machine, f"{name} is built for another machine"
        if "cpython-" in name:
            assert tag in name, f"{name} is not built for Python {python}"
    wheel_tags = [
        line.split(":", 1)[1].strip()
        for name in archive.names("vendor/")
        if name.endswith(".dist-info/WHEEL")
        for line in files[name].decode().splitlines()
        if line.startswith("Tag:")
    ]
    arch = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}[machine]
    foreign = [t for t in wheel_tags if not t.endswith("-any") and not t.endswith(arch)]
    assert foreign == [], f"wheels for another platform: {foreign}"
    assert any(t.endswith(arch) for t in wheel_tags), "no platform wheels at all"


def test_arm64_release_for_ubuntu_24_04_has_aarch64_python_3_12_extensions(arm64):
    check_contents(arm64, EM_AARCH64, "3.12")


def test_x86_64_release_for_this_machine(x86_64, host_python):
    check_contents(x86_64, EM_X86_64, host_python[1])


def test_same_code_different_target_is_a_different_release(arm64, x86_64):
    assert arm64.rid != x86_64.rid
    per_target = ("RELEASE", "TARGET")  # its id, and what it was built for
    app_files = [n for n in arm64.files if not n.startswith("vendor/") and n not in per_target]
    assert app_files == [n for n in x86_64.files if not n.startswith("vendor/") and n not in per_target]
    assert all(arm64.files[n] == x86_64.files[n] for n in app_files)
    assert arm64.files["TARGET"].decode().split()[0] == "aarch64"
    assert x86_64.files["TARGET"].decode().split()[0] == "x86_64"


def test_unpacked_x86_64_release_runs_with_system_python_and_vendor_only(x86_64, host_python, tmp_path):
    """What the server does: python3 app.py seed-cards, then serve; /healthz names the release."""
    python = host_python[0]
    with tarfile.open(x86_64.path) as tar:
        tar.extractall(tmp_path / "releases", filter="data")
    current = tmp_path / "releases" / x86_64.rid
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(current / "vendor"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    # -S: no site-packages at all, so nothing outside vendor/ can stand in for a missing wheel.
    run = [python, "-S"]

    probe = "import importlib, sys\nfor n in sys.argv[1:]: print(importlib.import_module(n).__file__)"
    result = subprocess.run([*run, "-c", probe, *IMPORTS], cwd=data, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for module, path in zip(IMPORTS, result.stdout.split(), strict=True):
        assert path.startswith(str(current / "vendor")), f"{module} came from {path}, not vendor/"

    app_py = str(current / "app.py")
    seeded = subprocess.run([*run, app_py, "seed-cards"], cwd=data, env=env, capture_output=True, text=True)
    assert seeded.returncode == 0, seeded.stderr
    assert f"{len(store.load_seed_cards())} inserted" in seeded.stdout

    port = free_port()
    command = [*run, app_py, "serve", "--port", str(port)]
    with subprocess.Popen(command, cwd=data, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as server:
        try:
            base = f"http://127.0.0.1:{port}"
            health = wait_until_up(base + "/healthz", timeout=30)
            assert health.status_code == 200, health.text
            assert health.json()["release"] == x86_64.rid
            assert health.json()["cards"] == len(store.load_seed_cards())
            for path in ["/", "/cards/chase-sapphire-reserve", "/static/style.css"]:
                assert requests.get(base + path, timeout=5).status_code == 200, path
            assert list(data.glob("**/public/cards/chase-sapphire-reserve.html")), "serve published no pages"
        finally:
            server.terminate()
            output = server.communicate(timeout=10)[0].decode()
    assert f"milesahead {x86_64.rid} on {base}/" in output, output


# --- the archive: its bytes, its id, its commit, its contents --------------------------


@pytest.fixture
def fresh_build_dir(tmp_path, monkeypatch):
    # A private vendor cache: the build really runs pip, not a cached copy.
    monkeypatch.setattr(release, "BUILD_DIR", tmp_path / "cache")
    return tmp_path


def test_the_same_inputs_give_the_same_bytes(fresh_build_dir):
    rid1, first = release.build("x86_64", "3.11", source=CHECKOUT, out=fresh_build_dir / "a")
    # Second build from scratch: a new vendor directory from a new pip run.
    release.BUILD_DIR = fresh_build_dir / "cache2"
    rid2, second = release.build("x86_64", "3.11", source=CHECKOUT, out=fresh_build_dir / "b")
    assert rid1 == rid2
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def deploy_yml_build_command():
    """The command deploy.yml's build job runs to make the archive it ships, as argv."""
    workflow = yaml.safe_load((CHECKOUT / ".github" / "workflows" / "deploy.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["build"]["steps"]]
    lines = [line for run in runs for line in run.splitlines() if "-m infra.release" in line]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].split("|")[0])


def clone(dest):
    """A fresh clone of this checkout's commit, as CI's checkout makes one: new files, new times."""
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{CHECKOUT}", str(dest)], check=True)
    return dest


def test_deploy_yml_and_any_checkout_build_the_same_bytes_for_a_commit(tmp_path):
    # deploy.yml's build job: its own command line, in a clone of its own, its own pip run.
    argv = deploy_yml_build_command()
    assert argv[0] == ".venv/bin/python" and argv[1:3] == ["-m", "infra.release"], argv
    assert argv[argv.index("--arch") + 1] == "aarch64"  # the production host's CPU
    ci = clone(tmp_path / "ci")
    built = subprocess.run(
        [sys.executable, *argv[1:]], cwd=ci, capture_output=True, text=True, timeout=900, check=True
    ).stdout.split()
    # An operator's checkout, cloned later, its files a day older, another umask: what
    # `deploy` (and `sandbox up`) builds for a host of that target, release.build as
    # infra/tasks/ship.py calls it, with its own pip run too.
    mine = clone(tmp_path / "mine")
    for path in mine.rglob("*"):
        os.utime(path, (time.time() - 86400, time.time() - 86400), follow_symlinks=False)
    target = ["--arch", argv[argv.index("--arch") + 1], "--python", argv[argv.index("--python") + 1]]
    deploys = (
        "import sys; from infra import release; "
        "print(*release.build(sys.argv[1], sys.argv[2], commit=release.source_commit(release.ROOT)))"
    )
    old_umask = os.umask(0o027)
    try:
        rid, archive = subprocess.run(
            [sys.executable, "-c", deploys, target[1], target[3]],
            cwd=mine, capture_output=True, text=True, timeout=900, check=True,
        ).stdout.split()  # fmt: skip
    finally:
        os.umask(old_umask)
    commit = subprocess.run(["git", "-C", str(ci), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert built[3] == f"commit={commit.strip()}"  # a clean clone: the commit itself, not -dirty
    assert rid == built[0]
    assert Path(archive).read_bytes() == Path(ci, built[1]).read_bytes()
    assert built[2] == f"sha256={hashlib.sha256(Path(archive).read_bytes()).hexdigest()}"


def test_the_archive_holds_the_app_release_file_and_vendor_only(fresh_build_dir):
    rid, archive = release.build("aarch64", "3.12", source=CHECKOUT, out=fresh_build_dir)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert tar.extractfile(f"{rid}/RELEASE").read() == f"{rid}\n".encode()
        assert tar.extractfile(f"{rid}/COMMIT").read() == f"{release.source_commit(CHECKOUT)}\n".encode()
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
