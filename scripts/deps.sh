#!/bin/sh
# Installs the Debian packages hookd needs to build, test and benchmark, and
# only those that are missing, so `make run` on a ready machine stays instant.
# Usage: scripts/deps.sh [build|test|bench]   (each level includes the ones before)
set -eu
level=${1:-build}
pkgs="build-essential meson ninja-build pkg-config libmicrohttpd-dev libcurl4-openssl-dev
      libssl-dev libjansson-dev libsqlite3-dev libpq-dev libgoogle-perftools-dev curl
      ca-certificates"
case $level in
# postgresql: the tests run each end-to-end test on a throwaway cluster too
# (tests/pg.py finds Debian's /usr/lib/postgresql/<version>/bin by a glob).
test|bench) pkgs="$pkgs python3 openssl sqlite3 clang libclang-rt-14-dev procps postgresql" ;;
esac
case $level in
bench) pkgs="$pkgs nginx-light wrk nghttp2-client linux-perf valgrind" ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
