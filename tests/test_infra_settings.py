"""One source for the deploy's facts: group data, with --data applied as pyinfra applies it."""

import pytest

from infra import settings


def test_group_data_and_overrides():
    d = settings.load(["app_root=/srv/site", "keep_releases=9", "firewall=false", 'firewall_ports=["80/tcp"]'])
    assert (d.app_root, d.keep_releases, d.firewall, d.firewall_ports) == ("/srv/site", 9, False, ["80/tcp"])
    assert settings.db_path(d) == "/srv/site/data/milesahead.db"
    assert settings.db_path(settings.load()) == "/opt/milesahead/data/milesahead.db"


def test_a_data_item_without_a_value_is_refused():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        settings.load(["app_root"])


@pytest.mark.parametrize(
    "data, public",
    [
        (["site_address=:80"], "http://203.0.113.10"),
        (["site_address=:8080"], "http://203.0.113.10:8080"),
        (["site_address=milesahead.example.com"], "https://milesahead.example.com"),
        (["site_address=:80", "site_base_url=https://miles.example/"], "https://miles.example"),
        (["site_address=:80", "public_url=http://127.0.0.1:4242/"], "http://127.0.0.1:4242"),
    ],
)
def test_where_readers_reach_the_site(data, public):
    assert settings.public_url(settings.load(data), "203.0.113.10") == public


@pytest.mark.parametrize("value, enabled", [(None, True), ("true", True), ("false", False), ("FALSE", False)])
def test_alloy_from_the_environment(monkeypatch, value, enabled):
    # The sandbox's exports turn it off (a sandbox has no Grafana account to send to).
    if value is None:
        monkeypatch.delenv("ALLOY_ENABLED", raising=False)
    else:
        monkeypatch.setenv("ALLOY_ENABLED", value)
    assert settings.load().alloy_enabled is enabled
    assert settings.load(["alloy_enabled=true"]).alloy_enabled is True  # --data still decides


def test_alloy_enabled_must_say_true_or_false(monkeypatch):
    monkeypatch.setenv("ALLOY_ENABLED", "no")
    with pytest.raises(ValueError, match="ALLOY_ENABLED='no': give true or false"):
        settings.load()
