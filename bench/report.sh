# shellcheck shell=bash disable=SC2153 # LABEL, R, … come from run.sh, which sources this
# The report of bench/run.sh (sourced by it): the table, issue 6's verdicts, the raw TSV and the
# chart, all from R (the figures of every repetition) and the run's settings.

# Rows: key|label|better|chart label. better: hi (bigger is better), lo (smaller is), or - (a
# context figure, not charted).
ROWS=(
    "get_rps|Small GET keep-alive (100 B, wrk -c50): req/s|hi|GET req/s"
    "get_p50_ms|Small GET: p50 latency, ms|lo|GET p50"
    "get_p99_ms|Small GET: p99 latency, ms|lo|GET p99"
    "get_cpu_us|**Small GET: proxy CPU per request, µs**|lo|CPU/GET"
    "get_usr_us|Small GET: of which user, µs|lo|user/GET"
    "get_sys_us|Small GET: of which kernel (system), µs|lo|kernel/GET"
    "churn_per_s|New CONNECT tunnel + one GET (2 clients): tunnels/s|hi|tunnels/s"
    "churn_cpu_us|**New tunnel: proxy CPU per tunnel, µs**|lo|CPU/tunnel"
    "churn_usr_us|New tunnel: of which user, µs|lo|user/tunnel"
    "churn_sys_us|New tunnel: of which kernel (system), µs|lo|kernel/tunnel"
    "tls_per_s|New tunnel + TLS handshake + one GET (2 clients): handshakes/s|hi|TLS/s"
    "tls_cpu_us|TLS in tunnel: proxy CPU per handshake, µs|lo|CPU/TLS"
    "tlsi_per_s|Intercepted TLS (ClientHello to the proxy) + one GET: handshakes/s|hi|icpt TLS/s"
    "tlsi_cpu_us|Intercepted TLS: proxy CPU per handshake, µs|lo|CPU/icpt TLS"
    "dl_gbps|@BIG@ plain HTTP download (curl): GB/s|hi|HTTP GB/s"
    "dl_cpu_s_gb|HTTP download: proxy CPU per GB, s|lo|CPU/GB HTTP"
    "dl_all_cpu_s_gb|HTTP download: CPU of all processes (curl + nginx [+ proxy]) per GB, s|lo|all CPU/GB HTTP"
    "dl_cores|HTTP download: cores busy (that CPU / wall time)|-|"
    "dl_hwm_mb|HTTP download: proxy peak RSS (VmHWM), MB|lo|peak RSS"
    "tun_gbps|@BIG@ through CONNECT, raw bytes: GB/s|hi|CONNECT GB/s"
    "tun_cpu_s_gb|CONNECT bulk: proxy CPU per GB, s|lo|CPU/GB CONNECT"
    "tun_all_cpu_s_gb|CONNECT bulk: CPU of all processes (client + upstream [+ proxy]) per GB, s|lo|all CPU/GB CONNECT"
    "tun_cores|CONNECT bulk: cores busy (that CPU / wall time)|-|"
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
med() { [ -z "${R["$1 $2"]:-}" ] || echo "${R["$1 $2"]}" | median; } # key side: median or ""
cell() { # key side: "median ±spread%" or n/a / —
    local vals=${R["$1 $2"]:-} m s
    if [ -z "$vals" ]; then
        if [ -n "${FAIL[$2]:-}${MISSED["$1 $2"]:-}" ]; then echo "n/a"; else echo "—"; fi
        return
    fi
    m=$(echo "$vals" | median)
    s=$(echo "$vals" | spread "$m")
    echo "$m${s:+ ±$s%}"
}
ratio() { # key a b: median(a)/median(b), or —
    local a b
    a=$(med "$1" "$2") b=$(med "$1" "$3")
    if [ -z "$a" ] || [ -z "$b" ]; then
        echo "—"
        return
    fi
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) { print "—"; exit }
        r = a / b
        if (r < 0.001) print "<0.001×"; else printf(r < 0.095 ? "%.3f×\n" : "%.2f×\n", r) }'
}

# goal TEXT A B OP LIMIT [MORE]: one verdict line, "TEXT: A vs B = A/B → met / not met" when B is
# given (a ratio), "TEXT: A → …" when it is "" (an absolute figure); OP is <= or >=.
goal() {
    local text=$1 a=$2 b=$3 op=$4 lim=$5 more=${6:-}
    if [ -z "$a" ] || { [ "$b" != - ] && [ -z "$b" ]; }; then
        echo "- $text: not measured in this run (n/a)."
        return
    fi
    awk -v t="$text" -v a="$a" -v b="$b" -v op="$op" -v l="$lim" -v more="$more" 'BEGIN {
        if (b == "-") { v = a; fig = a } else { v = b == 0 ? 1e9 : a / b
            fig = sprintf("%s vs %s = %.2f", a, b, v) }
        ok = op == "<=" ? v <= l + 1e-9 : v >= l - 1e-9
        printf "- %s: %s → **%s**%s.\n", t, fig, ok ? "met" : "not met", more }'
}

# What bounds a bulk ratio on two cores: every process's CPU per GB, direct vs through the proxy.
bulk_bound() { # prefix side
    local d a dc ac
    d=$(med "${1}_all_cpu_s_gb" direct) a=$(med "${1}_all_cpu_s_gb" "$2")
    dc=$(med "${1}_cores" direct) ac=$(med "${1}_cores" "$2")
    if [ -z "$d" ] || [ -z "$a" ]; then return 0; fi
    awk -v d="$d" -v a="$a" -v dc="$dc" -v ac="$ac" 'BEGIN {
        printf "; CPU of all processes per GB: direct %s s, proxied %s s, with %s and %s" \
            " cores busy: at equal cores busy the ratio is bounded by %s / %s = %.2f", \
            d, a, dc, ac, d, a, (a > 0 ? d / a : 0) }'
}

verdicts() {
    local many=rss_tunnel_kib_many n=$IDLE_MANY all big="$BIG_MIB MiB" ak sc kernel=''
    if [ -z "${R["$many awf"]:-}" ]; then many=rss_tunnel_kib n=$IDLE_N; fi
    [ "$BIG_MIB" != 1024 ] || big="1 GiB"
    all=$(med get_rps awfall)
    ak=$(med churn_sys_us awf) sc=$(med churn_cpu_us squid)
    # The kernel's share alone, against Squid's total: above ⅓, no user-space saving reaches it.
    if [ -n "$ak" ] && [ -n "$sc" ]; then
        kernel="; of which kernel: $ak vs $(med churn_sys_us squid) µs"
        kernel+=" (awf-proxy's kernel time alone is $(calc "$ak / $sc" 2) of Squid's total)"
    fi
    goal "Issue 6, small GET: awf-proxy CPU per request ≤ ¼ of Squid's (1 thread each), µs" \
        "$(med get_cpu_us awf)" "$(med get_cpu_us squid)" "<=" 0.25
    goal "Issue 6, small GET: req/s ≥ 2× Squid's (1 thread each)" \
        "$(med get_rps awf)" "$(med get_rps squid)" ">=" 2 "${all:+ (all threads: $all req/s)}"
    goal "Issue 6, small GET: p99 ≤ ⅓ of Squid's, ms" \
        "$(med get_p99_ms awf)" "$(med get_p99_ms squid)" "<=" 0.3334
    goal "Issue 6, new CONNECT tunnel: CPU per tunnel ≤ ⅓ of Squid's, µs" \
        "$(med churn_cpu_us awf)" "$sc" "<=" 0.3334 "$kernel"
    goal "Issue 6, $big plain HTTP: ≥ 70% of direct's GB/s" \
        "$(med dl_gbps awf)" "$(med dl_gbps direct)" ">=" 0.7 "$(bulk_bound dl awf)"
    goal "Issue 6, $big through CONNECT: ≥ 85% of direct's GB/s" \
        "$(med tun_gbps awf)" "$(med tun_gbps direct)" ">=" 0.85 "$(bulk_bound tun awf)"
    goal "Issue 6, RSS per idle tunnel with $n open ≤ 4 KiB$([ "$n" = 9000 ] ||
        echo ' (9000 only in the full run)')" "$(med "$many" awf)" - "<=" 4
    goal "Issue 6, exec to first accepted connection ≤ 20 ms" "$(med start_ms awf)" - "<=" 20
}

# One line per side that failed as a whole and per benchmark that failed at least once.
failures() {
    local side k
    for side in "${PROXIES[@]}"; do
        [ -z "${FAIL[$side]:-}" ] || echo "- ${LABEL[$side]}: n/a — ${FAIL[$side]}."
    done
    for k in "${!WHY[@]}"; do
        echo "- ${LABEL[${k% *}]}, ${k#* bench_}: n/a at least once: \`${WHY[$k]}\`."
    done
}

report() {
    local big="${BIG_MIB} MiB" row key label better side k
    [ "$BIG_MIB" = 1024 ] && big="1 GiB"
    echo "# awf-proxy vs Squid vs direct"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), awf-proxy" \
        "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
            git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty'),"
    [ -z "${AWF_BENCH_PROXY:-}" ] || echo "(awf-proxy binary: $AWF_BENCH_PROXY)"
    echo "$(squid -v | head -n1 | sed 's/Squid Cache: //;s/^/Squid /') (-N, one process)," \
        "nginx $(nginx -v 2>&1 | sed 's|.*/||'), $REPS repetition(s)$([ "$QUICK" = 1 ] &&
            echo ', --quick') in $((BENCH_SECS / 60)) min $((BENCH_SECS % 60)) s;" \
        "median ±(max−min)/median."
    echo
    echo "| measure | direct | awf-proxy (1 thread) | awf-proxy all threads | Squid 5.7" \
        "| awf-proxy / direct | awf-proxy / Squid | all threads / direct |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label better _ <<<"$row"
        [ -n "${R["$key direct"]:-}${R["$key awf"]:-}${R["$key squid"]:-}" ] ||
            [ -n "${MISSED["$key awf"]:-}${MISSED["$key squid"]:-}" ] || continue
        label=${label//@BIG@/$big}
        label=${label//@IDLE@/$IDLE_N}
        label=${label//@MANY@/$IDLE_MANY}
        echo "| $label | $(cell "$key" direct) | $(cell "$key" awf) | $(cell "$key" awfall)" \
            "| $(cell "$key" squid) | $(ratio "$key" awf direct) | $(ratio "$key" awf squid)" \
            "| $(ratio "$key" awfall direct) |"
    done
    echo
    verdicts
    failures
    [ -z "${MISSED["tlsi_per_s squid"]:-}" ] || echo "- Intercepted TLS, Squid: n/a — Squid" \
        "passes a bare ClientHello only with \`https_port … intercept ssl-bump\` (a CA" \
        "certificate) on NAT'd connections, which AWF does not set up."
    echo "- awf-proxy all threads (\`--threads 0\`: $(nproc) loops) runs the rows where many" \
        "connections at once can spread over loops (small GETs, new tunnels, TLS); — elsewhere:" \
        "a bulk transfer or an idle tunnel is one connection on one loop, and the start is one" \
        "process, which the 1-thread column measures."
    echo "- CPU = the process's utime+stime (/proc/PID/stat fields 14 and 15, all threads)" \
        "across the run, divided by the work done; user and kernel are those two fields apart." \
        "All processes = the client's (bash \`time\`), the upstream's (nginx's one worker or" \
        "awf-bench-upstream) and the proxy's. Squid runs with -N, so its one process holds" \
        "every connection and is what is measured (RSS too). Ratios are of medians."
}

# A PNG of every charted row, as "times better than Squid" (Squid = 1; for lo rows Squid / x),
# log scale, for both awf-proxy columns and direct. Needs gnuplot (Debian gnuplot-nox).
chart() {
    command -v gnuplot >/dev/null || { log "no gnuplot: chart skipped"; return 0; }
    local row key label better short s
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label better short <<<"$row"
        s=$(med "$key" squid)
        if [ -z "$s" ] || [ "$better" = - ]; then continue; fi
        short=${short//@IDLE@/$IDLE_N}
        short=${short//@MANY@/$IDLE_MANY}
        awk -v l="$short" -v b="$better" -v s="$s" -v a="$(med "$key" awf)" \
            -v aa="$(med "$key" awfall)" -v d="$(med "$key" direct)" 'function f(x) {
                if (x == "" || x + 0 <= 0 || s + 0 <= 0) return "?"
                return b == "hi" ? x / s : s / x }
            BEGIN { printf "\"%s\"\t%s\t%s\t%s\n", l, f(a), f(aa), f(d) }'
    done >"$TMP/chart.dat"
    [ -s "$TMP/chart.dat" ] || return 0
    gnuplot <<EOF 2>>"$TMP/gnuplot.err" || log "gnuplot failed: chart skipped"
set terminal pngcairo size 1400,560 font ",10"
set output "$RESULTS/latest.png"
set title "awf-proxy and direct relative to Squid 5.7 (Squid = 1; above 1 = better), $(date -u +%F)"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.01:*]
set grid ytics
set xtics rotate by -35 left nomirror
set key top left
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2
plot "$TMP/chart.dat" using 2:xtic(1) title "awf-proxy (1 thread)", \
    "" using 3 title "awf-proxy all threads", "" using 4 title "direct"
EOF
}

raw_tsv() { # key side values, for charts and later comparison
    local k
    printf 'key\tside\tvalues\n'
    for k in "${!R[@]}"; do printf '%s\t%s\t%s\n' "${k% *}" "${k#* }" "${R[$k]}"; done | sort
}

# bench/compare.sh's table (run.sh --ab): two awf-proxy builds, sides a and b. Noise is the larger
# of the two sides' spreads ((max − min) / median over the repetitions); a ratio b / a further
# from 1 than that is marked "outside noise", in the direction it moved (better or worse).
ab_report() {
    local row key label better a b sa sb
    echo "| measure | ${LABEL[a]} | ${LABEL[b]} | b / a | noise | |"
    echo "|---|---:|---:|---:|---:|---|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label better _ <<<"$row"
        [ -n "${R["$key a"]:-}${R["$key b"]:-}${MISSED["$key a"]:-}${MISSED["$key b"]:-}" ] ||
            continue
        label=${label//@BIG@/$BIG_MIB MiB}
        label=${label//@IDLE@/$IDLE_N}
        label=${label//@MANY@/$IDLE_MANY}
        a=$(med "$key" a) b=$(med "$key" b)
        sa=$([ -z "$a" ] || echo "${R["$key a"]}" | spread "$a")
        sb=$([ -z "$b" ] || echo "${R["$key b"]}" | spread "$b")
        echo "| $label | $(cell "$key" a) | $(cell "$key" b) | $(ratio "$key" b a) |" \
            "$(ab_noise "$a" "$b" "$sa" "$sb" "$better")"
    done
    echo
    failures
    echo "- ${#SIDES[@]} awf-proxy processes, one thread each, started anew for every" \
        "repetition; every benchmark runs on a, then b, then the next; $REPS repetition(s)." \
        "CPU = utime+stime from /proc/PID/stat over the load, divided by the work done."
}
# a b spread_a% spread_b% better: "±noise% | verdict" for one row; no spread (one repetition,
# or a side n/a): no verdict.
ab_noise() {
    awk -v a="$1" -v b="$2" -v sa="$3" -v sb="$4" -v better="$5" 'BEGIN {
        if (sa == "" || sb == "") { print "— | no noise estimate |"; exit }
        n = sa + 0 > sb + 0 ? sa + 0 : sb + 0
        ns = n < 10 ? sprintf("%.1f", n) : sprintf("%d", n)
        if (a == "" || b == "" || a == 0) { printf "±%s%% | |", ns; exit }
        d = (b / a - 1) * 100
        p = n < 10 ? 1 : 0
        if (d <= n && -d <= n) v = "within noise"
        else if (better == "-") v = sprintf("outside noise (%+.*f%%)", p, d)
        else v = sprintf("outside noise (%+.*f%%, %s)", p, d,
            (d > 0) == (better == "hi") ? "better" : "worse")
        printf "±%s%% | %s |", ns, v }'
}
