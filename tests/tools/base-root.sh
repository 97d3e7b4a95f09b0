#!/bin/bash
# base-root.sh [--rebuild] — print the path of a Debian bookworm minbase root as a tarball,
# building it once per machine.
#
# The image tests (podman import as debian:bookworm) and the fresh-root tests (README's first
# command in a clean Debian) both start from it. mmdebstrap takes minutes, so the tarball is
# cached where a kept CI machine keeps it: ${AWF_CI_CACHE:-/var/cache/awf-proxy-ci}/
# bookworm-minbase.tar. Concurrent callers (ctest -j2, several checkouts) serialise on a flock
# and only the first builds; the tarball is written beside its final name and renamed into
# place, so a reader never sees half of one and an interrupted build leaves nothing behind.
# A tarball older than AWF_BASE_MAX_DAYS (default 30) days is rebuilt, so security updates
# arrive on a kept machine.
#
# The mirror is Debian's (deb.debian.org, with bookworm-updates and bookworm-security: what
# mmdebstrap adds for a stable suite); AWF_DEBIAN_MIRROR overrides it (a URI, a "deb ..." line or
# a sources file, as mmdebstrap takes it). Needs root (mmdebstrap's root mode), mmdebstrap and
# flock (scripts/install-deps.sh --test).
# Exit: 0 and the path on stdout; 1 and a message on stderr; 77 (CTest's skip) when not root or
# a tool is missing, unless CI=true, where that is a failure (1).
set -euo pipefail

cache=${AWF_CI_CACHE:-/var/cache/awf-proxy-ci}
out=$cache/bookworm-minbase.tar
max_days=${AWF_BASE_MAX_DAYS:-30}
rebuild=0
case "${1:-}" in
--rebuild) rebuild=1 ;;
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
'') ;;
*)
    echo "base-root.sh: unknown argument '$1' (try --help)" >&2
    exit 1
    ;;
esac
cannot() {
    echo "base-root.sh: $1" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 77
}
[ "$(id -u)" = 0 ] || cannot "needs root (mmdebstrap's root mode)"
for tool in mmdebstrap flock; do
    command -v "$tool" >/dev/null || cannot "$tool not found (scripts/install-deps.sh --test installs it)"
done
mkdir -p "$cache"
exec 9>"$cache/bookworm-minbase.lock"
flock 9

stale=0
if [ -s "$out" ] && [ -n "$(find "$out" -mtime +"$max_days" 2>/dev/null)" ]; then
    stale=1
fi
if [ "$rebuild" = 1 ] || [ "$stale" = 1 ] || [ ! -s "$out" ]; then
    tmp=$(mktemp "$cache/.bookworm-minbase.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    echo "base-root.sh: building $out with mmdebstrap (minutes; once per machine)" >&2
    mirror=()
    [ -n "${AWF_DEBIAN_MIRROR:-}" ] && mirror=("$AWF_DEBIAN_MIRROR")
    if ! mmdebstrap --quiet --variant=minbase --format=tar bookworm "$tmp" "${mirror[@]}" >&2; then
        echo "base-root.sh: mmdebstrap failed (is deb.debian.org reachable? AWF_DEBIAN_MIRROR overrides it)" >&2
        exit 1
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$out"
    trap - EXIT
fi
echo "$out"
