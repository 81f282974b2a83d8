"""The nightly backup: cron entry for bin/backup.sh (installed with the layout)."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from infra.tasks import TEMPLATES


@deploy("Backup cron job")
def cron_job():
    d = host.data
    files.template(
        name="Cron entry /etc/cron.d/milesahead",
        src=str(TEMPLATES / "cron.j2"),
        dest="/etc/cron.d/milesahead",
        mode="0644",
        backup_cron=d.backup_cron,
        replica_max_lag_minutes=d.replica_max_lag_minutes,
        app_user=d.app_user,
        app_root=d.app_root,
    )
    systemd.service(name="cron running and enabled", service="cron.service", running=True, enabled=True)
