"""The build check: release archives for the server (Ubuntu 24.04 on arm64) and for this machine.

`infra.release.build` makes the archive `deploy` uploads: the app, RELEASE, and vendor/ with
every runtime dependency as wheels for the target CPU and Python. Here we build one for
linux/aarch64 with Python 3.12 and one for this machine (x86_64, its python3), check what is
inside (compiled extensions for the right machine and Python), and run the x86_64 one the way
the server does: unpacked, with the system python3 and PYTHONPATH=vendor, no virtualenv.

pip fetches the wheels from PyPI on the first run; release.py caches them under .build/.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import requests
from conftest import ROOT, free_port, wait_until_up

import store
from infra import release

# ELF e_machine values (System V ABI): what a compiled extension runs on.
EM_X86_64 = 62
EM_AARCH64 = 183
APP_FILES = ["app.py", "store.py", "config.py", "admin.py", "workflow.py", "requirements.txt"]
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
