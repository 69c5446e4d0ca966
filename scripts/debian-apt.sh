# Sourced by scripts/provision-nginx.sh and scripts/provision-llama.sh: a private apt for one Debian
# suite inside a cache folder, so packages are downloaded without touching the system's apt state.
# Debian's archive key ships with every Debian/Ubuntu (debian-archive-keyring); the suites are signed by it.

# debian_apt_init CACHE SUITE: makes the folders, writes the sources list, sets MIRROR and APT_OPTS
# (pass "${APT_OPTS[@]}" to apt-get) and fetches the suite's package lists.
debian_apt_init() {
  local cache="$1" suite="$2"
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/archives/partial"
  MIRROR="${GW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  echo "deb $MIRROR $suite main" > "$cache/apt/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$cache/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt"
    -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  apt-get "${APT_OPTS[@]}" -qq update >&2
}

# debian_unpack CACHE ROOT: unpacks every downloaded .deb of CACHE/debs into ROOT and sets LIB (the
# suite's library folder) and LD (its dynamic loader), with which the unpacked programs run.
debian_unpack() {
  local cache="$1" root="$2" d
  for d in "$cache"/debs/*.deb; do dpkg -x "$d" "$root"; done
  LIB="$root/usr/lib/x86_64-linux-gnu"
  LD="$LIB/ld-linux-x86-64.so.2"
  [ -e "$LD" ] || LD="$root/lib64/ld-linux-x86-64.so.2"
}
