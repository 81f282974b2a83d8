"""The app's config (rendered from the operator's secrets) and its systemd unit."""

import os

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Link
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from infra import secrets, settings
from infra.tasks import TEMPLATES, caddy


@deploy("App config and service")
def config_and_service():
    d = host.data
    # Secrets go into the template's context only: never into a command line, and
    # pyinfra shows a file's diff only with --diff, which the toolkit never passes.
    config = files.template(
        name="Render config.yaml (secrets, not shown)",
        src=str(TEMPLATES / "config.yaml.j2"),
        dest=f"{d.app_root}/config.yaml",
        user="root",
        group=d.app_user,
        mode="0640",
        s=secrets.values(os.environ),
        base_url=settings.base_url(d, host.name),
        app_user=d.app_user,
        app_root=d.app_root,
        db_path=settings.db_path(d),
        app_port=d.app_port,
        app_listen=caddy.app_listen(d),
        # A shared Caddy connects from its container's address, which Docker picks.
        trusted_proxy="*" if d.caddy_mode == "shared" else "127.0.0.1",
        backup_keep_daily=d.backup_keep_daily,
        backup_keep_weekly=d.backup_keep_weekly,
    )
    unit = files.template(
        name=f"Unit {d.app_name}.service",
        src=str(TEMPLATES / "milesahead.service.j2"),
        dest=f"/etc/systemd/system/{d.app_name}.service",
        mode="0644",
        app_name=d.app_name,
        app_user=d.app_user,
        app_root=d.app_root,
        # Its second address is on the shared Caddy's network, which Docker brings up.
        after_docker=d.caddy_mode == "shared",
    )
    systemd.daemon_reload(name="systemd daemon-reload", _if=unit.did_change)
    # Before the first deploy there is no release to run: enable only.
    released = host.get_fact(Link, path=f"{d.app_root}/current")
    systemd.service(
        name=f"Enable {d.app_name}",
        service=f"{d.app_name}.service",
        enabled=True,
        running=True if released else None,
    )
    if released:
        systemd.service(
            name=f"Restart {d.app_name} (config or unit changed)",
            service=f"{d.app_name}.service",
            restarted=True,
            _if=any_changed(config, unit),
        )
