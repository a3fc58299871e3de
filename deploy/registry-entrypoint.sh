#!/bin/sh
# Starts the backing registry (registry:2.8 image, busybox sh) with deploy/registry.yml,
# its @...@ values filled in from secret files. Secrets never enter the environment,
# where `docker inspect` shows them to anyone with access to the docker socket.
#   $1                          the template (default /etc/promoter/registry.yml)
#   PROMOTER_SECRETS_DIR        where the secret files are (default /run/secrets)
#   PROMOTER_NOTIFY_URL         the portal's notification receiver, as the registry reaches it
set -eu
template=${1:-/etc/promoter/registry.yml}
secrets=${PROMOTER_SECRETS_DIR:-/run/secrets}
notify_url=${PROMOTER_NOTIFY_URL:-http://web:8000/registry/notifications}
config=${PROMOTER_REGISTRY_CONFIG:-/tmp/promoter-registry.yml}

# A value goes into YAML and a sed replacement: refuse characters that would need quoting.
checked() {
    case $2 in
    '' | *[!A-Za-z0-9._~+/=:-]*)
        echo "registry: $1 is empty or has characters outside A-Za-z0-9._~+/=:-" >&2
        exit 1
        ;;
    esac
    printf '%s' "$2"
}
secret() {
    checked "$secrets/$1" "$(cat "$secrets/$1")"
}

http_secret=$(secret registry_http_secret)
notify_secret=$(secret notify_secret)
notify_url=$(checked PROMOTER_NOTIFY_URL "$notify_url")

umask 077
sed -e "s|@REGISTRY_HTTP_SECRET@|$http_secret|" \
    -e "s|@NOTIFY_SECRET@|$notify_secret|" \
    -e "s|@NOTIFY_URL@|$notify_url|" \
    "$template" >"$config"
exec registry serve "$config"
