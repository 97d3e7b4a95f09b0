#!/usr/bin/env bash
# Side-by-side benchmark: direct vs awf-proxy vs Squid 5.7, same local upstream, one table.
# Usage: bench/run.sh [--quick] [--reps N] [--keep]   (see bench/README.md)
#
# Layout: setup (build, config, start servers), then one function per benchmark that measures
# one side once and records its figures with `record KEY SIDE VALUE`; the main loop runs every
# benchmark for every side, REPS times, interleaved; the report takes medians and spreads.
# Adding a benchmark = one bench_* function, one line in BENCHES, its rows in ROWS.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${AWF_BENCH_BUILD:-$ROOT/build-release}
RESULTS=${AWF_BENCH_RESULTS:-$ROOT/bench/results}
HOST=bench.test
TLS_HOST=tls.bench.test # 127.0.0.2: the intercepted TLS upstream on port 443

QUICK=0 REPS='' KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,3p' "$0"; exit 0 ;;
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
HZ=$(getconf CLK_TCK)
SIDES=(direct awf squid)
declare -A LABEL=([direct]=direct [awf]=awf-proxy [squid]="Squid 5.7")
declare -A PID=()     # side -> process measured (the proxy; nginx for direct)
declare -A R=()       # "key side" -> space-separated values, one per repetition
declare -A FAIL=()    # side -> why it is n/a
declare -A MISSED=()  # "key side" expected by a benchmark that ran (n/a if never recorded)
declare -A WHY=()     # "side bench" -> why it failed (last line of its stderr)
STARTED=()            # every background process we started, stopped by cleanup

exec 3>&2 # progress goes here; a benchmark's stderr is captured as its failure reason
log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&3; }

TMP=$(mktemp -d /tmp/awf-bench.XXXXXX)
cleanup() {
    local p
    for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${STARTED[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- measurement primitives

cpu_ticks() { # user+system clock ticks of a process (all its threads), fields 14+15
    local s
    s=$(cat "/proc/$1/stat") || return 1
    s=${s##*) } # drop "pid (comm) ": comm may hold spaces
    set -- $s
    echo $((${12} + ${13}))
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; } # VmRSS, VmHWM
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }                            # VmHWM := VmRSS
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
record() { R["$1 $2"]="${R["$1 $2"]:-}${R["$1 $2"]:+ }$3"; }
# side keys...: what a benchmark is about to measure; a key never recorded then shows n/a.
expect() {
    local side=$1 k
    shift
    for k; do MISSED["$k $side"]=1; done
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
# Ports: BASE+80 nginx (/small, /big), +443 awf-bench-upstream (raw TCP), +444 nginx TLS,
# +128 awf-proxy, +129 Squid, +130 the startup instances. The first base whose six ports are
# all free is used (others run tests on this machine's loopback too), unless
# AWF_BENCH_PORT_BASE says which.
pick_ports() {
    local b p ok
    for b in ${AWF_BENCH_PORT_BASE:-24000 24500 25000 25500 26000 26500}; do
        ok=1
        for p in 80 443 444 128 129 130; do port_free $((b + p)) || ok=0; done
        if [ "$ok" = 1 ]; then
            BASE=$b HTTP_PORT=$((b + 80)) RAW_PORT=$((b + 443)) TLS_PORT=$((b + 444))
            AWF_PORT=$((b + 128)) SQUID_PORT=$((b + 129))
            return 0
        fi
    done
    log "no free port range (set AWF_BENCH_PORT_BASE)"
    exit 1
}
wait_port() { # port pid: until something listens on port, or pid dies, or 15 s pass
    local i
    for i in $(seq 300); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- setup

build() {
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAWF_TESTS=OFF \
        >"$TMP/cmake.log" 2>&1 || true
    AWF_BIN=${AWF_BENCH_PROXY:-$BUILD/awf-proxy}
    if [ -n "${AWF_BENCH_PROXY:-}" ]; then
        log "awf-proxy: $AWF_BIN (AWF_BENCH_PROXY), not built here"
    else
        log "building Release awf-proxy in $BUILD"
        if ! cmake --build "$BUILD" -j2 --target awf-proxy >>"$TMP/cmake.log" 2>&1; then
            FAIL[awf]="build failed"
            log "awf-proxy build failed (awf-proxy column will be n/a):"
            tail -n 15 "$TMP/cmake.log" >&2
        fi
    fi
    # The tools come from CMake once bench/tools is in the build; by hand until then.
    TOOLS=$BUILD/bench/tools
    if ! cmake --build "$BUILD" -j2 --target awf-bench-client awf-bench-upstream \
        >>"$TMP/cmake.log" 2>&1; then
        TOOLS=$BUILD/bench-tools
        mkdir -p "$TOOLS"
        local t=$ROOT/bench/tools f="-std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror"
        cc $f -o "$TOOLS/awf-bench-upstream" "$t/upstream.c" "$t/bench_net.c" -luv
        cc $f -o "$TOOLS/awf-bench-client" "$t/client.c" "$t/bench_net.c" -lssl -lcrypto -lpthread
    fi
    CLIENT=$TOOLS/awf-bench-client
}

write_configs() {
    mkdir -p "$TMP/www"
    head -c 99 /dev/zero | tr '\0' x >"$TMP/www/small" && echo >>"$TMP/www/small" # 100 B
    truncate -s "$BIG_BYTES" "$TMP/www/big"                                       # sparse
    cat "$TMP/www/big" >/dev/null # page cache warm: the first side must not pay for it
    printf '127.0.0.1 %s\n127.0.0.2 %s\n' "$HOST" "$TLS_HOST" >"$TMP/hosts"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST,DNS:$TLS_HOST" \
        -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>"$TMP/openssl.err"
    INTERCEPT_LISTEN=
    if port_free 443; then
        INTERCEPT_LISTEN="listen 127.0.0.2:443 ssl backlog=4096;"
    else
        log "port 443 in use: no intercepted TLS row"
    fi
    sed -e "s|@TMP@|$TMP|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" -e "s|@TLS_PORT@|$TLS_PORT|g" \
        -e "s|@INTERCEPT_LISTEN@|$INTERCEPT_LISTEN|" \
        "$ROOT/bench/conf/nginx.conf.in" >"$TMP/nginx.conf"
    squid_conf "$SQUID_PORT" >"$TMP/squid.conf"
    # Squid drops to user proxy: it must write its logs and pid file here.
    chmod 0777 "$TMP"
    AWF_ARGS=(--listen "127.0.0.1:$AWF_PORT" --allow-domains "$HOST" --hosts-file "$TMP/hosts"
        --allow-ranges 127.0.0.0/8 --allow-ports "$HTTP_PORT,$RAW_PORT,$TLS_PORT"
        --dns-servers 127.0.0.1:53 --threads "${AWF_BENCH_THREADS:-1}"
        --access-log "squid:$TMP/awf-access.log") # keep the log last: bench_startup swaps it
}
squid_conf() {
    sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$1|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" \
        -e "s|@RAW_PORT@|$RAW_PORT|g" -e "s|@TLS_PORT@|$TLS_PORT|g" \
        "$ROOT/bench/conf/squid.conf.in"
}

start() { # name port cmd...: starts cmd in the background, waits for its port; sets STARTED_PID
    local name=$1 port=$2
    shift 2
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    STARTED_PID=$!
    STARTED+=("$STARTED_PID")
    if ! wait_port "$port" "$STARTED_PID"; then
        log "$name did not start listening on $port:"
        tail -n 5 "$TMP/$name.err" "$TMP/$name.out" >&2 || true
        return 1
    fi
}

stop() { # pid: SIGTERM, reap (SIGKILL after 5 s), and forget it
    local p=$1 i keep=()
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    for i in "${STARTED[@]}"; do [ "$i" = "$p" ] || keep+=("$i"); done
    STARTED=("${keep[@]}")
}

start_upstreams() {
    start nginx "$HTTP_PORT" nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" ||
        exit 1
    PID[direct]=$STARTED_PID
    start upstream "$RAW_PORT" "$TOOLS/awf-bench-upstream" "127.0.0.1:$RAW_PORT" || exit 1
    if ! squid -k parse -f "$TMP/squid.conf" >"$TMP/squid-parse.log" 2>&1; then
        FAIL[squid]="config rejected"
        tail -n 5 "$TMP/squid-parse.log" >&2
    fi
}

# Fresh proxies for every repetition: Squid keeps the memory a 1 GiB transfer grew (its pools
# are not returned), so RSS at rest and per tunnel mean something only on a new process.
start_proxies() {
    if [ -z "${FAIL[awf]:-}" ]; then
        if start awf "$AWF_PORT" "$AWF_BIN" "${AWF_ARGS[@]}"; then
            PID[awf]=$STARTED_PID
        else
            FAIL[awf]="did not start"
        fi
    fi
    if [ -z "${FAIL[squid]:-}" ]; then
        if start squid "$SQUID_PORT" squid -N -f "$TMP/squid.conf"; then
            PID[squid]=$STARTED_PID
        else
            FAIL[squid]="did not start"
        fi
    fi
}
stop_proxies() {
    local side
    for side in awf squid; do
        [ -z "${PID[$side]:-}" ] || stop "${PID[$side]}"
        PID[$side]=
    done
}

alive() { [ -z "${FAIL[$1]:-}" ] && [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }
proxy_addr() { echo "127.0.0.1:$([ "$1" = awf ] && echo "$AWF_PORT" || echo "$SQUID_PORT")"; }

# ---------------------------------------------------------------- benchmarks (one side, once)

# Time from exec to the first accepted connection, and from SIGTERM to exit. Runs a separate
# instance on a spare port before the main ones start, so it measures a cold start.
bench_startup() {
    local side=$1 port=$((BASE + 130)) out
    [ "$side" = direct ] && return 0
    expect "$side" start_ms stop_ms
    case $side in
    awf)
        local args=("${AWF_ARGS[@]}")
        args[1]="127.0.0.1:$port"
        args[${#args[@]} - 1]="squid:$TMP/awf-startup-access.log"
        out=$("$CLIENT" startup --connect "127.0.0.1:$port" -- "$AWF_BIN" "${args[@]}") || return 1
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

# Small GETs, keep-alive, wrk -t1 -c50. wrk has no proxy option: for a proxy, the Lua script
# asks the proxy port for the absolute URL (and a Host header naming the upstream, not the proxy).
bench_get() {
    local side=$1 pid=${PID[$1]} url path t0 t1 out
    path="http://$HOST:$HTTP_PORT/small" url="http://$(proxy_addr "$side")/"
    [ "$side" = direct ] && path=/small url="http://127.0.0.1:$HTTP_PORT/"
    expect "$side" get_rps get_p50_ms get_p99_ms
    [ "$side" = direct ] || expect "$side" get_cpu_us
    cat >"$TMP/wrk-$side.lua" <<EOF
wrk.path = "$path"
wrk.headers["Host"] = "$HOST:$HTTP_PORT"
done = function(s, lat, req)
  local e = s.errors
  io.write(string.format("requests=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    s.requests, e.status, e.connect + e.read + e.write + e.timeout,
    lat:percentile(50), lat:percentile(99)))
end
EOF
    t0=$(cpu_ticks "$pid")
    wrk -t1 -c50 -d"${GET_SECS}s" --latency -s "$TMP/wrk-$side.lua" "$url" >"$TMP/wrk.out" 2>&1 ||
        return 1
    t1=$(cpu_ticks "$pid")
    out=$(grep '^requests=' "$TMP/wrk.out") || return 1
    local requests status_errors socket_errors p50_us p99_us
    eval "$out"
    if [ "$requests" = 0 ] || [ "$status_errors" != 0 ] ||
        [ "$socket_errors" -gt $((requests / 100)) ]; then
        echo "$requests requests, $status_errors non-2xx, $socket_errors socket errors" >&2
        return 1
    fi
    record get_rps "$side" "$(calc "$requests / $GET_SECS" 0)"
    record get_p50_ms "$side" "$(calc "$p50_us / 1000" 2)"
    record get_p99_ms "$side" "$(calc "$p99_us / 1000" 2)"
    [ "$side" = direct ] ||
        record get_cpu_us "$side" "$(calc "($t1 - $t0) * 1000000 / $HZ / $requests" 1)"
}

# One BIG_MIB download of plain HTTP with curl; GB/s, proxy CPU per GB, proxy peak RSS.
bench_download() {
    local side=$1 pid=${PID[$1]} t0 t1 out proxy=(--noproxy '*')
    [ "$side" = direct ] || proxy=(-x "http://$(proxy_addr "$side")")
    expect "$side" dl_gbps
    [ "$side" = direct ] || expect "$side" dl_cpu_s_gb dl_hwm_mb
    reset_hwm "$pid"
    t0=$(cpu_ticks "$pid")
    out=$(curl -sS "${proxy[@]}" --resolve "$HOST:$HTTP_PORT:127.0.0.1" -o /dev/null \
        -w '%{http_code} %{size_download} %{time_total}' "http://$HOST:$HTTP_PORT/big") ||
        return 1
    t1=$(cpu_ticks "$pid")
    set -- $out
    if [ "$1" != 200 ] || [ "$2" != "$BIG_BYTES" ]; then
        echo "status $1, $2 of $BIG_BYTES bytes" >&2
        return 1
    fi
    record dl_gbps "$side" "$(calc "$2 / $3 / 1e9" 2)"
    [ "$side" = direct ] && return 0
    record dl_cpu_s_gb "$side" "$(calc "($t1 - $t0) / $HZ / ($2 / 1e9)" 3)"
    record dl_hwm_mb "$side" "$(calc "$(status_kb "$pid" VmHWM) / 1024" 1)"
}

# BIG_MIB of raw bytes through a CONNECT tunnel (direct: straight from the upstream tool).
bench_tunnel() {
    local side=$1 pid=${PID[$1]} t0 t1 out tun=()
    [ "$side" = direct ] || tun=(--tunnel "$HOST:$RAW_PORT")
    local to="127.0.0.1:$RAW_PORT"
    [ "$side" = direct ] || to=$(proxy_addr "$side")
    expect "$side" tun_gbps
    [ "$side" = direct ] || expect "$side" tun_cpu_s_gb
    t0=$(cpu_ticks "$pid")
    out=$("$CLIENT" bulk --connect "$to" "${tun[@]}" --bytes "$BIG_BYTES") || return 1
    t1=$(cpu_ticks "$pid")
    # shellcheck disable=SC2034 # all set by eval; declared to keep them local
    local bytes seconds gbps
    eval "$out"
    record tun_gbps "$side" "$gbps"
    [ "$side" = direct ] ||
        record tun_cpu_s_gb "$side" "$(calc "($t1 - $t0) / $HZ / ($bytes / 1e9)" 3)"
}

# churn_rows SIDE RATE_KEY CPU_KEY CLIENT_ARGS...: `awf-bench-client churn` with 2 clients
# (new connection per request, one GET): requests/s and the proxy's CPU per request.
churn_rows() {
    local side=$1 rate=$2 cpu=$3 pid=${PID[$1]} t0 t1 out
    shift 3
    expect "$side" "$rate"
    [ "$side" = direct ] || expect "$side" "$cpu"
    t0=$(cpu_ticks "$pid")
    out=$("$CLIENT" churn "$@" --seconds "$CHURN_SECS" --clients 2) || return 1
    t1=$(cpu_ticks "$pid")
    # shellcheck disable=SC2034 # all set by eval; declared to keep them local
    local requests errors seconds per_sec
    eval "$out"
    record "$rate" "$side" "$(calc "$per_sec" 0)"
    [ "$side" = direct ] ||
        record "$cpu" "$side" "$(calc "($t1 - $t0) * 1000000 / $HZ / $requests" 1)"
}

# A new CONNECT tunnel per request, one GET inside (SPEC §10's row).
bench_churn() {
    if [ "$1" = direct ]; then
        churn_rows direct churn_per_s churn_cpu_us --connect "127.0.0.1:$RAW_PORT"
    else
        churn_rows "$1" churn_per_s churn_cpu_us --connect "$(proxy_addr "$1")" \
            --tunnel "$HOST:$RAW_PORT"
    fi
}

# The same with a full TLS handshake (ECDSA P-256, no resumption) before the GET, to nginx. In a
# CONNECT tunnel awf-proxy also checks the ClientHello's SNI against the CONNECT host.
bench_tls() {
    if [ "$1" = direct ]; then
        churn_rows direct tls_per_s tls_cpu_us --connect "127.0.0.1:$TLS_PORT" --tls "$HOST"
    else
        churn_rows "$1" tls_per_s tls_cpu_us --connect "$(proxy_addr "$1")" \
            --tunnel "$HOST:$TLS_PORT" --tls "$HOST"
    fi
}

# Intercepted TLS: the ClientHello straight to the proxy's port, no CONNECT; the proxy reads the
# SNI, dials that name on 443 (tls.bench.test = 127.0.0.2, where nginx listens) and splices.
bench_tls_intercept() {
    case $1 in
    direct) churn_rows direct tlsi_per_s tlsi_cpu_us --connect 127.0.0.2:443 --tls "$TLS_HOST" ;;
    awf) churn_rows awf tlsi_per_s tlsi_cpu_us --connect "$(proxy_addr awf)" --tls "$TLS_HOST" ;;
    squid) expect squid tlsi_per_s tlsi_cpu_us ;; # only with ssl-bump (certificates) and NAT
    esac
}

# The benchmarks, in this order, on fresh proxies, REPS times. Memory first, before any load.
BENCHES=(bench_idle)
[ -z "$IDLE_MANY" ] || BENCHES+=(bench_idle_many)
BENCHES+=(bench_get bench_download bench_tunnel bench_churn bench_tls)

# ---------------------------------------------------------------- report

# Rows: key|label|better|chart label. better: hi (bigger is better) or lo (smaller is).
ROWS=(
    "get_rps|Small GET keep-alive (100 B, wrk -c50): req/s|hi|GET req/s"
    "get_p50_ms|Small GET: p50 latency, ms|lo|GET p50"
    "get_p99_ms|Small GET: p99 latency, ms|lo|GET p99"
    "get_cpu_us|**Small GET: proxy CPU per request, µs**|lo|CPU/GET"
    "churn_per_s|New CONNECT tunnel + one GET (2 clients): tunnels/s|hi|tunnels/s"
    "churn_cpu_us|New tunnel: proxy CPU per tunnel, µs|lo|CPU/tunnel"
    "tls_per_s|New tunnel + TLS handshake + one GET (2 clients): handshakes/s|hi|TLS/s"
    "tls_cpu_us|TLS in tunnel: proxy CPU per handshake, µs|lo|CPU/TLS"
    "tlsi_per_s|Intercepted TLS (ClientHello to the proxy) + one GET: handshakes/s|hi|icpt TLS/s"
    "tlsi_cpu_us|Intercepted TLS: proxy CPU per handshake, µs|lo|CPU/icpt TLS"
    "dl_gbps|@BIG@ plain HTTP download (curl): GB/s|hi|HTTP GB/s"
    "dl_cpu_s_gb|HTTP download: proxy CPU per GB, s|lo|CPU/GB HTTP"
    "dl_hwm_mb|HTTP download: proxy peak RSS (VmHWM), MB|lo|peak RSS"
    "tun_gbps|@BIG@ through CONNECT, raw bytes: GB/s|hi|CONNECT GB/s"
    "tun_cpu_s_gb|CONNECT bulk: proxy CPU per GB, s|lo|CPU/GB CONNECT"
    "rss_rest_mb|RSS at rest (VmRSS), MB|lo|RSS rest"
    "rss_idle_mb|RSS with @IDLE@ idle CONNECT tunnels, MB|lo|RSS @IDLE@ tun"
    "rss_tunnel_kib|RSS per idle tunnel (@IDLE@ tunnels), KiB|lo|RSS/tunnel"
    "rss_idle_mb_many|RSS with @MANY@ idle CONNECT tunnels, MB|lo|RSS @MANY@ tun"
    "rss_tunnel_kib_many|RSS per idle tunnel (@MANY@ tunnels), KiB|lo|RSS/tunnel @MANY@"
    "start_ms|exec to first accepted connection, ms|lo|start"
    "stop_ms|SIGTERM to exit, ms|lo|stop"
)

median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit; m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m }'; }
spread() { # (max - min) / median, in percent
    tr ' ' '\n' | sort -g | awk -v m="$1" '{ v[NR] = $1 } END {
    if (NR < 2 || m == 0) exit; printf "%.0f", (v[NR] - v[1]) * 100 / (m < 0 ? -m : m) }'; }
cell() { # key side: "median ±spread%" or n/a / —
    local vals=${R["$1 $2"]:-} m s
    if [ -z "$vals" ]; then
        [ -n "${FAIL[$2]:-}${MISSED["$1 $2"]:-}" ] && echo "n/a" || echo "—"
        return
    fi
    m=$(echo "$vals" | median)
    s=$(echo "$vals" | spread "$m")
    echo "$m${s:+ ±$s%}"
}
ratio() { # key a b: median(a)/median(b), or —
    local a=${R["$1 $2"]:-} b=${R["$1 $3"]:-}
    [ -n "$a" ] && [ -n "$b" ] || { echo "—"; return; }
    a=$(echo "$a" | median) b=$(echo "$b" | median)
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) { print "—"; exit }
        r = a / b
        if (r < 0.001) print "<0.001×"; else printf(r < 0.095 ? "%.3f×\n" : "%.2f×\n", r) }'
}

report() {
    local big="${BIG_MIB} MiB" row key label better
    [ "$BIG_MIB" = 1024 ] && big="1 GiB"
    echo "# awf-proxy vs Squid vs direct"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), awf-proxy" \
        "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
            git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty'),"
    [ -z "${AWF_BENCH_PROXY:-}" ] || echo "(awf-proxy binary: $AWF_BENCH_PROXY)"
    echo "$(squid -v | head -n1 | sed 's/Squid Cache: //;s/^/Squid /') (-N, one process)," \
        "nginx $(nginx -v 2>&1 | sed 's|.*/||'), $REPS repetition(s)$([ "$QUICK" = 1 ] &&
            echo ', --quick'); median ±(max−min)/median."
    echo
    echo "| measure | direct | awf-proxy | Squid 5.7 | awf-proxy / direct | awf-proxy / Squid |"
    echo "|---|---:|---:|---:|---:|---:|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label better _ <<<"$row"
        [ -n "${R["$key direct"]:-}${R["$key awf"]:-}${R["$key squid"]:-}" ] ||
            [ -n "${MISSED["$key awf"]:-}${MISSED["$key squid"]:-}" ] || continue
        label=${label//@BIG@/$big}
        label=${label//@IDLE@/$IDLE_N}
        label=${label//@MANY@/$IDLE_MANY}
        echo "| $label | $(cell "$key" direct) | $(cell "$key" awf) | $(cell "$key" squid)" \
            "| $(ratio "$key" awf direct) | $(ratio "$key" awf squid) |"
    done
    echo
    local side
    for side in awf squid; do
        [ -z "${FAIL[$side]:-}" ] || echo "- ${LABEL[$side]}: n/a — ${FAIL[$side]}."
    done
    local k
    for k in "${!WHY[@]}"; do
        echo "- ${LABEL[${k% *}]}, ${k#* bench_}: n/a at least once: \`${WHY[$k]}\`."
    done
    [ -z "${MISSED["tlsi_per_s squid"]:-}" ] || echo "- Intercepted TLS, Squid: n/a — Squid" \
        "passes a bare ClientHello only with \`https_port … intercept ssl-bump\` (a CA" \
        "certificate) on NAT'd connections, which AWF does not set up."
    local a=${R["get_cpu_us awf"]:-} s=${R["get_cpu_us squid"]:-}
    if [ -n "$a" ] && [ -n "$s" ]; then
        a=$(echo "$a" | median) s=$(echo "$s" | median)
        echo "- Issue 3 goal (awf-proxy CPU per small GET ≤ ½ Squid's): $a µs vs $s µs →" \
            "$(awk -v a="$a" -v s="$s" 'BEGIN { printf "%.2f of Squid: %s", a / s,
                (a <= s / 2 ? "**met**" : "**not met**") }')."
    else
        echo "- Issue 3 goal (awf-proxy CPU per small GET ≤ ½ Squid's): not measured (n/a)."
    fi
    echo "- CPU = the proxy process's utime+stime (/proc/PID/stat, all threads) across the run," \
        "divided by the work done; Squid runs with -N, so its one process holds every" \
        "connection and is what is measured (RSS too). Ratios are of medians."
}

# A PNG of every row, as "times better than Squid" (Squid = 1; for lo rows Squid / x), log
# scale, for awf-proxy and direct. Needs gnuplot (Debian gnuplot-nox); skipped without it.
chart() {
    command -v gnuplot >/dev/null || { log "no gnuplot: chart skipped"; return 0; }
    local row key label better short s a d
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label better short <<<"$row"
        s=${R["$key squid"]:-}
        [ -n "$s" ] || continue
        s=$(echo "$s" | median)
        a=${R["$key awf"]:-} d=${R["$key direct"]:-}
        [ -z "$a" ] || a=$(echo "$a" | median)
        [ -z "$d" ] || d=$(echo "$d" | median)
        short=${short//@IDLE@/$IDLE_N}
        short=${short//@MANY@/$IDLE_MANY}
        awk -v l="$short" -v b="$better" -v s="$s" -v a="$a" -v d="$d" 'function f(x) {
                if (x == "" || x + 0 <= 0 || s + 0 <= 0) return "?"
                return b == "hi" ? x / s : s / x }
            BEGIN { printf "\"%s\"\t%s\t%s\n", l, f(a), f(d) }'
    done >"$TMP/chart.dat"
    [ -s "$TMP/chart.dat" ] || return 0
    gnuplot <<EOF 2>>"$TMP/gnuplot.err" || log "gnuplot failed: chart skipped"
set terminal pngcairo size 1200,520 font ",10"
set output "$RESULTS/latest.png"
set title "awf-proxy and direct relative to Squid 5.7 (Squid = 1; above 1 = better), $(date -u +%F)"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.1:*]
set grid ytics
set xtics rotate by -35 left nomirror
set key top left
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2
plot "$TMP/chart.dat" using 2:xtic(1) title "awf-proxy", "" using 3 title "direct"
EOF
}

raw_tsv() { # key side values, for charts and later comparison
    local k
    printf 'key\tside\tvalues\n'
    for k in "${!R[@]}"; do printf '%s\t%s\t%s\n' "${k% *}" "${k#* }" "${R[$k]}"; done | sort
}

# ---------------------------------------------------------------- main

run_bench() { # bench side: runs it, keeps the last line of its stderr as the reason it failed
    local why
    if ! "$1" "$2" 2>"$TMP/bench.err"; then
        why=$(grep . "$TMP/bench.err" | tail -n 1 || true)
        WHY["$2 $1"]=${why:-failed}
        log "$2: $1 failed (n/a): ${why:-?}"
    fi
    cat "$TMP/bench.err" >>"$TMP/benches.err"
}

main() {
    pick_ports
    build
    write_configs
    [ -z "$INTERCEPT_LISTEN" ] || BENCHES+=(bench_tls_intercept)
    local side b rep
    log "startup times (cold, separate instances)"
    for side in awf squid; do
        [ -n "${FAIL[$side]:-}" ] && continue
        for rep in $(seq "$REPS"); do
            run_bench bench_startup "$side"
        done
    done
    start_upstreams
    for rep in $(seq "$REPS"); do
        start_proxies
        for b in "${BENCHES[@]}"; do
            for side in "${SIDES[@]}"; do
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
    mkdir -p "$RESULTS"
    report | tee "$RESULTS/latest.md"
    raw_tsv >"$RESULTS/latest.tsv"
    chart
    log "wrote $RESULTS/latest.md, latest.tsv$([ -f "$RESULTS/latest.png" ] && echo ', latest.png')"
}
main
