"""Secrets: required ones are named when missing, before any host is contacted; values never printed."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra import secrets

ROOT = Path(__file__).resolve().parent.parent

HASH = "$2b$12$" + "a" * 53
FULL = {
    "ADMIN_PASSWORD_HASH": HASH,
    "NVIDIA_API_KEY": "nvapi-1",
    "GRAFANA_API_KEY": "glc",
    "GRAFANA_PROM_URL": "https://p",
    "GRAFANA_PROM_USER": "1",
    "GRAFANA_LOKI_URL": "https://l",
    "GRAFANA_LOKI_USER": "2",
}


def test_a_complete_environment_passes():
    secrets.check(FULL)
    secrets.check({"ADMIN_PASSWORD_HASH": HASH, "NVIDIA_API_KEY": "k"}, alloy_enabled=False)


@pytest.mark.parametrize("name", sorted(FULL))
def test_each_missing_required_secret_is_named(name):
    env = dict(FULL)
    env[name] = ""  # empty counts as missing: an unset CI secret arrives as ""
    with pytest.raises(secrets.SecretError, match=name):
        secrets.check(env)


def test_image_keys_are_optional():
    assert not {"UNSPLASH_KEY", "PEXELS_KEY", "PIXABAY_KEY"} & set(secrets.required())


def test_a_password_instead_of_a_hash_is_refused():
    with pytest.raises(secrets.SecretError, match="not a bcrypt hash"):
        secrets.check(FULL | {"ADMIN_PASSWORD_HASH": "hunter2"})


def test_a_secret_the_config_loader_would_expand_is_refused():
    with pytest.raises(secrets.SecretError, match="NVIDIA_API_KEY"):
        secrets.check(FULL | {"NVIDIA_API_KEY": "abc${HOME}"})


def test_mask_hides_every_secret_value():
    env = FULL | {"UNSPLASH_KEY": "unsplash-secret"}
    line = f"config {HASH} key nvapi-1x unsplash-secret grafana glc_"
    masked = secrets.mask(line, env)
    assert HASH not in masked and "unsplash-secret" not in masked
    assert "***ADMIN_PASSWORD_HASH***" in masked


def toolkit(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "infra", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_setup_with_a_missing_secret_stops_before_connecting():
    # 192.0.2.1 is TEST-NET-1: a connection attempt would hang, not fail fast.
    env = {k: v for k, v in os.environ.items() if k not in FULL} | {"OCI_HOST": "192.0.2.1"}
    env |= {k: v for k, v in FULL.items() if k != "NVIDIA_API_KEY"}
    started = time.monotonic()
    result = toolkit("setup", env=env)
    assert result.returncode != 0
    assert "NVIDIA_API_KEY" in result.stderr
    assert "before connecting" in result.stderr
    assert "Connecting" not in result.stdout + result.stderr
    assert time.monotonic() - started < 30
