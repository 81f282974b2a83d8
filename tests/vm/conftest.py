"""Fixtures for the VM lane: one QEMU guest for the whole session, and the alloy stand-in repo.

Tests that use them live in this directory and carry the `vm` marker
(`pytestmark = pytest.mark.vm`), so `pytest -m "not vm"` skips the slow lane.
"""

import shutil
import subprocess
import tempfile
import threading
import time
import types

import pytest
from alloy_standin import AlloyRepo
from vm import QEMU, TestVM, VMError, ensure_image


def pytest_configure(config):
    # Also declared in pyproject.toml; repeated so this directory runs on its own.
    config.addinivalue_line("markers", "vm: runs the toolkit against a real QEMU virtual machine (slow)")


def require_qemu():
    if shutil.which(QEMU) is None:
        # Never a skip: `make test` installs QEMU, so a missing one is a broken machine.
        # To leave the lane out on purpose, deselect it: pytest -m "not vm".
        pytest.fail(f"{QEMU} not installed: run scripts/system-deps.sh, or deselect the lane with -m 'not vm'")


@pytest.fixture(scope="session")
def vm():
    """A booted guest shared by the session (tests may change it; order them so that works)."""
    require_qemu()
    with TestVM() as guest:
        yield guest


@pytest.fixture(scope="module")
def boot():
    """`boot(**TestVM options)` boots a guest of the module's own; all are stopped when the
    module ends, so a lane's VMs never run beside the next lane's."""
    require_qemu()
    booted = []

    def start(**options):
        guest = TestVM(**options)
        booted.append(guest)
        guest.start()
        return guest

    yield start
    for guest in booted:
        guest.stop()


def pytest_collection_modifyitems(items):
    # The lost-host lane (test_replica_lane.py) loses the session's VM on purpose: it
    # runs after every other test that uses that VM. (sort is stable: order otherwise kept)
    items.sort(key=lambda item: getattr(getattr(item, "module", None), "LOSES_THE_SESSION_VM", False))


@pytest.fixture(scope="module")
def steps(request):
    """A lane's steps so far: how many tests had failed before it began, the step running now."""
    return types.SimpleNamespace(failures_before=request.session.testsfailed, last=None)


@pytest.fixture
def in_order(steps, request):
    """A lane is one story told top to bottom (`pytestmark = [..., pytest.mark.usefixtures
    ("in_order")]`): each step needs what the ones before it left, so once one fails the rest
    fail at once, naming it. Prints each step's time (bench/vm_lane_timings.py reads them)."""
    if request.session.testsfailed > steps.failures_before:
        pytest.fail(f"not run: the earlier step {steps.last} failed")
    steps.last = request.node.name
    started = time.monotonic()
    yield
    print(f"[{request.node.name}: {time.monotonic() - started:.0f} s]")


def pytest_collection_finish(session):
    # The fast tests are collected, and run, before this directory. On a machine that has
    # not built the lanes' images yet (a new CI machine: a few minutes each), build them
    # meanwhile, one after the other; a lane's boot waits for its image (build-image.sh
    # locks). A failed build here is left for the lane to meet, with its error, in front.
    flavours = {getattr(item.module, "IMAGE_FLAVOUR", "") for item in session.items if item.get_closest_marker("vm")}
    if flavours and shutil.which(QEMU) and not session.config.option.collectonly:
        threading.Thread(target=build_early, args=(sorted(flavours),), daemon=True).start()


def build_early(flavours):
    for flavour in flavours:
        with tempfile.TemporaryFile() as log:
            try:
                ensure_image(flavour, log=log)
            except (OSError, subprocess.CalledProcessError, VMError):
                pass  # the lane builds it again, and shows why it fails


ALLOY_STANDIN_USED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def alloy_repo(request):
    """The stand-in `alloy` package served on the host; `.apt_line` is for the guest."""
    with AlloyRepo() as repo:
        request.config.stash[ALLOY_STANDIN_USED] = True
        yield repo


def pytest_terminal_summary(terminalreporter, config):
    # Say it in the test output too, not only in the README.
    if config.stash.get(ALLOY_STANDIN_USED, False):
        terminalreporter.write_line(
            "NOTE: Grafana Alloy was a stand-in package (tests/vm/alloy_standin.py); the real Alloy binary was not run."
        )
