"""Configuration: one YAML file, every key optional, defaults that work.

The file is found by `--config PATH`, else `$MILESAHEAD_CONFIG`, else `./config.yaml`;
with none of them the defaults below run the site on ./data/milesahead.db, port 8080.

Values may name environment variables: `${VAR}` (an error when VAR is unset) or
`${VAR:-fallback}`. Every error names the file and the key, because an operator
reading "bad config" at 3am needs to know where to look.
"""

import copy
import os
import re

import yaml

DEFAULTS = {
    "site": {
        "title": "milesahead",
        "description": "Credit-card points and miles news, checked by an editor.",
        "base_url": "http://127.0.0.1:8080",
        "persona_name": "Scout",
    },
    "server": {
        "host": "127.0.0.1",
        "port": 8080,
        "threads": 8,
        "max_body_bytes": 1_000_000,
        "trust_proxy_headers": False,
    },
    "database": {
        "path": "data/milesahead.db",
    },
    "admin": {
        "password_hash": "",
        "session_secret": "",
        "session_hours": 12,
        "max_login_failures": 5,
        "max_password_checks_per_minute": 30,
        "api_token": "",
    },
    "llm": {
        "base_url": "https://integrate.api.nvidia.com/v1",
        "api_key": "",
        "timeout_seconds": 60,
        "max_retries": 3,
        "backoff_seconds": 2.0,
        "max_wait_seconds": 60.0,
        "cache_dir": "data/llm-cache",
        "models": {
            "generator": "nvidia/llama-3.3-nemotron-super-49b-v1.5",
            "critic": "meta/llama-3.3-70b-instruct",
            "image_filter": "meta/llama-3.3-70b-instruct",
            "vision": "meta/llama-3.2-90b-vision-instruct",
        },
    },
    "images": {
        "score_floor": 6,
        "per_source": 3,
        "max_candidates": 15,
        "vision_top": 5,
        "timeout_seconds": 15,
        "budget_seconds": 90,
        "max_image_bytes": 5_000_000,
        "unsplash": {"key": "", "base_url": "https://api.unsplash.com"},
        "pexels": {"key": "", "base_url": "https://api.pexels.com"},
        "pixabay": {"key": "", "base_url": "https://pixabay.com"},
        "openverse": {"base_url": "https://api.openverse.org"},
        "wikimedia": {"base_url": "https://commons.wikimedia.org"},
    },
    "pipeline": {
        "schedule_minutes": 0,
        "window_hours": 72,
        "cluster_threshold": 0.3,
        "min_sites": 2,
        "max_stories_per_run": 5,
        "fetch_timeout_seconds": 20,
        "fetch_budget_seconds": 120,
        "story_budget_seconds": 600,
        "deal_keywords": [
            "bonus",
            "offer",
            "limited time",
            "elevated",
            "points",
            "miles",
            "statement credit",
            "cash back",
            "sale",
            "discount",
        ],
        "feeds": [],
    },
    "publish": {
        "dir": "",
    },
    "backup": {
        "dir": "backups",
        "keep_daily": 7,
        "keep_weekly": 4,
    },
}

# Values of the right type that still cannot work: key -> (test, what the value must be).
LIMITS = {
    "server.port": (lambda v: 1 <= v <= 65535, "a port between 1 and 65535"),
    "server.threads": (lambda v: v >= 1, "at least 1"),
    "server.max_body_bytes": (lambda v: v >= 1, "at least 1 (bytes)"),
    "admin.session_hours": (lambda v: v > 0, "more than 0"),
    "admin.max_login_failures": (lambda v: v >= 1, "at least 1"),
    "admin.max_password_checks_per_minute": (lambda v: v >= 1, "at least 1"),
    # A short key lets anyone who guesses it forge a session cookie.
    "admin.session_secret": (
        lambda v: not v or len(v.encode()) >= 32,
        "at least 32 bytes (make one with `openssl rand -hex 32`), or empty to have one generated",
    ),
}

ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


def find_config_path(path=None):
    """The file to read, or None when running on defaults alone."""
    if path:
        return path
    if os.environ.get("MILESAHEAD_CONFIG"):
        return os.environ["MILESAHEAD_CONFIG"]
    if os.path.exists("config.yaml"):
        return "config.yaml"
    return None


def load_config(path=None, environ=None):
    """Read, interpolate, type-check and merge a config file over DEFAULTS."""
    environ = os.environ if environ is None else environ
    path = find_config_path(path)
    config = copy.deepcopy(DEFAULTS)
    config["_path"] = path
    if path is None:
        return config
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; name the YAML file itself (config.yaml)") from None
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the config file ({e.strerror}); make it readable by this user"
        ) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if raw is None:
        return config
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    raw = _interpolate(raw, environ, path, "")
    _merge(config, raw, DEFAULTS, path, "")
    for key, (test, expected) in LIMITS.items():
        section, name = key.split(".")
        value = config[section][name]
        if not test(value):
            got = (
                f"{len(value.encode())} bytes" if key == "admin.session_secret" else repr(value)
            )  # never echo a secret
            raise ConfigError(f"{path}: key '{key}' must be {expected}, got {got}")
    return config


def _interpolate(value, environ, path, key):
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, path, _join(key, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match):
        name, fallback = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if fallback is not None:
            return fallback
        raise ConfigError(f"{path}: key '{key}' uses ${{{name}}} but the environment variable {name} is not set")

    return ENV_PATTERN.sub(replace, value)


def _merge(config, raw, defaults, path, prefix):
    for key, value in raw.items():
        dotted = _join(prefix, str(key))
        if key not in defaults:
            raise ConfigError(f"{path}: unknown key '{dotted}'")
        default = defaults[key]
        if isinstance(default, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: key '{dotted}' must be a mapping, got {type(value).__name__}")
            _merge(config[key], value, default, path, dotted)
        else:
            config[key] = _coerce(value, default, path, dotted)


def _coerce(value, default, path, key):
    """Accept the default's type; numbers and booleans may arrive as strings from ${VAR}."""
    expected = type(default)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and expected in (int, float):
        try:
            return expected(value)
        except ValueError:
            pass
    if isinstance(value, str) and expected is bool and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if value is None and expected is str:
        return ""
    raise ConfigError(f"{path}: key '{key}' must be {_type_name(expected)}, got {value!r}")


def _type_name(t):
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list"}.get(
        t, t.__name__
    )


def _join(prefix, key):
    return f"{prefix}.{key}" if prefix else key
