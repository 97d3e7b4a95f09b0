#!/usr/bin/env bash
# Unpacks Debian's squid-openssl (Squid built with OpenSSL: ssl-bump and its certificate helper
# security_file_certgen) into a cache directory and prints that directory; bench/bump.sh runs
# DIR/usr/sbin/squid. The package conflicts with `squid`, which the tests and bench/run.sh use,
# so it is never installed: `apt-get download` + `dpkg -x` only. Its data files (error pages,
# mime.conf) are the ones `squid-common` installed with `squid`, same version.
# Usage: bench/squid-openssl.sh   (AWF_BENCH_CACHE: the cache, default /var/cache/awf-bench: Squid
# runs its helpers as user proxy, who must reach them, which a home directory may not allow)
set -euo pipefail
CACHE=${AWF_BENCH_CACHE:-/var/cache/awf-bench}
want=$(apt-cache policy squid-openssl | awk '/Candidate:/ { print $2 }')
if [ -z "$want" ] || [ "$want" = "(none)" ]; then
    echo "squid-openssl.sh: apt knows no squid-openssl (apt-get update?)" >&2
    exit 1
fi
dir=$CACHE/squid-openssl-$want
if [ ! -x "$dir/usr/sbin/squid" ]; then
    mkdir -p "$CACHE" && chmod 0755 "$CACHE"
    tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    chmod 0755 "$tmp" # apt's _apt user downloads into it when it may
    (cd "$tmp" && apt-get download -qq "squid-openssl=$want" >/dev/null 2>"$tmp/apt.err") || {
        cat "$tmp/apt.err" >&2
        exit 1
    }
    dpkg -x "$tmp"/squid-openssl_*.deb "$tmp/x"
    rm -rf "$dir"
    mv "$tmp/x" "$dir"
fi
echo "$dir"
