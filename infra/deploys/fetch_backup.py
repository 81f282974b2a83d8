"""Copy a backup from the host to this machine: `--data fetch_backup_name=KIND/FILE`
(default: the newest of every kind) into `--data fetch_backup_to=DIR`, as <host>-<file>.

backups/ is the app user's (0750), so the copy goes through sudo.
"""

import os

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files

d = host.data
backups = f"{d.app_root}/backups"
name = d.get("fetch_backup_name") or ""
if not name:
    newest = host.get_fact(Command, f"ls -1t {backups}/*/milesahead-*.db.gz 2>/dev/null | head -n 1 || true").strip()
    if not newest:
        raise RuntimeError(f"{host.name}: no backup in {backups} yet (take one: python -m infra backup)")
    name = newest[len(backups) + 1 :]
if name.startswith("/") or ".." in name.split("/"):
    raise RuntimeError(f"{name!r}: name a backup relative to {backups}, e.g. daily/milesahead-....db.gz")
local = os.path.join(d.fetch_backup_to, f"{host.name}-{os.path.basename(name)}")
files.get(name=f"Fetch {name} to {local}", src=f"{backups}/{name}", dest=local, add_deploy_dir=False)
