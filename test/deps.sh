#!/usr/bin/env bash
# Installs the Debian packages retail_mid needs to build, test and run, if any is missing.
# Works as root or as a user with sudo. Extra packages can be passed as arguments.
set -euo pipefail
pkgs=(build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-postgis-3 postgresql-15-cron libroaring-dev libnlopt-dev gzip "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "retail_mid: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
