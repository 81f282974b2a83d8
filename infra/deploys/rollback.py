"""Switch back to the previous release, or to `--data rollback_to=ID`; no rebuild."""

from pyinfra import host

from infra.tasks.ship import rollback

rollback(target=host.data.get("rollback_to") or None)
