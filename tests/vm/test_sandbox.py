"""The sandbox, as a newcomer runs it: `sandbox up`, the toolkit pointed at it by
`eval "$(... sandbox env)"` in a real shell, the site from the printed URL, `sandbox down`.

It boots its own VM (the guest the other lanes test, infra/vm.py), so it must run while
no other VM does: conftest.py puts it before the first test that asks for the session's
`vm`. The steps share one sandbox and run top to bottom; `down` runs at the end whatever
happened.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.vm, pytest.mark.usefixtures("in_order")]

# What a production shell may hold; the sandbox's exports must keep all of it away.
PRODUCTION_SHELL = {
    "OCI_HOST": "203.0.113.10",
    "OCI_SSH_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----",
    "REPLICA_ENDPOINT": "https://production.invalid",
    "REPLICA_BUCKET": "production-bucket",
    "GRAFANA_API_KEY": "glc_production",
}


class Sandbox:
    def __init__(self, state):
        self.state = state
        self.env = os.environ | PRODUCTION_SHELL | {"MILESAHEAD_SANDBOX_DIR": str(state)}
        self.up_output = None
        self.failed = None

    def run(self, *args, timeout=600):
        """`python -m infra sandbox ARGS`, its output shown as it comes and returned."""
        started = time.monotonic()
        lines = []
        with subprocess.Popen(
            [sys.executable, "-m", "infra", "sandbox", *args], cwd=ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ) as proc:  # fmt: skip
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line)
                if "for apt: " in line and "waiting up to" in line:
                    self.release_apt()
                if time.monotonic() - started > timeout:
                    proc.kill()
        print(f"$ sandbox {' '.join(args)} -> exit {proc.returncode} in {time.monotonic() - started:.0f} s")
        return proc.returncode, "".join(lines)

    def release_apt(self):
        """Setup met the first boot's upgrade and waits: end the stand-in's hold, as the
        other lanes do (tests/vm/README.md: Meeting it on purpose), rather than wait it out."""
        state = self.saved()
        subprocess.run(
            ["ssh", "-i", str(self.state / "id_ed25519"), "-p", str(state["ssh_port"]), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             "ubuntu@127.0.0.1", "sudo touch /run/testvm-upgrade-go"],
            check=True, timeout=120,
        )  # fmt: skip

    def shell(self, line, timeout=600):
        """A bash line as an operator types it, in the checkout, from the same shell."""
        return subprocess.run(
            ["bash", "-c", line], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def saved(self):
        return json.loads((self.state / "state.json").read_text())


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    sandbox = Sandbox(tmp_path_factory.mktemp("sandbox") / "state")
    yield sandbox
    if (sandbox.state / "state.json").exists():  # a step failed before down
        sandbox.run("down")


def test_up_says_each_phase_and_ends_with_the_url_and_the_eval_line(sandbox):
    # From a cached image: boot, then setup and deploy (the first boot's upgrades hold apt meanwhile).
    status, output = sandbox.run("up", timeout=2700)
    assert status == 0, output[-4000:]
    for phase in ("image", "boot", "setup", "deploy"):
        assert re.search(rf"^sandbox \[\d+:\d\d\] {phase}: ", output, re.M), phase
    assert re.search(r"^sandbox \[\d+:\d\d\] boot: done in \d+ s", output, re.M)
    assert re.search(r"^sandbox \[\d+:\d\d\] setup: done in \d+ s", output, re.M)
    assert re.search(r"^sandbox \[\d+:\d\d\] deploy: done in \d+ s", output, re.M)
    sandbox.url = re.search(r"^The site: (http://127\.0\.0\.1:\d+/)", output, re.M).group(1)
    sandbox.eval_line = re.search(r'^eval "\$\(.* -m infra sandbox env\)"$', output, re.M).group(0)
    sandbox.up_output = output


def test_no_test_secret_is_printed_by_up(sandbox):
    test_secrets = json.loads((sandbox.state / "secrets.json").read_text())
    password = (sandbox.state / "admin-password").read_text().strip()
    for value in [*test_secrets.values(), password]:
        assert value not in sandbox.up_output
    assert oct((sandbox.state / "secrets.json").stat().st_mode & 0o777) == "0o600"
    assert oct(sandbox.state.stat().st_mode & 0o777) == "0o700"


def test_the_toolkit_works_against_it_after_the_eval_line(sandbox):
    result = sandbox.shell(f"{sandbox.eval_line} && {sys.executable} -m infra status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"release: +[0-9a-f]{12} \(commit ", result.stdout), result.stdout
    assert re.search(r"unit: +active", result.stdout) and re.search(r"health: +ok \(schema", result.stdout)
    # Nothing of the production shell it started from was used.
    leaks = sandbox.shell(f'{sandbox.eval_line} && echo "${{OCI_SSH_KEY-}}${{REPLICA_BUCKET-}}${{GRAFANA_API_KEY-}}"')
    assert leaks.returncode == 0 and leaks.stdout.strip() == ""


def test_the_printed_url_serves_the_site(sandbox):
    with urllib.request.urlopen(sandbox.url, timeout=60) as resp:
        assert resp.status == 200
        home = resp.read().decode()
    assert "<title>" in home and "/cards" in home
    with urllib.request.urlopen(f"{sandbox.url}healthz", timeout=60) as resp:
        assert json.loads(resp.read()) == {"status": "ok"}


def test_status_says_what_runs_where(sandbox):
    state = sandbox.saved()
    status, output = sandbox.run("status")
    assert status == 0
    assert f"QEMU pid {state['pid']}" in output and sandbox.url in output
    assert f"port {state['ssh_port']}" in output and "setup and deploy done" in output


def test_down_leaves_no_qemu_and_no_overlay(sandbox):
    state = sandbox.saved()
    overlay = Path(state["workdir"]) / "run.qcow2"
    assert overlay.exists()
    status, output = sandbox.run("down")
    assert status == 0 and "stopped and deleted" in output
    running = [p for p in Path("/proc").glob("[0-9]*/cmdline") if str(sandbox.state).encode() in _read(p)]
    assert running == []
    assert not overlay.exists() and not sandbox.state.exists()
    assert sandbox.run("status")[1].startswith("no sandbox")


def _read(path):
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile
        return b""
