#!/bin/sh
# awf-agent-init: the agent's firewall, replacing AWF's setup-iptables.sh (SPEC §8).
#
# Runs in the agent's network namespace (AWF's awf-iptables-init container: network_mode
# service:agent, cap_add NET_ADMIN NET_RAW), reads the environment AWF already passes to
# setup-iptables.sh, turns it into the options of `awf-proxy netfilter apply`, applies the ruleset
# atomically and writes what was loaded to $AWF_INIT_DIR/iptables-audit.txt. On success it touches
# $AWF_INIT_DIR/ready, the file the agent's entrypoint waits for.
#
#   awf-agent-init [apply|print|remove]      (default apply; print changes nothing)
#
# AWF's inputs (names and defaults as setup-iptables.sh reads them):
#   SQUID_PROXY_HOST       the proxy: an IPv4/IPv6 address or a name     [squid-proxy]
#   SQUID_PROXY_PORT       its port                                      [3128]
#   AWF_DNS_SERVERS        resolvers the agent may query, comma separated [8.8.8.8,8.8.4.4]
#   AWF_ALLOW_HOST_PORTS   more tcp ports DNAT'd to the proxy: 3000,8000-8010
#                          (AWF_VALID_ALLOW_HOST_PORTS, when set, is read instead)
#   AWF_BLOCKED_PORTS      ports blocked on top of the SPEC's dangerous ports
#   AWF_API_PROXY_IP, AWF_CLI_PROXY_IP   sidecars: tcp let through, never redirected
#   AWF_DOH_ENABLED=true + AWF_DOH_PROXY_IP   DNS goes only to the DoH proxy (replaces the list)
#   AWF_ENABLE_HOST_ACCESS, AWF_HOST_GATEWAY_IP   the host gateway (and the default route's
#                          gateway) reached directly on tcp 80, 443, AWF_ALLOW_HOST_PORTS and
#                          AWF_HOST_SERVICE_PORTS (ranges N-M kept) only, as AWF does
#   AWF_SSL_BUMP_ENABLED, AWF_SSL_BUMP_INTERCEPT_PORT   ignored: awf-proxy needs no bump port
# Ours:
#   AWF_AGENT_IP           the agent's address(es)      [the IPv4 address of eth0, as AWF does]
#   AWF_DNS_FORWARDER      ADDR:PORT of awf-proxy's DNS forwarder: all port-53 traffic goes there
#                          and AWF_DNS_SERVERS is not used
#   AWF_IPV6               auto | on | off (netfilter --ipv6)                      [auto]
#   AWF_INIT_DIR           where the audit file and the ready file go              [/tmp/awf-init]
#   AWF_PROXY_BIN          the binary                                  [/usr/local/bin/awf-proxy]
# POSIX sh only.
set -euf # -f: no globbing; lists are split on purpose below

ME=awf-agent-init
BIN=${AWF_PROXY_BIN:-/usr/local/bin/awf-proxy}
INIT_DIR=${AWF_INIT_DIR:-/tmp/awf-init}
# SPEC §8's list, the same as AWF's DANGEROUS_PORTS; netfilter's own default, spelled out here
# because --dangerous-ports replaces the default list and AWF_BLOCKED_PORTS only adds to it.
DANGEROUS="22 23 25 110 143 445 1433 1521 3306 3389 5432 6379 27017 27018 28017"
MAX_RANGE=1024 # a port range becomes one DNAT rule per port; more than this is a mistake

say() { printf '[%s] %s\n' "$ME" "$*" >&2; }
die() {
    say "error: $*"
    exit 2
}

is_ipv4() {
    printf '%s' "$1" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$'
}

is_ipv6() {
    case "$1" in *:*) return 0 ;; *) return 1 ;; esac
}

# 1-65535 without leading zeros (as AWF's validation; sh arithmetic would read 08 as octal).
is_port() {
    case "$1" in '' | 0* | *[!0-9]*) return 1 ;; esac
    [ "${#1}" -le 5 ] || return 1
    [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

# A comma/space separated list, one item a line, blanks dropped.
items() {
    printf '%s\n' "$1" | tr -s ', \t' '\n' | sed '/^$/d'
}

# "a b c" -> "a,b,c"
commas() {
    printf '%s' "$1" | sed -E 's/^ +//; s/ +$//; s/ +/,/g'
}

is_dangerous() {
    for d in $DANGEROUS $EXTRA_BLOCKED; do
        [ "$1" = "$d" ] && return 0
    done
    return 1
}

# The proxy's address. AWF passes the IP (its init container may not resolve compose names);
# a name is resolved with the container's resolver, first IPv4 answer.
resolve_proxy() {
    host=${SQUID_PROXY_HOST:-squid-proxy}
    port=${SQUID_PROXY_PORT:-3128}
    is_port "$port" || die "SQUID_PROXY_PORT \"$port\" is not a port (1-65535)"
    if is_ipv4 "$host"; then
        PROXY="$host:$port"
    elif is_ipv6 "$host"; then
        host=${host#[}
        host=${host%]}
        PROXY="[$host]:$port"
    else
        ip=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }')
        [ -n "$ip" ] || die "cannot resolve the proxy's name \"$host\" (SQUID_PROXY_HOST)"
        PROXY="$ip:$port"
    fi
    say "proxy: $PROXY"
}

# AWF_ALLOW_HOST_PORTS: single ports are passed on as they are (a dangerous one makes netfilter
# refuse the whole input, as it should); ranges are expanded, leaving out the blocked ports, which
# stay blocked as in AWF (there the RETURN rules for them come before the DNAT of the range).
host_ports() {
    out=""
    # Newer AWF also passes the list pre-validated under AWF_VALID_*: the same ports.
    for spec in $(items "${AWF_VALID_ALLOW_HOST_PORTS:-${AWF_ALLOW_HOST_PORTS:-}}"); do
        case "$spec" in
        *-*)
            lo=${spec%%-*}
            hi=${spec#*-}
            { is_port "$lo" && is_port "$hi" && [ "$lo" -le "$hi" ]; } ||
                die "AWF_ALLOW_HOST_PORTS: \"$spec\" is not a port range"
            [ $((hi - lo)) -lt "$MAX_RANGE" ] ||
                die "AWF_ALLOW_HOST_PORTS: range \"$spec\" is wider than $MAX_RANGE ports"
            p=$lo
            while [ "$p" -le "$hi" ]; do
                if is_dangerous "$p"; then
                    say "port $p of range $spec stays blocked (dangerous port)"
                else
                    out="$out $p"
                fi
                p=$((p + 1))
            done
            ;;
        *)
            is_port "$spec" || die "AWF_ALLOW_HOST_PORTS: \"$spec\" is not a port"
            out="$out $spec"
            ;;
        esac
    done
    commas "$out"
}

agent_ips() {
    if [ -n "${AWF_AGENT_IP:-}" ]; then
        commas "$(items "$AWF_AGENT_IP" | tr '\n' ' ')"
        return 0
    fi
    # As setup-iptables.sh: the first IPv4 address of eth0, when there is one.
    ip -4 -o addr show dev eth0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}

usage() {
    cat <<EOT
Usage: $ME [apply|print|remove]     (default apply)
The agent's firewall, replacing AWF's setup-iptables.sh: reads AWF's environment
(SQUID_PROXY_HOST, SQUID_PROXY_PORT, AWF_DNS_SERVERS, AWF_ALLOW_HOST_PORTS, AWF_BLOCKED_PORTS,
AWF_API_PROXY_IP, AWF_CLI_PROXY_IP, AWF_DOH_ENABLED, AWF_DOH_PROXY_IP, AWF_ENABLE_HOST_ACCESS,
AWF_HOST_GATEWAY_IP, AWF_HOST_SERVICE_PORTS; ours: AWF_AGENT_IP, AWF_DNS_FORWARDER, AWF_IPV6,
AWF_INIT_DIR) and runs awf-proxy netfilter apply once in this network namespace.
  apply    load the rules, write \$AWF_INIT_DIR/iptables-audit.txt, touch \$AWF_INIT_DIR/ready
  print    show what apply would load; changes nothing
  remove   take the rules out
Exit 0 done, 1 the load failed (rolled back), 2 bad input (nothing changed).
See containers/README.md.
EOT
}

main() {
    action=${1:-apply}
    case "$action" in
    -h | --help | help)
        usage
        exit 0
        ;;
    apply | print | remove) ;;
    *) die "usage: $ME [apply|print|remove] (not \"$action\")" ;;
    esac
    [ -x "$BIN" ] || die "$BIN is not an executable file"

    if [ "$action" = remove ]; then
        exec "$BIN" netfilter remove
    fi

    EXTRA_BLOCKED=""
    for p in $(items "${AWF_BLOCKED_PORTS:-}"); do
        is_port "$p" || die "AWF_BLOCKED_PORTS: \"$p\" is not a port"
        EXTRA_BLOCKED="$EXTRA_BLOCKED $p"
    done

    resolve_proxy
    set -- --side agent --proxy "$PROXY" --ipv6 "${AWF_IPV6:-auto}"

    agent=$(agent_ips)
    if [ -n "$agent" ]; then
        say "agent: $agent"
        set -- "$@" --agent-ip "$agent"
    fi

    # DNS: the forwarder, or the DoH proxy, or the allowed resolvers (AWF's default: Google's).
    if [ -n "${AWF_DNS_FORWARDER:-}" ]; then
        say "DNS: every query goes to the forwarder $AWF_DNS_FORWARDER"
        set -- "$@" --dns-forwarder "$AWF_DNS_FORWARDER"
    elif [ "${AWF_DOH_ENABLED:-}" = true ] && [ -n "${AWF_DOH_PROXY_IP:-}" ]; then
        say "DNS: only to the DoH proxy $AWF_DOH_PROXY_IP"
        set -- "$@" --dns "$AWF_DOH_PROXY_IP" --sidecar "$AWF_DOH_PROXY_IP"
    else
        dns=$(commas "$(items "${AWF_DNS_SERVERS:-8.8.8.8,8.8.4.4}" | tr '\n' ' ')")
        [ -z "$dns" ] || set -- "$@" --dns "$dns"
        say "DNS: ${dns:-none}"
    fi

    sidecars=""
    for v in "${AWF_API_PROXY_IP:-}" "${AWF_CLI_PROXY_IP:-}"; do
        [ -z "$v" ] || sidecars="$sidecars $v"
    done
    if [ -n "${AWF_ENABLE_HOST_ACCESS:-}" ]; then
        # As setup-iptables.sh: the host gateway (host.docker.internal, else AWF_HOST_GATEWAY_IP)
        # and the network's default gateway, never redirected, reachable on tcp 80, 443, the
        # allowed host ports and the host service ports only.
        gw=$(getent ahostsv4 host.docker.internal 2>/dev/null | awk 'NR == 1 { print $1 }')
        gw=${gw:-${AWF_HOST_GATEWAY_IP:-}}
        netgw=$(ip -4 route show default 2>/dev/null | awk '{ print $3; exit }')
        gws=$(commas "$gw $netgw")
        if [ -n "$gws" ]; then
            hp=$(commas "$(items "${AWF_VALID_ALLOW_HOST_PORTS:-${AWF_ALLOW_HOST_PORTS:-}},${AWF_VALID_HOST_SERVICE_PORTS:-${AWF_HOST_SERVICE_PORTS:-}}" | tr '\n' ' ')")
            say "host access: tcp 80, 443${hp:+, $hp} to $gws"
            set -- "$@" --host-gateway "$gws"
            [ -z "$hp" ] || set -- "$@" --host-ports "$hp"
        else
            say "warning: AWF_ENABLE_HOST_ACCESS is set but the host gateway is unknown"
        fi
    fi
    [ -z "$sidecars" ] || set -- "$@" --sidecar "$(commas "$sidecars")"

    ports=$(host_ports)
    [ -z "$ports" ] || set -- "$@" --proxy-ports "$ports"
    if [ -n "$EXTRA_BLOCKED" ]; then
        set -- "$@" --dangerous-ports "$(commas "$DANGEROUS $EXTRA_BLOCKED")"
    fi
    if [ "${AWF_SSL_BUMP_ENABLED:-}" = true ]; then
        say "note: SSL bump settings ignored: awf-proxy checks TLS on its one listener"
    fi

    if [ "$action" = print ]; then
        exec "$BIN" netfilter print "$@"
    fi

    mkdir -p "$INIT_DIR" || die "cannot create $INIT_DIR"
    audit="$INIT_DIR/iptables-audit.txt"
    say "awf-proxy netfilter apply $* --audit-file $audit"
    rc=0
    "$BIN" netfilter apply "$@" --audit-file "$audit" || rc=$?
    if [ "$rc" -ne 0 ]; then
        say "error: awf-proxy netfilter apply failed (exit $rc); the agent must not start"
        exit "$rc"
    fi
    touch "$INIT_DIR/ready"
    say "firewall applied; ruleset written to $audit"
}

main "$@"
