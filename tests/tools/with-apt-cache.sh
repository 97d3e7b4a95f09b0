#!/bin/bash
# with-apt-cache.sh CMD [ARG...] — run CMD with a private, writable view of the machine's apt
# archive cache at $AWF_APT_ARCHIVES, and keep the .debs it downloads for the next caller.
#
# The cache is ${AWF_CI_CACHE:-/var/cache/awf-proxy-ci}/apt: every fresh root or image build
# that installs packages (in-root.sh --apt-cache, `podman build -v $AWF_APT_ARCHIVES:
# /var/cache/apt/archives`) downloads each .deb once per machine. It is not bind-mounted as it
# is: apt takes /var/cache/apt/archives/lock without waiting, so two concurrent installs sharing
# the directory would fail. Each caller gets an overlay instead (the shared cache read-only
# below, a directory of its own above) in a private mount namespace; when CMD ends, the .debs it
# added are moved into the shared cache (same file system, rename: a reader sees whole files).
# Needs root (unshare, overlayfs). Exit: CMD's status.
set -euo pipefail

[ $# -ge 1 ] || {
    echo "usage: with-apt-cache.sh CMD [ARG...]" >&2
    exit 2
}
cache=${AWF_CI_CACHE:-/var/cache/awf-proxy-ci}
shared=$cache/apt
mkdir -p "$shared/partial"
run=$(mktemp -d "$cache/apt-run.XXXXXX")
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/upper" "$run/work" "$run/view"

# Inside: mount the overlay, drop the lock file a killed run may have left in the upper layer
# (apt recreates it), run CMD. unshare --kill-child: killing this script kills CMD too.
set +e
# shellcheck disable=SC2016 # the inner script's own arguments
AWF_APT_ARCHIVES=$run/view unshare --mount --propagation private --fork --kill-child \
    /bin/sh -c 'mount -t overlay awf-apt -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" \
        "$2/view" || exit 125; shift 2; exec "$@"' with-apt-cache "$shared" "$run" "$@"
rc=$?
set -e
# Harvest: whole .debs only (partial/ holds unfinished ones), never overwriting one that another
# run put there meanwhile (same name, same content: Debian's file names carry the version).
find "$run/upper" -maxdepth 1 -type f -name '*.deb' -exec mv -n -t "$shared" {} + 2>/dev/null || true
exit "$rc"
