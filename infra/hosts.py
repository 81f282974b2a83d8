"""Hosts from the environment, the way CI and an operator's shell both have them.

inventory.py (the pyinfra inventory file) calls hosts_from_env(); the rest is here so
it can be imported and tested without a host in the environment.

OCI_HOST            one host, or several separated by commas (same user and key)
OCI_USER            SSH user with passwordless sudo (default: ubuntu)
OCI_SSH_KEY         private key contents (CI secrets), or
OCI_SSH_KEY_PATH    a private key file (an operator's laptop)
OCI_SSH_PORT        default 22
OCI_SSH_KNOWN_HOSTS known_hosts file (default: ~/.ssh/known_hosts, new hosts accepted)
OCI_SSH_STRICT      yes | no | accept-new (default accept-new)

Another inventory file can be used instead: `python -m infra --inventory FILE ...`.
"""

import atexit
import os
import tempfile


class InventoryError(Exception):
    pass


def key_file(contents):
    """Write key contents to a private temp file that is removed at exit."""
    fd, path = tempfile.mkstemp(prefix="milesahead-key-")
    with os.fdopen(fd, "w") as f:
        # Secrets pasted into CI often lose their final newline; OpenSSH keys need it.
        f.write(contents.strip() + "\n")
    os.chmod(path, 0o600)
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


def hosts_from_env(environ=os.environ):
    """[(hostname, data)] for every host in OCI_HOST."""
    names = [h.strip() for h in environ.get("OCI_HOST", "").split(",") if h.strip()]
    if not names:
        raise InventoryError("OCI_HOST is not set: name the server to deploy to")
    data = {"ssh_user": environ.get("OCI_USER") or "ubuntu"}
    if environ.get("OCI_SSH_PORT"):
        try:
            data["ssh_port"] = int(environ["OCI_SSH_PORT"])
        except ValueError:
            raise InventoryError("OCI_SSH_PORT must be a number") from None
    if environ.get("OCI_SSH_KEY"):
        data["ssh_key"] = key_file(environ["OCI_SSH_KEY"])
    elif environ.get("OCI_SSH_KEY_PATH"):
        data["ssh_key"] = os.path.expanduser(environ["OCI_SSH_KEY_PATH"])
    if environ.get("OCI_SSH_KNOWN_HOSTS"):
        data["ssh_known_hosts_file"] = environ["OCI_SSH_KNOWN_HOSTS"]
    data["ssh_strict_host_key_checking"] = environ.get("OCI_SSH_STRICT") or "accept-new"
    return [(name, dict(data)) for name in names]
