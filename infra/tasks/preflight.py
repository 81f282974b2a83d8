"""What setup checks before it changes anything, each refusal naming its way out.

The secrets are checked before connecting (infra/secrets.py); these need the host:
the SSH user's passwordless sudo, and Grafana's apt repository and key reachable from
the host (a bare `curl: (6) Could not resolve host` halfway through setup, after the
app and Caddy are installed, is the failure they prevent).
"""

import shlex

from pyinfra import host
from pyinfra.facts.server import Command


class PreflightError(RuntimeError):
    """The host is not ready for setup; the message says what to do."""


def reachable(url):
    """None when `url` answers 2xx/3xx from the host, else why not (curl's words)."""
    probe = f"curl -fsS -o /dev/null --max-time 20 {shlex.quote(url)} 2>&1 && echo reachable || true"
    out = host.get_fact(Command, probe, _sudo=False).strip()
    return None if out.endswith("reachable") else (out or "no answer")


def repo_index_url(line):
    """The index apt reads first for a one-line source ("deb [opts] URI SUITE [COMP...]")."""
    words = [w for w in line.split() if not (w.startswith("[") or w.endswith("]") or "=" in w)]
    uri, suite = words[1].rstrip("/"), words[2]
    return f"{uri}/Release" if suite in ("./", "/", ".") else f"{uri}/dists/{suite}/InRelease"


def check():
    d = host.data
    sudo = host.get_fact(Command, "sudo -n true 2>&1 && echo sudo-ok || true", _sudo=False).strip()
    if not sudo.endswith("sudo-ok"):
        raise PreflightError(
            f"{host.name}: the SSH user cannot sudo without a password ({sudo or 'no answer'}): give it"
            " NOPASSWD sudo (a file in /etc/sudoers.d/), or set OCI_USER to a user that has it"
        )
    if not d.alloy_enabled:
        return
    for what, url in (("Grafana's apt key", d.alloy_apt_key_url), ("Grafana's apt repository", d.alloy_apt_repo)):
        if not url:
            continue
        if what.endswith("repository"):
            url = repo_index_url(url)
        problem = reachable(url)
        if problem:
            raise PreflightError(
                f"{host.name}: {what} is not reachable from the host ({url}: {problem}). Nothing was"
                " changed. Fix the host's DNS or outbound network, or set up without monitoring:"
                " --data alloy_enabled=false"
            )
