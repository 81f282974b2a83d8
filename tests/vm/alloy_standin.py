"""A stand-in for Grafana's `alloy` Debian package, served from an apt repo on the host.

The real Grafana Alloy cannot be installed here: it is not in Debian, and the vendor's
apt repository is not reachable from this machine. The toolkit keeps its real install
code (repository line, package, config, service) and the test points the repository
line at this stand-in. THE REAL ALLOY BINARY IS NOT RUN IN THESE TESTS: the stand-in
only checks that its config file exists and is non-empty, then idles.

The package has the real one's shape: /usr/bin/alloy, the systemd unit
/usr/lib/systemd/system/alloy.service (User=alloy, EnvironmentFile=/etc/default/alloy,
the same ExecStart), /etc/default/alloy, a default /etc/alloy/config.alloy (a conffile),
and a postinst that creates the `alloy` user. Like the real package it does not enable
or start the service; that is the toolkit's job.

    with AlloyRepo() as repo:
        repo.apt_line   # "deb [trusted=yes] http://10.0.2.2:PORT/ ./" for the guest

Under QEMU user networking the guest reaches the host's 127.0.0.1 as 10.0.2.2.
"""

import email.utils
import gzip
import hashlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

VERSION = "1.0.0+standin"

ALLOY_SCRIPT = """\
#!/bin/sh
# Stand-in for Grafana Alloy (milesahead tests). The real Alloy binary is not run.
set -eu
STANDIN="alloy stand-in (milesahead test package; the real Grafana Alloy binary is not run here)"

check_config() {
    if [ ! -s "$1" ]; then
        echo "alloy stand-in: config file '$1' is missing or empty" >&2
        exit 1
    fi
}

# The config file is the last argument that is not a --flag.
config_arg() {
    config=""
    for arg in "$@"; do
        case "$arg" in --*) ;; *) config=$arg ;; esac
    done
    echo "$config"
}

case "${1:-}" in
    --version|-v|version)
        echo "$STANDIN"
        ;;
    run)
        shift
        config=$(config_arg "$@")
        check_config "$config"
        echo "$STANDIN: running with config $config"
        # Reload (systemctl reload sends SIGHUP) re-checks the config; like the real
        # one, a bad config on reload is reported and the process keeps running.
        trap 'if [ -s "$config" ]; then echo "alloy stand-in: reloaded $config";
              else echo "alloy stand-in: reload failed: $config missing or empty" >&2; fi' HUP
        trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
        while :; do
            sleep 3600 &
            pid=$!
            # A signal interrupts `wait`; drop that sleep and start another.
            wait "$pid" || kill "$pid" 2>/dev/null || true
        done
        ;;
    fmt|validate)
        # Only existence and non-emptiness: the stand-in cannot parse Alloy syntax.
        shift
        config=$(config_arg "$@")
        check_config "$config"
        echo "$STANDIN: $config exists and is not empty (syntax NOT checked)" >&2
        ;;
    *)
        echo "usage: alloy run [flags] CONFIG | alloy --version" >&2
        exit 2
        ;;
esac
"""

# Shaped like the unit in Grafana's alloy .deb.
ALLOY_SERVICE = """\
[Unit]
Description=Vendor-agnostic OpenTelemetry Collector distribution with programmable pipelines (milesahead test stand-in)
Documentation=https://grafana.com/docs/alloy
Wants=network-online.target
After=network-online.target

[Service]
Restart=always
User=alloy
Environment=HOSTNAME=%H
Environment=ALLOY_DEPLOY_MODE=deb
EnvironmentFile=/etc/default/alloy
WorkingDirectory=/var/lib/alloy
ExecStart=/usr/bin/alloy run $CUSTOM_ARGS --storage.path=/var/lib/alloy/data $CONFIG_FILE
ExecReload=/usr/bin/env kill -HUP $MAINPID
TimeoutStopSec=20s
SendSIGKILL=no

[Install]
WantedBy=multi-user.target
"""

ALLOY_DEFAULTS = """\
## Grafana Alloy settings (milesahead test stand-in)
# The configuration file holding the Alloy config.
CONFIG_FILE="/etc/alloy/config.alloy"

# User-defined arguments to pass to the run command.
CUSTOM_ARGS=""

# Restart on system upgrade. Defaults to true.
RESTART_ON_UPGRADE=true
"""

DEFAULT_CONFIG = """\
// Default config shipped by the alloy stand-in package (milesahead tests).
logging {
  level = "warn"
}
"""

POSTINST = """\
#!/bin/sh
# Like Grafana's postinst: a system user and group `alloy` that may read the journal.
set -e
if [ "$1" = configure ]; then
    getent group alloy >/dev/null || groupadd --system alloy
    if ! getent passwd alloy >/dev/null; then
        useradd --system --gid alloy --home-dir /var/lib/alloy --no-create-home \\
            --shell /usr/sbin/nologin alloy
    fi
    usermod --append --groups adm,systemd-journal alloy || true
    install -d -o alloy -g alloy -m 0770 /var/lib/alloy /var/lib/alloy/data
    if [ -e /etc/alloy/config.alloy ]; then
        chown root:alloy /etc/alloy/config.alloy
        chmod 0640 /etc/alloy/config.alloy
    fi
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
"""

CONTROL = f"""\
Package: alloy
Version: {VERSION}
Architecture: all
Maintainer: milesahead tests <tests@milesahead.invalid>
Section: admin
Priority: optional
Description: stand-in for Grafana Alloy (tests only; the real binary is not run)
 Installs a shell script as /usr/bin/alloy that checks its config file and idles,
 with the real package's systemd unit and defaults file.
"""


def build_package(dest_dir):
    """Build alloy_<VERSION>_all.deb into dest_dir and return its path."""
    dest_dir = Path(dest_dir)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the archive's "./" entry; a 0700 one looks wrong in dpkg -c
        files = {
            "DEBIAN/control": (CONTROL, 0o644),
            "DEBIAN/postinst": (POSTINST, 0o755),
            "DEBIAN/conffiles": ("/etc/alloy/config.alloy\n/etc/default/alloy\n", 0o644),
            "usr/bin/alloy": (ALLOY_SCRIPT, 0o755),
            "usr/lib/systemd/system/alloy.service": (ALLOY_SERVICE, 0o644),
            "etc/default/alloy": (ALLOY_DEFAULTS, 0o644),
            "etc/alloy/config.alloy": (DEFAULT_CONFIG, 0o644),
        }
        for name, (text, mode) in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(mode)
        deb = dest_dir / f"alloy_{VERSION}_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(root), str(deb)],
            check=True,
            capture_output=True,
        )
    return deb


def write_index(repo_dir):
    """Packages, Packages.gz and a Release file for a flat repository (`./`)."""
    repo_dir = Path(repo_dir)
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", ".", "/dev/null"],
        cwd=repo_dir,
        check=True,
        capture_output=True,
    ).stdout
    (repo_dir / "Packages").write_bytes(packages)
    (repo_dir / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    # A Release file keeps apt from warning that the repository has none;
    # [trusted=yes] on the source line stands in for a signature.
    date = email.utils.formatdate(usegmt=True)  # apt warns about a Release without one
    lines = ["Origin: milesahead-tests", "Label: alloy stand-in", f"Date: {date}", "SHA256:"]
    for name in ("Packages", "Packages.gz"):
        data = (repo_dir / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    (repo_dir / "Release").write_text("\n".join(lines) + "\n")


def _free_port():
    # Same as vm.free_port(); repeated so that this module stands alone.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AlloyRepo:
    """Build the stand-in package and serve it with `python3 -m http.server` on 127.0.0.1."""

    def __init__(self):
        self.dir = None
        self.port = None
        self.log_path = None
        self._server = None

    @property
    def apt_line(self):
        return f"deb [trusted=yes] http://10.0.2.2:{self.port}/ ./"

    @property
    def url(self):
        """The repository as seen from the host."""
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.dir = Path(tempfile.mkdtemp(prefix="milesahead-alloy-repo-"))
        repo = self.dir / "repo"
        repo.mkdir()
        build_package(repo)
        write_index(repo)
        # The request log sits outside the served directory; tests may read it.
        self.log_path = self.dir / "http.log"
        for _attempt in range(5):
            self.port = _free_port()
            with open(self.log_path, "ab") as log:
                self._server = subprocess.Popen(
                    [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
                    + ["--directory", str(repo), str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_until_serving():
                return
            self._server.wait()  # it exited: the port was taken meanwhile; try another
        self.stop()
        raise RuntimeError(f"http.server did not start; see {self.log_path}")

    def _wait_until_serving(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "Release", timeout=2):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self):
        if self._server is not None:
            self._server.terminate()
            self._server.wait(timeout=10)
            self._server = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


if __name__ == "__main__":
    # Serve until Ctrl-C (or kill), for trying the toolkit by hand against `vm.py up`.
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on kill too
    with AlloyRepo() as repo:
        print(f"export ALLOY_APT_LINE='{repo.apt_line}'")
        print(f"# serving {repo.dir / 'repo'} on {repo.url}; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
