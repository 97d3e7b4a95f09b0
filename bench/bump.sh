#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# ssl-bump side by side: direct TLS vs awf-proxy (ssl-bump off, on) vs squid-openssl 5.7 on AWF's
# ssl-bump squid.conf, one table. Usage: bench/bump.sh [--quick] [--reps N] [--keep]
#
# Same conventions as bench/run.sh (bench/lib.sh: build, upstreams, CPU from /proc; report.sh:
# medians, spreads, ratios): fresh proxies per repetition, every benchmark for every side in
# turn. Squid is Debian's squid-openssl, unpacked by bench/squid-openssl.sh (never installed: it
# conflicts with the `squid` the rest uses); its CPU includes its certificate helpers'.
set -euo pipefail

QUICK=0 REPS='' KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '3,4p' "$0"; exit 0 ;;
    *) echo "bump.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1} GET_SECS=2 CHURN_SECS=2
else
    REPS=${REPS:-3} GET_SECS=4 CHURN_SECS=4
fi
NAMES=1000   # first visits per repetition: each a name never seen, minted once
KA_PER=100   # keep-alive GETs per bumped connection
BIG_BYTES=4096 # lib.sh's /big: not used here
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

SIDES=(direct awfoff awf squid)
PROXIES=(awfoff awf squid)
declare -A LABEL=([direct]=direct [awfoff]="awf-proxy, ssl-bump off" [awf]="awf-proxy --ssl-bump"
    [squid]="squid-openssl 5.7 ssl-bump")
declare -A RSS_REST=() # side -> VmRSS (kB) of the fresh proxy, for the per-name figure

# ---------------------------------------------------------------- setup

squid_openssl() {
    SQUID_DIR=$("$ROOT/bench/squid-openssl.sh") || { FAIL[squid]="squid-openssl not unpacked"; return; }
    SQUID_BIN=$SQUID_DIR/usr/sbin/squid
    # The allowed hosts: bench.test and every first-visit name of every repetition and side.
    local rep side i
    for rep in $(seq "$REPS"); do
        for side in awf squid; do
            for i in $(seq 0 $((NAMES - 1))); do echo "127.0.0.1 n$i-r$rep$side.$HOST"; done
        done
    done >>"$TMP/hosts"
    mkdir -p "$TMP/ca"
    "$AWF_BIN" ca new --days 1 --out "$TMP/ca" >/dev/null || { FAIL[awf]="ca new failed"; return; }
    chmod 0644 "$TMP/ca/ca-key.pem" # Squid reads it after dropping to user proxy; a temp dir
    sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$SQUID_PORT|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" \
        -e "s|@TLS_PORT@|$TLS_PORT|g" -e "s|@SQUID_LIB@|$SQUID_DIR/usr/lib/squid|g" \
        "$ROOT/bench/conf/squid-bump.conf.in" >"$TMP/squid-bump.conf"
    if ! "$SQUID_BIN" -k parse -f "$TMP/squid-bump.conf" >"$TMP/squid-parse.log" 2>&1; then
        FAIL[squid]="config rejected"
        tail -n 5 "$TMP/squid-parse.log" >&3
    fi
    # The helpers' on-disk certificate database, as AWF's entrypoint makes it.
    rm -rf "$TMP/squid_ssl_db"
    "$SQUID_DIR/usr/lib/squid/security_file_certgen" -c -s "$TMP/squid_ssl_db" -M 16MB \
        >/dev/null
    chown -R proxy: "$TMP/squid_ssl_db"
    # awf-proxy gets the same: the CA, the upstream's certificate as an extra trusted CA, every
    # bumped request allowed by URL pattern (in the authority '*' never crosses a '/').
    AWF_ARGS=(--allow-domains "$HOST" --hosts-file "$TMP/hosts" --allow-ranges 127.0.0.0/8
        --allow-ports "$HTTP_PORT,$RAW_PORT,$TLS_PORT" --dns-servers 127.0.0.1:53)
    BUMP_ARGS=(--ssl-bump --ca-cert "$TMP/ca/ca.pem" --ca-key "$TMP/ca/ca-key.pem"
        --ca-file "$TMP/tls.crt"
        --allow-urls "https://$HOST:$TLS_PORT/small*,https://*.$HOST:$TLS_PORT/small*")
}

start_proxies() {
    local side
    for side in awfoff awf; do
        [ -z "${FAIL[$side]:-}" ] || continue
        local port=$AWFALL_PORT extra=()
        [ "$side" = awfoff ] || port=$AWF_PORT extra=("${BUMP_ARGS[@]}")
        awf_cmd "$port" 1 "$side"
        if start "$side" "$port" "${AWF_CMD[@]}" "${extra[@]}"; then
            PID[$side]=$STARTED_PID
        else
            FAIL[$side]="did not start"
        fi
    done
    if [ -z "${FAIL[squid]:-}" ]; then
        if start squid "$SQUID_PORT" "$SQUID_BIN" -N -f "$TMP/squid-bump.conf"; then
            PID[squid]=$STARTED_PID
        else
            FAIL[squid]="did not start"
        fi
    fi
    sleep 0.5 # Squid starts its helpers after it listens
}
stop_proxies() {
    local side
    for side in "${PROXIES[@]}"; do
        [ -z "${PID[$side]:-}" ] || stop "${PID[$side]}"
        PID[$side]=
    done
}
alive() { [ -z "${FAIL[$1]:-}" ] && [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }
proxy_addr() {
    case $1 in
    awf) echo "127.0.0.1:$AWF_PORT" ;;
    awfoff) echo "127.0.0.1:$AWFALL_PORT" ;;
    *) echo "127.0.0.1:$SQUID_PORT" ;;
    esac
}
# The RSS of a proxy in kB: Squid's helpers are processes of their own, counted apart.
rss_kb() { status_kb "$1" VmRSS; }
helpers_kb() {
    local p sum=0
    for p in $(pgrep -P "$1" || true); do sum=$((sum + $(status_kb "$p" VmRSS || echo 0))); done
    echo "$sum"
}

# ---------------------------------------------------------------- benchmarks (one side, once)

# RSS of the fresh proxy, before anything was bumped.
bench_rest() {
    local side=$1
    [ "$side" != direct ] || return 0
    expect "$side" rss_rest_mb
    RSS_REST[$side]=$(rss_kb "${PID[$side]}")
    record rss_rest_mb "$side" "$(calc "${RSS_REST[$side]} / 1024" 1)"
    [ "$side" != squid ] || record helpers_mb squid "$(calc "$(helpers_kb "${PID[squid]}") / 1024" 1)"
}

# First visits: NAMES connections (2 clients), each to a name never seen before (a new leaf to
# mint), handshake + one GET; then the RSS with those names cached. The names are nK-rREPside
# under bench.test: nginx's certificate is for *.bench.test, which covers one label only.
bench_mint() {
    local side=$1
    case $side in awf | squid) ;; *) return 0 ;; esac
    expect "$side" mint_per_s mint_cpu_us rss_names_mb rss_name_kib
    churn_rows "$side" mint --connect "$(proxy_addr "$side")" --tunnel "$HOST:$TLS_PORT" \
        --tls "$HOST" --names "-r$REP$side.$HOST" --total "$NAMES" || return 1
    sleep 0.5
    local kb
    kb=$(rss_kb "${PID[$side]}")
    record rss_names_mb "$side" "$(calc "$kb / 1024" 1)"
    record rss_name_kib "$side" "$(calc "($kb - ${RSS_REST[$side]}) / $NAMES" 2)"
}

# A new bumped connection per request (CONNECT + handshake + one GET), the name's leaf cached.
# ssl-bump off: the same load spliced; direct: TLS straight to nginx.
bench_bump() {
    local side=$1
    if [ "$side" = direct ]; then
        churn_rows direct bump --connect "127.0.0.1:$TLS_PORT" --tls "$HOST"
        return
    fi
    "$CLIENT" churn --connect "$(proxy_addr "$side")" --tunnel "$HOST:$TLS_PORT" --tls "$HOST" \
        --total 1 --clients 1 >/dev/null # the first visit of bench.test: a mint, not measured
    churn_rows "$side" bump --connect "$(proxy_addr "$side")" --tunnel "$HOST:$TLS_PORT" \
        --tls "$HOST"
}

# KA_PER keep-alive GETs inside each bumped connection (2 clients): the cost of a request once
# both handshakes are paid.
bench_ka() {
    local side=$1 to=(--connect "$(proxy_addr "$1")" --tunnel "$HOST:$TLS_PORT")
    [ "$side" != direct ] || to=(--connect "127.0.0.1:$TLS_PORT")
    churn_rows "$side" ka "${to[@]}" --tls "$HOST" --requests "$KA_PER"
}

# Not bumped: a new CONNECT tunnel + one plain GET (to the raw upstream). squid-openssl's
# `ssl_bump peek` answers non-TLS bytes in a CONNECT with an error (on_unsupported_protocol),
# so it has no figure here; awf-proxy with ssl-bump on peeks, sees HTTP and tunnels it.
bench_churn() {
    case $1 in
    direct) churn_rows direct churn --connect "127.0.0.1:$RAW_PORT" ;;
    squid) return 0 ;;
    *) churn_rows "$1" churn --connect "$(proxy_addr "$1")" --tunnel "$HOST:$RAW_PORT" ;;
    esac
}

BENCHES=(bench_rest bench_mint bench_bump bench_ka bench_get bench_churn)

# ---------------------------------------------------------------- report

# shellcheck source=report.sh
. "$ROOT/bench/report.sh"
ROWS=(
    "bump_per_s|**Bumped**: new connection (CONNECT + TLS handshake + one GET, leaf cached), 2 clients: connections/s|hi"
    "bump_cpu_us|**Bumped: proxy CPU per connection, µs**|lo"
    "bump_usr_us|Bumped: of which user, µs|lo"
    "bump_sys_us|Bumped: of which kernel (system), µs|lo"
    "mint_per_s|First visit of a name (a leaf minted), $NAMES names, 2 clients: connections/s|hi"
    "mint_cpu_us|**First visit: proxy CPU per connection, µs**|lo"
    "mint_extra_us|First visit − cached (the mint, and for awf-proxy a new upstream TLS connection), µs|lo"
    "ka_per_s|Keep-alive inside one bumped connection ($KA_PER GETs each, 2 clients): requests/s|hi"
    "ka_cpu_us|**Keep-alive: proxy CPU per request, µs**|lo"
    "rss_rest_mb|RSS at rest (VmRSS), MB|lo"
    "rss_names_mb|RSS with $NAMES names cached, MB|lo"
    "rss_name_kib|RSS per cached name, KiB|lo"
    "helpers_mb|Squid's 5 certificate helpers at rest, RSS together, MB|-"
    "cert_mint_us|P-256 mint alone (awf-cert-bench, CPU time), µs|lo"
    "get_rps|Not bumped: small GET keep-alive (plain HTTP, wrk -c50): req/s|hi"
    "get_cpu_us|**Not bumped: small GET, proxy CPU per request, µs**|lo"
    "get_p99_ms|Not bumped: small GET p99, ms|lo"
    "churn_per_s|Not bumped: new CONNECT tunnel + one plain GET, 2 clients: tunnels/s|hi"
    "churn_cpu_us|**Not bumped: new tunnel, proxy CPU per tunnel, µs**|lo"
)

bump_verdicts() {
    local x
    goal "Issue 12: CPU per bumped connection ≤ ½ of squid-openssl's, µs" \
        "$(med bump_cpu_us awf)" "$(med bump_cpu_us squid)" "<=" 0.5
    goal "Issue 12: first visit CPU per connection ≤ ½ of squid-openssl's, µs" \
        "$(med mint_cpu_us awf)" "$(med mint_cpu_us squid)" "<=" 0.5
    x=$(med cert_mint_us awf)
    goal "Issue 12: a P-256 mint < 1 ms (awf-cert-bench, µs)" "$x" - "<=" 1000 \
        "; in the running proxy, first visit − cached: $(med mint_extra_us awf) µs"
    goal "Issue 12: no change for traffic not bumped: small GET CPU per request, ssl-bump on / off" \
        "$(med get_cpu_us awf)" "$(med get_cpu_us awfoff)" "<=" 1.1 \
        " (≤ 1.1: within this run's noise)"
    goal "Issue 12: no change for traffic not bumped: CPU per new CONNECT tunnel, on / off" \
        "$(med churn_cpu_us awf)" "$(med churn_cpu_us awfoff)" "<=" 1.1 \
        " (≤ 1.1: within this run's noise)"
}

bump_report() {
    local row key label side
    echo "# ssl-bump: awf-proxy vs squid-openssl vs direct"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), awf-proxy" \
        "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
            git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')," \
        "$("$SQUID_BIN" -v 2>/dev/null | head -n1 | sed 's/Squid Cache: Version /squid-openssl /')" \
        "(-N, one process + 5 helpers), nginx $(nginx -v 2>&1 | sed 's|.*/||'), $REPS" \
        "repetition(s)$([ "$QUICK" = 1 ] && echo ', --quick') in $((BENCH_SECS / 60)) min" \
        "$((BENCH_SECS % 60)) s; median ±(max−min)/median."
    echo
    echo "| measure | direct | ${LABEL[awfoff]} | ${LABEL[awf]} | ${LABEL[squid]}" \
        "| awf-proxy bump / squid-openssl | bump on / off |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label _ <<<"$row"
        [ -n "${R["$key direct"]:-}${R["$key awf"]:-}${R["$key awfoff"]:-}${R["$key squid"]:-}" ] ||
            [ -n "${MISSED["$key awf"]:-}${MISSED["$key squid"]:-}" ] || continue
        echo "| $label | $(cell "$key" direct) | $(cell "$key" awfoff) | $(cell "$key" awf)" \
            "| $(cell "$key" squid) | $(ratio "$key" awf squid) | $(ratio "$key" awf awfoff) |"
    done
    echo
    bump_verdicts
    failures
    echo "- CPU = utime+stime from /proc/PID/stat (all threads) before and after each load," \
        "divided by the connections (requests) it completed: on 2 shared cores the rates move" \
        "with whatever else runs, CPU per unit of work much less. squid-openssl's CPU adds its" \
        "live children's (the 5 security_file_certgen helpers that mint its certificates);" \
        "its RSS rows are the squid process alone (the helpers' row is apart)."
    echo "- Upstream TLS: both proxies verify nginx's certificate (its CA file given to each)." \
        "awf-proxy keeps verified upstream TLS connections and reuses them for the next bumped" \
        "connection to the same name and address; Squid pins each one to its client connection" \
        "and closes it with it. Both are the products' own behaviour and part of what is measured."
    echo "- ssl-bump off = the same loads spliced (the TLS tunnel of bench/run.sh); the not-bumped" \
        "rows compare awf-proxy with ssl-bump on and off for traffic it does not bump."
}

# ---------------------------------------------------------------- main

main() {
    pick_ports
    build
    if [ -z "${FAIL[awf]:-}" ] &&
        cmake --build "$BUILD" -j2 --target awf-cert-bench >>"$TMP/cmake.log" 2>&1; then
        CERT_BENCH=$BUILD/bench/awf-cert-bench
    fi
    [ -z "${FAIL[awf]:-}" ] || FAIL[awfoff]=${FAIL[awf]}
    write_configs
    squid_openssl
    local side b t0=$SECONDS
    start_upstreams
    for REP in $(seq "$REPS"); do
        start_proxies
        for b in "${BENCHES[@]}"; do
            for side in "${SIDES[@]}"; do
                if [ "$side" != direct ] && ! alive "$side"; then
                    [ -n "${FAIL[$side]:-}" ] || FAIL[$side]="process exited during the run"
                    continue
                fi
                log "rep $REP/$REPS: $b $side"
                run_bench "$b" "$side"
            done
        done
        stop_proxies
        [ -z "${CERT_BENCH:-}" ] ||
            record cert_mint_us awf "$("$CERT_BENCH" 100 | awk -F'|' '/P-256/ { print $4 + 0 }')"
    done
    local a c
    a=$(med mint_cpu_us awf) c=$(med bump_cpu_us awf)
    [ -z "$a" ] || [ -z "$c" ] || record mint_extra_us awf "$(calc "$a - $c" 1)"
    a=$(med mint_cpu_us squid) c=$(med bump_cpu_us squid)
    [ -z "$a" ] || [ -z "$c" ] || record mint_extra_us squid "$(calc "$a - $c" 1)"
    BENCH_SECS=$((SECONDS - t0))
    mkdir -p "$RESULTS"
    bump_report | tee "$RESULTS/bump.md"
    raw_tsv >"$RESULTS/bump.tsv"
    log "wrote $RESULTS/bump.md, bump.tsv"
}
main
