"""The operator's CLI: the same commands for a laptop, CI and the test VM.

    python -m infra setup [--dry]            provision the host(s); safe to re-run
    python -m infra deploy [--dry]           build for the host, ship, switch, gate
    python -m infra rollback [ID] [--dry]    back to the previous (or given) release
    python -m infra status                   release and commit, health, unit, disk, last backup, replica
    python -m infra logs [-f] [-n N]         the unit's journal
    python -m infra backup                   a verified backup now
    python -m infra fetch-backup [NAME]      copy a backup (default: the newest) to this machine
    python -m infra restore FILE [--dry]     replace the database from a backup
    python -m infra restore --from-replica [--at TIMESTAMP]   ... or from the replica
    python -m infra unlock                   remove a stale deploy lock
    python -m infra sandbox up|env|status|down   a throw-away VM like the host, set up and deployed

Hosts come from OCI_HOST/OCI_USER/OCI_SSH_KEY(_PATH)/OCI_SSH_PORT (see hosts.py)
or --inventory FILE; defaults from group_data/all.py, overridden with --data KEY=VALUE.
setup, deploy, rollback and restore print a short summary (what changed, from which
release to which, how long); -v shows pyinfra's own output. Everything printed passes
through a filter that masks secret values.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra import hosts, release, sandbox, secrets, settings

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")  # what litestream -timestamp takes

# In pyinfra's output: an operation starts, then each host says how it went.
STARTING = re.compile(r"^--> Starting operation: (?:.* \| )?(.*?)\s*$")
OUTCOME = re.compile(r"^\s*\[([^\]]+)\] (Success|No changes|Error.*|Skipped.*)\s*$")
SUMMARY = re.compile(r"^\s*\[([^\]]+)\] » (.*)$")


def pyinfra_argv(args, *rest):
    return [
        sys.executable, "-m", "pyinfra", args.inventory,
        "--group-data", str(INFRA / "group_data"),
        *(f"--data={item}" for item in args.data),
        *(["-v"] * args.verbose),
        *rest,
    ]  # fmt: skip


class Summary:
    """Reads pyinfra's output line by line and keeps what an operator needs to read:
    the operations that changed something, every failure with its output, and the
    run's own summary lines ("» ...", from the tasks). Everything else is dropped."""

    def __init__(self, out):
        self.out = out
        self.operation = None
        self.pending = []  # lines of the running operation, shown if it fails
        self.changed = []
        self.said = []
        self.failed = False

    def feed(self, line):
        if line.startswith("--> An exception occurred"):
            self.raised = True  # a deploy file refused (or broke): its message ends the traceback
        elif getattr(self, "raised", False):
            if m := re.match(r"^(?:\w+\.)*\w*(?:Error|Exception): (.*)$", line):
                self.failed = True
                self.write(f"refused: {m.group(1)}")
        elif m := STARTING.match(line):
            self.operation, self.pending = m.group(1), []
        elif m := SUMMARY.match(line):
            self.said.append((m.group(1), m.group(2)))
            self.write(f"[{m.group(1)}] {m.group(2)}")
        elif m := OUTCOME.match(line):
            outcome = m.group(2)
            if outcome == "Success" and self.operation != "Summary":
                self.changed.append(self.operation)
                self.write(f"  changed: {self.operation}")
            elif outcome.startswith("Error"):
                self.failed = True
                self.write(f"  FAILED: {self.operation} ({outcome})")
                for pending in self.pending:
                    self.write("    " + pending.strip())
            self.pending = []
        elif "pyinfra error" in line:
            # Why no host is left (could not connect, say): its lines came before.
            for pending in self.pending:
                if pending.lstrip().startswith("["):
                    self.write(pending.strip())
            self.write(line.rstrip("\n"))
            self.failed = True
        else:
            self.pending.append(line.rstrip("\n"))

    def write(self, text):
        self.out.write(text + "\n")
        self.out.flush()


def run(argv, env=None, summary=None):
    """Run pyinfra, printing its output (or only a summary of it) with secret values
    masked; return its status."""
    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", bufsize=1,
    )  # fmt: skip
    try:
        for line in proc.stdout:
            line = secrets.mask(line, env)
            if summary is None:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                summary.feed(line)
    except KeyboardInterrupt:
        proc.terminate()
    return proc.wait()


def run_deploy(args, entry, *data):
    """Run a deploy file; return (status, Summary or None when pyinfra's output was shown)."""
    extra = [f"--data={item}" for item in data]
    flags = ["--dry"] if args.dry else ["-y"]
    # A dry run's plan is pyinfra's own table of what would change: show all of it.
    summary = None if args.verbose or args.dry else Summary(sys.stdout)
    started = time.monotonic()
    status = run(pyinfra_argv(args, str(INFRA / "deploys" / entry), *extra, *flags), summary=summary)
    if summary:
        took = time.monotonic() - started
        outcome = "FAILED" if status else "done"
        print(f"{args.command} {outcome} in {took:.0f} s: {len(summary.changed)} operation(s) changed something")
    return status, summary


def run_exec(args, command, sudo_user=None):
    """One shell line on every host; print only what it prints (and pyinfra's errors)."""
    flags = ["--sudo"] + (["--sudo-user", sudo_user] if sudo_user else [])
    summary = None if args.verbose else Output(sys.stdout)
    return run(pyinfra_argv(args, "exec", *flags, "--", command), summary=summary)


class Output(Summary):
    """For `exec`: each host's output lines, and failures."""

    def feed(self, line):
        if re.match(r"^\[[^\]]+\] ", line) or "pyinfra error" in line or "Error" in line:
            self.write(line.rstrip("\n"))


def host_names(args):
    """The hosts of the default inventory (for the public check); [] with --inventory."""
    if args.inventory != str(INFRA / "inventory.py"):
        return []
    return [name for name, _data in hosts.hosts_from_env()]


# --- the public check: readers outside the host get in ---------------------------

SECURITY_LIST_HINT = (
    "the site may answer on the host itself, but not from here. In between: the host"
    " firewall (setup opens 80/443 unless --data firewall=false), the instance's Security"
    " List or network security group (OCI console: Networking > Virtual cloud networks >"
    " the subnet > Security List: ingress TCP 80 and 443, and UDP 443, from 0.0.0.0/0),"
    " and DNS for the domain. To skip this check: --data public_check=false"
)


def fetch(url, timeout=20):
    """(status, body) of a GET from this machine; raises OSError when nothing answers."""
    request = urllib.request.Request(url, headers={"User-Agent": "milesahead-toolkit public check"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def public_check(args, d, after_deploy=False):
    """Ask each host's public URL from here; return 0, or 1 after saying what failed.

    After setup any HTTP answer for /metrics proves the way in (Caddy's site answers it
    itself, 404, so no release is needed). After a deploy /healthz must answer 200 "ok":
    from outside it says no more (the release was gated on the host, on loopback).
    """
    if not d.public_check or args.dry:
        return 0
    names = host_names(args)
    urls = sorted({settings.public_url(d, name) for name in names} if names else ())
    if not urls and d.public_url:
        urls = [d.public_url.rstrip("/")]
    status = 0
    for base in urls:
        url = f"{base}/healthz" if after_deploy else f"{base}/metrics"
        problem = None
        for _attempt in range(3):
            try:
                code, body = fetch(url)
            except OSError as e:
                problem = f"no answer ({e})"
                continue
            if not after_deploy:
                problem = None
                break
            try:
                health = json.loads(body)
            except ValueError:
                health = {}
            if code == 200 and health.get("status") == "ok":
                problem = None
                break
            problem = f"HTTP {code}, {body[:200]!r}"
            time.sleep(2)
        if problem:
            print(f"public check FAILED: {url}: {problem}: {SECURITY_LIST_HINT}")
            status = 1
        else:
            print(f"public check: {url} answers from here" + (" (ok)" if after_deploy else ""))
    return status


# --- commands ----------------------------------------------------------------


def cmd_setup(args):
    try:
        secrets.check(
            os.environ,
            alloy_enabled=args.settings.alloy_enabled,
            replica_enabled=args.settings.replica_enabled,
        )
    except secrets.SecretError as e:
        sys.exit(f"setup refused before connecting to any host: {e}")
    status, _summary = run_deploy(args, "setup.py")
    return status or public_check(args, args.settings)


def cmd_deploy(args):
    data = []
    if args.archive:
        try:
            rid, commit, target = release.read_archive(args.archive)
        except release.ReleaseError as e:
            sys.exit(f"deploy refused: {e}")
        print(f"shipping {args.archive}: release {rid}, commit {commit}, built for {target}")
        data.append(f"release_archive={Path(args.archive).resolve()}")
    else:
        source = Path(args.source or release.ROOT).resolve()
        commit = release.source_commit(source)
        if commit.endswith("-dirty"):
            changed = ", ".join(release.dirty_files(source))
            if not args.allow_dirty:
                sys.exit(
                    f"deploy refused: the release would ship uncommitted changes ({changed}). Commit them,"
                    " or pass --allow-dirty to ship them recorded as commit "
                    f"{commit[:12]}-dirty"
                )
            print(f"WARNING: shipping uncommitted changes ({changed}), recorded as commit {commit[:12]}-dirty")
        elif commit == "unknown":
            print(f"WARNING: {source} is not a git checkout: the release records commit 'unknown'")
        if args.source:
            data.append(f"release_source={source}")
    status, summary = run_deploy(args, "deploy.py", *data)
    if status or summary is None:
        return status
    return public_check(args, args.settings, after_deploy=True)


def cmd_rollback(args):
    return run_deploy(args, "rollback.py", *([f"rollback_to={args.id}"] if args.id else []))[0]


def cmd_restore(args):
    if args.from_replica == bool(args.file):
        sys.exit("restore: give a backup FILE or --from-replica, not both")
    if args.at and not args.from_replica:
        sys.exit("restore: --at is for --from-replica (a backup file is one point in time)")
    if args.from_replica:
        if args.at and not TIMESTAMP.match(args.at):
            sys.exit(f"restore: --at {args.at!r}: give a UTC time as 2026-12-01T09:30:00Z")
        at = [f"restore_at={args.at}"] if args.at else []
        return run_deploy(args, "restore.py", "restore_from_replica=true", *at)[0]
    return run_deploy(args, "restore.py", f"restore_file={args.file}")[0]


def status_command(d):
    """A short, aligned summary of one host, printed by the host's shell."""
    r = d.app_root
    backups = f"{r}/backups"
    return (
        f"cd {r} 2>/dev/null || {{ echo 'not set up: {r} is missing (run setup)'; exit 0; }};"
        ' rid() { basename "$(readlink "$1")" 2>/dev/null; };'
        f' echo "release:     $(cat current/RELEASE 2>/dev/null || echo none)'
        f' (commit $(cat current/COMMIT 2>/dev/null || echo unknown))";'
        ' echo "previous:    $(rid previous)";'
        f' echo "unit:        $(systemctl is-active {d.app_name}.service)";'
        f' echo "health:      $(python3 bin/healthgate.py --port {d.app_port} --once --brief 2>&1)";'
        f' echo "disk:        $(df -h --output=used,avail,pcent {r} | tail -1 | awk \'{{print $1 " used, " $2 " free (" $3 ")"}}\')";'
        f" b=$(ls -1t {backups}/*/milesahead-*.db.gz 2>/dev/null | head -1);"
        ' echo "last backup: ${b#' + backups + '/}${b:+, $(( ($(date +%s) - $(stat -c %Y "$b")) / 3600 )) h ago}";'
        f" MILESAHEAD_ROOT={r} MILESAHEAD_DB={settings.db_path(d)} python3 bin/replica.py status 2>&1 || true;"
        ' echo "lock:        $(cat deploy.lock/owner 2>/dev/null || echo free)";'
        ' echo "last deploys:"; tail -n 3 deploy.log 2>/dev/null | sed "s/^/  /"; true'
    )


def cmd_status(args):
    return run_exec(args, status_command(args.settings))


def cmd_logs(args):
    follow = " -f" if args.follow else ""
    return run_exec(args, f"journalctl -u {args.settings.app_name}.service --no-pager -n {args.lines}{follow}")


def cmd_backup(args):
    d = args.settings
    return run_exec(args, f"{d.app_root}/bin/backup.sh manual", sudo_user=d.app_user)


def cmd_fetch_backup(args):
    dest = Path(args.to).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    return run_deploy(args, "fetch_backup.py", f"fetch_backup_name={args.name or ''}", f"fetch_backup_to={dest}")[0]


def cmd_unlock(args):
    root = args.settings.app_root
    return run_exec(
        args,
        f"cat {root}/deploy.lock/owner 2>/dev/null && rm -rf {root}/deploy.lock && echo 'lock removed' || echo 'no lock'",
    )


# --- parser ------------------------------------------------------------------


def parser():
    p = argparse.ArgumentParser(
        prog="python -m infra", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "--inventory", default=str(INFRA / "inventory.py"),
        help="pyinfra inventory file (default: hosts from OCI_* environment variables)",
    )  # fmt: skip
    p.add_argument(
        "--data", action="append", default=[], metavar="KEY=VALUE",
        help="override a group_data/all.py default (repeatable)",
    )  # fmt: skip
    p.add_argument("-v", "--verbose", action="count", default=0, help="pyinfra's own output (more with -vv)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help, dry=False):
        c = sub.add_parser(name, help=help, description=help)
        c.set_defaults(func=func, dry=False)
        if dry:
            c.add_argument(
                "--dry", action="store_true",
                help="show what would change without changing the host",
            )  # fmt: skip
        return c

    command("setup", cmd_setup, "provision the host(s); a second run changes nothing", dry=True)
    c = command("deploy", cmd_deploy, "build a release for the host, ship it, switch, gate", dry=True)
    c.add_argument("--source", help="app source tree to build from (default: this repo)")
    c.add_argument("--archive", help="ship this archive (python -m infra.release made it) instead of building")
    c.add_argument("--allow-dirty", action="store_true", help="ship uncommitted changes, recorded as -dirty")
    c = command("rollback", cmd_rollback, "switch back to the previous or given release", dry=True)
    c.add_argument("id", nargs="?", help="release id (default: the previous release)")
    command("status", cmd_status, "release and commit, health, unit state, disk, last backup, replica lag, lock")
    c = command("logs", cmd_logs, "show the unit's journal")
    c.add_argument("-f", "--follow", action="store_true", help="keep following")
    c.add_argument("-n", "--lines", type=int, default=100, help="lines to show (default 100)")
    command("backup", cmd_backup, "take a verified backup now (backups/manual/)")
    c = command("fetch-backup", cmd_fetch_backup, "copy a backup from the host to this machine")
    c.add_argument("name", nargs="?", help="e.g. daily/milesahead-20261201T031700Z.db.gz (default: the newest)")
    c.add_argument("--to", default="backups", help="local directory (default: ./backups)")
    c = command("restore", cmd_restore, "restore the database from a backup or from the replica", dry=True)
    c.add_argument("file", nargs="?", help="a local backup file, or a path on the host (relative to backups/)")
    c.add_argument(
        "--from-replica", action="store_true",
        help="restore from the Litestream replica in the bucket (after losing the host: setup, then this)",
    )  # fmt: skip
    c.add_argument(
        "--at", metavar="TIMESTAMP", help="with --from-replica: the database as it was then (UTC, 2026-12-01T09:30:00Z)"
    )
    command("unlock", cmd_unlock, "remove a deploy lock left by a deploy that died")
    sandbox.add_parser(sub)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "sandbox":  # its own host: no OCI_* needed yet
        sys.exit(args.func(args))
    try:
        args.settings = settings.load(args.data)
    except ValueError as e:
        sys.exit(f"{args.command}: {e}")
    if args.inventory == str(INFRA / "inventory.py"):
        # Fail here, with the variable's name, rather than inside pyinfra.
        try:
            hosts.hosts_from_env()
        except hosts.InventoryError as e:
            sys.exit(f"{args.command}: {e}")
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
