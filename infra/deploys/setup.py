"""Full setup of an app host; a second run changes nothing."""

import os

from pyinfra import host

from infra import secrets
from infra.tasks import alloy, app, backup, base, caddy, replica

# Refuse before the first operation: a half-configured host is worse than none.
secrets.check(os.environ, alloy_enabled=host.data.alloy_enabled, replica_enabled=host.data.replica_enabled)

base.user_and_layout()
app.config_and_service()
caddy.site()
if host.data.alloy_enabled:
    alloy.alloy()
replica.litestream()
backup.cron_job()
