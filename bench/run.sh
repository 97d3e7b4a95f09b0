#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Side-by-side benchmark: direct vs awf-proxy (1 thread, all threads) vs Squid 5.7, one table.
# Usage: bench/run.sh [--quick] [--reps N] [--keep] [--ab BIN_A BIN_B]   (see bench/README.md)
#
# Layout: setup from bench/lib.sh (build, config, start servers), then one function per
# benchmark that measures one side once and records its figures with `record KEY SIDE VALUE`;
# the main loop runs every benchmark for every side, REPS times, interleaved; bench/report.sh
# takes medians and spreads, prints the table, the verdicts and the chart.
# Adding a benchmark = one bench_* function, one line in BENCHES, its rows in ROWS.
set -euo pipefail

QUICK=0 REPS='' KEEP=0 AB=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --keep) KEEP=1 ;;
    --ab) AB=("$2" "$3"); shift 2 ;;
    -h | --help) sed -n '3,4p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1} GET_SECS=3 CHURN_SECS=2 BIG_MIB=256 IDLE_N=1000 IDLE_MANY=
else
    REPS=${REPS:-3} GET_SECS=10 CHURN_SECS=4 BIG_MIB=1024 IDLE_N=1000 IDLE_MANY=9000
fi
BIG_BYTES=$((BIG_MIB * 1024 * 1024))
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# awfall: the same binary with --threads 0 (one loop per core). It runs only the benchmarks in
# ALL_THREADS, where several connections at once can use several loops; a bulk transfer, an
# idle tunnel or a start is one connection (or none) on one loop: the 1-thread column's path.
SIDES=(direct awf awfall squid)
PROXIES=(awf awfall squid)
ALL_THREADS=" bench_get bench_churn bench_tls "
declare -A LABEL=([direct]=direct [awf]="awf-proxy (1 thread)" [awfall]="awf-proxy all threads"
    [squid]="Squid 5.7")
# --ab (bench/compare.sh): two awf-proxy binaries, sides a and b, one thread each, on the ports
# of the two awf-proxy columns; no direct, all-threads or Squid side; nothing is built.
declare -A BIN=()
if [ ${#AB[@]} = 2 ]; then
    SIDES=(a b) PROXIES=(a b) ALL_THREADS=" "
    BIN=([a]=${AB[0]} [b]=${AB[1]})
    LABEL=([a]=${AWF_BENCH_LABEL_A:-A} [b]=${AWF_BENCH_LABEL_B:-B})
    AWF_BENCH_PROXY=${AB[0]}
fi
use_bin() { [ -z "${BIN[$1]:-}" ] || AWF_BIN=${BIN[$1]}; } # side: the binary it runs

squid_check() {
    if ! squid -k parse -f "$TMP/squid.conf" >"$TMP/squid-parse.log" 2>&1; then
        FAIL[squid]="config rejected"
        tail -n 5 "$TMP/squid-parse.log" >&2
    fi
}

# Fresh proxies for every repetition: Squid keeps the memory a 1 GiB transfer grew (its pools
# are not returned), so RSS at rest and per tunnel mean something only on a new process.
start_proxies() {
    local side port threads
    for side in awf awfall a b; do
        if [[ " ${PROXIES[*]} " != *" $side "* ]] || [ -n "${FAIL[$side]:-}" ]; then continue; fi
        port=$AWFALL_PORT threads=1
        case $side in awf | a) port=$AWF_PORT ;; awfall) threads=0 ;; esac
        use_bin "$side"
        awf_cmd "$port" "$threads" "$side"
        if start "$side" "$port" "${AWF_CMD[@]}"; then
            PID[$side]=$STARTED_PID
        else
            FAIL[$side]="did not start"
        fi
    done
    if [ -z "${BIN[a]:-}" ] && [ -z "${FAIL[squid]:-}" ]; then
        if start squid "$SQUID_PORT" squid -N -f "$TMP/squid.conf"; then
            PID[squid]=$STARTED_PID
        else
            FAIL[squid]="did not start"
        fi
    fi
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
    awf | a) echo "127.0.0.1:$AWF_PORT" ;;
    awfall | b) echo "127.0.0.1:$AWFALL_PORT" ;;
    *) echo "127.0.0.1:$SQUID_PORT" ;;
    esac
}

# ---------------------------------------------------------------- benchmarks (one side, once)

# Time from exec to the first accepted connection, and from SIGTERM to exit. Runs a separate
# instance on a spare port before the main ones start, so it measures a cold start.
bench_startup() {
    local side=$1 port=$((BASE + 130)) out
    expect "$side" start_ms stop_ms
    case $side in
    awf | a | b)
        use_bin "$side"
        awf_cmd "$port" 1 "$side-startup"
        out=$("$CLIENT" startup --connect "127.0.0.1:$port" -- "${AWF_CMD[@]}") || return 1
        ;;
    squid)
        squid_conf "$port" >"$TMP/squid-startup.conf"
        out=$("$CLIENT" startup --connect "127.0.0.1:$port" -- squid -N \
            -f "$TMP/squid-startup.conf") || return 1
        ;;
    esac
    local start_ms stop_ms
    eval "$out"
    record start_ms "$side" "$start_ms"
    record stop_ms "$side" "$stop_ms"
}

# RSS at rest, then with N idle CONNECT tunnels held open by the client; keys get suffix.
idle_n() {
    local side=$1 n=$2 sfx=$3 pid=${PID[$1]} before after cpid i ok=0
    [ "$side" = direct ] && return 0
    expect "$side" "rss_idle_mb$sfx" "rss_tunnel_kib$sfx"
    [ -n "$sfx" ] || expect "$side" rss_rest_mb
    before=$(status_kb "$pid" VmRSS)
    : >"$TMP/idle.out"
    "$CLIENT" idle --connect "$(proxy_addr "$side")" --tunnel "$HOST:$RAW_PORT" \
        --count "$n" >"$TMP/idle.out" &
    cpid=$!
    STARTED+=("$cpid")
    for i in $(seq 1200); do # up to 60 s for 9,000 sequential CONNECTs
        grep -q . "$TMP/idle.out" 2>/dev/null && break
        sleep 0.05
    done
    sleep 0.5 # let the proxy settle any lazily allocated state
    after=$(status_kb "$pid" VmRSS)
    grep -q "^ready $n" "$TMP/idle.out" && ok=1
    stop "$cpid"
    sleep 0.5 # the proxy closes its side of each tunnel before the next benchmark
    [ "$ok" = 1 ] || { echo "$(cat "$TMP/idle.out") tunnels of $n" >&2; return 1; }
    [ -n "$sfx" ] || record rss_rest_mb "$side" "$(calc "$before / 1024" 1)"
    record "rss_idle_mb$sfx" "$side" "$(calc "$after / 1024" 1)"
    record "rss_tunnel_kib$sfx" "$side" "$(calc "($after - $before) / $n" 1)"
}
bench_idle() { idle_n "$1" "$IDLE_N" ""; }
bench_idle_many() { idle_n "$1" "$IDLE_MANY" _many; }

# prefix side bytes seconds client_cpu_s up0 up1 [proxy0 proxy1]: CPU per GB of the proxy, and
# of every process that moved the bytes (client + upstream [+ proxy]): on two cores that sum,
# not the proxy alone, is what bounds GB/s. Cores busy = that CPU / wall time.
record_bulk_cpu() {
    local p=$1 side=$2 gb all
    gb=$(calc "$3 / 1e9" 6)
    all=$(calc "$5 + ($7 - $6) / $HZ ${8:+ + ($9 - $8) / $HZ}" 4)
    record "${p}_all_cpu_s_gb" "$side" "$(calc "$all / $gb" 3)"
    record "${p}_cores" "$side" "$(calc "$all / $4" 2)"
    [ -z "${8:-}" ] || record "${p}_cpu_s_gb" "$side" "$(calc "($9 - $8) / $HZ / $gb" 3)"
}
# The user+system seconds of a command run with `time_cmd FILE cmd...` (bash's `time`: the
# rusage of what it waited for), read back from FILE.
time_cmd() {
    local TIMEFORMAT='%3U %3S' file=$1
    shift
    { time "$@" 2>"$file.err"; } 2>"$file"
}
time_secs() { awk '{ printf "%.3f", $1 + $2 }' "$1"; }

# One BIG_MIB download of plain HTTP with curl; GB/s, CPU per GB, proxy peak RSS.
bench_download() {
    local side=$1 pid=${PID[$1]} p0 u0 u1 out f px=() proxy=(--noproxy '*')
    [ "$side" = direct ] || proxy=(-x "http://$(proxy_addr "$side")")
    expect "$side" dl_gbps dl_all_cpu_s_gb dl_cores
    [ "$side" = direct ] || expect "$side" dl_cpu_s_gb dl_hwm_mb
    reset_hwm "$pid"
    u0=$(cpu_ticks "$NGINX_WORKER")
    [ "$side" = direct ] || p0=$(cpu_ticks "$pid")
    if ! out=$(time_cmd "$TMP/curl.time" curl -sS "${proxy[@]}" --resolve \
        "$HOST:$HTTP_PORT:127.0.0.1" -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
        "http://$HOST:$HTTP_PORT/big"); then
        cat "$TMP/curl.time.err" >&2
        return 1
    fi
    [ "$side" = direct ] || px=("$p0" "$(cpu_ticks "$pid")")
    u1=$(cpu_ticks "$NGINX_WORKER")
    read -r -a f <<<"$out" # status, bytes, seconds
    if [ "${f[0]}" != 200 ] || [ "${f[1]}" != "$BIG_BYTES" ]; then
        echo "status ${f[0]}, ${f[1]} of $BIG_BYTES bytes" >&2
        return 1
    fi
    record dl_gbps "$side" "$(calc "${f[1]} / ${f[2]} / 1e9" 2)"
    record_bulk_cpu dl "$side" "${f[1]}" "${f[2]}" "$(time_secs "$TMP/curl.time")" \
        "$u0" "$u1" "${px[@]}"
    [ "$side" = direct ] ||
        record dl_hwm_mb "$side" "$(calc "$(status_kb "$pid" VmHWM) / 1024" 1)"
}

# BIG_MIB of raw bytes through a CONNECT tunnel (direct: straight from the upstream tool).
bench_tunnel() {
    local side=$1 pid=${PID[$1]} p0 u0 u1 out px=() tun=() to="127.0.0.1:$RAW_PORT"
    [ "$side" = direct ] || tun=(--tunnel "$HOST:$RAW_PORT") to=$(proxy_addr "$side")
    expect "$side" tun_gbps tun_all_cpu_s_gb tun_cores
    [ "$side" = direct ] || expect "$side" tun_cpu_s_gb
    u0=$(cpu_ticks "$UPSTREAM_PID")
    [ "$side" = direct ] || p0=$(cpu_ticks "$pid")
    if ! out=$(time_cmd "$TMP/bulk.time" "$CLIENT" bulk --connect "$to" "${tun[@]}" \
        --bytes "$BIG_BYTES"); then
        cat "$TMP/bulk.time.err" >&2
        return 1
    fi
    [ "$side" = direct ] || px=("$p0" "$(cpu_ticks "$pid")")
    u1=$(cpu_ticks "$UPSTREAM_PID")
    # shellcheck disable=SC2034 # all set by eval; declared to keep them local
    local bytes seconds gbps
    eval "$out"
    record tun_gbps "$side" "$gbps"
    record_bulk_cpu tun "$side" "$bytes" "$seconds" "$(time_secs "$TMP/bulk.time")" \
        "$u0" "$u1" "${px[@]}"
}

# A new CONNECT tunnel per request, one GET inside (SPEC §10's row).
bench_churn() {
    if [ "$1" = direct ]; then
        churn_rows direct churn --connect "127.0.0.1:$RAW_PORT"
    else
        churn_rows "$1" churn --connect "$(proxy_addr "$1")" --tunnel "$HOST:$RAW_PORT"
    fi
}

# The same with a full TLS handshake (ECDSA P-256, no resumption) before the GET, to nginx. In a
# CONNECT tunnel awf-proxy also checks the ClientHello's SNI against the CONNECT host.
bench_tls() {
    if [ "$1" = direct ]; then
        churn_rows direct tls --connect "127.0.0.1:$TLS_PORT" --tls "$HOST"
    else
        churn_rows "$1" tls --connect "$(proxy_addr "$1")" --tunnel "$HOST:$TLS_PORT" \
            --tls "$HOST"
    fi
}

# Intercepted TLS: the ClientHello straight to the proxy's port, no CONNECT; the proxy reads the
# SNI, dials that name on 443 (tls.bench.test = 127.0.0.2, where nginx listens) and splices.
bench_tls_intercept() {
    case $1 in
    direct) churn_rows direct tlsi --connect 127.0.0.2:443 --tls "$TLS_HOST" ;;
    awf | a | b) churn_rows "$1" tlsi --connect "$(proxy_addr "$1")" --tls "$TLS_HOST" ;;
    squid) expect squid tlsi_per_s tlsi_cpu_us ;; # only with ssl-bump (certificates) and NAT
    esac
}

# The benchmarks, in this order, on fresh proxies, REPS times. Memory first, before any load.
BENCHES=(bench_idle)
[ -z "$IDLE_MANY" ] || BENCHES+=(bench_idle_many)
BENCHES+=(bench_get bench_download bench_tunnel bench_churn bench_tls)

# shellcheck source=report.sh
. "$ROOT/bench/report.sh"

# ---------------------------------------------------------------- main


main() {
    pick_ports
    build
    [ -z "${FAIL[awf]:-}" ] || FAIL[awfall]=${FAIL[awf]}
    write_configs
    [ -n "${BIN[a]:-}" ] || squid_check
    [ -z "$INTERCEPT_LISTEN" ] || BENCHES+=(bench_tls_intercept)
    local side b rep t0=$SECONDS
    log "startup times (cold, separate instances)"
    for rep in $(seq "$REPS"); do
        for side in "${PROXIES[@]}"; do
            if [ "$side" = awfall ] || [ -n "${FAIL[$side]:-}" ]; then continue; fi
            run_bench bench_startup "$side"
        done
    done
    start_upstreams
    for rep in $(seq "$REPS"); do
        start_proxies
        for b in "${BENCHES[@]}"; do
            for side in "${SIDES[@]}"; do
                [ "$side" != awfall ] || [[ "$ALL_THREADS" == *" $b "* ]] || continue
                alive "$side" || {
                    [ -n "${FAIL[$side]:-}" ] || FAIL[$side]="process exited during the run"
                    continue
                }
                log "rep $rep/$REPS: $b $side"
                run_bench "$b" "$side"
            done
        done
        stop_proxies
    done
    BENCH_SECS=$((SECONDS - t0))
    mkdir -p "$RESULTS"
    if [ -n "${BIN[a]:-}" ]; then
        ab_report | tee "$RESULTS/ab.md"
        raw_tsv >"$RESULTS/ab.tsv"
        return
    fi
    report | tee "$RESULTS/latest.md"
    raw_tsv >"$RESULTS/latest.tsv"
    chart
    log "wrote $RESULTS/latest.md, latest.tsv$([ -f "$RESULTS/latest.png" ] && echo ', latest.png')"
}
main
