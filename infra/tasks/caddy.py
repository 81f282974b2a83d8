"""The Caddy site: distro Caddy with a sites directory, or a snippet for a shared Caddy."""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory, Sha1File
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from infra.tasks import FILES, TEMPLATES, firewall


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
        "acme_ca": d.acme_ca,
        "acme_ca_root": d.acme_ca_root,
    }


def compose(d):
    """`docker compose` for the shared Caddy's project (run where its compose file is)."""
    return f"cd {d.caddy_compose_dir} && docker compose"


# The version the distro's package would install, when Caddy is not installed yet.
DISTRO_VERSION = "caddy version 2>/dev/null || apt-cache policy caddy 2>/dev/null | sed -n 's/^ *Candidate: *//p'"


def caddy_version(d):
    """The version of the Caddy this site is written for: group data's, else asked of that Caddy."""
    if d.caddy_version:
        return d.caddy_version
    if d.caddy_mode == "shared":
        command = f"{compose(d)} exec -T {d.caddy_compose_service} caddy version 2>&1 || true"
        answer = host.get_fact(Command, command, _sudo=True)
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


def sites_dir(d):
    return d.caddy_sites_dir or {"shared": f"{d.caddy_compose_dir}/caddy-sites"}.get(d.caddy_mode, "/etc/caddy/sites")


# The shared Caddy's network as the host sees it: its bridge and its gateway address
# (the host's address on it). host-gateway names docker0's address, not this one.
NETWORK = (
    'c=$({compose} ps -q {service}) && [ -n "$c" ] &&'
    " n=$(docker inspect -f '{{{{range $k, $v := .NetworkSettings.Networks}}}}{{{{$k}}}} {{{{end}}}}' $c | cut -d' ' -f1) &&"
    " g=$(docker network inspect -f '{{{{range .IPAM.Config}}}}{{{{.Gateway}}}} {{{{end}}}}' $n | cut -d' ' -f1) &&"
    " b=$(docker network inspect -f '{{{{index .Options \"com.docker.network.bridge.name\"}}}}' $n) &&"
    " i=$(docker network inspect -f '{{{{.Id}}}}' $n | cut -c1-12) &&"
    ' echo "${{b:-br-$i}} $g" || true'
)


def shared_network(d):
    """(bridge, gateway) of the shared Caddy's Compose network, asked of Docker."""
    answer = host.get_fact(Command, NETWORK.format(compose=compose(d), service=d.caddy_compose_service), _sudo=True)
    answer = answer.split()
    if len(answer) != 2:
        raise RuntimeError(
            f"{host.name}: cannot find the network of the shared Caddy (service {d.caddy_compose_service!r}"
            f" of the Compose project in {d.caddy_compose_dir}): is it running?"
        )
    return answer[0], answer[1]


def app_listen(d):
    """Where the app listens: loopback, and for a shared Caddy also its network's gateway."""
    if d.caddy_mode != "shared":
        return "127.0.0.1"
    return f"127.0.0.1 {shared_network(d)[1]}"


@deploy("Caddy site")
def site():
    d = host.data
    version = caddy_version(d)
    if d.caddy_mode == "shared":
        shared_site(version)
        return
    if d.caddy_mode != "distro":
        raise ValueError(f"caddy_mode must be 'distro' or 'shared', not {d.caddy_mode!r}")
    apt.packages(
        name="Install caddy",
        packages=["caddy"],
        update=True,
        cache_time=24 * 3600,
        no_recommends=True,
    )
    # Debian's Caddyfile serves a placeholder page and imports nothing.
    changed = [
        files.template(
            name="Caddyfile importing the sites directory",
            src=str(TEMPLATES / "Caddyfile.j2"),
            dest="/etc/caddy/Caddyfile",
            mode="0644",
            caddy_sites_dir=sites_dir(d),
        )
    ]
    files.directory(name="Caddy sites directory", path=sites_dir(d), mode="0755")
    changed.append(
        files.template(
            name=f"Caddy site {d.app_name}.caddy",
            src=str(TEMPLATES / "site.caddy.j2"),
            dest=f"{sites_dir(d)}/{d.app_name}.caddy",
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
    systemd.service(name="Caddy running and enabled", service="caddy.service", running=True, enabled=True)
    server.shell(name="Reload Caddy", commands=[d.caddy_reload_command], _if=any_changed(*changed))


def shared_site(version):
    """The snippet for a Caddy other sites share: checked with all of them before it goes live.

    The snippet is rendered to app_root/caddy/ first; bin/caddy-shared.sh puts it into
    the sites directory only once the whole config, with it, passed `caddy validate` in
    the service's image, then reloads. The app is reached on the Compose network's
    gateway, and the host firewall lets only that bridge through to the app's port.
    """
    d = host.data
    sites = sites_dir(d)
    if not host.get_fact(Directory, path=sites):
        raise RuntimeError(f"{host.name}: {sites} is missing: the shared Caddy's sites directory (caddy_sites_dir)")
    bridge, gateway = shared_network(d)
    context = site_context(d, version)
    context["upstream"] = d.caddy_upstream or f"{gateway}:{d.app_port}"
    context["public_root"] = d.caddy_public_root or "/srv/milesahead/public"

    files.directory(name="Staged Caddy snippet directory", path=f"{d.app_root}/caddy", mode="0755")
    script = files.put(
        name="bin/caddy-shared.sh",
        src=str(FILES / "caddy-shared.sh"),
        dest=f"{d.app_root}/bin/caddy-shared.sh",
        mode="0755",
    )
    wanted = f"{d.app_root}/caddy/{d.app_name}.caddy"
    staged = files.template(
        name=f"Caddy site {d.app_name}.caddy (staged)",
        src=str(TEMPLATES / "site.caddy.j2"),
        dest=wanted,
        mode="0644",
        **context,
    )
    installed = f"{sites}/{d.app_name}.caddy"
    differs = host.get_fact(Sha1File, path=installed) != host.get_fact(Sha1File, path=wanted)
    server.shell(
        name=f"Validate with every site, then install and reload {installed}",
        commands=[
            f"{d.app_root}/bin/caddy-shared.sh {d.caddy_compose_dir} {d.caddy_compose_service}"
            f" {sites} {d.app_name} {wanted} {d.caddy_shared_config}"
        ],
        _if=lambda: staged.did_change() or script.did_change() or differs,
    )

    # The app's port is open to the Caddy's bridge and nothing else, now and after a
    # reboot: the firewall's one way in for any rule (before the REJECT, and in rules.v4
    # where netfilter-persistent loads the firewall, never reloading the file).
    if not d.firewall:
        host.noop(f"firewall left alone (firewall=false): let {bridge} reach TCP {d.app_port} yourself")
        return
    firewall.accept(
        name=f"Firewall: the Caddy's bridge {bridge} to the app's port {d.app_port}",
        match=f"-i {bridge} -p tcp -m tcp --dport {d.app_port}",
    )
