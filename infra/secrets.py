"""What `setup` needs from the operator's environment, checked before any connection.

Required, because the site is broken without them:
  ADMIN_PASSWORD_HASH  bcrypt hash of the editor's password (`python app.py hash-password`)
  NVIDIA_API_KEY       the pipeline's LLM key; without it no article is ever written
  GRAFANA_*            when Alloy is enabled (the default): without them monitoring is blind
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
BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")


class SecretError(Exception):
    pass


def required(alloy_enabled=True):
    return REQUIRED + (GRAFANA if alloy_enabled else ())


def check(environ, alloy_enabled=True):
    """Raise SecretError naming every missing or malformed variable."""
    missing = [name for name in required(alloy_enabled) if not environ.get(name)]
    if missing:
        raise SecretError(
            "missing required secret(s): "
            + ", ".join(missing)
            + " (set them in the environment; see the README, Operating the toolkit)"
        )
    # The app's config loader reads ${NAME} as a variable reference, with no escape.
    braced = [name for name in REQUIRED + OPTIONAL + GRAFANA if "${" in environ.get(name, "")]
    if braced:
        raise SecretError(f"{', '.join(braced)}: contains '${{', which config.yaml would read as a variable")
    if not BCRYPT.match(environ["ADMIN_PASSWORD_HASH"]):
        raise SecretError("ADMIN_PASSWORD_HASH is not a bcrypt hash (make one with `python app.py hash-password`)")


def values(environ):
    """The secrets as template variables (every name present, optional ones may be '')."""
    names = REQUIRED + OPTIONAL + GRAFANA
    return {name: environ.get(name, "") for name in names}


def mask(text, environ):
    """Replace every secret value in `text` with ***: for anything we print ourselves."""
    for name in REQUIRED + OPTIONAL + GRAFANA:
        value = environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, f"***{name}***")
    return text
