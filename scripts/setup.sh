#!/usr/bin/env bash
# Prepares this checkout for the demo and the tests on a Debian machine with Node 20 (as root):
# installs the Debian packages of the real services when they are missing, then the npm dependencies
# from package-lock.json (only when it changed since the last install) and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'gkube setup: %s\n' "$*"; }

# program → Debian package that provides it
declare -A packages=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [glusterd]=glusterfs-server
  [mount.glusterfs]=glusterfs-client
  [docker-registry]=docker-registry
  [git]=git
)
missing=()
for program in "${!packages[@]}"; do
  command -v "$program" >/dev/null 2>&1 || PATH="$PATH:/sbin:/usr/sbin" command -v "$program" >/dev/null 2>&1 || missing+=("${packages[$program]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing Debian packages: ${missing[*]} (etcd for job records, GlusterFS for storage, docker-registry for images)"
  if [ "$(id -u)" != 0 ]; then
    echo "gkube setup: error: installing packages needs root; run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "gkube setup: warning: kubectl is not installed; the emulator's kubectl tests will fail. Debian's kubernetes-client is too old (1.20): install a kubectl of 1.29 or newer." >&2
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "gkube setup: error: Node $(node --version) is too old; gkube needs Node 20 or newer" >&2
  exit 2
fi

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.gkube-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "installing npm dependencies from package-lock.json"
  # `npm ci` refuses this lockfile: it lacks other platforms' optional binaries (@swc/core-darwin-*, …)
  # because the registry mirror these machines use does not serve them. `npm install` takes the same
  # locked versions and leaves package-lock.json as it is.
  npm install --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$stamp"
fi

npm run --silent build
