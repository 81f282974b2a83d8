"""Smoke test of the VM lane itself: the guest looks like the server the toolkit expects."""

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


def test_apt_reaches_the_mirror(vm):
    vm.ssh("sudo apt-get update -q", timeout=300)
    assert "openssh-server" in vm.ssh("apt-cache policy openssh-server").stdout


def test_guest_reaches_the_alloy_standin_repo_on_the_host(vm, alloy_repo):
    # 10.0.2.2 is the host's loopback as seen from a QEMU user-network guest.
    packages = vm.ssh(f"curl -fsS http://10.0.2.2:{alloy_repo.port}/Packages").stdout
    assert "Package: alloy" in packages
    assert "GET /Packages" in alloy_repo.log_path.read_text()
