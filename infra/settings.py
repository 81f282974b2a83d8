"""The deploy's facts as the operator's machine sees them: group data plus --data overrides.

pyinfra reads group_data/all.py for the operations that run on a host; the commands
that only run one shell line there (status, logs, backup, fetch-backup, unlock) and the
final public check read the same file here, with `--data KEY=VALUE` applied the way
pyinfra applies it, so app_root and the database path are written down once.
"""

import json
from pathlib import Path
from types import ModuleType, SimpleNamespace

GROUP_DATA = Path(__file__).resolve().parent / "group_data" / "all.py"


def parse_cli_arg(value):
    """A --data value as pyinfra reads it (pyinfra_cli.util.parse_cli_arg, which cannot
    be imported here: importing pyinfra_cli monkey-patches the whole process with gevent)."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return json.loads(value)
    except ValueError:
        return value


def load(data_items=()):
    """group_data/all.py's values, with every `KEY=VALUE` in data_items applied."""
    namespace = {"__file__": str(GROUP_DATA)}
    exec(compile(GROUP_DATA.read_text(), str(GROUP_DATA), "exec"), namespace)
    values = {k: v for k, v in namespace.items() if not k.startswith("_") and not isinstance(v, ModuleType)}
    for item in data_items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--data {item!r}: expected KEY=VALUE")
        values[key] = parse_cli_arg(value)
    return SimpleNamespace(**values)


def db_path(d):
    """The live database: one name, under the data directory of app_root."""
    return f"{d.app_root}/data/{d.db_name}"


def base_url(d, host_name):
    """The site's public base URL (sitemap, feed, robots.txt): site_base_url when set,
    else from SITE_ADDRESS: a domain is https://domain, ":80" is http://<host name>."""
    if d.site_base_url:
        return d.site_base_url.rstrip("/")
    address = d.site_address
    if address.startswith(("http://", "https://")):
        return address.rstrip("/")
    if address.startswith(":"):
        return f"http://{host_name}{'' if address == ':80' else address}"
    return f"https://{address}"


def public_url(d, host_name):
    """Where readers reach the site from outside: public_url, else the base URL."""
    return (d.public_url or base_url(d, host_name)).rstrip("/")
