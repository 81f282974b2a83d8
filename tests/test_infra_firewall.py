"""The firewall steps, run by real iptables against OCI's rules in a private network namespace.

`unshare --net` gives each test a netfilter of its own (root, as CI runs): the host's
firewall is never touched. The rules file is a temporary copy of the one the VM image
writes (infra/files/build-image.sh), so these are OCI's lines, byte for byte.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.tasks import firewall

ROOT = Path(__file__).resolve().parent.parent
HTTP = firewall.rule_spec(firewall.READER_PORTS["80/tcp"])
HTTP3 = firewall.rule_spec(firewall.READER_PORTS["443/udp"])
REJECT = "-A INPUT -j REJECT --reject-with icmp-host-prohibited"


def oci_rules():
    script = (ROOT / "infra" / "files" / "build-image.sh").read_text()
    body = script.split("oci_rules_v4() {", 1)[1].split("RULES\n}", 1)[0]
    return body.split("<<'RULES'\n", 1)[1]


@pytest.fixture
def rules(tmp_path):
    if shutil.which("iptables") is None or shutil.which("unshare") is None:
        pytest.fail("iptables and unshare are needed: run scripts/system-deps.sh")
    path = tmp_path / "rules.v4"
    path.write_text(oci_rules())
    return path


def in_netns(rules, *commands):
    """Boot a fresh namespace with `rules` loaded (as netfilter-persistent does), run the
    commands there, one after another; return each one's output."""
    marker = "@@@"
    script = f"iptables-restore < {rules}; " + "".join(f"{c}; echo {marker}; " for c in commands)
    result = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [part.strip() for part in result.stdout.split(marker)[:-1]]


def where(rules, *before, spec=HTTP):
    """The fact's answer after running `before`: {"live": ..., "file": ...}."""
    output = in_netns(rules, *before, firewall.InputRule().command(spec, path=rules))[-1]
    return firewall.InputRule().process(output.splitlines())


def input_rules(output):
    return [line for line in output.splitlines() if line.startswith("-A INPUT")]


def test_on_ocis_rules_a_reader_port_is_missing_live_and_in_the_file(rules):
    assert where(rules) == {"live": "missing", "file": "missing"}


def test_the_rule_goes_just_before_the_reject_live_and_in_the_file(rules):
    live = in_netns(
        rules,
        firewall.insert_live_command(HTTP),
        firewall.insert_file_command(HTTP, path=rules),
        "iptables -S INPUT",
    )[-1]
    assert input_rules(live)[-2:] == [f"-A INPUT {HTTP}", REJECT]
    lines = rules.read_text().splitlines()
    assert lines[lines.index(REJECT) - 1] == f"-A INPUT {HTTP}"
    # Nothing else in OCI's file changed: it is the original with one line more.
    assert [line for line in lines if line != f"-A INPUT {HTTP}"] == oci_rules().splitlines()


def test_once_in_place_there_is_nothing_to_do(rules):
    add = [firewall.insert_live_command(HTTP), firewall.insert_file_command(HTTP, path=rules)]
    assert where(rules, *add) == {"live": "present", "file": "present"}


def test_a_reboot_loads_the_rules_from_the_file(rules):
    in_netns(rules, firewall.insert_file_command(HTTP, path=rules), firewall.insert_file_command(HTTP3, path=rules))
    # A new namespace is a new boot: only the file counts.
    assert where(rules) == {"live": "present", "file": "present"}
    assert where(rules, spec=HTTP3) == {"live": "present", "file": "present"}
    live = input_rules(in_netns(rules, "iptables -S INPUT")[-1])
    assert live[-3:] == [f"-A INPUT {HTTP}", f"-A INPUT {HTTP3}", REJECT]


def test_a_chain_that_blocks_nothing_is_left_alone(rules):
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    assert where(rules) == {"live": "open", "file": "none"}


def test_rules_inserted_by_others_stay_where_they_are(rules):
    # Docker's rules, say: the step inserts one line and never reloads the table.
    other = "-A INPUT -i docker0 -j ACCEPT"
    live = in_netns(
        rules, "iptables -I INPUT 1 -i docker0 -j ACCEPT", firewall.insert_live_command(HTTP), "iptables -S"
    )
    assert input_rules(live[-1])[0] == other
    assert f"-A INPUT {HTTP}" in live[-1]
