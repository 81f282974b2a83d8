"""Losing the host: Litestream's replica brings the site back on a fresh VM.

A real S3-compatible server runs on this machine's loopback (rclone, reached from the
guests as 10.0.2.2). The host that is lost is the session's VM (conftest.py `vm`):
after the toolkit lane has put it through every command it runs last (conftest.py
orders it so), gets `setup` with the REPLICA_* variables (Litestream, nothing else
changes) and a release, and the editor approves articles at the desk. Run on its own,
that VM is a fresh one and the same `setup` does everything. Once `status` says the
replica has caught up (the cut-off) that VM is killed and its disk deleted. A second,
fresh VM gets `setup` and `restore --from-replica` (which deploys a release onto the
restored database) and must serve every article acknowledged before the cut-off; its
nightly check (the backup script) then proves its own replica restores.

The steps run top to bottom, as in test_toolkit_lane.py, whose Lane drives the
toolkit here too. Lean on purpose: one boot and one setup per host, no Alloy, no
reader load, and the fresh host's first-boot upgrade let go at once (the toolkit lane
is the one that meets it; setup still waits for what is left of it).
"""

import json
import re
import shlex
import time
import types
import urllib.request

import pytest
from replica_support import S3Server
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
    with S3Server(state.workdir / "buckets") as s3:
        state.s3 = s3
        yield state


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


def test_setup_and_restore_bring_the_site_back_on_a_fresh_host(boot, state):
    new = state.second = host(boot(), state)
    new.toolkit("setup")
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


def test_the_new_host_replicates_on_and_its_nightly_check_restores(state):
    new = state.second
    _result, output = new.toolkit("backup")
    assert "replica: ok: restored txid" in output
    assert re.search(r"replica: articles: (\d+) rows in the restored copy, \1 live", output)
    verified = json.loads(new.ssh(f"sudo cat {APP}/data/replica-verified.json"))
    assert verified["ok"] is True and verified["rows"]["articles"]["replica"] >= ARTICLES


def test_no_bucket_key_appears_in_any_output(state):
    assert len(state.outputs) >= 6
    keys = [state.s3.secret_key, state.s3.access_key, *SECRET_VALUES]
    assert [key for key in keys for out in state.outputs if key in out] == []
