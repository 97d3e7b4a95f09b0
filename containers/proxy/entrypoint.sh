#!/bin/sh
# Entrypoint of the awf-proxy image, the drop-in for AWF's awf-squid container (SPEC §9).
#
# Runs as root, then execs awf-proxy as the proxy user (uid/gid 13) so that awf-proxy is the
# container's PID 1 and gets Docker's SIGTERM itself (stop grace is 2 s; awf-proxy exits at once).
#   1. gives the log directory (mounted from the host) to uid 13, or makes it mode 0777 when its
#      owner cannot be changed, and checks that uid 13 can write there;
#   2. decodes AWF_SQUID_CONFIG_B64 (a squid.conf) into the config file; without it, a config
#      file already in place (mounted by older AWF versions) is used;
#   3. drops the IPv6 listener when the container has no IPv6: AWF's squid.conf always asks for
#      both `http_port 3128` and `http_port [::]:3128`;
#   4. execs awf-proxy --squid-conf FILE as uid 13 (with arguments given to the container, those
#      replace `--squid-conf FILE`).
#
# Environment (the overrides exist for tests and unusual layouts; AWF sets none of them):
#   AWF_SQUID_CONFIG_B64  the squid.conf, base64 (AWF's contract)
#   AWF_SQUID_CONF        where the config is written and read      [/etc/squid/squid.conf]
#   AWF_LOG_DIR           the log directory given to uid 13         [/var/log/squid]
#   AWF_IPV6              auto | on | off: keep the IPv6 listener?  [auto: if the kernel has it]
#   AWF_PROXY_BIN         the binary                                [/usr/local/bin/awf-proxy]
# POSIX sh only: the image is Debian slim (dash, no bash).
set -eu

PROXY_UID=13
PROXY_GID=13
CONF=${AWF_SQUID_CONF:-/etc/squid/squid.conf}
LOG_DIR=${AWF_LOG_DIR:-/var/log/squid}
IPV6=${AWF_IPV6:-auto}
BIN=${AWF_PROXY_BIN:-/usr/local/bin/awf-proxy}
ME=awf-proxy-entrypoint

say() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Runs a command as the proxy user, the way awf-proxy will run: no supplementary groups, no
# capabilities, no way back to root through setuid binaries.
as_proxy() {
    setpriv --reuid="$PROXY_UID" --regid="$PROXY_GID" --clear-groups --no-new-privs -- "$@"
}

[ "$(id -u)" = 0 ] ||
    die "must start as root (it fixes the log directory, then drops to uid $PROXY_UID)"
command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is not installed"
[ -x "$BIN" ] || die "$BIN is not an executable file"

# --- 1. the log directory ---------------------------------------------------------------------
# The host mounts it; its owner is whoever created it there (the runner user, root, or an id that
# means nothing inside the container). chown is what AWF's entrypoint does. When chown is refused
# (no CAP_CHOWN, root squashed on NFS, an id-mapped mount), a world-writable directory is the
# fallback: the directory holds only our logs and only this container writes it.
fix_log_dir() {
    if [ ! -d "$LOG_DIR" ]; then
        mkdir -p "$LOG_DIR" 2>/dev/null ||
            die "log directory $LOG_DIR is missing and cannot be created"
    fi
    # -h: a symlink inside the directory is changed itself, never the file it points to.
    if chown -R -h "$PROXY_UID:$PROXY_GID" "$LOG_DIR" 2>/dev/null &&
        chmod 0755 "$LOG_DIR" 2>/dev/null; then
        say "log directory $LOG_DIR owned by uid/gid $PROXY_UID"
    elif chmod 0777 "$LOG_DIR" 2>/dev/null; then
        # Files left by an earlier run must stay appendable; symlinks are not followed (-type f).
        find "$LOG_DIR" -mindepth 1 -type f -exec chmod a+rw {} + 2>/dev/null || true
        find "$LOG_DIR" -mindepth 1 -type d -exec chmod 0777 {} + 2>/dev/null || true
        say "warning: cannot change the owner of $LOG_DIR; made it mode 0777 instead"
    else
        say "warning: cannot change the owner or the mode of $LOG_DIR"
    fi
    as_proxy test -d "$LOG_DIR" -a -w "$LOG_DIR" -a -x "$LOG_DIR" ||
        die "log directory $LOG_DIR is not writable by uid $PROXY_UID (read-only mount?)"
}

# --- 2. the config ----------------------------------------------------------------------------
# Decoded next to the target and renamed into place, so a failed decode never leaves a partial
# config behind. Root owns it and uid 13 may only read it: the proxy cannot rewrite its own policy.
decode_config() {
    if [ -z "${AWF_SQUID_CONFIG_B64:-}" ]; then
        [ -f "$CONF" ] || die "AWF_SQUID_CONFIG_B64 is not set and $CONF does not exist"
        say "AWF_SQUID_CONFIG_B64 is not set; using $CONF as it is"
        return 0
    fi
    conf_dir=$(dirname "$CONF")
    mkdir -p "$conf_dir" 2>/dev/null || die "cannot create $conf_dir"
    tmp="$CONF.new.$$"
    # base64 -d accepts the line breaks some tools add, and fails on anything not base64.
    if ! printf '%s' "$AWF_SQUID_CONFIG_B64" | base64 -d >"$tmp" 2>/dev/null; then
        rm -f "$tmp"
        die "AWF_SQUID_CONFIG_B64 is not valid base64"
    fi
    if [ ! -s "$tmp" ]; then
        rm -f "$tmp"
        die "AWF_SQUID_CONFIG_B64 decodes to an empty config"
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$CONF" || die "cannot write $CONF"
    say "config written to $CONF ($(wc -l <"$CONF") lines)"
}

# --- 3. IPv6 ----------------------------------------------------------------------------------
ipv6_available() {
    [ -e /proc/net/if_inet6 ] || return 1
    [ "$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || echo 1)" = 0 ]
}

# Without IPv6, binding [::]:3128 fails and the proxy would not start: the `http_port [ADDR]:PORT`
# lines go, and a bare `http_port PORT` (all addresses, which awf-proxy may take as dual-stack
# [::]) becomes 0.0.0.0:PORT. Everything else on those lines (options) is kept.
drop_ipv6_listener() {
    case "$IPV6" in
    on) return 0 ;;
    off) ;;
    auto) ipv6_available && return 0 ;;
    *) die "AWF_IPV6 must be auto, on or off, not \"$IPV6\"" ;;
    esac
    [ -f "$CONF" ] || return 0
    tmp="$CONF.new.$$"
    sed -E -e '/^[[:space:]]*http_port[[:space:]]+\[/d' \
        -e 's/^([[:space:]]*http_port[[:space:]]+)([0-9]+([[:space:]]|$))/\10.0.0.0:\2/' \
        "$CONF" >"$tmp" || {
        rm -f "$tmp"
        die "cannot rewrite $CONF"
    }
    chmod 0644 "$tmp"
    if cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
    elif mv -f "$tmp" "$CONF" 2>/dev/null; then
        say "IPv6 is off: IPv6 listeners removed from $CONF"
    else
        rm -f "$tmp"
        die "IPv6 is off and $CONF cannot be rewritten (read-only?)"
    fi
}

fix_log_dir
decode_config
drop_ipv6_listener

# The config is in a file now; awf-proxy does not need a second copy in its environment.
unset AWF_SQUID_CONFIG_B64

if [ "$#" -eq 0 ]; then
    set -- --squid-conf "$CONF"
fi
say "starting $BIN $* as uid $PROXY_UID"
exec setpriv --reuid="$PROXY_UID" --regid="$PROXY_GID" --clear-groups --no-new-privs -- "$BIN" "$@"
