#!/bin/sh
# Entrypoint of the gateway container in compose/gpu.yml and compose/dev.yml (official nginx image,
# read-only root filesystem). Prepares the few writable things, then runs nginx in the foreground
# with the config named by its argument: dist/compose/nginx.conf (or nginx-tls.conf, compose/tls.yml),
# which `npm run compose:prepare` renders from nginx/nginx.conf.example on the host.
set -eu
CONF="${1:-/etc/nginx/gw/dist/compose/nginx.conf}"
P=/run/gw                                   # nginx prefix on a tmpfs: logs, pid, temp files
for f in "$CONF" /etc/nginx/gw/dist/gateway.js; do
    if [ ! -f "$f" ]; then
        echo "gateway-entrypoint: $f is missing: run \`npm run compose:prepare\` in the repository first" >&2
        exit 1
    fi
done
mkdir -p "$P/logs" "$P/tmp" "$P/secrets"
ln -sf /dev/stderr "$P/logs/error.log"      # `docker compose logs gateway` shows both logs
ln -sf /dev/stdout "$P/logs/access.log"
# Docker secrets are bind mounts that keep the host file's owner and mode (0600 is right on the
# host), but nginx workers run as the unprivileged "nginx" user: give them a copy of the admin token
# they may read (a changed token needs `docker compose restart gateway`).
if [ -f /run/secrets/gw_admin_token ]; then
    install -m 0440 -o root -g nginx /run/secrets/gw_admin_token "$P/secrets/gw_admin_token"
fi
# The keys file holds hashes only and is read in place, so host edits reach the gateway's re-read:
# it must be world-readable (npm run compose:secrets makes it 0644).
if [ -f /run/secrets/gw_keys ] && [ -z "$(find /run/secrets/gw_keys -perm -0004)" ]; then
    echo "gateway-entrypoint: the workers cannot read /run/secrets/gw_keys: chmod 644 it on the host (hashes only)" >&2
fi
# Persisted key state (GW_STATE_DIR, a named volume) is written by the workers and nobody else:
# the gateway refuses a state folder group or others can write (docs/api-keys.md).
if [ -n "${GW_STATE_DIR:-}" ]; then
    mkdir -p "$GW_STATE_DIR"
    chown nginx:nginx "$GW_STATE_DIR"
    chmod 700 "$GW_STATE_DIR"
fi
exec nginx -c "$CONF" -e "$P/logs/error.log" -g 'daemon off;'
