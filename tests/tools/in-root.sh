#!/bin/bash
# in-root.sh [OPTION...] DIR CMD [ARG...] — run CMD chrooted in the root file system at DIR, as
# PID 1 of new PID and mount namespaces: the container an image's root would get, without an
# OCI runtime (this kind of machine cannot run one).
#
# Inside: /proc of the new PID namespace, the host's /dev (bound), a copy of the host's
# /etc/resolv.conf (so apt reaches the mirror). Every mount is in a private mount namespace: the
# host sees none of them and they vanish with the last process. unshare runs with --kill-child:
# killing it (or this script) kills everything inside. The environment passes through as it is
# (use `env -i` inside for a clean one).
#
#   --net             a network namespace of its own, with only loopback up (reach it from the
#                     host with `nsenter --target PID --net`, PID being CMD's host PID)
#   --apt-cache       /var/cache/apt/archives is a writable view of the machine's apt cache
#                     (see with-apt-cache.sh): each .deb is downloaded once per machine
#   --bind SRC:DST    bind-mount host path SRC at DST inside (made if missing); SRC:DST:ro
#                     for a read-only one
#   --no-resolv       leave the root's /etc/resolv.conf alone
#
# Needs root, unshare and chroot (util-linux, coreutils). Exit: CMD's status (125 when the root
# could not be set up).
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
net=() apt=0 resolv=1 binds=()
while [ $# -gt 0 ]; do
    case "$1" in
    --net) net=(--net) ;;
    --apt-cache) apt=1 ;;
    --bind)
        [ $# -ge 2 ] || { echo "in-root.sh: --bind needs SRC:DST" >&2; exit 125; }
        binds+=("$2")
        shift
        ;;
    --no-resolv) resolv=0 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "in-root.sh: unknown option '$1' (try --help)" >&2; exit 125 ;;
    *) break ;;
    esac
    shift
done
[ $# -ge 2 ] || { echo "in-root.sh: usage: in-root.sh [OPTION...] DIR CMD [ARG...]" >&2; exit 125; }
root=$(realpath -e -- "$1") || { echo "in-root.sh: no directory $1" >&2; exit 125; }
shift
if [ ! -d "$root/proc" ] || [ ! -d "$root/dev" ]; then
    echo "in-root.sh: $root is not a root file system (no /proc or /dev)" >&2
    exit 125
fi

# The setup runs in the new namespaces, before the chroot, with the host's tools.
q() { printf '%q' "$1"; }
setup="set -e
mount --rbind /dev $(q "$root/dev")"
[ ${#net[@]} -gt 0 ] && setup+="
ip link set lo up"
if [ "$resolv" = 1 ] && [ -e /etc/resolv.conf ]; then
    setup+="
rm -f $(q "$root/etc/resolv.conf") && cat /etc/resolv.conf > $(q "$root/etc/resolv.conf")"
fi
if [ "$apt" = 1 ]; then
    # shellcheck disable=SC2016 # $AWF_APT_ARCHIVES is with-apt-cache.sh's, expanded inside
    setup+='
mkdir -p '"$(q "$root/var/cache/apt/archives")"'
mount --bind "$AWF_APT_ARCHIVES" '"$(q "$root/var/cache/apt/archives")"
fi
for b in "${binds[@]}"; do
    IFS=: read -r src dst mode <<<"$b"
    if [ ! -e "$src" ] || [ -z "$dst" ]; then
        echo "in-root.sh: --bind $b: no such source or no target" >&2
        exit 125
    fi
    t=$root/${dst#/}
    if [ -d "$src" ]; then mk="mkdir -p $(q "$t")"; else mk="mkdir -p $(q "$(dirname "$t")") && touch $(q "$t")"; fi
    setup+="
[ -e $(q "$t") ] || { $mk; }
mount --bind $(q "$src") $(q "$t")"
    [ "$mode" = ro ] && setup+="
mount -o remount,bind,ro $(q "$t")"
done
setup+='
exec chroot '"$(q "$root")"' "$@"'

cmd=(unshare --mount --propagation private --pid --fork --kill-child "${net[@]}"
    --mount-proc="$root/proc" /bin/sh -c "$setup" in-root)
if [ "$apt" = 1 ]; then
    exec "$(dirname "$(realpath "$0")")/with-apt-cache.sh" "${cmd[@]}" "$@"
fi
exec "${cmd[@]}" "$@"
