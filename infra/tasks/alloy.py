"""Grafana Alloy: scrape /metrics, ship the unit's journal to Loki.

The repository line and key URL are data (alloy_apt_repo, alloy_apt_key_url) so the
test VM can point them at a stand-in package; the real Alloy binary never runs there.
"""

import os

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from infra import secrets
from infra.tasks import TEMPLATES


@deploy("Grafana Alloy")
def alloy():
    d = host.data
    repo_changes = []
    if d.alloy_apt_key_url:
        files.directory(name="apt keyrings directory", path="/etc/apt/keyrings", mode="0755")
        repo_changes.append(
            files.download(
                name="Grafana apt key",
                src=d.alloy_apt_key_url,
                dest="/etc/apt/keyrings/grafana.asc",
                mode="0644",
            )
        )
    repo_changes.append(apt.repo(name="Grafana apt repository", src=d.alloy_apt_repo, filename="grafana"))
    apt.update(name="apt update (repository changed)", _if=any_changed(*repo_changes))
    apt.packages(name="Install alloy", packages=["alloy"], no_recommends=True)

    config = files.template(
        name="config.alloy",
        src=str(TEMPLATES / "config.alloy.j2"),
        dest="/etc/alloy/config.alloy",
        mode="0644",
        app_name=d.app_name,
        app_port=d.app_port,
        inventory_hostname=host.name,
    )
    credentials = files.template(
        name="Alloy credentials (root-only, not shown)",
        src=str(TEMPLATES / "alloy.env.j2"),
        dest="/etc/alloy/milesahead.env",
        user="root",
        group="root",
        mode="0600",
        s=secrets.values(os.environ),
    )
    files.directory(name="alloy.service.d", path="/etc/systemd/system/alloy.service.d")
    dropin = files.template(
        name="Alloy reads the credentials file",
        src=str(TEMPLATES / "alloy.override.conf.j2"),
        dest="/etc/systemd/system/alloy.service.d/milesahead.conf",
        mode="0644",
    )
    systemd.daemon_reload(name="systemd daemon-reload (alloy)", _if=dropin.did_change)
    systemd.service(name="Alloy running and enabled", service="alloy.service", running=True, enabled=True)
    systemd.service(
        name="Restart Alloy (config changed)",
        service="alloy.service",
        restarted=True,
        _if=any_changed(config, credentials, dropin),
    )
