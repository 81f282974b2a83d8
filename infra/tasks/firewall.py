"""The host firewall: let readers in (TCP 80 and 443, UDP 443 for HTTP/3), nothing else.

OCI's Ubuntu image loads /etc/iptables/rules.v4 at boot (netfilter-persistent): SSH,
ICMP, loopback and replies get in, then `-A INPUT -j REJECT`. A rule is inserted just
before that REJECT in the running chain, and the same line is written just before the
REJECT in the rules file, so a reboot keeps it. The whole file is never reloaded
(`iptables-restore`, `netfilter-persistent reload`): under a running Docker that wipes
Docker's own rules, and with them every published port.

A chain with no REJECT or DROP (and an ACCEPT policy) needs nothing, and neither does a
rules file without one. `accept()` is the one entry point, for any rule another task
needs (a container network reaching an app port, say):

    firewall.accept("app from the compose network", "-i br-fynans -p tcp -m tcp --dport 8080")
"""

import shlex

from pyinfra import host
from pyinfra.api import FactBase, deploy, operation

RULES_FILES = {4: "/etc/iptables/rules.v4", 6: "/etc/iptables/rules.v6"}
TOOLS = {4: "iptables", 6: "ip6tables"}
COMMENT = "milesahead"
# What a REJECT or DROP rule in INPUT looks like, in iptables -S and in a rules file.
BLOCKS = r"^-A INPUT( |.* )-j (REJECT|DROP)( |$)"

READER_PORTS = {
    "80/tcp": "-p tcp -m state --state NEW -m tcp --dport 80",
    "443/tcp": "-p tcp -m state --state NEW -m tcp --dport 443",
    "443/udp": "-p udp -m udp --dport 443",
}


def rule_spec(match):
    """The whole rule after `-A INPUT`, as iptables-save would write it."""
    return f"{match} -m comment --comment {COMMENT} -j ACCEPT"


class InputRule(FactBase):
    """Where a rule stands: `live present|missing|open|none` and `file present|missing|none`.

    live: `open` when the running chain blocks nothing (no rule needed), `none` when
    there is no iptables at all. file: `none` when there is no rules file that blocks.
    """

    def command(self, spec, version=4, path=None):
        tool, path = TOOLS[version], path or RULES_FILES[version]
        line = shlex.quote(f"-A INPUT {spec}")
        blocks = shlex.quote(BLOCKS)
        return (
            f"if ! command -v {tool} > /dev/null; then echo 'live none';"
            f" elif {tool} -C INPUT {spec} 2> /dev/null; then echo 'live present';"
            f" elif {tool} -S INPUT | grep -Eq {blocks} || {tool} -S INPUT | grep -qx -- '-P INPUT DROP';"
            " then echo 'live missing'; else echo 'live open'; fi;"
            f" if [ ! -f {path} ] || ! grep -Eq {blocks} {path}; then echo 'file none';"
            f" elif grep -qxF -- {line} {path}; then echo 'file present'; else echo 'file missing'; fi"
        )

    def process(self, output):
        return dict(line.split(" ", 1) for line in output if " " in line)


def insert_live_command(spec, version=4):
    """Insert at the position of the chain's first REJECT/DROP (append when there is none)."""
    tool = TOOLS[version]
    blocks = shlex.quote(BLOCKS)
    # `-S INPUT` starts with the policy line, so a rule's number is its line number - 1.
    return (
        f"n=$({tool} -S INPUT | grep -En {blocks} | head -n 1 | cut -d: -f1);"
        f' if [ -n "$n" ]; then {tool} -I INPUT $((n - 1)) {spec}; else {tool} -A INPUT {spec}; fi'
    )


def insert_file_command(spec, version=4, path=None):
    """Write the line before the file's first INPUT REJECT/DROP: beside, then rename."""
    path = path or RULES_FILES[version]
    line = shlex.quote(f"-A INPUT {spec}")
    program = shlex.quote("!done && $0 ~ re { print line; done = 1 } { print } END { if (!done) exit 1 }")
    return (
        f"awk -v line={line} -v re={shlex.quote(BLOCKS)} {program} {path} > {path}.new"
        f" && chmod --reference={path} {path}.new && chown --reference={path} {path}.new"
        f" && mv -f {path}.new {path}"
    )


@operation()
def accept(match, version=4):
    """Let `match` (iptables match arguments) in through INPUT, now and after a reboot.

    + match: e.g. ``-p tcp -m state --state NEW -m tcp --dport 80`` (written as
      iptables-save writes it, so the rules file reads like the host's own lines)
    + version: 4 (iptables, rules.v4) or 6 (ip6tables, rules.v6)
    """
    spec = rule_spec(match)
    where = host.get_fact(InputRule, spec=spec, version=version)
    if where.get("live") == "missing":
        yield insert_live_command(spec, version)
        if where.get("file") == "none":
            host.noop(f"not persisted: no {RULES_FILES[version]} that blocks it; a reboot may drop this rule")
    if where.get("file") == "missing":
        yield insert_file_command(spec, version)
    if where.get("live") in ("present", "open", "none") and where.get("file") in ("present", "none"):
        host.noop(f"{TOOLS[version]} already lets in: {match}")


@deploy("Host firewall: readers in")
def readers():
    """TCP 80 and 443 and UDP 443, IPv4 and IPv6; `--data firewall=false` leaves it alone."""
    d = host.data
    if not d.firewall:
        host.noop("firewall left alone (firewall=false): open the reader ports yourself")
        return
    for port in d.firewall_ports:
        if port not in READER_PORTS:
            raise ValueError(f"firewall_ports: {port!r} is not one of {', '.join(READER_PORTS)}")
        for version in (4, 6):
            accept(name=f"Firewall: let readers in on {port} (IPv{version})", match=READER_PORTS[port], version=version)
