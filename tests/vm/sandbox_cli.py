"""Driving `python -m infra sandbox` as a newcomer does: from a shell that also holds a
production operator's variables, which the sandbox's exports must keep away."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import infra.sandbox

ROOT = Path(__file__).resolve().parents[2]

# What a production shell may hold; the sandbox's exports must keep all of it away.
PRODUCTION_SHELL = {
    "OCI_HOST": "203.0.113.10",
    "OCI_SSH_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----",
    "REPLICA_ENDPOINT": "https://production.invalid",
    "REPLICA_BUCKET": "production-bucket",
    "GRAFANA_API_KEY": "glc_production",
}


class Sandbox:
    """A sandbox whose state lives in `state` (MILESAHEAD_SANDBOX_DIR), and its outputs."""

    def __init__(self, state):
        self.state = state
        self.env = os.environ | PRODUCTION_SHELL | {"MILESAHEAD_SANDBOX_DIR": str(state)}
        self.outputs = []

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
                    # setup met the first boot's upgrade: end the stand-in's hold, as the
                    # other lanes do (tests/vm/README.md: Meeting it on purpose).
                    self.machine().release_apt()
                if time.monotonic() - started > timeout:
                    proc.kill()
        print(f"$ sandbox {' '.join(args)} -> exit {proc.returncode} in {time.monotonic() - started:.0f} s")
        self.outputs.append("".join(lines))
        return proc.returncode, self.outputs[-1]

    def shell(self, line, timeout=600):
        """A bash line as an operator types it, in the checkout, from the same shell."""
        return subprocess.run(
            ["bash", "-c", line], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def saved(self):
        return json.loads((self.state / "state.json").read_text())

    def machine(self):
        """The sandbox's VM, to reach into as the lanes reach theirs (ssh, release_apt)."""
        guest = infra.sandbox.machine(self.saved())
        guest.key_path = str(self.state / "id_ed25519")
        return guest

    def processes(self):
        """The processes whose command line names the state directory."""
        return [p for p in Path("/proc").glob("[0-9]*/cmdline") if str(self.state).encode() in _read(p)]


def _read(path):
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile
        return b""
