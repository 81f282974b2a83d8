"""The sandbox: the toolkit's whole job on this machine, against a throw-away VM.

`python -m infra sandbox up` boots a VM shaped like the production host (infra/vm.py,
the guest the VM lanes test: OCI's firewall, its first boot's upgrades holding apt),
runs `setup` and `deploy` against it with generated test secrets, and prints the site's
URL. After `eval "$(python -m infra sandbox env)"` the other commands (status, deploy,
rollback, logs, backup, fetch-backup, restore) work against the sandbox exactly as
against production: the exports are the variables production's shell has.

Its state is in .sandbox/ in the checkout (MILESAHEAD_SANDBOX_DIR for another place),
mode 0700 and git-ignored: state.json (QEMU's pid, the ports, when), secrets.json and
admin-password (the throw-away test secrets, 0600), the guest's SSH key and its
known_hosts, and vm/ (the overlay, QEMU's console log). `down` deletes all of it.
"""

import argparse
import fcntl
import json
import os
import secrets as pysecrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from infra import secrets, vm

ROOT = Path(__file__).resolve().parent.parent
ARCHES = ["x86_64"]  # the guest's CPU; aarch64 (the production host's) is not built yet

# What `up` runs, with its Debian package; the build's tools only while the image is not cached.
RUN_TOOLS = [("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"), ("ssh", "openssh-client")]
BUILD_TOOLS = [
    ("mmdebstrap", "mmdebstrap"),
    ("dpkg-scanpackages", "dpkg-dev"),
    ("mkfs.ext4", "e2fsprogs"),
    ("ssh-keygen", "openssh-client"),
    ("flock", "util-linux"),
]

# Every toolkit variable a production shell may hold: the exports set or unset each one,
# so nothing of production's (its SSH key, its bucket, its Grafana) reaches the sandbox.
TOOLKIT_VARIABLES = ("OCI_SSH_KEY",) + secrets.REQUIRED + secrets.OPTIONAL + secrets.GRAFANA + secrets.REPLICA
# The files of a sandbox; `down` deletes these and nothing else (the directory may be anywhere).
STATE_FILES = ("state.json", "secrets.json", "admin-password", "id_ed25519", "known_hosts")


def state_dir():
    return Path(os.environ.get("MILESAHEAD_SANDBOX_DIR") or ROOT / ".sandbox").resolve()


def python_command():
    """How the shell that started us runs this Python: `python` in an activated venv,
    else its path (relative when under the current directory)."""
    found = shutil.which("python")
    if found and os.path.abspath(found) == os.path.abspath(sys.executable):
        return "python"
    relative = os.path.relpath(sys.executable)
    return sys.executable if relative.startswith("..") else relative


def env_line():
    return f'eval "$({python_command()} -m infra sandbox env)"'


# --- what it needs --------------------------------------------------------------


def missing_requirements():
    """Why `up` cannot run here, as lines to show; [] when it can."""
    problems = []
    if os.geteuid() != 0:
        problems.append(
            "root (or sudo): the VM image is built with mmdebstrap in a chroot, and it and its SSH key"
            f" are root's, in {vm.CACHE_ROOT}/"
        )
    tools = RUN_TOOLS + ([] if (vm.image_dir() / "base.qcow2").exists() else BUILD_TOOLS)
    for command, package in tools:
        if shutil.which(command) is None:
            problems.append(f"{command}, from the Debian package {package}")
    return problems


def refusal(problems):
    packages = sorted({package for _command, package in RUN_TOOLS + BUILD_TOOLS})
    return "\n".join(
        ["sandbox up: cannot start here, so nothing was done. It needs:"]
        + [f"  - {problem}" for problem in problems]
        + [
            "Install the packages with `make system-deps` (scripts/system-deps.sh, with sudo when not root),",
            f"or: sudo apt-get install {' '.join(packages)}",
            f"then run it as root: sudo make sandbox, or sudo {python_command()} -m infra sandbox up",
        ]
    )


# --- state ------------------------------------------------------------------------


def write_private(path, text):
    """A file only its owner reads (0600 from the start: no moment when others could)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    give_to_sudo_user(path)


def give_to_sudo_user(path):
    """Under sudo, the operator's own shell runs the toolkit against the sandbox: the
    files it reads are theirs (QEMU and the overlay stay root's)."""
    if os.geteuid() == 0 and os.environ.get("SUDO_UID", "").isdigit():
        os.chown(path, int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID") or os.environ["SUDO_UID"]))


def load_state(directory):
    try:
        return json.loads((directory / "state.json").read_text())
    except FileNotFoundError:
        return None


def save_state(directory, state):
    write_private(directory / "state.json", json.dumps(state, indent=2) + "\n")


def machine(state):
    """The VM the state describes, for running() and stop() (and, with its key_path set, ssh())."""
    guest = vm.VM(workdir=state["workdir"])
    guest.pid, guest.ssh_port, guest.http_port = state["pid"], state["ssh_port"], state["http_port"]
    return guest


def remove(directory):
    """Delete a sandbox's files (its lock stays: it is held while this runs)."""
    for name in STATE_FILES:
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "vm", ignore_errors=True)


def forget(directory):
    """After remove(): the lock, then the directory if nothing else is in it."""
    (directory / "lock").unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass


@contextmanager
def locked(directory):
    """One `up` or `down` at a time per sandbox."""
    with open(directory / "lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(f"sandbox: another `sandbox up` or `down` is working on {directory}; wait for it")
        yield


def exports(directory, state):
    """The toolkit's variables for the sandbox: what production's shell has, no more."""
    test_secrets = json.loads((directory / "secrets.json").read_text())
    return {
        "OCI_HOST": "127.0.0.1",
        "OCI_USER": vm.VM.user,
        "OCI_SSH_KEY_PATH": str(directory / "id_ed25519"),
        "OCI_SSH_PORT": str(state["ssh_port"]),
        # A new host key at every boot, remembered at the first connection as with a new server.
        "OCI_SSH_KNOWN_HOSTS": str(directory / "known_hosts"),
        "OCI_SSH_STRICT": "accept-new",
        "SITE_ADDRESS": ":80",
        "SITE_BASE_URL": state["url"].rstrip("/"),
        "ALLOY_ENABLED": "false",  # no Grafana Cloud account to send to
        "ADMIN_PASSWORD_HASH": test_secrets["ADMIN_PASSWORD_HASH"],
        "NVIDIA_API_KEY": test_secrets["NVIDIA_API_KEY"],
    }


def toolkit_env(directory, state):
    """This process's environment, pointed at the sandbox as `sandbox env` points a shell."""
    values = exports(directory, state)
    return {k: v for k, v in os.environ.items() if k not in TOOLKIT_VARIABLES} | values


def new_secrets(directory):
    import bcrypt  # the app's own dependency; only `up` needs it

    password = pysecrets.token_urlsafe(12)
    write_private(directory / "admin-password", password + "\n")
    test_secrets = {
        "ADMIN_PASSWORD_HASH": bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode(),
        # A key of the right shape that NVIDIA refuses: the sandbox's pipeline writes nothing.
        "NVIDIA_API_KEY": f"nvapi-sandbox-{pysecrets.token_hex(16)}",
    }
    write_private(directory / "secrets.json", json.dumps(test_secrets, indent=2) + "\n")


# --- progress ---------------------------------------------------------------------


class Clock:
    """Says each phase with the minutes since `up` started, so emulation never looks hung."""

    def __init__(self):
        self.started = time.monotonic()

    def say(self, text):
        elapsed = int(time.monotonic() - self.started)
        print(f"sandbox [{elapsed // 60}:{elapsed % 60:02d}] {text}", flush=True)

    def ticker(self, phase, every=30):
        """on_wait for VM.start: a line every `every` seconds while it waits."""
        said = [0.0]

        def tick(seconds):
            if seconds - said[0] >= every:
                said[0] = seconds
                self.say(f"{phase}: still waiting for SSH ({seconds:.0f} s)")

        return tick


def run_toolkit(clock, phase, env, *args, quiet_after=60):
    """`python -m infra ARGS` with its output shown as it comes, and a line of our own
    whenever it has been quiet for `quiet_after` seconds; returns its exit status."""
    started = time.monotonic()
    clock.say(f"{phase}: python -m infra {' '.join(args)}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra", *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
    )  # fmt: skip
    last = [time.monotonic()]

    def relay():
        for line in proc.stdout:
            last[0] = time.monotonic()
            sys.stdout.write(line)
            sys.stdout.flush()

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()
    try:
        while proc.poll() is None:
            time.sleep(1)
            if time.monotonic() - last[0] >= quiet_after:
                last[0] = time.monotonic()
                clock.say(f"{phase}: still running ({time.monotonic() - started:.0f} s)")
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise
    relaying.join()
    took = time.monotonic() - started
    clock.say(f"{phase}: done in {took:.0f} s" if proc.returncode == 0 else f"{phase}: FAILED after {took:.0f} s")
    return proc.returncode


# --- commands ---------------------------------------------------------------------


def cmd_up(args):
    problems = missing_requirements()
    if problems:
        sys.exit(refusal(problems))
    directory = state_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    give_to_sudo_user(directory)
    with locked(directory):
        return up(args, directory, Clock())


def up(args, directory, clock):
    state = load_state(directory)
    if state and machine(state).running():
        if state.get("deployed"):
            clock.say(f"up: a sandbox already runs (QEMU pid {state['pid']}): nothing to do")
            return ready(state)
        clock.say(f"boot: the sandbox an earlier `up` left runs (QEMU pid {state['pid']}); going on with setup")
    else:
        if state:
            clock.say(f"boot: the sandbox in {directory} is gone (QEMU pid {state['pid']}); starting afresh")
        remove(directory)
        try:
            state = boot(args, directory, clock)
        except subprocess.CalledProcessError as e:
            sys.exit(f"sandbox up: {e.cmd[0]} failed (exit {e.returncode}); its output is above")
        except vm.VMError as e:
            sys.exit(f"sandbox up: the VM did not boot: {e}")

    env = toolkit_env(directory, state)
    hint = (
        f"The VM still runs for a look ({env_line()}, then python -m infra status or logs);"
        " `sandbox up` again goes on from here, `sandbox down` deletes it."
    )
    # A fresh host's upgrades hold apt for a minute or two: setup waits, as on OCI.
    phases = [("setup", ["setup"])] + ([] if args.no_deploy else [("deploy", ["deploy", "--allow-dirty"])])
    for phase, command in phases:
        try:
            status = run_toolkit(clock, phase, env, *command)
        except KeyboardInterrupt:
            sys.exit(f"\nsandbox up: interrupted. {hint}")
        if status:
            print(f"sandbox up: {phase} failed (its output is above). {hint}")
            return status
    state["setup_only" if args.no_deploy else "deployed"] = True
    save_state(directory, state)
    if args.no_deploy:
        clock.say("up: ready, set up with no release (--no-deploy): `restore --from-replica` or `deploy` puts one in")
    else:
        clock.say("up: ready")
    return ready(state)


def boot(args, directory, clock):
    """Image and boot phases; returns the new sandbox's state, saved."""
    image = vm.image_dir()
    if (image / "base.qcow2").exists():
        clock.say(f"image: cached, {image}")
    else:
        clock.say(f"image: building {image} with mmdebstrap (2 to 6 minutes, once per machine)")
        started = time.monotonic()
        vm.ensure_image()
        clock.say(f"image: built in {time.monotonic() - started:.0f} s")

    clock.say(f"boot: QEMU {args.arch}, software emulation (one to several minutes)")
    started = time.monotonic()
    guest = vm.VM(workdir=directory / "vm", name="sandbox")
    guest.start(on_wait=clock.ticker("boot"))
    clock.say(f"boot: done in {time.monotonic() - started:.0f} s (QEMU pid {guest.pid})")

    try:
        shutil.copyfile(guest.key_path, directory / "id_ed25519")
        os.chmod(directory / "id_ed25519", 0o600)
        give_to_sudo_user(directory / "id_ed25519")
        write_private(directory / "known_hosts", "")
        new_secrets(directory)
    except BaseException:  # Ctrl-C included: no VM left running without its state
        guest.stop()
        raise
    state = {
        "arch": args.arch,
        "pid": guest.pid,
        "ssh_port": guest.ssh_port,
        "http_port": guest.http_port,
        "url": f"http://127.0.0.1:{guest.http_port}/",
        "workdir": str(guest.workdir),
        "console_log": guest.console_log,
        "started": time.time(),
        "deployed": False,
    }
    save_state(directory, state)
    return state


def ready(state):
    directory = state_dir()
    py = python_command()
    print(f"The site: {state['url']}  (the desk: {state['url']}admin, its password in {directory}/admin-password)")
    print("Point the toolkit at the sandbox in this shell (then status, deploy, rollback, logs, backup, restore):")
    print(env_line())
    print(f"Stop it and delete it: {py} -m infra sandbox down")
    return 0


def cmd_down(args):
    directory = state_dir()
    if not directory.exists():
        print("no sandbox")
        return 0
    with locked(directory):
        state = load_state(directory)
        if state:
            guest = machine(state)
            try:
                guest.stop()
            except PermissionError:
                sys.exit(f"sandbox down: QEMU (pid {state['pid']}) is root's: run it with sudo")
        remove(directory)
    forget(directory)
    print(
        f"sandbox stopped and deleted ({directory})" if state else f"no sandbox; deleted what was left in {directory}"
    )
    return 0


def cmd_status(args):
    directory = state_dir()
    state = load_state(directory)
    if not state:
        print(f"no sandbox ({python_command()} -m infra sandbox up starts one)")
        return 1
    if not machine(state).running():
        print(f"sandbox: stopped (QEMU pid {state['pid']} is gone); `sandbox down` deletes what is left in {directory}")
        return 1
    minutes = (time.time() - state["started"]) / 60
    started = time.strftime("%H:%M UTC", time.gmtime(state["started"]))
    here = os.environ.get("OCI_SSH_PORT") == str(state["ssh_port"]) and os.environ.get("OCI_HOST") == "127.0.0.1"
    lines = [
        f"sandbox:    running since {started} ({minutes:.0f} min), QEMU pid {state['pid']}, {state['arch']}",
        f"site:       {state['url']}  (desk: {state['url']}admin, password in {directory}/admin-password)",
        f"ssh:        127.0.0.1 port {state['ssh_port']}, user {vm.VM.user}, key {directory}/id_ed25519",
        f"toolkit:    {toolkit_state(state)}",
        f"this shell: {'points at it' if here else 'does not point at it: ' + env_line()}",
        f"state:      {directory} (console log {state['console_log']})",
    ]
    print("\n".join(lines))
    return 0


def toolkit_state(state):
    if state.get("deployed"):
        return "setup and deploy done"
    if state.get("setup_only"):
        return "setup done, no release from `up` (--no-deploy)"
    return "not deployed yet: `sandbox up` goes on"


def cmd_env(args):
    directory = state_dir()
    state = load_state(directory)
    if not state or not machine(state).running():
        print(f"sandbox env: no sandbox runs ({python_command()} -m infra sandbox up)", file=sys.stderr)
        return 1
    values = exports(directory, state)
    print("# The sandbox's toolkit settings, its throw-away test secrets among them.")
    print("unset " + " ".join(name for name in TOOLKIT_VARIABLES if name not in values))
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


# --- parser -----------------------------------------------------------------------

HELP = """\
A throw-away VM on this machine, shaped like the production host, with the site set up
and deployed on it by the toolkit's own commands:

    python -m infra sandbox up          image (built once, cached), boot, setup, deploy; prints the URL
    eval "$(python -m infra sandbox env)"
    python -m infra status              ... and deploy, rollback, logs, backup, restore: against the sandbox
    python -m infra sandbox status      what runs where
    python -m infra sandbox down        stop it and delete its overlay and state

`up` and `down` need root (or sudo) and QEMU; `make system-deps` installs the packages.
`up` deploys this checkout as it is (uncommitted changes included, recorded as -dirty).
The output of `env` contains the sandbox's test secrets (generated, throw-away, kept in
.sandbox/ with mode 0600): it is meant for eval, not for sharing. Monitoring (Alloy) is
off, and the pipeline's LLM key is a dummy, so the sandbox writes no articles itself.
"""


def add_parser(sub):
    p = sub.add_parser(
        "sandbox", help="a throw-away VM like the production host, set up and deployed (up, env, status, down)",
        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = p.add_subparsers(dest="sandbox_command", required=True, metavar="SANDBOX_COMMAND")

    def command(name, func, help):
        c = commands.add_parser(name, help=help, description=help)
        c.set_defaults(func=func)
        return c

    c = command(
        "up", cmd_up,
        "build (or reuse) the VM image, boot a sandbox, run setup and deploy against it, print its URL;"
        " each phase says how long it has taken. Needs root and QEMU",
    )  # fmt: skip
    c.add_argument("--arch", default="x86_64", choices=ARCHES, help="the guest's CPU (default x86_64)")
    c.add_argument(
        "--no-deploy", action="store_true",
        help="set up only, with no release and no database: a new host as after losing one,"
        " to rehearse `restore --from-replica` (which deploys a release)",
    )  # fmt: skip
    command(
        "env", cmd_env,
        "print the shell lines that point the toolkit at the sandbox, for eval \"$(python -m infra sandbox env)\"."
        " They contain the sandbox's (throw-away) test secrets",
    )  # fmt: skip
    command("status", cmd_status, "say what runs where: QEMU's pid, the ports, the URL, its age (or: no sandbox)")
    command("down", cmd_down, "stop the sandbox's VM and delete its overlay, secrets and state")
    return p
