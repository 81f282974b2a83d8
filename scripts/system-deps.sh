#!/bin/sh
# Install the host (Debian/Ubuntu) packages the test lanes need. Idempotent:
# when everything is already installed it only runs dpkg-query and exits.
# Run as root, or as a user with sudo.
set -eu

# --- packages the test lanes need (add more here: chromium caddy wrk ...) ---
PACKAGES="
qemu-system-x86
qemu-utils
mmdebstrap
openssh-client
dpkg-dev
iptables
chromium
caddy
wrk
prometheus
"
# -----------------------------------------------------------------------------

missing=""
for pkg in $PACKAGES; do
    # "install ok installed" is the only state that means the package is usable.
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
    echo "system-deps: all installed"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

echo "system-deps: installing$missing"
$SUDO apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
