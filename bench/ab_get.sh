#!/usr/bin/env bash
# A/B of the small-GET benchmark (bench/run.sh's bench_get: wrk -t1 -c50, keep-alive, 100-byte
# body from nginx) for two awf-proxy binaries, interleaved, REPS runs of SECS seconds each.
# Prints a Markdown table: req/s, p99 and the proxy's CPU per request (utime+stime from
# /proc/PID/stat), medians with the spread. Used to show a change does not move the figures.
# Usage: bench/ab_get.sh OLD_BINARY NEW_BINARY [REPS [SECS]]; extra proxy flags for the new
# binary in AWF_AB_NEW_ARGS (e.g. "--admin 127.0.0.1:0").
set -euo pipefail
OLD=$1 NEW=$2 REPS=${3:-5} SECS=${4:-5}
HZ=$(getconf CLK_TCK)
TMP=$(mktemp -d /tmp/awf-ab.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

UP=$(free_port)
mkdir -p "$TMP/www"
chmod 755 "$TMP" "$TMP/www" # nginx's worker runs as nobody
head -c 100 /dev/zero | tr '\0' x >"$TMP/www/small"
chmod 644 "$TMP/www/small"
cat >"$TMP/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 1; pid $TMP/nginx.pid; error_log $TMP/ngx.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  client_body_temp_path $TMP/b; proxy_temp_path $TMP/p; fastcgi_temp_path $TMP/f;
  uwsgi_temp_path $TMP/u; scgi_temp_path $TMP/s;
  server { listen 127.0.0.1:$UP backlog=4096; root $TMP/www; } }
CONF
nginx -c "$TMP/nginx.conf" -e "$TMP/ngx.log" &
PIDS+=($!)
printf '127.0.0.1 bench.test\n' >"$TMP/hosts"

start() { # name binary extra-args... -> sets PORT and PROXY_PID
    local name=$1 bin=$2
    shift 2
    "$bin" --listen 127.0.0.1:0 --threads 1 --allow-domains bench.test --allow-ranges 127.0.0.0/8 \
        --allow-ports "$UP" --hosts-file "$TMP/hosts" --access-log "$TMP/$name.log" "$@" \
        2>"$TMP/$name.err" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/$name.err" | head -1)
        [ -n "$PORT" ] && return 0
        sleep 0.05
    done
    echo "$name did not start: $(cat "$TMP/$name.err")" >&2
    exit 1
}
cat >"$TMP/get.lua" <<LUA
wrk.path = "http://bench.test:$UP/small"
wrk.headers["Host"] = "bench.test:$UP"
done = function(s, lat, req)
  io.write(string.format("%d %d %d\n", s.requests, s.errors.status, lat:percentile(99)))
end
LUA
cpu() { awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }

start old "$OLD"
OLD_PID=$PROXY_PID OLD_PORT=$PORT
# shellcheck disable=SC2086 # word splitting of the extra flags is wanted
start new "$NEW" ${AWF_AB_NEW_ARGS:-}
NEW_PID=$PROXY_PID NEW_PORT=$PORT
: >"$TMP/rows"
for rep in $(seq "$REPS"); do
    for side in old new; do
        if [ "$side" = old ]; then pid=$OLD_PID port=$OLD_PORT; else pid=$NEW_PID port=$NEW_PORT; fi
        c0=$(cpu "$pid")
        out=$(wrk -t1 -c50 -d"${SECS}s" --latency -s "$TMP/get.lua" "http://127.0.0.1:$port/" |
            tail -1)
        c1=$(cpu "$pid")
        read -r n errs p99 <<<"$out"
        [ "$errs" = 0 ] || { echo "$side: $errs non-2xx answers" >&2; tail -n 2 "$TMP/$side.log" "$TMP/ngx.log" >&2; exit 1; }
        echo "$side $rep $((n / SECS)) $p99 $(awk -v t=$((c1 - c0)) -v n="$n" -v hz="$HZ" \
            'BEGIN { printf "%.2f", t / hz * 1e6 / n }')" >>"$TMP/rows"
    done
done
awk -v reps="$REPS" -v secs="$SECS" '
function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
    if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function spread(a, n, m) { return m ? (a[n] - a[1]) / m * 100 : 0 }
{ k = $1; i = ++cnt[k]; rps[k, i] = $3; p99[k, i] = $4 / 1000; cpu[k, i] = $5 }
END {
    printf "| %d runs of %d s, interleaved | old | new | new / old |\n|---|---:|---:|---:|\n", reps, secs
    split("rps p99 cpu", names, " ")
    label["rps"] = "Small GET keep-alive (wrk -c50): req/s"
    label["p99"] = "p99 latency, ms"; label["cpu"] = "proxy CPU per request, µs"
    for (x = 1; x <= 3; x++) {
        nm = names[x]
        for (s = 1; s <= 2; s++) {
            side = s == 1 ? "old" : "new"
            for (i = 1; i <= cnt[side]; i++)
                v[i] = nm == "rps" ? rps[side, i] : nm == "p99" ? p99[side, i] : cpu[side, i]
            m[s] = med(v, cnt[side]); sp[s] = spread(v, cnt[side], m[s])
        }
        printf "| %s | %.2f ±%.0f%% | %.2f ±%.0f%% | %.3f× |\n", label[nm], m[1], sp[1], m[2], sp[2], m[1] ? m[2] / m[1] : 0
    }
}' "$TMP/rows"
