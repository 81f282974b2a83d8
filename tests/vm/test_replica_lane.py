"""Losing the host: Litestream's replica brings the site back on a new one, the sandbox.

A real S3-compatible server runs on this machine's loopback (rclone, reached from the
guests as 10.0.2.2). The host that is lost is the session's VM (conftest.py `vm`):
after the toolkit lane has put it through every command it runs last (conftest.py
orders it so), gets `setup` with the REPLICA_* variables (Litestream, nothing else
changes), and the editor approves articles at the desk in the release it runs. Run on
its own, that VM is a fresh one: the same `setup` does everything, then a deploy. Once `status` says the
replica has caught up (the cut-off) that VM is killed and its disk deleted.

The new host is the product's sandbox, brought up as a newcomer would, from a shell
that holds production's variables: `python -m infra sandbox up --no-deploy` (boot and
setup, each phase said; no release, no database, as a new host). Then, as on any new
host, `setup` with the bucket's variables and `restore --from-replica`, which deploys a
release onto the restored database, and it must serve every article acknowledged before
the cut-off; the printed `eval` line points `status` at it in a real bash; its nightly
check (the backup script) proves its own replica restores; `sandbox down` leaves nothing
behind. (One boot and one full setup serve both stories, the sandbox's and the lost
host's, which CI's hour needs.)

The steps run top to bottom, as in test_toolkit_lane.py, whose Lane drives the
toolkit here too. Lean on purpose: no Alloy, no reader load, and the new host's
first-boot upgrade let go as soon as setup waits for it (the toolkit lane is the one
that meets it whole).
"""

import json
import re
import shlex
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest
from replica_support import S3Server
from sandbox_cli import Sandbox
from test_toolkit_lane import APP, DRAFT, SECRET_VALUES, Lane

pytestmark = [pytest.mark.vm, pytest.mark.usefixtures("in_order")]
LOSES_THE_SESSION_VM = True  # conftest.py: after every other test that uses it

ARTICLES = 3
NO_ALLOY = types.SimpleNamespace(apt_line="")


def article(n):
    return {
        "title": f"Replica lane story {n}: Venture X adds lounge number {n}",
        "type": "summary",
        "tldr": f"Story {n} of the replica lane.",
        "body_html": f"<p>Paragraph of story {n}.</p>",
        "key_details": [["Story", str(n)]],
        "links": [{"title": "Issuer page", "url": "https://example.com/offer"}],
        "sources": [
            {"title": "One", "url": f"https://one.example/{n}", "site": "one.example"},
            {"title": "Two", "url": f"https://two.example/{n}", "site": "two.example"},
        ],
        "persona_take": "Fine if you fly often.",
    }


class Host(Lane):
    """One guest replicating to the bucket: the toolkit lane's driver, without Alloy."""

    def __init__(self, vm, s3, workdir, outputs):
        super().__init__(vm, NO_ALLOY, workdir)
        self.env |= s3.replica_env("10.0.2.2")
        # As the toolkit lane has it, without Alloy (left as it is where it runs).
        self.data = [item for item in self.data if not item.startswith("alloy_")] + ["alloy_enabled=false"]
        self.outputs = outputs  # both hosts' outputs, for the last step

    def publish(self, browser, csrf, n):
        """A draft as the pipeline leaves one, approved by the editor at the desk; its slug."""
        python = f"cd / && sudo -u milesahead env PYTHONPATH={APP}/current/vendor:{APP}/current python3"
        article_id = self.ssh(f"{python} -c {shlex.quote(DRAFT)}", input=json.dumps(article(n)))
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.vm.http_port}/api/admin/articles/{article_id}/approve",
            data=b"{}",
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
        )
        answer = json.loads(browser.open(request, timeout=120).read())
        assert answer["status"] == "approved" and "publish_error" not in answer, answer
        return answer["slug"]

    def replica_status(self):
        return self.ssh(f"sudo python3 {APP}/bin/replica.py status", check=False)

    def published_slugs(self):
        status, _headers, body = self.get("/api/articles?limit=100")
        assert status == 200
        return {a["slug"] for a in json.loads(body)["articles"]}


class State:
    """What the steps hand on: the bucket, the hosts, the articles the desk acknowledged."""

    first = second = None
    acknowledged = ()


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    state = State()
    state.workdir = tmp_path_factory.mktemp("replica-lane")
    state.outputs = []
    state.sandbox = Sandbox(state.workdir / "sandbox")
    with S3Server(state.workdir / "buckets") as s3:
        state.s3 = s3
        yield state
        if (state.sandbox.state / "state.json").exists():  # a step failed before down
            state.sandbox.run("down")


def host(vm, state):
    vm.release_apt()  # a first boot's stand-in upgrade ends as soon as it starts
    return Host(vm, state.s3, state.workdir, state.outputs)


# --- the steps ---------------------------------------------------------------


def test_setup_installs_litestream_replicating_to_the_bucket(vm, state):
    old = state.first = host(vm, state)
    old.toolkit("setup")
    assert old.ssh("systemctl is-active milesahead-litestream.service") == "active"
    assert old.ssh(f"sudo stat -c '%a %U:%G' {APP}/litestream.yml") == "640 root:milesahead"
    analysis = old.ssh("sudo systemd-analyze security milesahead-litestream.service")
    print(re.search(r"Overall exposure level.*", analysis).group(0))
    if old.ssh(f"test -e {APP}/current && echo runs || echo none") == "none":  # run alone: a fresh VM
        old.toolkit("deploy", "--allow-dirty")
    assert old.healthz()[0] == 200


def test_the_editor_publishes_and_the_replica_catches_up(state):
    old = state.first
    browser, csrf = old.desk()
    state.acknowledged = [old.publish(browser, csrf, n) for n in range(1, ARTICLES + 1)]
    assert set(state.acknowledged) <= old.published_slugs()
    # The cut-off: the replica has every acknowledged write. A write younger than
    # replica.py's SHIP_SLACK (10 s) counts as shipped; let the last one age past it.
    time.sleep(15)
    deadline = time.monotonic() + 180
    while "caught up" not in (status := old.replica_status()):
        assert time.monotonic() < deadline, f"the replica never caught up:\n{status}"
        time.sleep(2)
    print(status)
    _result, output = old.toolkit("status")
    assert re.search(r"replica: position txid [0-9a-f]{16} written", output)
    assert "replica: lag 0 s, caught up" in output


def test_the_host_is_lost(state):
    objects = state.s3.objects()
    state.first.vm.stop()  # QEMU killed, its disk deleted: nothing of it is left
    print(f"objects in the bucket: {len(objects)}")
    assert objects


def test_a_new_host_comes_up_in_the_sandbox_saying_each_phase(state):
    sandbox = state.sandbox
    # Set up with no release and no database, as a new host is: a database of its own would
    # become the replica's latest the moment Litestream started, ahead of the lost host's.
    status, output = sandbox.run("up", "--no-deploy", timeout=2700)
    assert status == 0, output[-4000:]
    for phase in ("image", "boot", "setup"):
        assert re.search(rf"^sandbox \[\d+:\d\d\] {phase}: ", output, re.M), phase
    for phase in ("boot", "setup"):
        assert re.search(rf"^sandbox \[\d+:\d\d\] {phase}: done in \d+ s", output, re.M), phase
    assert re.search(r"^sandbox \[\d+:\d\d\] up: ready, set up with no release", output, re.M)
    sandbox.url = re.search(r"^The site: (http://127\.0\.0\.1:\d+/)", output, re.M).group(1)
    sandbox.eval_line = re.search(r'^eval "\$\(.* -m infra sandbox env\)"$', output, re.M).group(0)
    # Its test secrets stay in its state directory, private; none is printed.
    test_secrets = json.loads((sandbox.state / "secrets.json").read_text())
    password = (sandbox.state / "admin-password").read_text().strip()
    assert [value for value in [*test_secrets.values(), password] if value in output] == []
    assert oct((sandbox.state / "secrets.json").stat().st_mode & 0o777) == "0o600"
    assert oct(sandbox.state.stat().st_mode & 0o777) == "0o700"


def test_setup_and_restore_bring_the_site_back_on_it(state):
    new = state.second = Host(state.sandbox.machine(), state.s3, state.workdir, state.outputs)
    new.toolkit("setup")  # now with the bucket's variables: Litestream
    assert new.ssh("systemctl is-active milesahead-litestream.service") == "active"
    _result, output = new.toolkit("restore", "--from-replica")
    log = new.ssh(f"cat {APP}/deploy.log")
    assert "restore from the replica ok; no release yet, deploying one" in log
    assert re.search(r"deploy [0-9a-f]{12} \(commit [^)]*\) ok", log)
    assert "changed: Health gate: /healthz reports the new release" in output
    status, health = new.healthz()
    assert status == 200 and health["status"] == "ok"
    # Every article acknowledged before the cut-off, as readers get it through Caddy.
    assert set(state.acknowledged) <= new.published_slugs()
    for slug in state.acknowledged:
        status, _headers, body = new.get(f"/articles/{slug}")
        assert status == 200 and b"Replica lane story" in body, slug


def test_the_toolkit_works_against_it_after_the_eval_line(state):
    sandbox = state.sandbox
    result = sandbox.shell(f"{sandbox.eval_line} && {sys.executable} -m infra status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"release: +[0-9a-f]{12} \(commit ", result.stdout), result.stdout
    assert re.search(r"unit: +active", result.stdout) and re.search(r"health: +ok \(schema", result.stdout)
    # Nothing of the production shell it started from was used.
    leaks = sandbox.shell(f'{sandbox.eval_line} && echo "${{OCI_SSH_KEY-}}${{REPLICA_BUCKET-}}${{GRAFANA_API_KEY-}}"')
    assert leaks.returncode == 0 and leaks.stdout.strip() == ""
    with urllib.request.urlopen(sandbox.url, timeout=60) as resp:
        assert resp.status == 200
        home = resp.read().decode()
    assert "<title>" in home and "/cards" in home
    with urllib.request.urlopen(f"{sandbox.url}healthz", timeout=60) as resp:
        assert json.loads(resp.read()) == {"status": "ok"}


def test_the_new_host_replicates_on_and_its_nightly_check_restores(state):
    new = state.second
    _result, output = new.toolkit("backup")
    assert "replica: ok: restored txid" in output
    assert re.search(r"replica: articles: (\d+) rows in the restored copy, \1 live", output)
    verified = json.loads(new.ssh(f"sudo cat {APP}/data/replica-verified.json"))
    assert verified["ok"] is True and verified["rows"]["articles"]["replica"] >= ARTICLES


def test_sandbox_status_says_what_runs_where(state):
    sandbox = state.sandbox
    saved = sandbox.saved()
    status, output = sandbox.run("status")
    assert status == 0
    assert f"QEMU pid {saved['pid']}" in output and sandbox.url in output
    assert f"port {saved['ssh_port']}" in output and "setup done, no release from `up`" in output


def test_sandbox_down_leaves_no_qemu_and_no_overlay(state):
    sandbox = state.sandbox
    overlay = Path(sandbox.saved()["workdir"]) / "run.qcow2"
    assert overlay.exists()
    status, output = sandbox.run("down")
    assert status == 0 and "stopped and deleted" in output
    assert sandbox.processes() == []
    assert not overlay.exists() and not sandbox.state.exists()
    assert sandbox.run("status")[1].startswith("no sandbox")


def test_no_bucket_key_appears_in_any_output(state):
    outputs = state.outputs + state.sandbox.outputs
    assert len(state.outputs) >= 5  # setup, status and backup on the old host, setup and restore on the new
    keys = [state.s3.secret_key, state.s3.access_key, *SECRET_VALUES]
    assert [key for key in keys for out in outputs if key in out] == []
