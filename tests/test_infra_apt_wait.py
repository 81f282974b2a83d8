"""setup's wait for apt on a fresh host, run with sh against real locks held by a real process.

apt and dpkg lock their files with fcntl (POSIX) locks, which /proc/locks lists with the
holder's pid; here a child process holds such a lock on a temporary file standing in for
/var/lib/dpkg/lock-frontend, as unattended-upgrades holds the real one after a first boot.
"""

import contextlib
import re
import subprocess
import sys

import pytest

from infra.tasks import base

HOLD = """
import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def lock_file(tmp_path):
    path = tmp_path / "lock-frontend"
    path.write_text("")
    return path


@contextlib.contextmanager
def hold(path, seconds):
    """A process holding the lock for up to `seconds`, from the moment this yields it."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout.readline().strip() == "locked"
        try:
            yield proc
        finally:
            proc.kill()


def sh(command, timeout=60):
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout)


def test_a_held_lock_is_named_with_its_holder(lock_file):
    with hold(lock_file, 30) as holder:
        busy = sh(base.apt_busy_command(locks=[str(lock_file)], units=[])).stdout.splitlines()
    assert len(busy) == 1
    assert busy[0].startswith(f"{lock_file} held by ") and busy[0].endswith(f"(pid {holder.pid})")


def test_a_free_lock_is_not_busy(lock_file):
    assert sh(base.apt_busy_command(locks=[str(lock_file)], units=[])).stdout == ""


def test_the_wait_ends_when_the_holder_lets_go(lock_file):
    # The holder lets go only once the wait has said it waits, however slow the machine.
    with hold(lock_file, 600) as holder:
        command = base.apt_wait_command(600, locks=[str(lock_file)], units=[])
        with subprocess.Popen(["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wait:
            first = wait.stdout.readline()
            holder.kill()
            holder.wait()
            rest, err = wait.communicate(timeout=120)
    assert wait.returncode == 0, err
    assert re.match(r"waiting \(\d+ s\): ", first) and f"(pid {holder.pid})" in first  # a busy machine: 1 s, say
    assert rest.splitlines()[-1].startswith("apt is free after")


def test_the_wait_is_bounded_and_says_what_still_holds_apt_and_what_to_do(lock_file):
    with hold(lock_file, 60) as holder:
        result = sh(base.apt_wait_command(2, locks=[str(lock_file)], units=[]))
    assert result.returncode == 1
    assert "apt is still busy after" in result.stderr and f"(pid {holder.pid})" in result.stderr
    assert "--data apt_lock_timeout=SECONDS" in result.stderr
