#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Where awf-proxy's CPU goes: `perf record -g` of the proxy (one loop) during three loads.
# Usage: bench/profile.sh [--quick] [--keep]   (see bench/README.md)
#
# Same build, upstreams and proxy command line as bench/run.sh (bench/lib.sh). Cases: (a) new
# CONNECT tunnel + one GET, 2 clients; (b) 1 GiB through CONNECT; (c) 1 GiB plain HTTP with
# curl. Per case: the proxy's user and kernel CPU (/proc/PID/stat), the kernel entry points
# (syscalls and the TCP work under them) with the share of samples spent in them and below,
# and the user-space functions by their own samples. Writes bench/results/profile.md.
set -euo pipefail

QUICK=0 KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '3,4p' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then BIG_MIB=256 CHURN_SECS=2; else BIG_MIB=1024 CHURN_SECS=5; fi
BIG_BYTES=$((BIG_MIB * 1024 * 1024))
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
command -v perf >/dev/null || { log "perf not found (Debian: linux-perf)"; exit 1; }

# Kernel work under the syscalls worth naming (TCP, loopback delivery in softirq, epoll, splice,
# the deferred part of close), listed with their "children" share: samples in them or below.
KERNEL_RE='^(tcp_sendmsg|tcp_recvmsg|tcp_close|tcp_v4_connect|inet_csk_accept|tcp_v4_rcv|'
KERNEL_RE+='__tcp_push_pending_frames|tcp_rcv_established|tcp_rcv_state_process|do_splice|'
KERNEL_RE+='splice_file_to_pipe|splice_to_socket|net_rx_action|handle_softirqs|ep_poll|__fput|'
KERNEL_RE+='__sock_release|task_work_run|schedule|inet_hash_connect|__inet_hash_connect)$'

# name title unit units cmd...: records the proxy while cmd runs, then summarises into $OUT.
profile_case() {
    local name=$1 title=$2 unit=$3 n=$4 c0 c1 perf_pid data=$TMP/$1.data
    shift 4
    log "profiling: $title"
    c0=$(cpu_split "${PID[awf]}")
    perf record -g -p "${PID[awf]}" -o "$data" >"$TMP/$name.perf.out" 2>&1 &
    perf_pid=$!
    STARTED+=("$perf_pid")
    sleep 0.5 # perf attaches to every thread before the load starts
    if ! "$@" >"$TMP/$name.load.out" 2>"$TMP/$name.load.err"; then
        log "$name: the load failed: $(tail -n 1 "$TMP/$name.load.err")"
    fi
    c1=$(cpu_split "${PID[awf]}")
    kill -INT "$perf_pid"
    stop "$perf_pid"
    [ "$n" != from-load ] || n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$TMP/$name.load.out")
    summarise "$title" "$unit" "${n:-0}" "$c0" "$c1" "$data" >>"$OUT"
}

# title unit n "u0 k0" "u1 k1" data: the markdown section of one case.
summarise() {
    local title=$1 unit=$2 n=$3 u0 k0 u1 k1 data=$6
    read -r u0 k0 <<<"$4"
    read -r u1 k1 <<<"$5"
    echo "## $title"
    echo
    awk -v u=$((u1 - u0)) -v k=$((k1 - k0)) -v hz="$HZ" -v n="$n" -v unit="$unit" 'BEGIN {
        t = u + k; if (t == 0) t = 1
        per = unit == "GB" ? 1 : 1e6; pu = unit == "GB" ? "s" : "µs"
        printf "Proxy CPU (/proc/PID/stat): user %.2f s (%.0f%%), kernel %.2f s (%.0f%%)", \
            u / hz, 100 * u / t, k / hz, 100 * k / t
        if (n > 0) printf "; per %s: user %.3g %s, kernel %.3g %s", unit, \
            u / hz / n * per, pu, k / hz / n * per, pu
        print "." }'
    perf report -i "$data" --stdio --children --sort sym -g none --percent-limit 0.3 \
        2>/dev/null >"$data.children" || true
    perf report -i "$data" --stdio --no-children --sort dso,sym -g none --percent-limit 0.2 \
        2>/dev/null >"$data.self" || true
    echo
    perf script -i "$data" -F ip,sym 2>/dev/null | entry_points
    echo
    echo "| kernel work inside them | in it and below (children) | itself (self) |"
    echo "|---|---:|---:|"
    awk -v re="$KERNEL_RE" '$3 == "[k]" && $4 ~ re { printf "| `%s` | %s | %s |\n", $4, $1, $2 }' \
        "$data.children" | head -n 10
    echo
    echo "| user-space function (dso) | self |"
    echo "|---|---:|"
    # Unnamed addresses (static functions of a stripped library) say nothing: left out.
    awk '$3 == "[.]" && $4 !~ /^0x/ { printf "| `%s` (%s) | %s |\n", $4, $2, $1 }' \
        "$data.self" | head -n 10
    echo
}

# perf script's stacks (callee first, a blank line between samples) -> a table, one row per
# entry point: the frame do_syscall_64 called (the syscall), else "interrupt or softirq" for
# other kernel samples and "user space" for the rest; share of all samples, biggest first, the
# first 12 of at least 0.5%.
entry_points() {
    awk 'BEGIN { RS = "" } {
        n = split($0, l, "\n"); entry = ""; top = ""
        for (i = 1; i <= n; i++) {
            m = split(l[i], f, " "); if (m < 2) continue
            s = f[2]; sub(/\+0x[0-9a-f]+$/, "", s)
            if (top == "") top = f[1] ~ /^ffffffff/ ? "k" : "u"
            if (s == "do_syscall_64") { entry = prev == "" ? s : prev; break }
            prev = s
        }
        prev = ""
        if (entry == "") entry = top == "k" ? "(interrupt or softirq)" : "(user space)"
        c[entry]++; total++
    } END { for (e in c) printf "%.1f\t%s\t%d\n", 100 * c[e] / total, e, total }' |
        sort -rn | awk -F '\t' 'NR == 1 {
            printf "| kernel entry point (syscall) | share of %d samples, in it and below |\n", $3
            print "|---|---:|" }
        NR <= 12 && $1 >= 0.5 { printf "| `%s` | %s%% |\n", $2, $1 }'
}

main() {
    pick_ports
    build
    [ -z "${FAIL[awf]:-}" ] || { log "no awf-proxy to profile: ${FAIL[awf]}"; exit 1; }
    write_configs
    start_upstreams
    awf_cmd "$AWF_PORT" 1 awf
    start awf "$AWF_PORT" "${AWF_CMD[@]}" || exit 1
    PID[awf]=$STARTED_PID
    local big="$BIG_MIB MiB" gb px="127.0.0.1:$AWF_PORT"
    [ "$BIG_MIB" != 1024 ] || big="1 GiB"
    gb=$(calc "$BIG_BYTES / 1e9" 6)
    mkdir -p "$RESULTS"
    OUT=$TMP/profile.md
    {
        echo "# Where awf-proxy's CPU goes"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), awf-proxy" \
            "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
                git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty') (Release," \
            "\`--threads 1\`), \`perf record -g -p PID\` (cpu-clock samples of the proxy only)." \
            "Children = samples in that function or anything it called; kernel entry points" \
            "overlap (a syscall contains the TCP work under it); \`exit_to_user_mode_loop\` is" \
            "the return from a syscall, mostly \`schedule\`: the proxy giving its core to the" \
            "peer it just woke (2 cores, 3+ busy processes), where cpu-clock samples held back" \
            "while interrupts were off land in \`finish_task_switch\`. User-space stacks of a" \
            "build without frame pointers are shallow, so user functions are listed by self" \
            "samples."
        echo
    } >"$OUT"
    profile_case churn "(a) New CONNECT tunnel + one GET, 2 clients, $CHURN_SECS s" tunnel \
        from-load "$CLIENT" churn --connect "$px" --tunnel "$HOST:$RAW_PORT" \
        --seconds "$CHURN_SECS" --clients 2
    profile_case tunnel "(b) $big through CONNECT, raw bytes" GB "$gb" \
        "$CLIENT" bulk --connect "$px" --tunnel "$HOST:$RAW_PORT" --bytes "$BIG_BYTES"
    profile_case http "(c) $big plain HTTP download (curl)" GB "$gb" \
        curl -sS -x "http://$px" -o /dev/null "http://$HOST:$HTTP_PORT/big"
    cp "$OUT" "$RESULTS/profile.md"
    cat "$OUT"
    log "wrote $RESULTS/profile.md"
}
main
