"""Build the release for each host's CPU and python3 (or take `release_archive`), ship it, switch, gate, roll back."""

from pyinfra import host

from infra import release
from infra.tasks.ship import deploy_release

deploy_release(source=host.data.get("release_source") or release.ROOT, archive=host.data.get("release_archive"))
