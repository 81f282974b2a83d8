"""The Caddy site: distro Caddy with a sites directory, or a snippet for a shared Caddy."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from infra.tasks import TEMPLATES


def site_context(d):
    address = d.site_address
    https = not (address.startswith(("http://", ":")) or address.endswith(":80"))
    return {
        "site_address": address,
        "https": https,
        "upstream": d.caddy_upstream or f"127.0.0.1:{d.app_port}",
        "public_root": d.caddy_public_root or f"{d.app_root}/data/public",
        "lb_try_duration": d.caddy_lb_try_duration,
        "lb_try_interval": d.caddy_lb_try_interval,
    }


@deploy("Caddy site")
def site():
    d = host.data
    changed = []
    if d.caddy_mode == "distro":
        apt.packages(
            name="Install caddy",
            packages=["caddy"],
            update=True,
            cache_time=24 * 3600,
            no_recommends=True,
        )
        # Debian's Caddyfile serves a placeholder page and imports nothing.
        changed.append(
            files.template(
                name="Caddyfile importing the sites directory",
                src=str(TEMPLATES / "Caddyfile.j2"),
                dest="/etc/caddy/Caddyfile",
                mode="0644",
                caddy_sites_dir=d.caddy_sites_dir,
            )
        )
    elif d.caddy_mode != "shared":
        raise ValueError(f"caddy_mode must be 'distro' or 'shared', not {d.caddy_mode!r}")

    files.directory(name="Caddy sites directory", path=d.caddy_sites_dir, mode="0755")
    changed.append(
        files.template(
            name=f"Caddy site {d.app_name}.caddy",
            src=str(TEMPLATES / "site.caddy.j2"),
            dest=f"{d.caddy_sites_dir}/{d.app_name}.caddy",
            mode="0644",
            **site_context(d),
        )
    )
    # Never reload a config Caddy would refuse: the running one keeps serving.
    server.shell(
        name="Validate the Caddy config",
        commands=[d.caddy_validate_command],
        _if=any_changed(*changed),
    )
    if d.caddy_mode == "distro":
        systemd.service(name="Caddy running and enabled", service="caddy.service", running=True, enabled=True)
    server.shell(name="Reload Caddy", commands=[d.caddy_reload_command], _if=any_changed(*changed))
