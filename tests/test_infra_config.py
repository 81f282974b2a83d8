"""Rendering: config.yaml from secrets (read back by the app's own loader), unit, Caddy, Alloy, cron."""

from pathlib import Path

import jinja2
import pytest

import config as configuration
from infra import secrets
from infra.tasks import TEMPLATES, caddy

ROOT = Path(__file__).resolve().parent.parent

HASH = "$2b$12$" + "a" * 53
ENV = {
    "ADMIN_PASSWORD_HASH": HASH,
    "NVIDIA_API_KEY": "nvapi-x'y\"z #not-a-comment $HOME {}: - [",
    "UNSPLASH_KEY": "u-key",
    "GRAFANA_API_KEY": "glc_key",
}


def render(name, **context):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    return env.get_template(name).render(**context)


def render_config(tmp_path, environ=ENV):
    text = render(
        "config.yaml.j2",
        s=secrets.values(environ),
        base_url="https://milesahead.example.com",
        app_user="milesahead",
        app_root="/opt/milesahead",
        db_path="/opt/milesahead/data/milesahead.db",
        app_port=8080,
        app_listen="127.0.0.1",
        trusted_proxy="127.0.0.1",
        backup_keep_daily=7,
        backup_keep_weekly=4,
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_config_carries_every_secret_exactly(tmp_path):
    # No environment at load time: the file holds the values, not ${VAR} references.
    cfg = configuration.load_config(str(render_config(tmp_path)), environ={})
    assert cfg["admin"]["password_hash"] == HASH
    assert cfg["llm"]["api_key"] == ENV["NVIDIA_API_KEY"]
    assert cfg["images"]["unsplash"]["key"] == "u-key"
    assert cfg["images"]["pexels"]["key"] == ""  # optional and unset
    assert cfg["database"]["path"] == "/opt/milesahead/data/milesahead.db"
    assert cfg["server"] == cfg["server"] | {"host": "127.0.0.1", "port": 8080}


def test_session_secret_is_the_apps_own_file_unless_one_is_given(tmp_path):
    # Empty in config: the app generates <database dir>/session_secret, as `make run` does,
    # so deleting that file (and restarting) logs everyone out on the server too.
    cfg = configuration.load_config(str(render_config(tmp_path)), environ={})
    assert cfg["admin"]["session_secret"] == ""
    assert secrets.values(ENV | {"SESSION_SECRET": "given"})["SESSION_SECRET"] == "given"


def test_unit_is_hardened_and_runs_the_current_release():
    unit = render(
        "milesahead.service.j2",
        app_name="milesahead",
        app_user="milesahead",
        app_root="/opt/milesahead",
        after_docker=False,
    )
    for line in (
        "User=milesahead",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/opt/milesahead/data /opt/milesahead/backups",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
        "Restart=on-failure",
        "Environment=PYTHONPATH=/opt/milesahead/current/vendor",
        "ExecStart=/usr/bin/python3 /opt/milesahead/current/app.py --config /opt/milesahead/config.yaml serve",
    ):
        assert line in unit.splitlines()


@pytest.mark.parametrize("address, hsts", [("milesahead.example.com", True), (":80", False)])
def test_caddy_site_headers_compression_and_no_metrics(address, hsts):
    site = render(
        "site.caddy.j2",
        site_address=address,
        https=hsts,
        upstream="127.0.0.1:8080",
        public_root="/opt/milesahead/data/public",
        lb_try_duration="10s",
        lb_try_interval="250ms",
        request_buffering="buffer_requests",
        acme_ca="",
        acme_ca_root="",
    )
    assert site.startswith("# Managed") and f"\n{address} {{" in site
    assert "encode zstd gzip" in site
    assert "respond @metrics 404" in site and "@metrics path /metrics /metrics/*" in site
    assert 'X-Content-Type-Options "nosniff"' in site
    assert ("Strict-Transport-Security" in site) is hsts
    assert site.index("respond @metrics") < site.index("reverse_proxy 127.0.0.1:8080")


@pytest.mark.parametrize(
    "answer, directive",
    [
        ("2.6.2", "buffer_requests"),  # Debian's `caddy version`
        ("2.6.2-5", "buffer_requests"),  # apt's candidate, before it is installed
        ("v2.7.6 h1:w0NymbG2m9PcvKWsrXO6EEkY9Ru4FJK8uQbYcev1p3A=", "request_buffers unlimited"),
        ("v2.11.7 h1:yj0Y4fYZGPkSvibBJ1sTWE33xC0fxztVyXEW5iIdUT4=", "request_buffers unlimited"),
        ("v3.0.0", "request_buffers unlimited"),
    ],
)
def test_the_site_keeps_request_bodies_in_the_words_of_the_caddy_it_meets(answer, directive):
    assert caddy.request_buffering(answer) == directive


def test_an_unreadable_caddy_version_is_refused_with_what_it_said():
    with pytest.raises(ValueError, match="Error: no such service"):
        caddy.request_buffering("Error: no such service: caddy")


def test_alloy_config_takes_credentials_from_the_environment_only():
    alloy = render("config.alloy.j2", app_name="milesahead", app_port=8080, inventory_hostname="web1")
    assert 'metrics_path    = "/metrics"' in alloy and "127.0.0.1:8080" in alloy
    assert 'matches    = "_SYSTEMD_UNIT=milesahead.service"' in alloy
    assert alloy.count('sys.env("GRAFANA_API_KEY")') == 2
    env_file = render("alloy.env.j2", s=secrets.values(ENV))
    assert "GRAFANA_API_KEY=glc_key" in env_file.splitlines()


def test_cron_runs_the_backup_as_the_app_user():
    cron = render(
        "cron.j2",
        backup_cron="17 3 * * *",
        app_user="milesahead",
        app_root="/opt/milesahead",
        replica_max_lag_minutes=15,
    )
    # How many copies are kept is the config's backup section, not the cron line.
    line = "17 3 * * * milesahead REPLICA_MAX_LAG_MINUTES=15 /opt/milesahead/bin/backup.sh daily"
    assert line in cron.splitlines()


def test_templates_all_say_they_are_managed():
    for path in TEMPLATES.iterdir():
        assert "Managed by milesahead's toolkit" in path.read_text(), path.name
    assert (ROOT / "infra" / "files" / "backup.sh").stat().st_mode & 0o111
