"""Restore the database from `--data restore_file=PATH` (local file or host path),
or from the replica with `--data restore_from_replica=true [restore_at=TIMESTAMP]`.

On a host with no release yet (a fresh host after `setup`, the lost-host case) the
restored database is put in place and then a release is deployed onto it.
"""

from pyinfra import host
from pyinfra.facts.files import Link

from infra import release
from infra.tasks.ship import deploy_release, restore, restore_from_replica

released = bool(host.get_fact(Link, path=f"{host.data.app_root}/current"))
if host.data.get("restore_from_replica"):
    restore_from_replica(at=host.data.get("restore_at") or None, start_app=released)
else:
    restore(backup=host.data.restore_file, start_app=released)
if not released:
    deploy_release(source=host.data.get("release_source") or release.ROOT)
