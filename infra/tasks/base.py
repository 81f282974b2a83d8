"""apt that waits for a fresh host's own upgrades; the app's system user and directory layout.

A fresh cloud host runs unattended-upgrades and apt-daily for minutes after its first
boot (about 18 on an OCI instance), holding the dpkg and apt locks; apt-get run then
fails at once ("Could not get lock /var/lib/dpkg/lock-frontend"). `wait_for_apt()`
waits, saying for what, up to `apt_lock_timeout` seconds, before each group of apt
operations; on a host where apt is idle it does nothing (and reports no change).
"""

import shlex

from pyinfra import host, logger
from pyinfra.api import FactBase, deploy, operation
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server

from infra import settings
from infra.tasks import FILES

# directory: (owner, mode). Releases are root's: the app cannot change its own code.
# Caddy (user caddy) serves data/public, so data is traversable but not listable;
# the database and secrets in it stay 0640/0600 (the unit's UMask=0027).
LAYOUT = {
    "": ("root", "0755"),
    "releases": ("root", "0755"),
    "bin": ("root", "0755"),
    "data": ("{user}", "0751"),
    "data/public": ("{user}", "0755"),
    "backups": ("{user}", "0750"),
    "backups/pre-restore": ("{user}", "0750"),  # restore writes the replaced database here
}


APT_LOCKS = (
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
)
# (Not unattended-upgrades.service: on Debian it only waits for shutdown, "active" all along.)
APT_UNITS = ("apt-daily.service", "apt-daily-upgrade.service")


# One line per thing apt would trip over: "PATH held by COMM (pid N)", or "UNIT is
# running" / "UNIT is about to start" (apt-daily-upgrade waits for apt-daily, then
# takes the lock again). POSIX locks (apt's and dpkg's fcntl locks) are in
# /proc/locks as "N: POSIX ADVISORY WRITE PID MAJ:MIN:INODE ..."; waiters have "->".
def apt_busy_command(locks=APT_LOCKS, units=APT_UNITS):
    return (
        f"for f in {' '.join(locks)}; do [ -e $f ] || continue; i=$(stat -c %i $f);"
        ' grep -v -- \'->\' /proc/locks | awk -v i=":$i" \'$2 == "POSIX" && substr($6, length($6) - length(i) + 1) == i'
        ' { print $5 }\' | while read -r p; do echo "$f held by $(cat /proc/$p/comm 2>/dev/null) (pid $p)"; done;'
        f" done; for u in {' '.join(units)}; do"
        ' s=$(systemctl is-active $u 2>/dev/null); case $s in active|activating|reloading) echo "$u is running";; esac;'
        ' systemctl list-jobs --no-legend 2>/dev/null | grep -q " $u " && echo "$u is about to start";'
        " done; true"
    )


class AptBusy(FactBase):
    """What holds (or is about to hold) the dpkg and apt locks: a list, empty when apt is free."""

    def command(self):
        return apt_busy_command()

    def process(self, output):
        return sorted(set(line.strip() for line in output if line.strip()))


def apt_wait_command(timeout, locks=APT_LOCKS, units=APT_UNITS):
    """Poll until apt is free; fail after `timeout` seconds naming what still holds it."""
    busy = shlex.quote(apt_busy_command(locks, units))
    return (
        f'start=$(date +%s); while busy=$(sh -c {busy}); [ -n "$busy" ]; do'
        " waited=$(( $(date +%s) - start ));"
        f" if [ $waited -ge {timeout} ]; then"
        f' echo "apt is still busy after $waited s (apt_lock_timeout={timeout}):" >&2; echo "$busy" >&2;'
        " echo 'a fresh host upgrades itself after its first boot: wait, or give it longer with"
        " --data apt_lock_timeout=SECONDS, then run setup again' >&2; exit 1; fi;"
        ' [ $((waited % 30)) -lt 5 ] && echo "waiting ($waited s): $(echo $busy)";'
        ' sleep 5; done; echo "apt is free after $(( $(date +%s) - start )) s"'
    )


@operation()
def wait_for_apt(timeout=1800):
    """Wait until no unattended-upgrades, apt-daily or other apt run holds the locks.

    + timeout: seconds to wait at most, then fail naming what still holds them
    """
    busy = host.get_fact(AptBusy)
    if not busy:
        host.noop("apt is free")
        return
    logger.info(f"{host.print_prefix}» waiting up to {timeout} s for apt: {'; '.join(busy)}")
    yield apt_wait_command(timeout)


def apt_lock_args():
    """For apt-get itself: wait for the dpkg lock rather than fail (the gap after the wait)."""
    return f"-o DPkg::Lock::Timeout={host.data.apt_lock_timeout}"


@deploy("System user and directories")
def user_and_layout():
    d = host.data
    wait_for_apt(name="Wait for apt (a fresh host upgrades itself first)", timeout=d.apt_lock_timeout)
    apt.packages(
        name="Install base packages",
        packages=["python3", "cron", "gzip"],
        update=True,
        cache_time=24 * 3600,
        no_recommends=True,  # cron recommends a mail server
        extra_install_args=apt_lock_args(),
    )
    server.group(name=f"Group {d.app_user}", group=d.app_user, system=True)
    server.user(
        name=f"User {d.app_user}",
        user=d.app_user,
        group=d.app_user,
        home=d.app_root,
        shell="/usr/sbin/nologin",
        system=True,
        create_home=False,
        ensure_home=False,  # app_root belongs to root; the layout below sets it
    )
    # Before data/ opens to 0751: a database an earlier `migrate` made under sudo's
    # umask 0022 (0644) would otherwise be readable by anyone who knows its name.
    db = settings.db_path(d)
    for path in (db, f"{db}-wal", f"{db}-shm"):
        if host.get_fact(File, path=path):
            files.file(name=f"{path} not world-readable", path=path, user=d.app_user, group=d.app_user, mode="0640")
    for sub, (owner, mode) in LAYOUT.items():
        owner = owner.format(user=d.app_user)
        files.directory(
            name=f"Directory {d.app_root}/{sub}".rstrip("/"),
            path=f"{d.app_root}/{sub}".rstrip("/"),
            user=owner,
            group=owner if owner != "root" else "root",
            mode=mode,
        )
    for script in ("backup.sh", "healthgate.py", "replica.py"):
        files.put(
            name=f"Script bin/{script}",
            src=str(FILES / script),
            dest=f"{d.app_root}/bin/{script}",
            user="root",
            group="root",
            mode="0755",
        )
