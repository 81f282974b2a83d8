#!/bin/sh
# Put this site's snippet into a Caddy shared with other sites (Docker Compose), safely.
# Managed by milesahead's toolkit (infra/files/caddy-shared.sh).
#
#   caddy-shared.sh COMPOSE_DIR SERVICE SITES_DIR NAME WANTED CONFIG
#
# WANTED is the snippet as it should be; it becomes SITES_DIR/NAME.caddy. It is first
# copied in as NAME.caddy.new, which the sites' `import .../*.caddy` does not match, and
# the whole config is validated with it: a one-off container of the service's image,
# with all of the service's mounts, sees a copy of the sites directory in which the new
# snippet has its real name. Only a valid config is renamed into place and reloaded
# (`caddy reload` in the running container). On a refusal the previous snippet stays,
# the other sites are untouched, and Caddy's error is printed: exit 1.
set -eu

dir=$1 service=$2 sites=$3 name=$4 wanted=$5 config=$6
fail() { echo "caddy-shared: $*" >&2; exit 1; }
cd "$dir"  # where the project's compose file is
compose="docker compose"

container=$($compose ps -q "$service")
[ -n "$container" ] || fail "the Compose service '$service' in $dir is not running"
image=$(docker inspect -f '{{.Image}}' "$container")

pending="$sites/$name.caddy.new"
check=$(mktemp -d /tmp/caddy-shared-check.XXXXXX)
trap 'rm -rf "$check" "$pending"' EXIT
cp "$wanted" "$pending"
cp -a "$sites/." "$check/"
rm -f "$check/$name.caddy.new"
cp "$wanted" "$check/$name.caddy"
chmod -R a+rX "$check"

# The service's mounts, with the sites directory's swapped for the copy.
set --
mounts=$(docker inspect -f '{{range .Mounts}}{{.Type}} {{if eq .Type "volume"}}{{.Name}}{{else}}{{.Source}}{{end}} {{.Destination}} {{.RW}}{{"\n"}}{{end}}' "$container")
while read -r type source destination rw; do
    [ -n "$type" ] || continue
    [ "$source" = "$sites" ] && source=$check
    option="type=$type,source=$source,destination=$destination"
    [ "$rw" = true ] || option="$option,readonly"
    set -- "$@" --mount "$option"
done <<EOF
$mounts
EOF

if ! out=$(docker run --rm --network none "$@" "$image" caddy validate --adapter caddyfile --config "$config" 2>&1); then
    printf '%s\n' "$out" | grep -v '"level":"info"' >&2 || true
    fail "Caddy refused the config with the new $name.caddy; the previous one stays and nothing was reloaded"
fi

mv -T "$pending" "$sites/$name.caddy"
if ! out=$($compose exec -T "$service" caddy reload --adapter caddyfile --config "$config" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "the reload failed after a valid check"
fi
echo "caddy-shared: $name.caddy validated with every site in $sites and reloaded"
