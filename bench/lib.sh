# shellcheck shell=bash disable=SC2034 # the variables set here are for the scripts that source it
# Shared by bench/run.sh and bench/profile.sh (sourced, not run): the temp dir and cleanup,
# measurement primitives, ports, the Release build, the configs, and starting and stopping the
# upstreams and proxies. The caller sets QUICK-independent knobs first: BIG_BYTES (size of /big)
# and KEEP (1: leave the temp dir).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${AWF_BENCH_BUILD:-$ROOT/build-release}
RESULTS=${AWF_BENCH_RESULTS:-$ROOT/bench/results}
HOST=bench.test
TLS_HOST=tls.bench.test # 127.0.0.2: the intercepted TLS upstream on port 443
HZ=$(getconf CLK_TCK)
declare -A PID=()  # side -> process measured (the proxy; nginx's master for direct)
declare -A FAIL=() # side -> why it is n/a
STARTED=()         # every background process we started, stopped by cleanup

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
    if [ "${KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- measurement primitives

# "utime stime" clock ticks of a process (all its threads; /proc/PID/stat 14, 15) plus those of
# its live children: Squid's certificate helpers work for it (awf-proxy and Squid -N without
# ssl-bump have none). A child that exits during a load would take its share with it; none does.
cpu_split() {
    local s p u=0 k=0
    for p in "$1" $(pgrep -P "$1" || true); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || { [ "$p" != "$1" ] && continue; return 1; }
        s=${s##*) } # drop "pid (comm) ": comm may hold spaces
        read -r -a s <<<"$s"
        u=$((u + s[11])) k=$((k + s[12]))
    done
    echo "$u $k"
}
cpu_ticks() { # utime + stime
    local u k
    read -r u k <<<"$(cpu_split "$1")" || return 1
    echo $((u + k))
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; } # VmRSS, VmHWM
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }                            # VmHWM := VmRSS
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
# Ports: BASE+80 nginx (/small, /big), +443 awf-bench-upstream (raw TCP), +444 nginx TLS,
# +128 awf-proxy (1 thread), +129 Squid, +130 the startup instances, +131 awf-proxy (all
# threads). The first base whose ports are all free is used (others run tests on this
# machine's loopback too), unless AWF_BENCH_PORT_BASE says which.
pick_ports() {
    local b p ok
    for b in ${AWF_BENCH_PORT_BASE:-24000 24500 25000 25500 26000 26500}; do
        ok=1
        for p in 80 443 444 128 129 130 131; do port_free $((b + p)) || ok=0; done
        if [ "$ok" = 1 ]; then
            BASE=$b HTTP_PORT=$((b + 80)) RAW_PORT=$((b + 443)) TLS_PORT=$((b + 444))
            AWF_PORT=$((b + 128)) SQUID_PORT=$((b + 129)) AWFALL_PORT=$((b + 131))
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

# ---------------------------------------------------------------- results

# The caller sets SIDES-dependent things (proxy_addr SIDE, PID[SIDE], GET_SECS) before it runs
# a benchmark; bench/report.sh turns R into medians, spreads and ratios.
declare -A R=()      # "key side" -> space-separated values, one per repetition
declare -A MISSED=() # "key side" expected by a benchmark that ran (n/a if never recorded)
declare -A WHY=()    # "side bench" -> why it failed (last line of its stderr)

record() { R["$1 $2"]="${R["$1 $2"]:-}${R["$1 $2"]:+ }$3"; }
# side keys...: what a benchmark is about to measure; a key never recorded then shows n/a.
expect() {
    local side=$1 k
    shift
    for k; do MISSED["$k $side"]=1; done
}
# prefix side "u0 k0" "u1 k1" n: the proxy's CPU per unit of work in µs, total and split into
# user and kernel time (keys prefix_cpu_us, prefix_usr_us, prefix_sys_us).
record_cpu() {
    local p=$1 side=$2 u0 k0 u1 k1 n=$5
    read -r u0 k0 <<<"$3"
    read -r u1 k1 <<<"$4"
    record "${p}_cpu_us" "$side" "$(calc "($u1 - $u0 + $k1 - $k0) * 1000000 / $HZ / $n" 1)"
    record "${p}_usr_us" "$side" "$(calc "($u1 - $u0) * 1000000 / $HZ / $n" 1)"
    record "${p}_sys_us" "$side" "$(calc "($k1 - $k0) * 1000000 / $HZ / $n" 1)"
}

run_bench() { # bench side: runs it, keeps the last line of its stderr as the reason it failed
    local why
    if ! "$1" "$2" 2>"$TMP/bench.err"; then
        why=$(grep . "$TMP/bench.err" | tail -n 1 || true)
        WHY["$2 $1"]=${why:-failed}
        log "$2: $1 failed (n/a): ${why:-?}"
    fi
    cat "$TMP/bench.err" >>"$TMP/benches.err"
}

# Small GETs, keep-alive, wrk -t1 -c50. wrk has no proxy option: for a proxy, the Lua script
# asks the proxy port for the absolute URL (and a Host header naming the upstream, not the proxy).
bench_get() {
    local side=$1 pid=${PID[$1]} url path c0 c1 out
    path="http://$HOST:$HTTP_PORT/small" url="http://$(proxy_addr "$side")/"
    [ "$side" = direct ] && path=/small url="http://127.0.0.1:$HTTP_PORT/"
    expect "$side" get_rps get_p50_ms get_p99_ms
    [ "$side" = direct ] || expect "$side" get_cpu_us get_usr_us get_sys_us
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
    c0=$(cpu_split "$pid")
    wrk -t1 -c50 -d"${GET_SECS}s" --latency -s "$TMP/wrk-$side.lua" "$url" >"$TMP/wrk.out" 2>&1 ||
        return 1
    c1=$(cpu_split "$pid")
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
    [ "$side" = direct ] || record_cpu get "$side" "$c0" "$c1" "$requests"
}

# churn_rows SIDE PREFIX CLIENT_ARGS...: `awf-bench-client churn` with 2 clients (new
# connection per request, one GET): requests/s and the proxy's CPU per request, with its split.
churn_rows() {
    local side=$1 p=$2 pid=${PID[$1]} c0 c1 out
    shift 2
    expect "$side" "${p}_per_s"
    [ "$side" = direct ] || expect "$side" "${p}_cpu_us" "${p}_usr_us" "${p}_sys_us"
    c0=$(cpu_split "$pid")
    out=$("$CLIENT" churn "$@" --seconds "$CHURN_SECS" --clients 2) || return 1
    c1=$(cpu_split "$pid")
    # shellcheck disable=SC2034 # all set by eval; declared to keep them local
    local requests conns errors seconds per_sec
    eval "$out"
    record "${p}_per_s" "$side" "$(calc "$per_sec" 0)"
    [ "$side" = direct ] || record_cpu "$p" "$side" "$c0" "$c1" "$requests"
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
            log "awf-proxy build failed (awf-proxy columns will be n/a):"
            tail -n 15 "$TMP/cmake.log" >&2
        fi
    fi
    # The tools come from CMake once bench/tools is in the build; by hand until then.
    TOOLS=$BUILD/bench/tools
    if ! cmake --build "$BUILD" -j2 --target awf-bench-client awf-bench-upstream \
        >>"$TMP/cmake.log" 2>&1; then
        TOOLS=$BUILD/bench-tools
        mkdir -p "$TOOLS"
        local t=$ROOT/bench/tools f=(-std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror)
        cc "${f[@]}" -o "$TOOLS/awf-bench-upstream" "$t/upstream.c" "$t/bench_net.c" -luv
        cc "${f[@]}" -o "$TOOLS/awf-bench-client" "$t/client.c" "$t/bench_net.c" \
            -lssl -lcrypto -lpthread
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
        -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST,DNS:$TLS_HOST,DNS:*.$HOST" \
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
    # Everything but --listen, --threads and --access-log, which awf_cmd adds per instance. The
    # raw port's tunnels carry bulk bytes that are neither TLS nor HTTP: opaque, allowed there.
    AWF_ARGS=(--allow-domains "$HOST" --hosts-file "$TMP/hosts" --allow-ranges 127.0.0.0/8
        --allow-ports "$HTTP_PORT,$RAW_PORT,$TLS_PORT" --dns-servers 127.0.0.1:53
        --set "tunnels.opaque_ports=$RAW_PORT")
}
squid_conf() {
    sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$1|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" \
        -e "s|@RAW_PORT@|$RAW_PORT|g" -e "s|@TLS_PORT@|$TLS_PORT|g" \
        "$ROOT/bench/conf/squid.conf.in"
}
# port threads name: sets AWF_CMD to an awf-proxy command line (the access log in Squid's
# format, as in production, at $TMP/name-access.log).
awf_cmd() {
    AWF_CMD=("$AWF_BIN" --listen "127.0.0.1:$1" "${AWF_ARGS[@]}" --threads "$2"
        --access-log "squid:$TMP/$3-access.log")
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

# nginx (one worker, see bench/conf/nginx.conf.in) and awf-bench-upstream. Sets PID[direct] to
# nginx's master, NGINX_WORKER to the worker that serves (what the upstream's CPU is read
# from) and UPSTREAM_PID to the raw TCP upstream.
start_upstreams() {
    local i
    start nginx "$HTTP_PORT" nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" ||
        exit 1
    PID[direct]=$STARTED_PID
    NGINX_WORKER=
    for i in $(seq 100); do # the master forks its worker before or just after it listens
        NGINX_WORKER=$(pgrep -P "${PID[direct]}" | head -n 1) && [ -n "$NGINX_WORKER" ] && break
        sleep 0.05
    done
    [ -n "$NGINX_WORKER" ] || { log "nginx has no worker process"; exit 1; }
    start upstream "$RAW_PORT" "$TOOLS/awf-bench-upstream" "127.0.0.1:$RAW_PORT" || exit 1
    UPSTREAM_PID=$STARTED_PID
}
