"""The toolkit against a real server: every operator command, in order, on one VM.

The guest is shaped like a fresh OCI instance (README: A host shaped like OCI's): its
firewall rejects everything but SSH, and unattended-upgrades holds the dpkg lock when
setup starts. The steps share one guest and run top to bottom (pytest keeps file order):
dry run, setup (waiting for apt, opening the reader ports), setup again (no changes), deploy (and an article approved at the desk), a second
release and a broken release that must roll back by itself, both under
a steady load of reader GETs through Caddy that must never fail, then rollback, the cron
backup while the database is written, restore, and a reboot. A step whose predecessor
failed fails at once, naming it.

Grafana Alloy is installed from a stand-in package (alloy_standin.py): the install
path is real, the real Alloy binary is not run here.
"""

import gzip
import http.client
import http.cookiejar
import json
import os
import re
import secrets as pysecrets
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from load import Load

import store
from infra import release

ROOT = Path(__file__).resolve().parents[2]

# The release seeds every card in the data; the count is the data's, never a constant.
SEED_CARDS = len(store.load_seed_cards())

pytestmark = [pytest.mark.vm, pytest.mark.usefixtures("in_order")]

APP = "/opt/milesahead"
PUBLIC = f"{APP}/data/public"
PASSWORD = "vm-lane-password"
TOKEN = pysecrets.token_hex(6)
SECRETS = {
    "ADMIN_PASSWORD_HASH": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode(),
    "NVIDIA_API_KEY": f"nvapi-vmlane-{TOKEN}",
    "UNSPLASH_KEY": f"unsplash-vmlane-{TOKEN}",
    "PEXELS_KEY": f"pexels-vmlane-{TOKEN}",
    "PIXABAY_KEY": "",  # optional secrets may be empty
    "GRAFANA_API_KEY": f"glc_vmlane_{TOKEN}",
    "GRAFANA_PROM_URL": "https://prometheus.invalid/api/prom/push",
    "GRAFANA_PROM_USER": "123456",
    "GRAFANA_LOKI_URL": "https://logs.invalid/loki/api/v1/push",
    "GRAFANA_LOKI_USER": "654321",
}
SECRET_VALUES = [SECRETS[k] for k in ("ADMIN_PASSWORD_HASH", "NVIDIA_API_KEY", "UNSPLASH_KEY", "PEXELS_KEY")]
SECRET_VALUES.append(SECRETS["GRAFANA_API_KEY"])


INTEGRITY = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])"
# Rows the writer made; the database path may be given, else the live one.
COUNT = (
    "import sqlite3, sys; path = sys.argv[1] if len(sys.argv) > 1 else '/opt/milesahead/data/milesahead.db'; "
    "c = sqlite3.connect(path); print(c.execute('SELECT count(*) FROM vm_lane_writes').fetchone()[0]); c.commit()"
)

WIPE = "import sqlite3; c = sqlite3.connect('/opt/milesahead/data/milesahead.db'); c.execute('DELETE FROM vm_lane_writes'); c.commit()"

# A draft as the pipeline leaves one, written through the release's own store module.
DRAFT = (
    "import json, store; c = store.connect('/opt/milesahead/data/milesahead.db'); "
    "print(store.insert_article(c, **json.loads(input())))"
)
ARTICLE = {
    "title": "Sapphire Reserve bonus climbs to 100,000 points",
    "type": "deal",
    "tldr": "A bigger welcome bonus for a limited time.",
    "body_html": "<p>The offer runs until March.</p>",
    "key_details": [["Bonus", "100,000 points"]],
    "links": [{"title": "Issuer page", "url": "https://example.com/offer"}],
    "sources": [
        {"title": "Story one", "url": "https://one.example/story", "site": "one.example"},
        {"title": "Story two", "url": "https://two.example/story", "site": "two.example"},
    ],
    "persona_take": "Worth it if you already fly often.",
}
CARD = "chase-sapphire-reserve"  # the card the article mentions

# The load during the deploys: a steady, modest rate (the guest is emulated), each
# request on a new connection. Reader pages come from Caddy's files; /admin/login
# only the app serves, so it shows how long Caddy held a request through a restart.
READER_THREADS, READER_RATE = 4, 24.0
EDITOR_RATE = 2.0
EDITOR_HELD_UP_TO = 45  # Caddy's lb_try_duration in the lane, seconds


class Lane:
    """The guest plus the toolkit's command line pointed at it; remembers every output."""

    def __init__(self, vm, alloy_repo, workdir):
        self.vm = vm
        self.workdir = workdir
        self.env = os.environ | vm.inventory_env() | SECRETS
        # Host keys are new on every boot of the throw-away guest.
        self.env |= {"OCI_SSH_KNOWN_HOSTS": "/dev/null", "OCI_SSH_STRICT": "no", "SITE_ADDRESS": ":80"}
        self.data = [f"alloy_apt_repo={alloy_repo.apt_line}", "alloy_apt_key_url=", "health_timeout=45"]
        # Readers reach guest port 80 through QEMU's forward: the public address from here.
        self.data.append(f"public_url=http://127.0.0.1:{vm.http_port}")
        # The emulated guest starts the app many times slower than a real server (over
        # 10 s on a busy host, measured): Caddy holds a request as long as the gate waits.
        self.data.append(f"caddy_lb_try_duration={EDITOR_HELD_UP_TO}s")
        self.outputs = []
        self.releases = {}
        self.failed = None
        self.loads = []

    def toolkit(self, *args, env=None, check=True, timeout=1800, on_line=None):
        """Run `python -m infra ARGS`; `on_line(line)` sees its output as it comes."""
        argv = [sys.executable, "-m", "infra"]
        for item in self.data:
            argv += ["--data", item]
        started = time.monotonic()
        lines = []
        with subprocess.Popen(
            argv + list(args),
            cwd=ROOT,
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc:
            for line in proc.stdout:
                lines.append(line)
                if on_line:
                    on_line(line)
                if time.monotonic() - started > timeout:
                    proc.kill()
        result = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines), "")
        output = result.stdout
        self.outputs.append(output)
        print(f"$ python -m infra {' '.join(args)}  -> exit {result.returncode} in {time.monotonic() - started:.0f} s")
        print(output[-6000:])
        if check and result.returncode != 0:
            pytest.fail(f"`python -m infra {' '.join(args)}` exited {result.returncode}:\n{output[-4000:]}")
        return result, output

    def ssh(self, cmd, **kwargs):
        return self.vm.ssh(cmd, **kwargs).stdout.strip()

    def ssh_bytes(self, cmd):
        """A command's stdout as bytes, exactly (a file's contents, say)."""
        return subprocess.run(self.vm.ssh_argv() + [cmd], capture_output=True, check=True, timeout=120).stdout

    def get(self, path, headers=None):
        """(status, headers, body) from the site through Caddy on the forwarded port."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.vm.http_port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def healthz(self):
        """(status through Caddy, the app's whole answer on loopback, as the deploy's gate reads it).

        Through Caddy /healthz says only ok or not; its release and reasons stay on the host.
        """
        status, _headers, body = self.get("/healthz")
        if status != 200:
            return status, body
        assert json.loads(body) == {"status": "ok"}, body
        return status, json.loads(self.ssh("curl -fsS http://127.0.0.1:8080/healthz"))

    def healthz_within(self, seconds):
        """healthz() once it answers 200 (a guest coming back up), or its last answer."""
        status, health = None, None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                status, health = self.healthz()
                if status == 200:
                    break
            except (OSError, http.client.HTTPException, subprocess.SubprocessError):  # Caddy or sshd not up yet
                pass
            time.sleep(2)
        return status, health

    def desk(self):
        """A browser logged in at the desk through Caddy, and its session's CSRF token."""
        base = f"http://127.0.0.1:{self.vm.http_port}"
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = browser.open(f"{base}/admin/login", timeout=30).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "password": PASSWORD, "next": "/admin"})
        browser.open(f"{base}/admin/login", data=form.encode(), timeout=30)  # a redirect to the desk
        session = json.loads(browser.open(f"{base}/api/admin/session", timeout=30).read())
        return browser, session["csrf_token"]

    def approve_new_article(self):
        """A draft from the 'pipeline', approved by the editor through the desk's API."""
        python = f"cd / && sudo -u milesahead env PYTHONPATH={APP}/current/vendor:{APP}/current python3"
        article_id = self.ssh(f"{python} -c {shlex.quote(DRAFT)}", input=json.dumps(ARTICLE))
        browser, csrf = self.desk()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.vm.http_port}/api/admin/articles/{article_id}/approve",
            data=b"{}",
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
        )
        return json.loads(browser.open(request, timeout=120).read())

    def start_load(self, paths, **kwargs):
        load = Load(self.vm.http_port, paths, **kwargs)
        self.loads.append(load)
        load.start()
        return load

    def deploy_under_load(self, name, source, check=True):
        """Deploy `source`, marking its start and end in every load that runs."""
        running = [load for load in self.loads if load.stopped is None]
        for load in running:
            load.mark(f"deploy {name} starts")
        result = self.toolkit("deploy", "--source", str(source), check=check)
        for load in running:
            load.mark(f"deploy {name} ended (exit {result[0].returncode})")
        return result

    def source(self, name, edit=None):
        """A copy of the app's release files, optionally edited: a new release id."""
        dest = self.workdir / name
        for rel in release.source_files(ROOT):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
        if edit:
            edit(dest / "app.py")
        return dest


def released_id(output):
    match = re.search(r"Upload release ([0-9a-f]{12})", output)
    assert match, "the deploy output names no release"
    return match.group(1)


def changed_ops(output):
    """Operations that changed something, as the toolkit's summary lists them."""
    return [line.split("changed: ", 1)[1] for line in output.splitlines() if line.startswith("  changed: ")]


OCI_INPUT = [
    "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT",
    "-A INPUT -p icmp -j ACCEPT",
    "-A INPUT -i lo -j ACCEPT",
    "-A INPUT -p udp -m udp --sport 123 -j ACCEPT",
    "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT",
]
READERS_IN = [
    "-A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -m comment --comment milesahead -j ACCEPT",
    "-A INPUT -p tcp -m state --state NEW -m tcp --dport 443 -m comment --comment milesahead -j ACCEPT",
    "-A INPUT -p udp -m udp --dport 443 -m comment --comment milesahead -j ACCEPT",
]
REJECT = "-A INPUT -j REJECT --reject-with icmp-host-prohibited"


def answers(port, timeout=15):
    """Does anything answer HTTP on the forwarded port? (A REJECTed port: connect, then nothing.)"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return conn.recv(64) != b""
    except OSError:  # refused, reset, or timed out
        return False


def input_chain(lane):
    """The running INPUT chain's rules, in order."""
    return [line for line in lane.ssh("sudo iptables -S INPUT").splitlines() if line.startswith("-A ")]


def rules_file_input(lane):
    return [line for line in lane.ssh("cat /etc/iptables/rules.v4").splitlines() if line.startswith("-A INPUT")]


@pytest.fixture(scope="module")
def lane(vm, alloy_repo, tmp_path_factory):
    print("NOTE: Grafana Alloy is a stand-in package here; the real Alloy binary is not run.")
    lane = Lane(vm, alloy_repo, tmp_path_factory.mktemp("lane"))
    yield lane
    for load in lane.loads:  # a step failed while a load ran
        load.stop()


# --- the steps ---------------------------------------------------------------


def test_setup_refuses_a_missing_secret_before_connecting(lane):
    env = dict(lane.env)
    del env["ADMIN_PASSWORD_HASH"]
    result, output = lane.toolkit("setup", env=env, check=False)
    assert result.returncode != 0
    assert "ADMIN_PASSWORD_HASH" in output
    assert "Connecting" not in output and "Connected" not in output
    assert lane.ssh(f"test -e {APP} && echo present || echo absent") == "absent"


def test_setup_refuses_an_unreachable_alloy_repository_before_changing_anything(lane):
    # Nothing listens on port 9 of the host: as when Grafana's repository cannot be reached.
    unreachable = ["--data", "alloy_apt_repo=deb [trusted=yes] http://10.0.2.2:9/ ./"]
    result, output = lane.toolkit(*unreachable, "setup", check=False)
    assert result.returncode != 0
    assert "refused:" in output and "not reachable from the host" in output
    assert "--data alloy_enabled=false" in output  # the way out
    assert "Traceback" not in output
    assert lane.ssh(f"test -e {APP} && echo present || echo absent") == "absent"


def test_dry_setup_shows_changes_without_touching_the_host(lane):
    _result, output = lane.toolkit("setup", "--dry")
    assert "Render config.yaml" in output  # the secret file shows as a change...
    assert lane.ssh(f"test -e {APP} && echo present || echo absent") == "absent"  # ...nothing changed


def test_setup_waits_for_the_first_boot_upgrade_then_lets_readers_in(lane):
    # Readers cannot get in yet: OCI's REJECT, seen through QEMU's forward as a hang.
    assert input_chain(lane) == OCI_INPUT + [REJECT]
    assert not answers(lane.vm.http_port)

    how = lane.vm.hold_apt_as_after_first_boot()
    print(f"unattended-upgrades holds the dpkg lock as setup starts ({how})")
    waited = []

    def release_once_waiting(line):
        # The upgrade goes on until setup says it waits for it; then it may finish.
        if "waiting up to" in line and not waited:
            waited.append(line.strip())
            lane.vm.release_apt()

    try:
        _result, output = lane.toolkit("setup", on_line=release_once_waiting)
    finally:
        lane.vm.release_apt()
    print("setup said:", waited)
    assert waited and re.search(r"unattended-upgr|apt-daily", waited[0]), output[-3000:]  # it said for what
    assert "Could not get lock" not in output

    # Readers in (before the REJECT, in the file too), nothing else opened.
    assert input_chain(lane) == OCI_INPUT + READERS_IN + [REJECT]
    in_file = [line.replace("-p udp -m udp --sport", "-p udp --sport") for line in OCI_INPUT]  # as OCI wrote it
    assert rules_file_input(lane) == in_file + READERS_IN + [REJECT]
    assert "InstanceServices" in lane.ssh("cat /etc/iptables/rules.v4")  # the rest of OCI's file kept
    assert lane.ssh("sudo ip6tables -S INPUT") == "-P INPUT ACCEPT"  # open already: untouched
    assert re.search(r"public check: http://127.0.0.1:\d+/metrics answers from here", output)
    assert lane.ssh(f"sudo stat -c '%a %U:%G' {APP}/config.yaml") == "640 root:milesahead"
    assert lane.ssh("sudo stat -c '%a %U:%G' /etc/alloy/milesahead.env") == "600 root:root"
    config = lane.ssh(f"sudo cat {APP}/config.yaml")
    assert SECRETS["NVIDIA_API_KEY"] in config and SECRETS["ADMIN_PASSWORD_HASH"] in config
    assert lane.ssh("systemctl is-enabled milesahead.service") == "enabled"
    assert lane.ssh("systemctl is-active caddy.service alloy.service cron.service").split() == ["active"] * 3
    assert "stand-in" in lane.ssh("alloy --version")
    assert "bin/backup.sh daily" in lane.ssh("cat /etc/cron.d/milesahead")


def test_setup_again_changes_nothing(lane):
    _result, output = lane.toolkit("setup")
    still = changed_ops(output)
    print("operations that still report a change on a second setup:", still or "none")
    assert still == []
    assert input_chain(lane) == OCI_INPUT + READERS_IN + [REJECT]  # no second copy of a rule


def test_deploy(lane):
    # --allow-dirty: a working tree under edit may run the lane too; the commit says so.
    _result, output = lane.toolkit("deploy", "--allow-dirty")
    rid = lane.releases["first"] = released_id(output)
    status, health = lane.healthz()
    assert status == 200 and health["release"] == rid and health["status"] == "ok"
    assert health["commit"] == release.source_commit(ROOT)
    assert lane.ssh(f"readlink {APP}/current") == f"releases/{rid}"
    assert f"deployed {rid} (commit " in output and ", was nothing" in output
    assert f"public check: http://127.0.0.1:{lane.vm.http_port}/healthz answers from here (ok)" in output
    # The app made its own session secret (deleting it logs everyone out), readable by it only.
    assert lane.ssh(f"sudo stat -c '%a %U' {APP}/data/session_secret") == "600 milesahead"

    status, headers, _body = lane.get("/", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert lane.get("/metrics")[0] == 404  # Caddy answers; the app's metrics stay on loopback
    assert "milesahead_" in lane.ssh("curl -fsS http://127.0.0.1:8080/metrics")

    analysis = lane.ssh("sudo systemd-analyze security milesahead.service")
    exposure = float(re.search(r"Overall exposure level for milesahead.service: ([0-9.]+)", analysis).group(1))
    print(f"systemd-analyze security milesahead.service: exposure {exposure}")
    assert exposure <= 2.0


def test_deploy_publishes_reader_pages_that_caddy_serves_as_files(lane):
    article = lane.approve_new_article()
    assert article["status"] == "approved" and "publish_error" not in article, article
    assert CARD in json.dumps(article["linked_cards"])
    slug = article["slug"]
    # The desk re-rendered the article and the card it mentions: Caddy serves both.
    status, headers, _body = lane.get(f"/articles/{slug}")
    assert status == 200 and headers["Last-Modified"]
    assert f"/articles/{slug}" in lane.get(f"/cards/{CARD}")[2].decode()

    cards = [card["slug"] for card in json.loads(lane.get("/api/cards")[2])["cards"]]
    assert len(cards) == SEED_CARDS
    listed = lane.ssh(f"sudo ls {PUBLIC}/cards").split()
    assert sorted(name for name in listed if name.endswith(".html")) == sorted(f"{card}.html" for card in cards)
    # Caddy's answer is the published file, byte for byte (file_server: ETag, Last-Modified).
    for url, name in [
        ("/", "index.html"),
        (f"/articles/{slug}", f"articles/{slug}.html"),
        (f"/cards/{CARD}", f"cards/{CARD}.html"),
        (f"/api/cards/{CARD}", f"api/cards/{CARD}.json"),
        ("/feed.xml", "feed.xml"),
    ]:
        status, headers, body = lane.get(url)
        assert status == 200 and headers["ETag"] and headers["Last-Modified"], (url, dict(headers))
        assert body == lane.ssh_bytes(f"sudo cat {PUBLIC}/{name}"), url
    # A reader who accepts gzip gets the publisher's compressed twin, as it is.
    status, headers, body = lane.get(f"/cards/{CARD}", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert body == lane.ssh_bytes(f"sudo cat {PUBLIC}/cards/{CARD}.html.gz")

    # Caddy can read the pages, and nothing else of the app's.
    assert lane.vm.ssh(f"sudo -u caddy cat {PUBLIC}/cards/{CARD}.html > /dev/null", check=False).returncode == 0
    for private in (f"{APP}/data/milesahead.db", f"{APP}/config.yaml"):
        denied = lane.vm.ssh(f"sudo -u caddy cat {private} > /dev/null", check=False)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, private

    home = lane.get("/")[2].decode()
    stylesheet = re.search(r"/static/[\w.-]+\.css\?v=[0-9a-f]+", home).group(0)
    lane.reader_paths = [
        "/", "/deals", "/news", f"/articles/{slug}", "/cards", f"/cards/{CARD}",
        "/feed.xml", "/sitemap.xml", "/robots.txt", "/api/articles", f"/api/articles/{slug}",
        "/api/cards", f"/api/cards/{CARD}", stylesheet,
    ]  # fmt: skip


def new_release(lane, name):
    return lane.source(name, edit=lambda p: p.write_text(p.read_text() + f"\n# {name} release\n"))


def test_second_deploy_of_a_new_release(lane):
    source = new_release(lane, "second")
    _result, output = lane.toolkit("deploy", "--dry", "--source", str(source))
    assert "Switch current to" in output  # what would happen...
    assert lane.ssh(f"readlink {APP}/current") == f"releases/{lane.releases['first']}"  # ...did not

    # Readers from now until the broken release has rolled back; the editor only
    # through the good deploys (a broken release keeps the app down for longer
    # than Caddy holds a request).
    lane.readers = lane.start_load(lane.reader_paths, threads=READER_THREADS, rate=READER_RATE, name="readers")
    lane.editor = lane.start_load(
        ["/admin/login"], threads=1, rate=EDITOR_RATE, timeout=EDITOR_HELD_UP_TO + 15, name="editor"
    )
    _result, output = lane.deploy_under_load("second", source)
    rid = lane.releases["second"] = released_id(output)
    assert rid != lane.releases["first"]
    assert lane.healthz()[1]["release"] == rid
    assert lane.ssh(f"readlink {APP}/previous") == f"releases/{lane.releases['first']}"
    lane.editor.stop()


def test_broken_release_rolls_back_by_itself(lane):
    def break_serve(path):
        # migrate and seed-cards still work; only the server refuses to start.
        text = path.read_text()
        guard = 'import sys\nif "serve" in sys.argv[1:]:\n    raise SystemExit("deliberately broken release")\n'
        path.write_text(guard + text)

    source = lane.source("broken", edit=break_serve)
    result, output = lane.deploy_under_load("broken", source, check=False)
    broken = released_id(output)
    assert result.returncode != 0
    assert "has been rolled back" in output
    assert "deliberately broken release" in output  # the unit's journal lines are shown
    status, health = lane.healthz()
    assert status == 200 and health["release"] == lane.releases["second"]
    assert lane.ssh(f"readlink {APP}/current") == f"releases/{lane.releases['second']}"
    assert lane.ssh(f"readlink {APP}/previous") == f"releases/{lane.releases['first']}"
    assert lane.ssh(f"test -e {APP}/deploy.lock && echo locked || echo free") == "free"
    assert re.search(rf"deploy {broken} \(commit [^)]*\) FAILED", lane.ssh(f"cat {APP}/deploy.log"))
    assert f"rolled back, {lane.releases['second']} runs again" in output


def test_readers_never_noticed_the_deploys(lane):
    readers = lane.readers
    readers.stop()
    print(readers.summary())
    print(lane.editor.summary())
    # When the app was down: from "Stopping" to its "on http://" line, restart by restart.
    print(
        lane.ssh("sudo journalctl -u milesahead -o short-precise --no-pager | grep -E 'Stopping|Started| on http://'")
    )
    assert readers.failures() == [], readers.summary()
    assert {a.path for a in readers.answers} == set(lane.reader_paths)
    # Every page came from a published file, never from the app (which was down for a while).
    assert [a.path for a in readers.answers if not a.from_file] == []
    # Requests only the app answers waited out its restarts in Caddy instead of failing.
    assert lane.editor.answers and lane.editor.failures() == [], lane.editor.summary()
    assert [a for a in lane.editor.answers if a.from_file] == []
    held = [a for a in lane.editor.answers if a.seconds >= 1]
    print(f"editor requests Caddy held for 1 s or more: {len(held)}")
    assert held, "no editor request met a restart: the load proves nothing about the gap"


def test_status_and_logs(lane):
    _result, output = lane.toolkit("status")
    assert re.search(rf"release: +{lane.releases['second']} \(commit ", output), output
    assert re.search(r"unit: +active", output) and re.search(rf"health: +ok \(schema \d+, {SEED_CARDS} cards\)", output)
    assert "Starting operation" not in output and len(output) < 2000  # a summary, not pyinfra's log
    _result, output = lane.toolkit("logs", "-n", "20")
    assert "milesahead" in output


def test_rollback_to_the_previous_release(lane):
    _result, output = lane.toolkit("rollback")
    assert f"rolled back: left {lane.releases['second']}, now runs {lane.releases['first']}" in output
    assert lane.healthz()[1]["release"] == lane.releases["first"]
    assert "rollback to" in lane.ssh(f"tail -n 1 {APP}/deploy.log")


def test_cron_backup_while_the_database_is_written(lane):
    # A writer in short IMMEDIATE transactions, as the site does, for the whole backup.
    writer = (
        "import sqlite3, time\n"
        "db = sqlite3.connect('/opt/milesahead/data/milesahead.db', timeout=30, isolation_level=None)\n"
        "db.execute('CREATE TABLE IF NOT EXISTS vm_lane_writes (n INTEGER, at REAL)')\n"
        "for n in range(400):\n"
        "    db.execute('BEGIN IMMEDIATE'); db.execute('INSERT INTO vm_lane_writes VALUES (?, ?)', (n, time.time()))\n"
        "    db.execute('COMMIT'); time.sleep(0.02)\n"
    )
    lane.vm.ssh("cat > /tmp/writer.py && sudo chmod 644 /tmp/writer.py", input=writer)
    lane.ssh("sudo -u milesahead sh -c 'nohup python3 /tmp/writer.py > /tmp/writer.log 2>&1 < /dev/null &'")
    time.sleep(2)
    # The command exactly as cron runs it: its user, its minimal environment.
    line = lane.ssh("grep backup.sh /etc/cron.d/milesahead")
    user, command = line.split()[5], " ".join(line.split()[6:])
    cron_env = "env -i SHELL=/bin/sh PATH=/usr/bin:/bin HOME=/opt/milesahead LOGNAME=" + user
    backup = lane.ssh(f"sudo -u {user} {cron_env} sh -c '{command}'").splitlines()[-1]
    assert re.fullmatch(rf"{APP}/backups/daily/milesahead-\d{{8}}T\d{{6}}Z\.db\.gz", backup)
    # "[w]riter" so that pgrep does not find the shell running pgrep itself.
    assert lane.ssh("pgrep -f 'python3 /tmp/[w]riter.py' > /dev/null && echo writing || echo done") == "writing"
    lane.ssh(
        "while pgrep -f 'python3 /tmp/[w]riter.py' > /dev/null; do sleep 1; done; cat /tmp/writer.log", timeout=180
    )
    assert lane.ssh(f"sudo python3 -c {shlex.quote(COUNT)}") == "400"  # no write was refused
    check = f"gzip -dc {backup} > /tmp/check.db && python3 -c {shlex.quote(INTEGRITY)} /tmp/check.db"
    assert lane.ssh(f"sudo sh -c {shlex.quote(check)}") == "ok"
    assert lane.ssh(f"sudo ls {APP}/backups/weekly")  # the first daily also starts the weekly set
    assert "ok" in lane.ssh("sudo journalctl -t milesahead-backup -n 5 --no-pager")
    lane.backup = backup


def test_backup_command(lane):
    _result, output = lane.toolkit("backup")
    assert "/backups/manual/milesahead-" in output


def test_fetch_backup_copies_the_newest_to_this_machine(lane):
    dest = lane.workdir / "fetched"
    lane.toolkit("fetch-backup", "--to", str(dest))
    (fetched,) = dest.glob("127.0.0.1-milesahead-*.db.gz")
    copy = lane.workdir / "fetched.db"
    copy.write_bytes(gzip.decompress(fetched.read_bytes()))
    assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_restore(lane):
    # The operator's copy of last night's backup, restored from their machine.
    local = lane.workdir / "restore.db.gz"
    local.write_bytes(subprocess.run(lane.vm.ssh_argv() + [f"sudo cat {lane.backup}"], capture_output=True).stdout)
    rows_in_backup = lane.ssh(
        f"sudo sh -c 'gzip -dc {lane.backup} > /tmp/b.db' && sudo python3 -c {shlex.quote(COUNT)} /tmp/b.db"
    )
    assert 0 < int(rows_in_backup) <= 400
    lane.ssh(f"sudo -u milesahead python3 -c {shlex.quote(WIPE)}")  # a change the restore must undo
    lane.toolkit("restore", str(local))
    assert lane.ssh(f"sudo python3 -c {shlex.quote(COUNT)}") == rows_in_backup
    assert lane.healthz()[0] == 200
    assert lane.healthz()[0] == 200
    # The replaced database was kept, compressed, owned by the app user.
    kept = lane.ssh(f"sudo ls {APP}/backups/pre-restore").split()
    assert kept and all(re.fullmatch(r"milesahead\.db(-wal|-shm)?\.\d{8}T\d{6}Z\.gz", name) for name in kept), kept
    assert lane.ssh(f"sudo stat -c '%U %a' {APP}/backups/pre-restore") == "milesahead 750"


def test_reboot_brings_everything_back(lane):
    lane.vm.reboot(timeout=300)
    status, health = lane.healthz_within(120)
    assert status == 200 and health["release"] == lane.releases["first"]  # through the firewall
    assert (
        lane.ssh("systemctl is-active milesahead.service caddy.service alloy.service cron.service").split()
        == ["active"] * 4
    )
    assert input_chain(lane) == OCI_INPUT + READERS_IN + [REJECT]  # loaded from rules.v4 at boot


def test_no_secret_appears_in_any_output(lane):
    assert len(lane.outputs) >= 10
    leaks = [value for value in SECRET_VALUES for out in lane.outputs if value in out]
    assert leaks == []
