"""The operator's CLI: the same commands for a laptop, CI and the test VM.

    python -m infra setup [--dry]          provision the host(s); safe to re-run
    python -m infra deploy [--dry]         build for the host, ship, switch, gate
    python -m infra rollback [ID] [--dry]  back to the previous (or given) release
    python -m infra status                 release, health, unit, disk, last backup
    python -m infra logs [-f] [-n N]       the unit's journal
    python -m infra backup                 a verified backup now
    python -m infra restore FILE [--dry]   replace the database from a backup
    python -m infra restore --from-replica [--at TIMESTAMP]   ... or from the replica
    python -m infra unlock                 remove a stale deploy lock

Hosts come from OCI_HOST/OCI_USER/OCI_SSH_KEY(_PATH)/OCI_SSH_PORT (see hosts.py)
or --inventory FILE; defaults from group_data/all.py, overridden with --data KEY=VALUE.
Everything pyinfra prints passes through a filter that masks secret values.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from infra import hosts, secrets

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
APP_ROOT = "/opt/milesahead"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")  # what litestream -timestamp takes


def pyinfra_argv(args, *rest):
    return [
        sys.executable, "-m", "pyinfra", args.inventory,
        "--group-data", str(INFRA / "group_data"),
        *(f"--data={item}" for item in args.data),
        *(["-v"] * args.verbose),
        *rest,
    ]  # fmt: skip


def run(argv, env=None):
    """Run pyinfra, printing its output with secret values masked; return its status."""
    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", bufsize=1,
    )  # fmt: skip
    try:
        for line in proc.stdout:
            sys.stdout.write(secrets.mask(line, env))
            sys.stdout.flush()
    except KeyboardInterrupt:
        proc.terminate()
    return proc.wait()


def run_deploy(args, entry, *data):
    extra = [f"--data={item}" for item in data]
    flags = ["--dry"] if args.dry else ["-y"]
    return run(pyinfra_argv(args, str(INFRA / "deploys" / entry), *extra, *flags))


def run_exec(args, command, sudo_user=None):
    flags = ["--sudo"] + (["--sudo-user", sudo_user] if sudo_user else [])
    return run(pyinfra_argv(args, "exec", *flags, "--", command))


def data_setting(args, key, default):
    """A group-data value as given with --data KEY=VALUE, else the default."""
    for item in args.data:
        name, _, value = item.partition("=")
        if name == key:
            return value
    return default


def data_value(args, key, default):
    value = data_setting(args, key, None)
    return default if value is None else value.lower() not in ("false", "0", "no", "")


# --- commands ----------------------------------------------------------------


def cmd_setup(args):
    try:
        secrets.check(
            os.environ,
            alloy_enabled=data_value(args, "alloy_enabled", True),
            replica_enabled=data_value(args, "replica_enabled", secrets.replica_wanted(os.environ)),
        )
    except secrets.SecretError as e:
        sys.exit(f"setup refused before connecting to any host: {e}")
    return run_deploy(args, "setup.py")


def cmd_deploy(args):
    data = [f"release_source={Path(args.source).resolve()}"] if args.source else []
    return run_deploy(args, "deploy.py", *data)


def cmd_rollback(args):
    return run_deploy(args, "rollback.py", *([f"rollback_to={args.id}"] if args.id else []))


def cmd_restore(args):
    if args.from_replica == bool(args.file):
        sys.exit("restore: give a backup FILE or --from-replica, not both")
    if args.at and not args.from_replica:
        sys.exit("restore: --at is for --from-replica (a backup file is one point in time)")
    if args.from_replica:
        if args.at and not TIMESTAMP.match(args.at):
            sys.exit(f"restore: --at {args.at!r}: give a UTC time as 2026-12-01T09:30:00Z")
        at = [f"restore_at={args.at}"] if args.at else []
        return run_deploy(args, "restore.py", "restore_from_replica=true", *at)
    return run_deploy(args, "restore.py", f"restore_file={args.file}")


def cmd_status(args):
    r = APP_ROOT
    port = int(data_setting(args, "app_port", 8080))
    command = (
        f"echo release: $(cat {r}/current/RELEASE 2>/dev/null || echo none);"
        f' echo previous: $(basename "$(readlink {r}/previous)" 2>/dev/null);'
        " echo unit: $(systemctl is-active milesahead.service);"
        f" echo health: $(python3 {r}/bin/healthgate.py --port {port} --once 2>&1);"
        f" echo disk: $(df -h --output=used,avail,pcent {r} | tail -1);"
        f" echo last backup: $(ls -1t {r}/backups/*/milesahead-*.db.gz 2>/dev/null | head -1);"
        f" python3 {r}/bin/replica.py status 2>&1 || true;"
        f" echo lock: $(cat {r}/deploy.lock/owner 2>/dev/null || echo free);"
        f" echo last deploys:; tail -n 3 {r}/deploy.log 2>/dev/null"
    )
    return run_exec(args, command)


def cmd_logs(args):
    follow = " -f" if args.follow else ""
    return run_exec(args, f"journalctl -u milesahead.service --no-pager -n {args.lines}{follow}")


def cmd_backup(args):
    return run_exec(args, f"{APP_ROOT}/bin/backup.sh manual", sudo_user="milesahead")


def cmd_unlock(args):
    return run_exec(
        args,
        f"cat {APP_ROOT}/deploy.lock/owner 2>/dev/null && rm -rf {APP_ROOT}/deploy.lock"
        " && echo 'lock removed' || echo 'no lock'",
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
    p.add_argument("-v", "--verbose", action="count", default=0, help="more pyinfra output")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help, dry=False):
        c = sub.add_parser(name, help=help, description=help)
        c.set_defaults(func=func)
        if dry:
            c.add_argument(
                "--dry", action="store_true",
                help="show what would change without changing the host",
            )  # fmt: skip
        return c

    command("setup", cmd_setup, "provision the host(s); a second run changes nothing", dry=True)
    c = command("deploy", cmd_deploy, "build a release for the host, ship it, switch, gate", dry=True)
    c.add_argument("--source", help="app source tree to build from (default: this repo)")
    c = command("rollback", cmd_rollback, "switch back to the previous or given release", dry=True)
    c.add_argument("id", nargs="?", help="release id (default: the previous release)")
    command("status", cmd_status, "release, health, unit state, disk, last backup, replica lag, lock")
    c = command("logs", cmd_logs, "show the unit's journal")
    c.add_argument("-f", "--follow", action="store_true", help="keep following")
    c.add_argument("-n", "--lines", type=int, default=100, help="lines to show (default 100)")
    command("backup", cmd_backup, "take a verified backup now (backups/manual/)")
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
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.inventory == str(INFRA / "inventory.py"):
        # Fail here, with the variable's name, rather than inside pyinfra.
        try:
            hosts.hosts_from_env()
        except hosts.InventoryError as e:
            sys.exit(f"{args.command}: {e}")
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
