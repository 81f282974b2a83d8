"""Defaults for every host. Override per run with `python -m infra --data key=value`."""

import os

from infra import secrets

# Every operation runs with sudo: the SSH user is an ordinary cloud user.
_sudo = True

app_name = "milesahead"
app_user = "milesahead"
app_root = "/opt/milesahead"
app_port = 8080
# The database is <app_root>/data/<db_name> (infra/settings.py db_path): config.yaml,
# backups, restores, deploy snapshots and status all take it from there.
db_name = "milesahead.db"

# Site address as Caddy reads it: the domain in production (automatic HTTPS),
# ":80" for a plain-HTTP host such as the test VM.
site_address = os.environ.get("SITE_ADDRESS", "milesahead.example.com")
site_base_url = os.environ.get("SITE_BASE_URL", "")

keep_releases = 5
health_timeout = 60

# Where Caddy gets the domain's certificate (ACME): empty for Caddy's default, Let's
# Encrypt. Another CA's directory URL, and the PEM file (as Caddy sees it) that signs
# that directory's own TLS when it is private (a test CA such as pebble).
acme_ca = ""
acme_ca_root = ""

# A fresh host upgrades itself after its first boot (unattended-upgrades, apt-daily:
# about 18 minutes on an OCI instance); setup waits this long for apt, then fails.
apt_lock_timeout = 1800

# The host firewall (iptables, as OCI's image has it: rules.v4 loaded by
# netfilter-persistent): setup lets readers in on these ports and nothing else.
# False: leave the firewall alone (ufw, firewalld or none: open the ports yourself).
firewall = True
firewall_ports = ["80/tcp", "443/tcp", "443/udp"]
# After setup and every deploy the toolkit asks for <public_url>/healthz from this
# machine, proving readers outside the host get in (the cloud's firewall included).
# Empty: site_base_url, else https://<domain>, else http://<host> for SITE_ADDRESS=:80.
public_url = ""
public_check = True

# caddy_mode "distro": Debian/Ubuntu's caddy package, /etc/caddy/Caddyfile importing
# caddy_sites_dir. "shared": only drop the site into caddy_sites_dir of a Caddy run by
# someone else (Docker Compose) and run their validate and reload commands.
caddy_mode = "distro"
caddy_sites_dir = ""  # empty: /etc/caddy/sites (distro), <caddy_compose_dir>/caddy-sites (shared)
# "shared": the Docker Compose project that runs that Caddy, and its service's name.
caddy_compose_dir = "/opt/fynans"
caddy_compose_service = "caddy"
caddy_shared_config = "/etc/caddy/Caddyfile"  # its config, as the container sees it
caddy_upstream = ""  # empty: 127.0.0.1:<app_port>; shared: <the Compose network's gateway>:<app_port>
# The published reader pages (the app's publish.dir) as Caddy sees them. Empty:
# <app_root>/data/public; shared: /srv/milesahead/public, where the Caddy service
# mounts <app_root>/data/public read-only (docs/toolkit.md: a shared Caddy).
caddy_public_root = ""
# How long Caddy holds a request for the app while it restarts, and how often it retries.
caddy_lb_try_duration = "10s"
caddy_lb_try_interval = "250ms"
# The Caddy the site is written for (its directives changed in 2.7): empty asks that
# Caddy (`caddy version`, in its container for "shared"); or name it, e.g. "2.11.7".
caddy_version = ""
caddy_validate_command = "caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile"
caddy_reload_command = "systemctl reload caddy"

# Grafana Alloy from Grafana's apt repository; credentials come from GRAFANA_*.
# Off with --data alloy_enabled=false, or ALLOY_ENABLED=false in the environment (the
# sandbox's exports have it: a sandbox has no Grafana Cloud account to send to).
alloy_enabled = os.environ.get("ALLOY_ENABLED", "true").lower()
if alloy_enabled not in ("true", "false"):
    raise ValueError(f"ALLOY_ENABLED={alloy_enabled!r}: give true or false")
alloy_enabled = alloy_enabled == "true"
alloy_apt_repo = "deb [signed-by=/etc/apt/keyrings/grafana.asc] https://apt.grafana.com stable main"
alloy_apt_key_url = "https://apt.grafana.com/gpg.key"  # "" for a trusted local repo

backup_cron = "17 3 * * *"
backup_keep_daily = 7
backup_keep_weekly = 4
backup_keep_predeploy = 5

# Litestream streams the database to an S3-compatible bucket (REPLICA_* in the
# environment; see infra/secrets.py). On when any of them is set; off with
# --data replica_enabled=false.
replica_enabled = secrets.replica_wanted(os.environ)
replica_sync_interval = "1s"  # how often new transactions are shipped (the lag to expect)
# How often shipped transactions are compacted (each pass lists the bucket): the
# main cost of an idle replica in requests (bench/replica_requests.py).
replica_compaction_interval = "10m"
replica_snapshot_interval = "24h"  # a full snapshot; restores replay at most this much
replica_retention = "168h"  # how far back a point-in-time restore can go (7 days)
replica_max_lag_minutes = 15  # the nightly check fails when the replica is this far behind
