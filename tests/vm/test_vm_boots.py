"""Smoke test of the VM lane itself: the guest looks like the server the toolkit expects.

That server is a fresh OCI instance: its firewall rejects everything but SSH, and it
upgrades itself after its first boot, holding the dpkg lock (README: A host shaped like OCI's).
"""

import time

import pytest

pytestmark = pytest.mark.vm


def test_systemd_is_running(vm):
    state = vm.ssh("systemctl is-system-running --wait", check=False).stdout.strip()
    assert state in ("running", "degraded"), vm.ssh("systemctl --failed", check=False).stdout


def test_ssh_sudo_and_python(vm):
    assert vm.ssh("whoami").stdout.strip() == "ubuntu"
    assert vm.ssh("sudo -n whoami").stdout.strip() == "root"  # NOPASSWD, no tty
    assert vm.ssh("python3 --version").stdout.startswith("Python 3.")


def test_inventory_env_points_at_the_guest(vm):
    env = vm.inventory_env()
    assert env["OCI_HOST"] == "127.0.0.1"
    assert env["OCI_USER"] == "ubuntu"
    assert env["OCI_SSH_PORT"] == str(vm.ssh_port)


def test_the_guest_has_ocis_firewall_loaded_at_boot(vm):
    rules = vm.ssh("sudo iptables -S INPUT").stdout.splitlines()
    assert "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT" in rules
    assert "-A INPUT -j REJECT --reject-with icmp-host-prohibited" in rules
    assert "-A INPUT -j REJECT --reject-with icmp-host-prohibited" in vm.ssh("cat /etc/iptables/rules.v4").stdout
    assert vm.ssh("systemctl is-enabled netfilter-persistent.service").stdout.strip() == "enabled"


def test_first_boot_upgrades_the_pending_package_then_apt_is_free(vm):
    # unattended-upgrades, started by apt-daily-upgrade.timer after boot, installs the
    # stand-in upgrade (its postinst holds the dpkg lock for a while). Wait it out.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        version = vm.ssh("dpkg-query -W -f '${Version}' testvm-pending-upgrade").stdout
        busy = vm.ssh("systemctl is-active apt-daily.service apt-daily-upgrade.service", check=False).stdout.split()
        if version == "2" and "activating" not in busy:
            break
        time.sleep(5)
    assert version == "2"
    assert "testvm-pending-upgrade" in vm.ssh("sudo cat /var/log/unattended-upgrades/unattended-upgrades.log").stdout


def test_guest_reaches_the_alloy_standin_repo_on_the_host(vm, alloy_repo):
    # 10.0.2.2 is the host's loopback as seen from a QEMU user-network guest.
    packages = vm.ssh(f"curl -fsS http://10.0.2.2:{alloy_repo.port}/Packages").stdout
    assert "Package: alloy" in packages
    assert "GET /Packages" in alloy_repo.log_path.read_text()
