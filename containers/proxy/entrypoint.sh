#!/bin/sh
# Entrypoint of the awf-proxy image, the drop-in for AWF's awf-squid container (SPEC §9), at the
# path AWF execs: /usr/local/bin/entrypoint.sh.
#
# It is started one of three ways, and ends the same way each time (awf-proxy exec'd as the
# proxy user, uid/gid 13, as the container's PID 1, so Docker's SIGTERM reaches it directly):
#   - by today's AWF: its compose file starts the container as 0:0, fixes the log directory
#     itself, then `su -s /bin/bash proxy -c '... exec /usr/local/bin/entrypoint.sh'`: we start
#     as uid 13;
#   - by the image's own USER proxy (docker run, compose.example.yml): we start as uid 13;
#   - as root (older AWF, `docker run --user 0`): we give the log directory (and the ssl-bump
#     database directory, when there is one) to uid 13, then run this script again as uid 13.
# As uid 13 it then
#   1. checks that the log directory is writable;
#   2. decodes AWF_SQUID_CONFIG_B64 (a squid.conf) into the config file; without it, a config
#      file already in place (written by AWF's compose command, or mounted by older AWF) is used;
#   3. drops the IPv6 listeners when the container has no IPv6: AWF's squid.conf always asks for
#      both `http_port 3128` and `http_port [::]:3128`;
#   4. execs awf-proxy --squid-conf FILE (arguments given to the container replace
#      `--squid-conf FILE`; --help and --version go straight to awf-proxy).
#
# Environment (the overrides exist for tests and unusual layouts; AWF sets none of them):
#   AWF_SQUID_CONFIG_B64  the squid.conf, base64 (AWF's contract)
#   AWF_SQUID_CONF        where the config is written and read      [/etc/squid/squid.conf]
#   AWF_LOG_DIR           the log directory                         [/var/log/squid]
#   AWF_SSL_DB_DIR        ssl-bump's certificate database           [/var/spool/squid_ssl_db]
#   AWF_RUN_DIR           uid 13's own directory (a rewritten config
#                         lands here when the config is read-only)  [/var/run/squid]
#   AWF_IPV6              auto | on | off: keep the IPv6 listener?  [auto: if the kernel has it]
#   AWF_PROXY_BIN         the binary                                [/usr/local/bin/awf-proxy]
# POSIX sh: it runs under AWF's bash and under dash alike.
set -eu

PROXY_UID=13
PROXY_GID=13
CONF=${AWF_SQUID_CONF:-/etc/squid/squid.conf}
LOG_DIR=${AWF_LOG_DIR:-/var/log/squid}
SSL_DB=${AWF_SSL_DB_DIR:-/var/spool/squid_ssl_db}
RUN_DIR=${AWF_RUN_DIR:-/var/run/squid}
IPV6=${AWF_IPV6:-auto}
BIN=${AWF_PROXY_BIN:-/usr/local/bin/awf-proxy}
ME=awf-proxy-entrypoint

say() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# `docker run IMAGE --help`: nothing to set up, whoever we run as.
case "${1:-}" in
-h | --help | --version | help | version) exec "$BIN" "$@" ;;
esac
[ -x "$BIN" ] || die "$BIN is not an executable file"

# --- as root: the directories the host mounts, then once more as uid 13 ------------------------
# The host mounts them; their owner is whoever created them there (the runner user, root, or an
# id that means nothing inside the container). When chown is refused (no CAP_CHOWN, root squashed
# on NFS, an id-mapped mount), a world-writable directory is the fallback, as in AWF's own
# compose command: the directory holds only our files and only this container writes it.
give_to_proxy() {
    dir=$1
    # -h: a symlink inside the directory is changed itself, never the file it points to.
    if chown -R -h "$PROXY_UID:$PROXY_GID" "$dir" 2>/dev/null && chmod 0755 "$dir" 2>/dev/null; then
        say "$dir owned by uid/gid $PROXY_UID"
    elif chmod 0777 "$dir" 2>/dev/null; then
        # Files left by an earlier run must stay appendable; symlinks are not followed (-type f).
        find "$dir" -mindepth 1 -type f -exec chmod a+rw {} + 2>/dev/null || true
        find "$dir" -mindepth 1 -type d -exec chmod 0777 {} + 2>/dev/null || true
        say "warning: cannot change the owner of $dir; made it mode 0777 instead"
    else
        say "warning: cannot change the owner or the mode of $dir"
    fi
}

if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is not installed"
    if [ ! -d "$LOG_DIR" ]; then
        mkdir -p "$LOG_DIR" 2>/dev/null || die "log directory $LOG_DIR is missing and cannot be created"
    fi
    give_to_proxy "$LOG_DIR"
    [ ! -d "$SSL_DB" ] || give_to_proxy "$SSL_DB"
    for d in "$(dirname "$CONF")" "$RUN_DIR"; do
        if mkdir -p "$d" 2>/dev/null; then chown "$PROXY_UID:$PROXY_GID" "$d" 2>/dev/null || true; fi
    done
    # No supplementary groups, no capabilities, no way back to root through setuid binaries.
    exec setpriv --reuid="$PROXY_UID" --regid="$PROXY_GID" --clear-groups --no-new-privs -- \
        /bin/sh "$0" "$@"
fi

ME_UID=$(id -u)
[ "$ME_UID" = "$PROXY_UID" ] || say "warning: running as uid $ME_UID, not the proxy user ($PROXY_UID)"

# --- 1. the log directory ---------------------------------------------------------------------
{ [ -d "$LOG_DIR" ] && [ -w "$LOG_DIR" ] && [ -x "$LOG_DIR" ]; } ||
    die "log directory $LOG_DIR is not writable by uid $ME_UID (read-only mount, or owned by" \
        "another user: start the container as root, or give the directory to $PROXY_UID:$PROXY_GID)"

# --- 2. the config ----------------------------------------------------------------------------
# Decoded next to the target and renamed into place, so a failed decode never leaves a partial
# config behind.
decode_config() {
    if [ -z "${AWF_SQUID_CONFIG_B64:-}" ]; then
        if [ ! -f "$CONF" ]; then
            # With arguments the container is told what to run (--policy ...): no config needed.
            [ "$#" -gt 0 ] && return 0
            die "AWF_SQUID_CONFIG_B64 is not set and $CONF does not exist"
        fi
        say "AWF_SQUID_CONFIG_B64 is not set; using $CONF as it is"
        return 0
    fi
    conf_dir=$(dirname "$CONF")
    [ -d "$conf_dir" ] || mkdir -p "$conf_dir" 2>/dev/null || die "cannot create $conf_dir"
    [ -w "$conf_dir" ] || die "cannot write $CONF: $conf_dir is not writable by uid $ME_UID"
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
# lines go (AWF's own entrypoint deletes `http_port [::]:` lines), and a bare `http_port PORT`
# (all addresses, which awf-proxy may take as dual-stack [::]) becomes 0.0.0.0:PORT. Everything
# else on those lines (options) is kept. A listener continued over several lines (a trailing
# backslash, as AWF's --ssl-bump config writes them) goes with all its lines: its options left
# alone would read as a directive of their own. A config we may not rewrite (mounted read-only by
# older AWF) is rewritten into uid 13's run directory and read from there.
drop_ipv6_listener() {
    case "$IPV6" in
    on) return 0 ;;
    off) ;;
    auto) ipv6_available && return 0 ;;
    *) die "AWF_IPV6 must be auto, on or off, not \"$IPV6\"" ;;
    esac
    [ -f "$CONF" ] || return 0
    out=$CONF
    [ -w "$(dirname "$CONF")" ] || out="$RUN_DIR/$(basename "$CONF")"
    tmp="$out.new.$$"
    sed -E -e '/^[[:space:]]*http_port[[:space:]]+\[/{
:more
/\\$/{
N
b more
}
d
}' \
        -e 's/^([[:space:]]*http_port[[:space:]]+)([0-9]+([[:space:]]|$))/\10.0.0.0:\2/' \
        "$CONF" 2>/dev/null >"$tmp" || {
        rm -f "$tmp"
        die "IPv6 is off and $CONF cannot be rewritten ($(dirname "$out") is not writable)"
    }
    chmod 0644 "$tmp"
    if cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
    elif mv -f "$tmp" "$out" 2>/dev/null; then
        say "IPv6 is off: IPv6 listeners removed from $CONF"
        [ "$out" = "$CONF" ] || say "$CONF is read-only: the rewritten config is $out"
        CONF=$out
    else
        rm -f "$tmp"
        die "IPv6 is off and $CONF cannot be rewritten"
    fi
}

decode_config "$@"
drop_ipv6_listener

# The config is in a file now; awf-proxy does not need a second copy in its environment.
unset AWF_SQUID_CONFIG_B64

if [ "$#" -eq 0 ]; then
    set -- --squid-conf "$CONF"
fi
say "starting $BIN $* as uid $ME_UID"
exec "$BIN" "$@"
