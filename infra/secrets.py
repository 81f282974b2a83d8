"""What `setup` needs from the operator's environment, checked before any connection.

Required, because the site is broken without them:
  ADMIN_PASSWORD_HASH  bcrypt hash of the editor's password (`python app.py hash-password`)
  NVIDIA_API_KEY       the pipeline's LLM key; without it no article is ever written
  GRAFANA_*            when Alloy is enabled (the default): without them monitoring is blind
  REPLICA_*            when replication is enabled, which it is as soon as one of them is
                       set: the bucket Litestream streams the database to (a half-set
                       bucket is refused rather than silently not replicating)
Optional: UNSPLASH_KEY, PEXELS_KEY, PIXABAY_KEY (a source without a key is skipped),
SESSION_SECRET (default: none in config.yaml, so the app generates
<data>/session_secret once, as `make run` does: deleting that file and restarting logs
everyone out, on the server as on a laptop).
"""

import re

REQUIRED = ("ADMIN_PASSWORD_HASH", "NVIDIA_API_KEY")
OPTIONAL = ("UNSPLASH_KEY", "PEXELS_KEY", "PIXABAY_KEY", "SESSION_SECRET")
GRAFANA = (
    "GRAFANA_API_KEY",
    "GRAFANA_PROM_URL",
    "GRAFANA_PROM_USER",
    "GRAFANA_LOKI_URL",
    "GRAFANA_LOKI_USER",
)
# The replica's bucket (S3-compatible: OCI Object Storage, or rclone in the tests).
REPLICA = (
    "REPLICA_ENDPOINT",
    "REPLICA_BUCKET",
    "REPLICA_PATH",
    "REPLICA_REGION",
    "REPLICA_ACCESS_KEY_ID",
    "REPLICA_SECRET_ACCESS_KEY",
)
# Masked in output; the bucket's name and path are not secret (and mask() would
# replace them inside ordinary words such as "milesahead").
REPLICA_SECRETS = ("REPLICA_ACCESS_KEY_ID", "REPLICA_SECRET_ACCESS_KEY")
BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")


class SecretError(Exception):
    pass


def required(alloy_enabled=True, replica_enabled=False):
    return REQUIRED + (GRAFANA if alloy_enabled else ()) + (REPLICA if replica_enabled else ())


def replica_wanted(environ):
    """Replication is on by default as soon as the operator set any REPLICA_* variable."""
    return any(environ.get(name) for name in REPLICA)


def check(environ, alloy_enabled=True, replica_enabled=False):
    """Raise SecretError naming every missing or malformed variable."""
    missing = [name for name in required(alloy_enabled, replica_enabled) if not environ.get(name)]
    if missing:
        raise SecretError(
            "missing required secret(s): " + ", ".join(missing) + " (set them in the environment; see docs/toolkit.md)"
        )
    # The app's config loader reads ${NAME} as a variable reference, with no escape.
    braced = [name for name in REQUIRED + OPTIONAL + GRAFANA if "${" in environ.get(name, "")]
    if braced:
        raise SecretError(f"{', '.join(braced)}: contains '${{', which config.yaml would read as a variable")
    endpoint = environ.get("REPLICA_ENDPOINT", "")
    if replica_enabled and not endpoint.startswith(("https://", "http://")):
        raise SecretError(
            "REPLICA_ENDPOINT must be a URL starting with https:// (for OCI:"
            " https://<namespace>.compat.objectstorage.<region>.oraclecloud.com)"
        )
    if not BCRYPT.match(environ["ADMIN_PASSWORD_HASH"]):
        raise SecretError("ADMIN_PASSWORD_HASH is not a bcrypt hash (make one with `python app.py hash-password`)")


def values(environ):
    """The secrets as template variables (every name present, optional ones may be '')."""
    names = REQUIRED + OPTIONAL + GRAFANA + REPLICA
    return {name: environ.get(name, "") for name in names}


def mask(text, environ):
    """Replace every secret value in `text` with ***: for anything we print ourselves."""
    for name in REQUIRED + OPTIONAL + GRAFANA + REPLICA_SECRETS:
        value = environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, f"***{name}***")
    return text
