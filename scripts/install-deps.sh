#!/bin/sh
# Installs what awf-proxy needs on Debian 12, only what is missing.
#   scripts/install-deps.sh         build and run
#   scripts/install-deps.sh --test  also what the tests need
#   scripts/install-deps.sh --bench also what bench/ needs (and unpacks squid-openssl for
#                                   bench/bump.sh: bench/squid-openssl.sh, never installed)
set -eu
bench=0
pkgs="build-essential cmake pkg-config libuv1-dev libc-ares-dev libssl-dev libyaml-dev node-llhttp"
for a in "$@"; do
    case "$a" in
    --test) pkgs="$pkgs libcmocka-dev clang curl python3 openssl iproute2 iptables nginx-light dnsmasq-base netcat-openbsd procps shellcheck squid prometheus logrotate mmdebstrap podman gpg groff-base git strace" ;;
    --bench) bench=1 pkgs="$pkgs squid wrk nginx-light gnuplot-nox curl procps linux-perf valgrind git" ;;
    *) echo "install-deps.sh: unknown option $a" >&2; exit 2 ;;
    esac
done
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "$bench" = 1 ]; then
    "$(dirname "$0")/../bench/squid-openssl.sh" >/dev/null
fi
