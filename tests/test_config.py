"""Config: every key optional, ${VAR} interpolation, errors that name the file and key."""

import pytest
from helpers import write_config

import config as configuration


def test_no_config_at_all_runs_on_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MILESAHEAD_CONFIG", raising=False)
    cfg = configuration.load_config()
    assert cfg["database"]["path"] == "data/milesahead.db"
    assert cfg["server"]["port"] == 8080
    assert cfg["site"]["persona_name"] == "Scout"


def test_file_values_override_defaults_and_keep_the_rest(tmp_path):
    path = write_config(tmp_path, "site:\n  persona_name: Pathfinder\nserver:\n  port: 9001\n")
    cfg = configuration.load_config(str(path))
    assert cfg["site"]["persona_name"] == "Pathfinder"
    assert cfg["server"]["port"] == 9001
    assert cfg["server"]["host"] == "127.0.0.1"


def test_env_interpolation_with_and_without_fallback(tmp_path):
    path = write_config(tmp_path, "llm:\n  api_key: ${KEY}\nimages:\n  pexels:\n    key: ${PEXELS:-none}\n")
    cfg = configuration.load_config(str(path), environ={"KEY": "secret"})
    assert cfg["llm"]["api_key"] == "secret"
    assert cfg["images"]["pexels"]["key"] == "none"


def test_missing_env_variable_names_the_variable_key_and_file(tmp_path):
    path = write_config(tmp_path, "admin:\n  password_hash: ${ADMIN_PASSWORD_HASH}\n")
    with pytest.raises(configuration.ConfigError) as e:
        configuration.load_config(str(path), environ={})
    assert "ADMIN_PASSWORD_HASH" in str(e.value)
    assert "admin.password_hash" in str(e.value)
    assert str(path) in str(e.value)


def test_numbers_from_env_are_coerced(tmp_path):
    path = write_config(tmp_path, "server:\n  port: ${PORT}\n")
    assert configuration.load_config(str(path), environ={"PORT": "9100"})["server"]["port"] == 9100


@pytest.mark.parametrize(
    "text, key",
    [
        ("server:\n  port: eighty\n", "server.port"),
        ("site: [1, 2]\n", "site"),
        ("site:\n  titel: typo\n", "site.titel"),
        ("server:\n  trust_proxy_headers: maybe\n", "server.trust_proxy_headers"),
    ],
)
def test_wrong_type_or_unknown_key_names_file_and_key(tmp_path, text, key):
    path = write_config(tmp_path, text)
    with pytest.raises(configuration.ConfigError) as e:
        configuration.load_config(str(path))
    assert f"'{key}'" in str(e.value)
    assert str(path) in str(e.value)


def test_malformed_yaml_names_the_file(tmp_path):
    path = write_config(tmp_path, "site:\n  title: [unclosed\n")
    with pytest.raises(configuration.ConfigError) as e:
        configuration.load_config(str(path))
    assert str(path) in str(e.value)
    assert "YAML" in str(e.value)


def test_missing_file_is_an_error_not_silent_defaults(tmp_path):
    with pytest.raises(configuration.ConfigError, match="not found"):
        configuration.load_config(str(tmp_path / "nope.yaml"))


def test_example_config_documents_and_loads_every_key(tmp_path):
    """config.example.yaml must load (with its env vars set) and mention every key."""
    import os

    import yaml

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    example = os.path.join(root, "config.example.yaml")
    environ = {
        name: "x"
        for name in (
            "NVIDIA_API_KEY",
            "ADMIN_PASSWORD_HASH",
            "UNSPLASH_KEY",
            "PEXELS_KEY",
            "PIXABAY_KEY",
        )
    }
    environ["MILESAHEAD_SESSION_SECRET"] = "s" * 32  # a shorter one is refused
    configuration.load_config(example, environ=environ)
    with open(example) as f:
        documented = yaml.safe_load(f)

    def keys(tree, prefix=""):
        for k, v in tree.items():
            dotted = f"{prefix}.{k}" if prefix else k
            yield dotted
            if isinstance(v, dict):
                yield from keys(v, dotted)

    missing = set(keys(configuration.DEFAULTS)) - set(keys(documented))
    assert not missing, f"config.example.yaml does not document: {sorted(missing)}"


@pytest.mark.parametrize(
    "yaml, key, expected",
    [
        ("server:\n  port: 99999\n", "server.port", "a port between 1 and 65535, got 99999"),
        ("server:\n  port: 0\n", "server.port", "a port between 1 and 65535, got 0"),
        ("server:\n  threads: 0\n", "server.threads", "at least 1"),
        ("server:\n  max_body_bytes: 0\n", "server.max_body_bytes", "at least 1"),
        ("admin:\n  session_hours: 0\n", "admin.session_hours", "more than 0"),
        ("admin:\n  session_hours: -3\n", "admin.session_hours", "more than 0"),
        ("admin:\n  max_login_failures: 0\n", "admin.max_login_failures", "at least 1"),
        ("admin:\n  max_password_checks_per_minute: 0\n", "admin.max_password_checks_per_minute", "at least 1"),
        ("admin:\n  session_secret: x\n", "admin.session_secret", "at least 32 bytes"),
    ],
)
def test_values_that_cannot_work_are_refused_at_load(tmp_path, yaml, key, expected):
    path = write_config(tmp_path, yaml)
    with pytest.raises(configuration.ConfigError) as e:
        configuration.load_config(str(path))
    assert f"{path}: key '{key}' must be {expected}" in str(e.value)


def test_a_short_session_secret_is_not_echoed_and_a_long_one_is_kept(tmp_path):
    with pytest.raises(configuration.ConfigError) as e:
        configuration.load_config(str(write_config(tmp_path, "admin:\n  session_secret: hunter2\n")))
    assert "hunter2" not in str(e.value) and "got 7 bytes" in str(e.value)
    secret = "k" * 32
    cfg = configuration.load_config(str(write_config(tmp_path, f"admin:\n  session_secret: {secret}\n")))
    assert cfg["admin"]["session_secret"] == secret
