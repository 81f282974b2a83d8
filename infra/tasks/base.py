"""The app's system user and directory layout under /opt/milesahead."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server

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
}


@deploy("System user and directories")
def user_and_layout():
    d = host.data
    apt.packages(
        name="Install base packages",
        packages=["python3", "cron", "gzip"],
        update=True,
        cache_time=24 * 3600,
        no_recommends=True,  # cron recommends a mail server
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
    for name in ("milesahead.db", "milesahead.db-wal", "milesahead.db-shm"):
        path = f"{d.app_root}/data/{name}"
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
