"""Losing the host: Litestream's replica brings the site back on a fresh VM.

One host is set up with replication to a real S3-compatible server on the host's
loopback (rclone, reached from the guest as 10.0.2.2), gets a release, and the
editor publishes articles through the desk. Once `status` says the replica has
caught up (the cut-off), that VM is killed. A second, fresh VM gets `setup` and
`restore --from-replica`, and must serve every article acknowledged before the
cut-off; its nightly check (the backup script) proves the replica still restores.

Lean on purpose (two boots and setups): no Alloy, and Caddy in `shared` mode with
no Caddy at all, so the desk is reached through an SSH tunnel to the app's port.
"""

import http.cookiejar
import json
import os
import re
import secrets as pysecrets
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from replica_support import S3Server
from vm import TestVM, free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.vm

APP = "/opt/milesahead"
PASSWORD = "replica-lane-password"
TOKEN = pysecrets.token_hex(6)
SECRETS = {
    "ADMIN_PASSWORD_HASH": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode(),
    "NVIDIA_API_KEY": f"nvapi-replicalane-{TOKEN}",
}
DATA = [
    "alloy_enabled=false",
    "caddy_mode=shared",
    "caddy_sites_dir=/etc/milesahead-lane-sites",
    "caddy_validate_command=/bin/true",  # not "true": --data reads that as a boolean
    "caddy_reload_command=/bin/true",
    "health_timeout=90",
]
DRAFT = (
    "import json, store; c = store.connect('/opt/milesahead/data/milesahead.db'); "
    "print(store.insert_article(c, **json.loads(input())))"
)
ARTICLES = 4


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


class Host:
    """One VM with the toolkit pointed at it, and a tunnel to its app's port."""

    def __init__(self, vm, s3, outputs):
        self.vm = vm
        self.env = os.environ | vm.inventory_env() | SECRETS | s3.replica_env("10.0.2.2")
        self.env |= {"OCI_SSH_KNOWN_HOSTS": "/dev/null", "OCI_SSH_STRICT": "no", "SITE_ADDRESS": ":80"}
        self.outputs = outputs
        self.tunnel = None
        self.port = None

    def toolkit(self, *args, check=True):
        argv = [sys.executable, "-m", "infra"] + [f"--data={item}" for item in DATA] + list(args)
        started = time.monotonic()
        result = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=1200)
        output = result.stdout + result.stderr
        self.outputs.append(output)
        print(f"$ python -m infra {' '.join(args)}  -> exit {result.returncode} in {time.monotonic() - started:.0f} s")
        print(output[-5000:])
        if check and result.returncode != 0:
            pytest.fail(f"`python -m infra {' '.join(args)}` exited {result.returncode}:\n{output[-4000:]}")
        return output

    def ssh(self, cmd, **kwargs):
        return self.vm.ssh(cmd, **kwargs).stdout.strip()

    def open_tunnel(self):
        self.port = free_port()
        argv = self.vm.ssh_argv()
        argv = argv[:-1] + ["-N", "-o", "ExitOnForwardFailure=yes", "-L", f"127.0.0.1:{self.port}:127.0.0.1:8080"]
        self.tunnel = subprocess.Popen(argv + [self.vm.ssh_argv()[-1]])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz")[0] in (200, 503):
                    return
            except OSError:
                time.sleep(1)
        pytest.fail("no tunnel to the guest's app")

    def close(self):
        if self.tunnel:
            self.tunnel.terminate()
            self.tunnel.wait(10)

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def publish(self, n):
        """A draft as the pipeline leaves one, approved by the editor at the desk; its slug."""
        python = f"cd / && sudo -u milesahead env PYTHONPATH={APP}/current/vendor:{APP}/current python3"
        article_id = self.ssh(f"{python} -c {shlex.quote(DRAFT)}", input=json.dumps(article(n)))
        base = f"http://127.0.0.1:{self.port}"
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = browser.open(f"{base}/admin/login", timeout=30).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "password": PASSWORD, "next": "/admin"})
        browser.open(f"{base}/admin/login", data=form.encode(), timeout=30)
        csrf = json.loads(browser.open(f"{base}/api/admin/session", timeout=30).read())["csrf_token"]
        request = urllib.request.Request(
            f"{base}/api/admin/articles/{article_id}/approve",
            data=b"{}",
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
        )
        answer = json.loads(browser.open(request, timeout=120).read())
        assert answer["status"] == "approved", answer
        return answer["slug"]

    def wait_until_replica_caught_up(self, timeout=180):
        # A write less than replica.py's SHIP_SLACK (10 s) old may not be shipped yet
        # and still count as caught up: let the desk's last write age past it first.
        time.sleep(15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.ssh(f"sudo python3 {APP}/bin/replica.py status", check=False)
            if "caught up" in status:
                return status
            time.sleep(2)
        pytest.fail(f"the replica never caught up:\n{status}")

    def published_slugs(self):
        status, body = self.get("/api/articles?limit=100")
        assert status == 200
        return {a["slug"] for a in json.loads(body)["articles"]}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with S3Server(tmp_path_factory.mktemp("s3") / "buckets") as server:
        yield server


@pytest.fixture(scope="module")
def outputs():
    return []


def test_a_lost_host_comes_back_from_the_replica_on_a_fresh_one(s3, outputs):
    started = time.monotonic()
    acknowledged = []
    with TestVM() as first:
        old = Host(first, s3, outputs)
        try:
            old.toolkit("setup")
            assert old.ssh("systemctl is-active milesahead-litestream.service") == "active"
            assert old.ssh(f"sudo stat -c '%a %U:%G' {APP}/litestream.yml") == "640 root:milesahead"
            analysis = old.ssh("sudo systemd-analyze security milesahead-litestream.service")
            print(re.search(r"Overall exposure level.*", analysis).group(0))
            old.toolkit("deploy")
            old.open_tunnel()
            for n in range(1, ARTICLES + 1):
                acknowledged.append(old.publish(n))  # the desk answered: the editor saw it saved
            # The cut-off: the replica has every acknowledged write.
            print(old.wait_until_replica_caught_up())
            status = old.toolkit("status")
            assert re.search(r"replica: position txid [0-9a-f]{16} written", status)
            assert "replica: lag 0 s, caught up" in status
            assert set(acknowledged) <= old.published_slugs()
        finally:
            old.close()
        print(f"[first host: {time.monotonic() - started:.0f} s]; objects in the bucket: {len(s3.objects())}")
    # The first VM is gone (its QEMU killed, its disk deleted): the host is lost.

    with TestVM() as second:
        new = Host(second, s3, outputs)
        try:
            new.toolkit("setup")
            output = new.toolkit("restore", "--from-replica")
            assert "no release yet, deploying one" in new.ssh(f"cat {APP}/deploy.log")
            assert re.search(r"deploy [0-9a-f]{12} ok", new.ssh(f"cat {APP}/deploy.log"))
            assert "Health gate" in output
            new.open_tunnel()
            status, body = new.get("/healthz")
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert set(acknowledged) <= new.published_slugs()
            for slug in acknowledged:
                assert new.get(f"/articles/{slug}")[0] == 200, slug
            # The new host replicates on: the nightly check restores its replica and counts rows.
            backup = new.toolkit("backup")
            assert "replica: ok: restored txid" in backup
            assert re.search(r"replica: articles: (\d+) rows in the restored copy, \1 live", backup)
            verified = json.loads(new.ssh(f"sudo cat {APP}/data/replica-verified.json"))
            assert verified["ok"] is True and verified["rows"]["articles"]["replica"] >= ARTICLES
        finally:
            new.close()
    print(f"[replica lane: {time.monotonic() - started:.0f} s]")


def test_no_bucket_key_appears_in_any_output(s3, outputs):
    assert len(outputs) >= 5
    keys = [s3.secret_key, s3.access_key, SECRETS["NVIDIA_API_KEY"], SECRETS["ADMIN_PASSWORD_HASH"]]
    assert [key for key in keys for out in outputs if key in out] == []
