"""Full setup of an app host; a second run changes nothing."""

import os

from pyinfra import host

from infra import secrets
from infra.tasks import alloy, app, backup, base, caddy, firewall, preflight, replica

# Refuse before the first operation: a half-configured host is worse than none.
secrets.check(os.environ, alloy_enabled=host.data.alloy_enabled, replica_enabled=host.data.replica_enabled)
preflight.check()

base.user_and_layout()
app.config_and_service()
base.wait_for_apt(name="Wait for apt (before Caddy)", timeout=host.data.apt_lock_timeout)
caddy.site()
firewall.readers()
if host.data.alloy_enabled:
    base.wait_for_apt(name="Wait for apt (before Alloy)", timeout=host.data.apt_lock_timeout)
    alloy.alloy()
replica.litestream()
backup.cron_job()
