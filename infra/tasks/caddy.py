"""The Caddy site: distro Caddy with a sites directory, or a snippet for a shared Caddy."""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from infra.tasks import TEMPLATES


def parse_version(text):
    """(major, minor) from `caddy version` ("v2.11.7 h1:..." or "2.6.2"); None if it names none."""
    match = re.search(r"\bv?(\d+)\.(\d+)(?:\.\d+)?", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def request_buffering(version_text):
    """The reverse_proxy directive that keeps a whole request body, in this Caddy's words.

    2.6 knows only `buffer_requests`; 2.7 replaced it with `request_buffers <size>`
    and refuses the old name, so a site written for the wrong one does not load.
    """
    version = parse_version(version_text)
    if version is None:
        raise ValueError(f"cannot read a Caddy version from {version_text!r}")
    return "buffer_requests" if version < (2, 7) else "request_buffers unlimited"


def site_context(d, version=None):
    """The template's variables; `version` is `caddy version`'s answer (default: group data's)."""
    address = d.site_address
    https = not (address.startswith(("http://", ":")) or address.endswith(":80"))
    return {
        "site_address": address,
        "https": https,
        "upstream": d.caddy_upstream or f"127.0.0.1:{d.app_port}",
        "public_root": d.caddy_public_root or f"{d.app_root}/data/public",
        "lb_try_duration": d.caddy_lb_try_duration,
        "lb_try_interval": d.caddy_lb_try_interval,
        "request_buffering": request_buffering(version or d.caddy_version),
    }


def compose(d):
    """`docker compose` for the shared Caddy's project, from any directory."""
    return f"docker compose --project-directory {d.caddy_compose_dir}"


# The version the distro's package would install, when Caddy is not installed yet.
DISTRO_VERSION = "caddy version 2>/dev/null || apt-cache policy caddy 2>/dev/null | sed -n 's/^ *Candidate: *//p'"


def caddy_version(d):
    """The version of the Caddy this site is written for: group data's, else asked of that Caddy."""
    if d.caddy_version:
        return d.caddy_version
    if d.caddy_mode == "shared":
        command = f"{compose(d)} exec -T {d.caddy_compose_service} caddy version 2>&1 || true"
        answer = host.get_fact(Command, command)
        if parse_version(answer) is None:
            raise RuntimeError(
                f"{host.name}: the shared Caddy (service {d.caddy_compose_service!r} of the Compose project in"
                f" {d.caddy_compose_dir}) did not tell its version: {answer.strip()!r}. Is it running?"
                " Or name it: --data caddy_version=2.11.7"
            )
        return answer
    answer = host.get_fact(Command, DISTRO_VERSION)
    # Not installed and no package lists yet (a fresh host): the distros' package,
    # 2.6.2 in Debian 12 and 13 and Ubuntu 22.04 to 25.10. Validation checks the guess.
    return answer if parse_version(answer) else "2.6.2"


@deploy("Caddy site")
def site():
    d = host.data
    changed = []
    version = caddy_version(d)
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
            **site_context(d, version),
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
