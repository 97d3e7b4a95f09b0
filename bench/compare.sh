#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Before/after of two revisions in one run (see bench/README.md, "Before and after").
# Usage: bench/compare.sh [--reps N] [--cg-reps N] [--no-cg] [--no-run] [--keep] BASE_REV [HEAD_REV]
#
# Builds both revisions Release (with -g, which changes no instruction) in temporary git
# worktrees outside the repository, then on the same upstreams, interleaved A B A B:
#   (a) callgrind: instructions the proxy executes per small GET, per new CONNECT tunnel, per
#       bumped connection and per request inside one. Deterministic up to timer ticks and thread
#       hand-offs, so valid on a loaded machine; CG_REPS repetitions show what is left.
#   (b) bench/run.sh --quick --ab A B: req/s, CPU per request, p99, RSS, start-up, medians of
#       REPS with their spread.
# Prints one Markdown report and writes it to $AWF_BENCH_RESULTS/compare.md.
set -euo pipefail

REPS=3 CG_REPS=3 DO_CG=1 DO_RUN=1 KEEP=0 REVS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) REPS=$2; shift ;;
    --cg-reps) CG_REPS=$2; shift ;;
    --no-cg) DO_CG=0 ;;
    --no-run) DO_RUN=0 ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '3,4p' "$0"; exit 0 ;;
    -*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    *) REVS+=("$1") ;;
    esac
    shift
done
[ ${#REVS[@]} = 1 ] || [ ${#REVS[@]} = 2 ] || { sed -n '3p' "$0" >&2; exit 2; }
BIG_BYTES=$((1024 * 1024)) # lib.sh's /big; the downloads are run.sh's, with its own
# Callgrind loads: GETs on one keep-alive connection, tunnels (CONNECT + one GET) one after
# another, bumped connections (CONNECT + TLS + GETs), the last with BUMP_K more GETs each.
CG_GETS=${AWF_CG_GETS:-1000} CG_TUNNELS=${AWF_CG_TUNNELS:-500} CG_BUMPS=${AWF_CG_BUMPS:-20}
BUMP_K=10
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=report.sh
. "$ROOT/bench/report.sh" # median, spread

REV=() SHORT=()
for r in "${REVS[0]}" "${REVS[1]:-HEAD}"; do
    REV+=("$(git -C "$ROOT" rev-parse --verify "$r^{commit}")") || exit 2
    SHORT+=("$(git -C "$ROOT" rev-parse --short "$r^{commit}")")
done
SIDES=(a b)
declare -A BINS=() NAME=([a]="A ${SHORT[0]}" [b]="B ${SHORT[1]}")

# The worktrees live apart from lib.sh's TMP (which --keep keeps) and always go, with git's
# record of them.
WT=$(mktemp -d /tmp/awf-compare.XXXXXX)
compare_cleanup() {
    cleanup
    local s
    for s in "${SIDES[@]}"; do
        [ ! -d "$WT/$s" ] || git -C "$ROOT" worktree remove --force "$WT/$s" 2>/dev/null || true
    done
    rm -rf "$WT"
    git -C "$ROOT" worktree prune
}
trap compare_cleanup EXIT

# side rev: a detached worktree of rev and its Release awf-proxy. The worktree's path is mapped
# to "." in the debug info so both sides' functions carry the same file names.
build_rev() {
    local s=$1 rev=$2 b=$WT/$1/build
    git -C "$ROOT" worktree add --detach --quiet "$WT/$s" "$rev"
    log "building ${NAME[$s]} in $WT/$s"
    if ! { cmake -S "$WT/$s" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAWF_TESTS=OFF \
        "-DCMAKE_C_FLAGS=-g -fdebug-prefix-map=$WT/$s=." &&
        cmake --build "$b" -j2 --target awf-proxy; } >"$TMP/build-$s.log" 2>&1; then
        tail -n 20 "$TMP/build-$s.log" >&2
        log "${NAME[$s]} did not build"
        exit 1
    fi
    BINS[$s]=$b/awf-proxy
}

# ---------------------------------------------------------------- (a) callgrind

declare -A CG=() # "workload side" -> instructions per unit, one value per repetition
# workload|label; each also as workload_loop: the event-loop thread alone, without the hand-offs
# to the log writer, whose count depends on timing.
CG_ROWS=(
    "get|Small GET, keep-alive (curl, one connection, 100 B answer): per request"
    "tunnel|New CONNECT tunnel + one GET: per tunnel"
    "bconn|ssl-bump: bumped connection (CONNECT + TLS with a cached leaf + one GET): per connection"
    "breq|ssl-bump: one more keep-alive GET inside a bumped connection: per request"
)

# n: GETs on one keep-alive connection (curl's URL glob), each must answer 200. The upstream is
# awf-bench-upstream, whose answer is always the same bytes in one write: with nginx the count
# moved by ~0.3% between processes of the same binary.
cg_gets() {
    local ok
    ok=$(curl -sS -x "http://127.0.0.1:$AWF_PORT" -o /dev/null -w '%{http_code}\n' \
        "http://$HOST:$RAW_PORT/small#[1-$1]" | grep -c '^200$' || true)
    [ "$ok" = "$1" ] || { log "GETs: $ok of $1 answered 200"; return 1; }
}
cg_churn() { # n requests-per-connection client-args...: n connections one after another
    local n=$1 k=$2 out
    shift 2
    out=$("$CLIENT" churn --connect "127.0.0.1:$AWF_PORT" --clients 1 --total "$n" \
        --requests "$k" "$@") || return 1
    [[ "$out" == *" errors=0 "* ]] || { log "churn: $out"; return 1; }
}
cg_tunnels() { cg_churn "$1" 1 --tunnel "$HOST:$RAW_PORT"; }
cg_bumped() { cg_churn "$1" "$2" --tunnel "$HOST:$TLS_PORT" --tls "$HOST"; }

# pid file n: dumps what callgrind counted since the last dump (or since instrumentation went
# on) to file.n-TT, one file per thread TT (01: the main thread, which runs the event loop with
# --threads 1); prints "all-threads-total event-loop-total".
cg_dump() {
    callgrind_control -d "$1" >/dev/null
    local dump=$2.$3 i
    for i in $(seq 100); do grep -qs '^totals:' "$dump-01" && break; sleep 0.1; done
    awk '/^totals:/ { all += $2; if (FILENAME ~ /-01$/) loop = $2 }
        END { print all, loop }' "$dump"-*
}

# side rep kind (plain or bump): one proxy under callgrind, warmed up uninstrumented (first
# connections, the hosts lookup, the leaf certificate, the pooled upstream TLS), then each load
# between two dumps.
cg_side() {
    local s=$1 rep=$2 kind=$3 out=$TMP/cg-$1-$2-$3 extra=() t1 t2 l1 l2
    [ "$kind" = plain ] || extra=("${BUMP_ARGS[@]}")
    AWF_BIN=${BINS[$s]}
    awf_cmd "$AWF_PORT" 1 "cg-$s-$kind"
    start "cg-$s-$kind" "$AWF_PORT" valgrind --tool=callgrind --instr-atstart=no \
        --separate-threads=yes --callgrind-out-file="$out" "${AWF_CMD[@]}" "${extra[@]}" || return 1
    local pid=$STARTED_PID
    if [ "$kind" = plain ]; then
        cg_gets 20 && cg_tunnels 20 || return 1
        callgrind_control -i on "$pid" >/dev/null
        cg_gets "$CG_GETS" || return 1
        read -r t1 l1 <<<"$(cg_dump "$pid" "$out" 1)"
        cg_tunnels "$CG_TUNNELS" || return 1
        read -r t2 l2 <<<"$(cg_dump "$pid" "$out" 2)"
        CG["get $s"]+=" $((t1 / CG_GETS))" CG["get_loop $s"]+=" $((l1 / CG_GETS))"
        CG["tunnel $s"]+=" $((t2 / CG_TUNNELS))" CG["tunnel_loop $s"]+=" $((l2 / CG_TUNNELS))"
    else
        cg_bumped 2 2 || return 1
        callgrind_control -i on "$pid" >/dev/null
        cg_bumped "$CG_BUMPS" 1 || return 1
        read -r t1 l1 <<<"$(cg_dump "$pid" "$out" 1)"
        cg_bumped "$CG_BUMPS" $((BUMP_K + 1)) || return 1
        read -r t2 l2 <<<"$(cg_dump "$pid" "$out" 2)"
        CG["bconn $s"]+=" $((t1 / CG_BUMPS))" CG["bconn_loop $s"]+=" $((l1 / CG_BUMPS))"
        CG["breq $s"]+=" $(((t2 - t1) / (CG_BUMPS * BUMP_K)))"
        CG["breq_loop $s"]+=" $(((l2 - l1) / (CG_BUMPS * BUMP_K)))"
    fi
    stop "$pid"
}

# file [minus_file] divisor: "instructions<TAB>file:function" per unit of work, self cost, from
# callgrind_annotate (the object in brackets dropped: it names the worktree).
cg_funcs() {
    local dump=$1 m='' d
    if [ $# = 3 ]; then m=$2 d=$3; else d=$2; fi
    {
        cg_lines "$dump" | sed 's/^/+ /'
        [ -z "$m" ] || cg_lines "$m" | sed 's/^/- /'
    } | awk -v d="$d" '$3 != "PROGRAM" {
        n = $2; gsub(",", "", n); v[$3] += ($1 == "+" ? n : -n) }
        END { for (fn in v) printf "%.1f\t%s\n", v[fn] / d, fn }'
}
cg_lines() { # dump: "count file:function" for every function, self cost, of every thread
    local t
    for t in "$1"-*; do
        callgrind_annotate --threshold=100 --auto=no "$t" |
            sed -E 's/^ *([0-9,]+) +\([^)]*\) +(\.\/build\/\.\/)?([^ ]+).*/\1 \3/;t;d'
    done
}
# workload: the functions whose self cost per unit moved most between A and B (repetition 1).
cg_movers() {
    local w=$1 s
    for s in a b; do
        local p=$TMP/cg-$s-1-plain q=$TMP/cg-$s-1-bump
        case $w in
        get) cg_funcs "$p.1" "$CG_GETS" ;;
        tunnel) cg_funcs "$p.2" "$CG_TUNNELS" ;;
        bconn) cg_funcs "$q.1" "$CG_BUMPS" ;;
        breq) cg_funcs "$q.2" "$q.1" $((CG_BUMPS * BUMP_K)) ;;
        esac >"$TMP/funcs-$w-$s"
    done
    awk -F'\t' 'FNR == NR { a[$2] = $1; next } { b[$2] = $1 }
        END { for (k in a) if (!(k in b)) b[k] = 0
              for (k in b) { if (!(k in a)) a[k] = 0; dd = b[k] - a[k]
                  if (dd >= 0.5 || dd <= -0.5) printf "%.1f\t%s\t%.0f\t%.0f\t%+.0f\n", (dd < 0 ? -dd : dd), k, a[k], b[k], dd } }' \
        "$TMP/funcs-$w-a" "$TMP/funcs-$w-b" | sort -t$'\t' -k1,1gr |
        awk 'NR <= 8' | # not head: with pipefail, sort would die of SIGPIPE on a long list
        awk -F'\t' '{ printf "| `%s` | %s | %s | %s |\n", $2, $3, $4, $5 }'
}

run_callgrind() {
    local rep s kind
    write_configs
    mkdir -p "$TMP/ca"
    "${BINS[a]}" ca new --days 1 --out "$TMP/ca" >/dev/null
    BUMP_ARGS=(--ssl-bump --ca-cert "$TMP/ca/ca.pem" --ca-key "$TMP/ca/ca-key.pem"
        --ca-file "$TMP/tls.crt" --allow-urls "https://$HOST:$TLS_PORT/small*")
    start_upstreams
    for rep in $(seq "$CG_REPS"); do
        for kind in plain bump; do
            for s in a b; do
                log "callgrind rep $rep/$CG_REPS: ${NAME[$s]} $kind"
                cg_side "$s" "$rep" "$kind" || { log "callgrind ${NAME[$s]} $kind failed"; exit 1; }
            done
        done
    done
    stop "$UPSTREAM_PID"
    stop "${PID[direct]}"
}

commas() { printf '%.0f' "$1" | sed -E ':a;s/([0-9])([0-9]{3})($|,)/\1,\2\3/;ta'; }
cg_spread() { # workload side: (max − min) / median in percent, two decimals ("" for one value)
    echo "${CG["$1 $2"]# }" | tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR < 2) exit; m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f", (v[NR] - v[1]) * 100 / m }'
}
cg_row() { # workload label
    local a b sa sb
    a=$(echo "${CG["$1 a"]# }" | median) b=$(echo "${CG["$1 b"]# }" | median)
    sa=$(cg_spread "$1" a) sb=$(cg_spread "$1" b)
    echo "| $2 | $(commas "$a")${sa:+ ±$sa%} | $(commas "$b")${sb:+ ±$sb%} |" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f× (%+.2f%%)", b / a, (b / a - 1) * 100 }') |" \
        "$(ab_noise "$a" "$b" "$sa" "$sb" lo) ${CG["$1 a"]# } / ${CG["$1 b"]# } |"
}
cg_report() {
    local row w label
    echo "## Callgrind: instructions per unit of work ($CG_REPS repetitions each, interleaved)"
    echo
    echo "| instructions | ${NAME[a]} | ${NAME[b]} | B / A | noise | | every repetition, A / B |"
    echo "|---|---:|---:|---:|---:|---|---|"
    for row in "${CG_ROWS[@]}"; do
        IFS='|' read -r w label <<<"$row"
        cg_row "$w" "$label, all threads"
        cg_row "${w}_loop" "… of which the event-loop thread"
    done
    echo
    echo "Per unit = the instructions callgrind counted in the proxy process (event loop and log"
    echo "writer thread, libraries included) between two dumps, divided by the requests, tunnels or"
    echo "connections of that load: $CG_GETS GETs, $CG_TUNNELS tunnels, $CG_BUMPS bumped connections"
    echo "with 1 GET and $CG_BUMPS with $((BUMP_K + 1)) GETs (per request = the difference ÷ $((CG_BUMPS * BUMP_K)))."
    echo "Instrumentation starts after a warm-up. The spread between repetitions comes from thread"
    echo "hand-offs to the log writer and timer ticks, whose number depends on timing."
    echo
    for row in "${CG_ROWS[@]}"; do
        IFS='|' read -r w label <<<"$row"
        echo "Functions whose self instructions per unit moved most, $w (repetition 1):"
        echo
        echo "| file:function | A | B | B − A |"
        echo "|---|---:|---:|---:|"
        cg_movers "$w"
        echo
    done
}

# ---------------------------------------------------------------- main

main() {
    local s i=0 t0=$SECONDS
    for s in a b; do build_rev "$s" "${REV[$i]}"; i=$((i + 1)); done
    AWF_BENCH_PROXY=${BINS[a]} # lib.sh's build: the load tools of this checkout only
    pick_ports
    build
    mkdir -p "$RESULTS"
    {
        echo "# awf-proxy before and after: ${NAME[a]} → ${NAME[b]}"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), load average" \
            "$(cut -d' ' -f1-3 /proc/loadavg) at the start; Release builds (-g);" \
            "A = \`$(git -C "$ROOT" log -1 --format='%h %s' "${REV[0]}")\`," \
            "B = \`$(git -C "$ROOT" log -1 --format='%h %s' "${REV[1]}")\`."
        echo
    } >"$TMP/report.md"
    if [ "$DO_CG" = 1 ]; then
        run_callgrind
        cg_report >>"$TMP/report.md"
    fi
    if [ "$DO_RUN" = 1 ]; then
        log "bench/run.sh --quick --reps $REPS --ab"
        AWF_BENCH_RESULTS=$TMP/run AWF_BENCH_LABEL_A=${NAME[a]} AWF_BENCH_LABEL_B=${NAME[b]} \
            AWF_BENCH_PORT_BASE=$BASE "$ROOT/bench/run.sh" --quick --reps "$REPS" \
            --ab "${BINS[a]}" "${BINS[b]}" >/dev/null
        {
            echo "## bench/run.sh --quick --reps $REPS --ab: median ±(max − min)/median"
            echo
            cat "$TMP/run/ab.md"
            echo
        } >>"$TMP/report.md"
    fi
    echo "Load average at the end $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - t0)) s in all." \
        >>"$TMP/report.md"
    cp "$TMP/report.md" "$RESULTS/compare.md"
    cat "$TMP/report.md"
    log "wrote $RESULTS/compare.md"
}
main
