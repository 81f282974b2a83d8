"""Ship a release, switch to it, and switch back when it is not healthy.

The server's layout and what a deploy does, step by step: docs/toolkit.md (Deploy).
What this module keeps true: `current` only ever changes by rename (never rm+ln), so the
service always finds a whole release; a deploy runs only while it holds deploy.lock/,
which records the links it started from, so a failed gate returns to exactly those.

Steps that must decide at run time (is the lock free, is the new release healthy)
are shell commands; whether to roll back is `_if=gate.did_error`.
"""

import getpass
import os
import shlex
import socket
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import Directory, File
from pyinfra.facts.server import Arch, Command
from pyinfra.operations import files, python, server

from infra import release as builder
from infra import settings

PYTHON_VERSION = "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'"
STALE_AFTER_MINUTES = 30


def owner():
    """Who holds the lock: the CI run, else user@machine."""
    if os.environ.get("GITHUB_RUN_ID"):
        return f"github:{os.environ.get('GITHUB_ACTOR', '?')}/run-{os.environ['GITHUB_RUN_ID']}"
    return f"{getpass.getuser()}@{socket.gethostname()}"


def q(value):
    return shlex.quote(str(value))


# --- shell commands (pure functions of the layout, tested locally with sh) ---


def lock_command(root, who, action):
    """mkdir is atomic: the first deploy gets the lock; others are told who holds it."""
    lock = f"{root}/deploy.lock"
    return (
        f"if mkdir {lock} 2>/dev/null; then"
        f' echo {q(who)} {q(action)} "$(date -u +%FT%TZ)" > {lock}/owner;'
        f" readlink {root}/current > {lock}/current || true;"
        f" readlink {root}/previous > {lock}/previous || true;"
        f' echo "running: $(basename "$(cat {lock}/current)")";'
        " else"
        f" age=$(( ($(date +%s) - $(stat -c %Y {lock})) / 60 ));"
        f' echo "deploy lock held by: $(cat {lock}/owner 2>/dev/null) ($age min ago)" >&2;'
        f" [ $age -lt {STALE_AFTER_MINUTES} ] || echo 'the lock looks STALE: a deploy"
        " died holding it. Check the host, then run: python -m infra unlock' >&2;"
        " exit 1; fi"
    )


def swap_command(root, target):
    """current -> releases/<target> by rename (never rm+ln); previous keeps the old current."""
    return (
        f"cd {root} && new=releases/{target} && test -f $new/app.py"
        " && old=$(readlink current || true)"
        ' && if [ "$old" != "$new" ]; then'
        " touch $new && ln -sfn $new current.new && mv -T current.new current"
        ' && if [ -n "$old" ]; then ln -sfn $old previous.new && mv -T previous.new previous; fi;'
        " fi"
    )


def restore_links_command(root):
    """Put current and previous back as the lock recorded them."""
    return (
        f"cd {root} && old=$(cat deploy.lock/current) && prev=$(cat deploy.lock/previous)"
        ' && if [ -n "$old" ]; then ln -sfn $old current.new && mv -T current.new current;'
        " else rm -f current; fi"
        ' && if [ -n "$prev" ]; then ln -sfn $prev previous.new && mv -T previous.new previous;'
        " else rm -f previous; fi"
    )


def unpack_command(rel):
    """Unpack beside, rename into place: a half-unpacked release is never visible."""
    return (
        f"if [ ! -d {rel} ]; then rm -rf {rel}.tmp && mkdir {rel}.tmp"
        f" && tar -xzf {rel}.tar.gz -C {rel}.tmp --strip-components=1 --no-same-owner -m"
        # Bytecode now, as root: the service cannot write it into the read-only release.
        f" && {{ python3 -m compileall -q {rel}.tmp > /dev/null || true; }}"
        f" && mv -T {rel}.tmp {rel}; fi"
    )


def snapshot_command(root, db, rel, keep):
    """A pre-deploy backup of the database, if there is one, read with the release `rel`
    about to migrate it: a fresh host has a database (restored from the replica) before
    it has a current release whose config loader backup.sh could use."""
    return (
        f"if [ -f {db} ]; then RELEASE={rel} KEEP_OTHER={keep} {root}/bin/backup.sh pre-deploy;"
        " else echo 'no database yet: nothing to snapshot'; fi"
    )


def prune_command(root, keep):
    """Keep the newest `keep` releases; never the current or the previous one."""
    return (
        f"cd {root}/releases"
        ' && cur=$(basename "$(readlink ../current)")'
        ' && prev=$(basename "$(readlink ../previous || true)")'
        " && ls -1dt */ | sed 's#/$##' | grep -v '[.]tmp$'"
        f" | tail -n +{keep + 1}"
        " | while read -r r; do"
        ' [ "$r" = "$cur" ] || [ "$r" = "$prev" ] || { rm -rf "$r" "$r.tar.gz"; echo "removed $r"; };'
        " done"
    )


# --- run-time steps shared by deploy, rollback and restore --------------------


def take_lock(action):
    """Returns the operation: its output names the release running before (`running: ID`)."""
    return server.shell(name="Take the deploy lock", commands=[lock_command(host.data.app_root, owner(), action)])


def running_before(lock_op):
    """The release id the lock recorded as running when it was taken ('' for none)."""
    for line in lock_op.stdout_lines:
        if line.startswith("running:"):
            return line.split(":", 1)[1].strip()
    return ""


def release_lock(name="Release the deploy lock", **kwargs):
    server.shell(name=name, commands=[f"rm -rf {host.data.app_root}/deploy.lock"], **kwargs)


def log(message, name="Append to deploy.log", **kwargs):
    d = host.data
    server.shell(
        name=name,
        commands=[f'echo "$(date -u +%FT%TZ)" {q(owner())} "{message}" >> {d.app_root}/deploy.log'],
        **kwargs,
    )


def report(message, **kwargs):
    """Say one line of the run's summary at run time (`message` may be a function).

    The toolkit's CLI prints these lines ("» ...") and hides pyinfra's step by step output.
    """

    def say():
        text = message() if callable(message) else message
        logger.info(f"{host.print_prefix}» {text}")

    python.call(name="Summary", function=say, **kwargs)


def swap_to(target, name, **kwargs):
    return server.shell(name=name, commands=[swap_command(host.data.app_root, target)], **kwargs)


def restart(name=None, **kwargs):
    d = host.data
    return server.shell(
        name=name or f"Restart {d.app_name}",
        commands=[f"systemctl restart {d.app_name}.service"],
        **kwargs,
    )


def gate(release, name=None, **kwargs):
    """Wait for /healthz to report `release` (a shell word); fails after the timeout."""
    d = host.data
    return server.shell(
        name=name or "Health gate: /healthz reports the new release",
        commands=[
            f"python3 {d.app_root}/bin/healthgate.py --port {d.app_port}"
            f" --release {release} --timeout {d.health_timeout}"
        ],
        **kwargs,
    )


def fail_with_journal(message, **kwargs):
    """Show the unit's last 50 log lines and fail the run (pyinfra prints stderr)."""
    d = host.data
    server.shell(
        name="If it failed: show the journal and stop",
        commands=[
            f"journalctl -u {d.app_name}.service -n 50 --no-pager >&2; echo {q('FAILED: ' + message)} >&2; exit 1"
        ],
        **kwargs,
    )


def app_command(rid, args, name, **kwargs):
    """Run app.py of releases/<rid> as the app user with the release's vendor/.

    With the unit's umask: data/ is traversable (Caddy reads data/public), so a
    database a first `migrate` creates under sudo's 0022 would be readable by name.
    """
    d = host.data
    rel = f"{d.app_root}/releases/{rid}"
    return server.shell(
        name=name,
        commands=[
            f"umask 0027 && cd {d.app_root}/data && PYTHONPATH={rel}/vendor python3 {rel}/app.py"
            f" --config {d.app_root}/config.yaml {args}"
        ],
        _sudo_user=d.app_user,
        **kwargs,
    )


def require_setup():
    d = host.data
    if not host.get_fact(File, path=f"{d.app_root}/config.yaml"):
        raise RuntimeError(f"{host.name}: {d.app_root}/config.yaml is missing: run `setup` first")


# --- deploy ------------------------------------------------------------------


def build_for_host(source, archive=None):
    """Build (or reuse) the release for this host's CPU and python3; or check that a
    given archive (CI's build job's) was built for them. Returns (id, commit, archive)."""
    arch = builder.normalize_arch(host.get_fact(Arch))
    python = host.get_fact(Command, PYTHON_VERSION).strip()
    if archive:
        rid, commit, target = builder.read_archive(archive)
        if target != f"{arch} {python}":
            raise RuntimeError(
                f"{host.name}: {archive} was built for {target or 'an unknown target'}, this host is"
                f" {arch} python {python}: build for it (python -m infra.release --arch {arch} --python {python})"
            )
        return rid, commit, Path(archive)
    commit = builder.source_commit(source)
    rid, path = builder.build(arch, python, source=source, commit=commit)
    host.noop(f"release {rid} built for {arch} python {python}: {path.name}")
    return rid, commit, path


@deploy("Deploy a release")
def deploy_release(source=builder.ROOT, archive=None):
    d = host.data
    require_setup()
    rid, commit, archive = build_for_host(source, archive)
    rel = f"{d.app_root}/releases/{rid}"
    lock = f"{d.app_root}/deploy.lock"
    short = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")

    locked = take_lock(f"deploy {rid}")
    # Each step runs only while every step before it succeeded; a failure falls
    # through to one of the two failure paths below, which release the lock.
    steps = []

    def all_ok(upto=None):
        return not any(op.did_error() for op in steps[:upto])

    def step(op, *args, **kwargs):
        before = len(steps)  # decided at run time, over the steps before this one
        steps.append(op(*args, _if=lambda: all_ok(before), _ignore_errors=True, **kwargs))
        return steps[-1]

    step(files.put, name=f"Upload release {rid}", src=str(archive), dest=f"{rel}.tar.gz", mode="0644")
    step(server.shell, name=f"Unpack release {rid}", commands=[unpack_command(rel)])
    step(
        server.shell,
        name="Snapshot the database before migrating",
        commands=[snapshot_command(d.app_root, settings.db_path(d), rel, d.backup_keep_predeploy)],
        _sudo_user=d.app_user,
    )
    step(app_command, rid, "migrate", "Migrate the database")
    step(app_command, rid, "seed-cards", "Seed the reference cards")
    switched = step(swap_to, rid, f"Switch current to {rid}")
    step(restart)
    step(gate, rid)

    def failed_before_switch():
        return not all_ok() and not switched.did_change()

    def rolled_back():
        return not all_ok() and switched.did_change()

    # Failed before the switch: the running release was never touched.
    log(
        f"deploy {rid} (commit {short}) FAILED before switching; current release untouched",
        name="Log the failure",
        _if=failed_before_switch,
    )
    release_lock(name="Release the deploy lock (failed)", _if=failed_before_switch)
    report(
        lambda: f"deploy of {rid} FAILED before the switch: {running_before(locked) or 'nothing'} still runs",
        _if=failed_before_switch,
    )
    fail_with_journal(f"release {rid} failed before the switch", _if=failed_before_switch)

    # Unhealthy after the switch: put both links back, restart, prove the old one works.
    server.shell(
        name="If unhealthy, roll back: restore current and previous",
        commands=[restore_links_command(d.app_root)],
        _if=rolled_back,
    )
    restart(name="If unhealthy, roll back: restart the previous release", _if=rolled_back)
    gate(
        f'"$(basename "$(cat {lock}/current)")"',
        name="If unhealthy, roll back: the previous release is healthy",
        _if=rolled_back,
    )
    log(f"deploy {rid} (commit {short}) FAILED health gate, rolled back", name="Log the rollback", _if=rolled_back)
    release_lock(name="Release the deploy lock (rolled back)", _if=rolled_back)
    report(
        lambda: f"deploy of {rid} FAILED its health gate: rolled back, {running_before(locked)} runs again",
        _if=rolled_back,
    )
    fail_with_journal(f"release {rid} was unhealthy and has been rolled back", _if=rolled_back)

    log(f"deploy {rid} (commit {short}) ok")
    prune_releases(d.keep_releases)
    release_lock()

    def deployed():
        before = running_before(locked)
        if before == rid:
            return f"release {rid} (commit {short}) was already running: nothing switched"
        return f"deployed {rid} (commit {short}), was {before or 'nothing'}"

    report(deployed)


def prune_releases(keep):
    server.shell(name=f"Keep the newest {keep} releases", commands=[prune_command(host.data.app_root, keep)])


# --- rollback ----------------------------------------------------------------


@deploy("Roll back")
def rollback(target=None):
    """Switch to releases/<target>, or to the previous release; no rebuild."""
    d = host.data
    require_setup()
    if target and not host.get_fact(Directory, path=f"{d.app_root}/releases/{target}"):
        raise RuntimeError(f"{host.name}: no release {target} in {d.app_root}/releases")
    word = q(target) if target else f'$(basename "$(readlink {d.app_root}/previous)")'
    locked = take_lock(f"rollback {target or 'previous'}")
    # Resolve the target now: swapping changes what "previous" means.
    found = server.shell(
        name="Find the release to roll back to",
        commands=[
            f'cd {d.app_root} && t={word}; if [ -n "$t" ] && [ -d "releases/$t" ];'
            ' then echo "$t" > deploy.lock/target; echo "target: $t";'
            " else echo 'no release to roll back to' >&2; rm -rf deploy.lock; exit 1; fi"
        ],
    )
    target_word = f"$(cat {d.app_root}/deploy.lock/target)"
    swap_to(target_word, "Switch current to the rollback target")
    restart()
    ok = gate(target_word, name="Health gate: /healthz reports the rollback target", _ignore_errors=True)
    log(f"rollback to {target_word} ok", _if=ok.did_succeed)
    log(f"rollback to {target_word} FAILED health gate", name="Log the failure", _if=ok.did_error)
    release_lock()

    def target_id():
        return "".join(line[len("target: ") :] for line in found.stdout_lines if line.startswith("target: "))

    report(
        lambda: f"rolled back: left {running_before(locked) or 'nothing'}, now runs {target_id()}", _if=ok.did_succeed
    )
    report(
        lambda: f"rollback to {target_id()} FAILED its health gate: it is current but not healthy",
        _if=ok.did_error,
    )
    fail_with_journal("the rollback target is not healthy", _if=ok.did_error)


# --- restore ---------------------------------------------------------------
# Both restores share one path: the new file is checked while the site still runs,
# then the app and Litestream stop, the old database is kept, the new one goes in,
# Litestream's local state is reset (it then snapshots the restored database: the
# replica's latest is what was restored, and older points in time stay in the
# bucket), both start, and the health gate decides. On a host with no release yet
# (a fresh host after `setup`) the entry file deploys one after the restore.

LITESTREAM_UNIT = "milesahead-litestream.service"


def litestream_args(args):
    """A litestream command line reading the toolkit's config (never expanding '$')."""
    d = host.data
    return f"{d.app_root}/bin/litestream {args} -no-expand-env -config {d.app_root}/litestream.yml"


@deploy("Restore the database")
def restore(backup, start_app=True):
    """Replace the database with `backup` (a local file, or a path on the host)."""
    d = host.data
    require_setup()
    backups = f"{d.app_root}/backups"
    tmp = f"{settings.db_path(d)}.restore"
    take_lock(f"restore {os.path.basename(backup)}")
    if os.path.isfile(backup):
        remote = f"{backups}/restore/{os.path.basename(backup)}"
        files.directory(
            name="backups/restore", path=f"{backups}/restore",
            user=d.app_user, group=d.app_user, mode="0750",
        )  # fmt: skip
        files.put(name=f"Upload {backup}", src=backup, dest=remote, mode="0640")
    else:
        remote = backup if backup.startswith("/") else f"{backups}/{backup}"
    fetch = f"case {q(remote)} in *.gz) gzip -dc {q(remote)} > {tmp};; *) cp {q(remote)} {tmp};; esac"
    replace_database(fetch, f"restore {os.path.basename(backup)}", start_app=start_app)


@deploy("Restore the database from the replica")
def restore_from_replica(at=None, start_app=True):
    """Replace the database with the replica's latest copy, or its copy as of `at`."""
    d = host.data
    require_setup()
    if not host.get_fact(File, path=f"{d.app_root}/litestream.yml"):
        raise RuntimeError(f"{host.name}: no replica configured: run `setup` with the REPLICA_* variables first")
    tmp = f"{settings.db_path(d)}.restore"
    label = "restore from the replica" + (f" at {at}" if at else "")
    take_lock(label)
    point = f" -timestamp {q(at)}" if at else ""
    # As the app user, who may read litestream.yml; -o refuses to overwrite.
    fetch = (
        f"rm -f {tmp} {tmp}-wal {tmp}-shm && sudo -u {d.app_user}"
        f" {litestream_args('restore')}{point} -o {tmp} {settings.db_path(d)}"
    )
    replace_database(fetch, label, start_app=start_app)


def replace_database(fetch, label, start_app=True):
    """`fetch` writes <database>.restore; check it, swap it in, restart, gate."""
    d = host.data
    backups = f"{d.app_root}/backups"
    db = settings.db_path(d)
    lock = f"{d.app_root}/deploy.lock"
    tmp = f"{db}.restore"
    # Check the copy while the site still runs: a bad file never stops the service.
    server.shell(
        name="Fetch the copy and check its integrity",
        commands=[
            f"umask 0027 && {{ {fetch}; }}"
            f" && python3 -c {q(INTEGRITY)} {tmp}"
            f" || {{ rm -f {tmp}; rm -rf {lock}; exit 1; }}"
        ],
    )
    server.shell(name=f"Stop {d.app_name}", commands=[f"systemctl stop {d.app_name}.service"])
    # After the app: on stop Litestream ships the last writes, so the replica keeps them.
    server.shell(name="Stop Litestream", commands=[f"systemctl stop {LITESTREAM_UNIT} 2>/dev/null || true"])
    server.shell(
        name="Keep the replaced database (backups/pre-restore/, compressed)",
        commands=[pre_restore_command(db, f"{backups}/pre-restore", d.backup_keep_predeploy)],
        _sudo_user=d.app_user,
    )
    server.shell(
        name="Put the restored database in place",
        commands=[
            f"rm -f {db}-wal {db}-shm {tmp}-wal {tmp}-shm"
            f" && chown {d.app_user}:{d.app_user} {tmp} && chmod 0640 {tmp} && mv -T {tmp} {db}"
        ],
    )
    # What `litestream reset` does: its next sync snapshots the restored database.
    server.shell(
        name="Reset Litestream's local state and start it",
        commands=[
            f"rm -rf {d.app_root}/data/.{d.db_name}-litestream"
            f" && if systemctl is-enabled --quiet {LITESTREAM_UNIT} 2>/dev/null;"
            f" then systemctl start {LITESTREAM_UNIT}; fi"
        ],
    )
    if not start_app:
        log(f"{label} ok; no release yet, deploying one")
        release_lock()
        return
    server.shell(name=f"Start {d.app_name}", commands=[f"systemctl start {d.app_name}.service"])
    ok = gate(
        f'"$(cat {d.app_root}/current/RELEASE)"',
        name="Health gate: the site is healthy on the restored database",
        _ignore_errors=True,
    )
    log(f"{label} ok", _if=ok.did_succeed)
    log(f"{label} FAILED health gate", _if=ok.did_error)
    release_lock()
    fail_with_journal("the site is not healthy after the restore", _if=ok.did_error)


def pre_restore_command(db, dest, keep):
    """gzip the database (and its -wal/-shm: the service is stopped) into dest, by time;
    keep the newest `keep` sets. The copy is as it is: a corrupt database is kept too."""
    name = os.path.basename(db)
    return (
        f"umask 0027 && mkdir -p {dest} && cd {dest} && ts=$(date -u +%Y%m%dT%H%M%SZ)"
        f" && for f in {db} {db}-wal {db}-shm; do [ ! -f $f ] || {{ b=$(basename $f);"
        " gzip -n -c $f > .$b.$ts.gz.tmp && mv .$b.$ts.gz.tmp $b.$ts.gz; }; done"
        f" && ls -1 | grep -E '^{name}(-wal|-shm)?[.][0-9]{{8}}T[0-9]{{6}}Z[.]gz$' | grep -oE '[0-9]{{8}}T[0-9]{{6}}Z'"
        f" | sort -u -r | tail -n +{keep + 1} | while read -r t; do rm -f -- *.$t.gz; done"
    )


INTEGRITY = (
    "import sqlite3, sys; r = sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check')"
    ".fetchone()[0]; print('integrity_check:', r); sys.exit(r != 'ok')"
)
