#!/usr/bin/env bash
# Provision nginx >= 1.25 with njs >= 0.8 into a private cache folder, without touching the system.
# Debian bookworm ships njs 0.7.9 (no js_shared_dict_zone), so we fetch a later Debian suite's nginx and
# libnginx-mod-http-js .debs plus the runtime libraries they link against, unpack them with dpkg -x and
# run nginx through that suite's own dynamic loader. Idempotent: a complete cache is reused.
#
# Suites (GW_NGINX_SUITE):
#   trixie (default)  nginx 1.26 + njs 0.8.9, njs engine only
#   sid               nginx 1.30 + njs 1.0.x, njs and QuickJS (js_engine qjs) engines
#
# Usage: scripts/provision-nginx.sh [CACHE_DIR]
#   default CACHE_DIR: $GW_NGINX_CACHE, else ~/.cache/njs-gateway/nginx (trixie) or
#   ~/.cache/njs-gateway/nginx-<suite> (any other suite).
# Prints the path of the wrapper script (CACHE_DIR/bin/nginx) on its last line.
# Several processes may run this at once: they serialize on a lock in the cache folder, and the
# later ones reuse what the first one built.
set -euo pipefail

SUITE="${GW_NGINX_SUITE:-trixie}"
case "$SUITE" in
  trixie) DEFAULT_CACHE="$HOME/.cache/njs-gateway/nginx" ;;
  *) DEFAULT_CACHE="$HOME/.cache/njs-gateway/nginx-$SUITE" ;;
esac
CACHE="${1:-${GW_NGINX_CACHE:-$DEFAULT_CACHE}}"
ROOT="$CACHE/root"
WRAPPER="$CACHE/bin/nginx"
# The packages asked for by name; the library packages they depend on are added by following the
# .debs' Depends fields (see closure below). The names are listed explicitly anyway where a suite has
# a misleading one: sid still has an old `libxml2` (libxml2.so.2) while its njs links libxml2.so.16
# from `libxml2-16`, and njs >= 0.9 links QuickJS from `libqjs0`.
case "$SUITE" in
  trixie) PKGS="nginx libnginx-mod-http-js libc6 libxml2 liblzma5 zlib1g libssl3t64 libpcre2-8-0 libcrypt1 libicu76 libxslt1.1 libgcc-s1 libstdc++6" ;;
  sid|unstable) PKGS="nginx libnginx-mod-http-js libc6 libxml2-16 libqjs0 liblzma5 zlib1g libssl3t64 libpcre2-8-0 libcrypt1 libxslt1.1 libgcc-s1 libstdc++6" ;;
  *) PKGS="nginx libnginx-mod-http-js libc6" ;;
esac

# A wrapper from before nginx ran as itself (it ran nginx through the loader) is provisioned again.
ok_cache() { [ -x "$WRAPPER" ] && "$WRAPPER" -V >/dev/null 2>&1 && ! grep -q 'with its own loader and libraries' "$WRAPPER"; }

if ok_cache; then
  echo "provision-nginx: using cached $WRAPPER (Debian $SUITE)" >&2
  echo "$WRAPPER"
  exit 0
fi

command -v apt-get >/dev/null || { echo "provision-nginx: apt-get not found; install nginx with njs >= 0.8 yourself and set NGINX_BIN (and GW_NJS_MODULE)" >&2; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.provision.lock"
if ! flock -n 9; then
  echo "provision-nginx: another process is provisioning $CACHE; waiting for it" >&2
  flock 9
fi
if ok_cache; then
  echo "provision-nginx: using $WRAPPER provisioned meanwhile by another process (Debian $SUITE)" >&2
  echo "$WRAPPER"
  exit 0
fi

mkdir -p "$CACHE/debs" "$ROOT" "$CACHE/bin"
echo "provision-nginx: provisioning Debian $SUITE nginx + njs: fetching package lists into $CACHE" >&2
. "$(dirname "$0")/debian-apt.sh"
debian_apt_init "$CACHE" "$SUITE"
cd "$CACHE/debs"

declare -A SEEN=()
fetch() {
  local p="$1"
  [ -n "${SEEN[$p]:-}" ] && return 0
  SEEN[$p]=1
  # A name may not exist in a suite (renamed library); the loader check below names what is missing.
  if ! apt-get "${APT_OPTS[@]}" -qq download "$p" >&2; then
    echo "provision-nginx: warning: could not download $p from $SUITE" >&2
  fi
}
for p in $PKGS; do fetch "$p"; done
# Closure over the shared-library dependencies: only lib* and zlib1g packages (nginx-common,
# debconf, adduser and the like are configuration, not code nginx loads).
changed=1
while [ "$changed" = 1 ]; do
  changed=0
  for d in "$CACHE"/debs/*.deb; do
    deps=$(dpkg-deb -f "$d" Pre-Depends Depends 2>/dev/null | sed -n 's/^[A-Za-z-]*: //p' | tr ',' '\n' \
      | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' | grep -E '^(lib|zlib1g$)' || true)
    for p in $deps; do
      if [ -z "${SEEN[$p]:-}" ]; then fetch "$p"; changed=1; fi
    done
  done
done
debian_unpack "$CACHE" "$ROOT"
[ -x "$ROOT/usr/sbin/nginx" ] || { echo "provision-nginx: nginx binary missing after unpack ($SUITE)" >&2; exit 1; }
MOD="$ROOT/usr/lib/nginx/modules/ngx_http_js_module.so"
# Prove the loader can resolve every library of nginx and of the js module now, rather than later as a
# puzzling "unknown directive js_..." from a test.
missing=$("$LD" --library-path "$LIB" --list "$ROOT/usr/sbin/nginx" 2>&1 | grep 'not found' || true)
if [ -e "$MOD" ]; then
  missing="$missing$("$LD" --library-path "$LIB" --list "$MOD" 2>&1 | grep 'not found' || true)"
else
  missing="$missing ngx_http_js_module.so (libnginx-mod-http-js not unpacked)"
fi
if [ -n "${missing// /}" ]; then
  echo "provision-nginx: Debian $SUITE nginx/njs cannot load, missing: $missing" >&2
  echo "provision-nginx: add the package providing it to PKGS for $SUITE in $0" >&2
  exit 1
fi
# The wrapper is written last (atomically), so its presence means the cache is complete.
# nginx runs as itself, so ps and pgrep show "nginx: master process" and "nginx: worker process"
# rather than the loader: a copy gets the suite's loader as interpreter and its libraries as DT_RPATH
# (which also serves the libraries of the dlopen()ed js module), by that suite's patchelf. Without
# patchelf, a script runs nginx through the loader.
apt-get "${APT_OPTS[@]}" -qq download patchelf >&2 && dpkg -x "$CACHE"/debs/patchelf_*.deb "$ROOT" || true
if ! { [ -x "$ROOT/usr/bin/patchelf" ] && "$LD" --library-path "$LIB" "$ROOT/usr/bin/patchelf" --set-interpreter "$LD" \
    --force-rpath --set-rpath "$LIB" --output "$WRAPPER.tmp" "$ROOT/usr/sbin/nginx" && "$WRAPPER.tmp" -V 2>/dev/null; }; then
  echo "provision-nginx: warning: no patchelf from $SUITE; nginx runs through the loader (ps shows ld-linux)" >&2
  cat > "$WRAPPER.tmp" <<W
#!/bin/sh
# Generated by scripts/provision-nginx.sh: runs Debian $SUITE's nginx through its loader (no patchelf).
exec "$LD" --library-path "$LIB" "$ROOT/usr/sbin/nginx" "\$@"
W
  chmod +x "$WRAPPER.tmp"
fi
mv "$WRAPPER.tmp" "$WRAPPER"
"$WRAPPER" -V >&2
echo "provision-nginx: js module at $MOD" >&2
echo "$WRAPPER"
