/* The admin listener: see admin.h. One request per connection, answered and closed; a request
 * head over 4 KiB, or one that takes over 10 s, is cut off. */
#include "cli/admin.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/counter.h"

#define ADMIN_HEAD_MAX   4096
#define ADMIN_TIMEOUT_MS 10000
#define ADMIN_MAX_CONNS  64
#define MAX_OUTPUTS      32

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    struct cli_admin *a;
    struct admin_conn *prev, *next;
    char *out; /* the response; owned */
    size_t len;
    int closes; /* close callbacks to come */
    bool closing;
    char head[ADMIN_HEAD_MAX];
};

struct cli_admin {
    uv_tcp_t tcp;
    struct cli_admin_state *st;
    struct sockaddr_storage bound;
    struct admin_conn *conns;
    size_t n_conns;
    bool closing;
};

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ---- bodies ---- */

struct sums {
    uint64_t requests[AWF_DECISION_N][AWF_PROXY_STATUS_SLOTS];
    uint64_t bytes_in, bytes_out, accepted, closed, tun_open, tun_closed, probes;
    struct awf_dns_stats dns;
};

static void sum(const struct cli_admin_state *st, struct sums *s)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < st->n_ctr; i++) {
        const struct awf_proxy_counters *c = &st->ctr[i];
        for (int d = 0; d < AWF_DECISION_N; d++)
            for (int k = 0; k < AWF_PROXY_STATUS_SLOTS; k++)
                s->requests[d][k] += awf_counter_get(&c->requests[d][k]);
        s->bytes_in += awf_counter_get(&c->bytes_from_clients);
        s->bytes_out += awf_counter_get(&c->bytes_to_clients);
        s->accepted += awf_counter_get(&c->conns_accepted);
        s->closed += awf_counter_get(&c->conns_closed);
        s->tun_open += awf_counter_get(&c->tunnels_opened);
        s->tun_closed += awf_counter_get(&c->tunnels_closed);
        s->probes += awf_counter_get(&c->health_probes);
        s->dns.cache_hits += awf_counter_get(&c->dns.cache_hits);
        s->dns.hosts_hits += awf_counter_get(&c->dns.hosts_hits);
        s->dns.queries_sent += awf_counter_get(&c->dns.queries_sent);
        s->dns.joined += awf_counter_get(&c->dns.joined);
        s->dns.failures += awf_counter_get(&c->dns.failures);
    }
}

/* Open = opened - closed, read in that order so a close counted between the two reads can only
 * make the figure one too high for an instant, never wrap below zero. */
static uint64_t open_count(uint64_t opened, uint64_t closed)
{
    return opened > closed ? opened - closed : 0;
}

/* The log outputs' counters: true while none is losing lines (the last line for every output
 * was written), with the lines lost by all outputs together in *dropped. */
static bool log_healthy(const struct cli_admin_state *st, uint64_t *dropped)
{
    struct awf_log_output_stats o[MAX_OUTPUTS];
    size_t n = st->log ? awf_log_stats(st->log, o, MAX_OUTPUTS) : 0;
    bool ok = true;
    *dropped = 0;
    for (size_t i = 0; i < n; i++) {
        *dropped += o[i].dropped;
        ok = ok && !o[i].failing;
    }
    return ok;
}

/* A Prometheus label value: backslash, double quote and line feed escaped as the format says;
 * other control bytes (which it has no escape for) become '?'. */
static void label(FILE *f, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '\\' || *p == '"')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20 || *p == 0x7f)
            fputc('?', f);
        else
            fputc(*p, f);
    }
}

static void log_metrics(FILE *f, const struct cli_admin_state *st)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"awf_proxy_log_lines_written_total", "counter", "Access log lines written, by output."},
        {"awf_proxy_log_lines_dropped_total", "counter",
         "Access log lines lost (queue full, failed write), by output."},
        {"awf_proxy_log_output_failing", "gauge",
         "1 while an output is losing lines (its last line was lost)."},
    };
    struct awf_log_output_stats o[MAX_OUTPUTS];
    size_t n = st->log ? awf_log_stats(st->log, o, MAX_OUTPUTS) : 0;
    for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name, m[k].type);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = k == 0 ? o[i].written : k == 1 ? o[i].dropped : o[i].failing;
            fprintf(f, "%s{output=\"%zu\",path=\"", m[k].name, i);
            label(f, o[i].path ? o[i].path : "");
            fprintf(f, "\"} %llu\n", (unsigned long long)v);
        }
    }
}

static const char *const decision_names[AWF_DECISION_N] = {"allowed", "denied", "none"};

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
            (unsigned long long)v);
}

/* The response bodies: each a malloc'd, NUL-terminated string (the caller frees), or NULL when
 * out of memory. */
static char *metrics_body(struct cli_admin_state *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    struct sums *s = malloc(sizeof(*s));
    if (!s) {
        fclose(f);
        free(buf);
        return NULL;
    }
    sum(st, s);
    uint64_t dropped;
    bool healthy = log_healthy(st, &dropped);
    fprintf(f,
            "# HELP awf_proxy_build_info awf-proxy's version.\n"
            "# TYPE awf_proxy_build_info gauge\n"
            "awf_proxy_build_info{version=\"%s\"} 1\n",
            AWF_VERSION_STRING);
    fprintf(f, "# HELP awf_proxy_start_time_seconds When the proxy started, seconds since the "
               "epoch.\n# TYPE awf_proxy_start_time_seconds gauge\n");
    fprintf(f, "awf_proxy_start_time_seconds %lld.%06lld\n", (long long)(st->started_us / 1000000),
            (long long)(st->started_us % 1000000));
    fprintf(f, "# HELP awf_proxy_requests_total Transactions ended, by policy decision (allowed, "
               "denied, none: nothing was decided) and the status sent to the client (0: none).\n"
               "# TYPE awf_proxy_requests_total counter\n");
    bool any = false;
    for (int d = 0; d < AWF_DECISION_N; d++)
        for (int k = 0; k < AWF_PROXY_STATUS_SLOTS; k++) {
            if (s->requests[d][k] == 0)
                continue;
            any = true;
            char code[16];
            if (k < 600)
                snprintf(code, sizeof(code), "%d", k);
            else
                snprintf(code, sizeof(code), "other");
            fprintf(f, "awf_proxy_requests_total{decision=\"%s\",code=\"%s\"} %llu\n",
                    decision_names[d], code, (unsigned long long)s->requests[d][k]);
        }
    if (!any) /* a series from the start, so rate() has a first point */
        fputs("awf_proxy_requests_total{decision=\"allowed\",code=\"200\"} 0\n", f);
    metric(f, "awf_proxy_client_received_bytes_total", "counter",
           "Bytes received from clients, counted when their transaction ends.", s->bytes_in);
    metric(f, "awf_proxy_client_sent_bytes_total", "counter",
           "Bytes sent to clients, counted when their transaction ends.", s->bytes_out);
    metric(f, "awf_proxy_connections_accepted_total", "counter", "Client connections accepted.",
           s->accepted);
    metric(f, "awf_proxy_connections_open", "gauge", "Client connections open now.",
           open_count(s->accepted, s->closed));
    metric(f, "awf_proxy_tunnels_total", "counter",
           "Tunnels opened (CONNECT, intercepted TLS, WebSocket).", s->tun_open);
    metric(f, "awf_proxy_tunnels_open", "gauge", "Tunnels open now.",
           open_count(s->tun_open, s->tun_closed));
    metric(f, "awf_proxy_health_probes_total", "counter",
           "Loopback connections closed before sending a byte (health checks; not logged).",
           s->probes);
    metric(f, "awf_proxy_dns_cache_hits_total", "counter", "Lookups answered from the DNS cache.",
           s->dns.cache_hits);
    metric(f, "awf_proxy_dns_cache_misses_total", "counter",
           "Lookups sent to a DNS server (not in the cache, nor in flight already).",
           s->dns.queries_sent);
    metric(f, "awf_proxy_dns_joined_total", "counter",
           "Lookups that waited on the same name's lookup in flight.", s->dns.joined);
    metric(f, "awf_proxy_dns_hosts_file_hits_total", "counter",
           "Lookups answered from the hosts file.", s->dns.hosts_hits);
    metric(f, "awf_proxy_dns_failures_total", "counter",
           "DNS lookups that ended without an address (NXDOMAIN, timeout, server failure).",
           s->dns.failures);
    log_metrics(f, st);
    metric(f, "awf_proxy_log_healthy", "gauge", "1 unless an access log output is losing lines.",
           healthy);
    metric(f, "awf_proxy_reloads_total", "counter", "Policy reloads applied (SIGHUP).",
           st->reloads);
    metric(f, "awf_proxy_reload_failures_total", "counter",
           "Policy reloads refused (SIGHUP with a bad policy; the old one was kept).",
           st->reload_failures);
    metric(f, "awf_proxy_event_loops", "gauge", "Event-loop threads.", st->n_ctr);
    metric(f, "awf_proxy_draining", "gauge", "1 once SIGTERM was received.", st->draining);
    free(s);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* healthy: whether /healthz answers 200. */
static char *health_body(struct cli_admin_state *st, bool *healthy)
{
    uint64_t dropped;
    bool log_ok = log_healthy(st, &dropped);
    *healthy = log_ok && !st->draining;
    const char *why = st->draining ? "draining\n" : !log_ok ? "losing access log lines\n" : "ok\n";
    return strdup(why);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void cli_format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    }
}

static char *status_body(struct cli_admin_state *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct sums *s = malloc(sizeof(*s));
    if (!f || !s) {
        if (f)
            fclose(f);
        free(buf);
        free(s);
        return NULL;
    }
    sum(st, s);
    uint64_t dropped;
    bool log_ok = log_healthy(st, &dropped);
    int64_t now = now_us();
    fprintf(f, "{\"version\":\"%s\",\"pid\":%ld,\"uptime_seconds\":%.3f,", AWF_VERSION_STRING,
            (long)getpid(), (double)(now - st->started_us) / 1e6);
    fprintf(f, "\"healthy\":%s,\"draining\":%s,\"log_healthy\":%s,",
            log_ok && !st->draining ? "true" : "false", st->draining ? "true" : "false",
            log_ok ? "true" : "false");
    fputs("\"policy\":{\"source\":", f);
    json_str(f, st->policy_source ? st->policy_source : "");
    fprintf(f, ",\"sha256\":\"%s\",\"loaded_seconds_ago\":%.3f,\"squid_conf\":%s},",
            st->policy_sha256, (double)(now - st->policy_loaded_us) / 1e6,
            st->policy && awf_policy_is_squid(st->policy) ? "true" : "false");
    fputs("\"listeners\":[", f);
    for (size_t i = 0; i < st->n_listeners; i++) {
        char a[INET6_ADDRSTRLEN + 16];
        cli_format_addr(&st->listeners[i], a, sizeof(a));
        fprintf(f, "%s\"%s\"", i ? "," : "", a);
    }
    uint64_t requests = 0, denied = 0;
    for (int d = 0; d < AWF_DECISION_N; d++)
        for (int k = 0; k < AWF_PROXY_STATUS_SLOTS; k++) {
            requests += s->requests[d][k];
            if (d == AWF_DECISION_DENIED)
                denied += s->requests[d][k];
        }
    fprintf(f,
            "],\"event_loops\":%zu,\"counters\":{\"requests\":%llu,\"denied\":%llu,"
            "\"client_received_bytes\":%llu,\"client_sent_bytes\":%llu,"
            "\"connections_accepted\":%llu,\"connections_open\":%llu,\"tunnels\":%llu,"
            "\"tunnels_open\":%llu,\"health_probes\":%llu,\"dns_cache_hits\":%llu,"
            "\"dns_cache_misses\":%llu,\"dns_failures\":%llu,\"log_lines_dropped\":%llu,"
            "\"reloads\":%llu,\"reload_failures\":%llu}}\n",
            st->n_ctr, (unsigned long long)requests, (unsigned long long)denied,
            (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
            (unsigned long long)s->accepted, (unsigned long long)open_count(s->accepted, s->closed),
            (unsigned long long)s->tun_open,
            (unsigned long long)open_count(s->tun_open, s->tun_closed),
            (unsigned long long)s->probes, (unsigned long long)s->dns.cache_hits,
            (unsigned long long)s->dns.queries_sent, (unsigned long long)s->dns.failures,
            (unsigned long long)dropped, (unsigned long long)st->reloads,
            (unsigned long long)st->reload_failures);
    free(s);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

void cli_admin_hash_policy(struct cli_admin_state *st, const struct awf_policy *p)
{
    char *text = NULL;
    size_t len = 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    FILE *f = open_memstream(&text, &len);
    st->policy_sha256[0] = '\0';
    if (f) {
        awf_policy_print(p, f);
        if (fclose(f) == 0 && EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) == 1)
            for (unsigned i = 0; i < mdlen && i < 32; i++)
                snprintf(st->policy_sha256 + 2 * i, 3, "%02x", md[i]);
    }
    free(text);
    st->policy = p;
    st->policy_loaded_us = now_us();
}

/* ---- the server ---- */

static void conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    if (--c->closes > 0)
        return;
    struct cli_admin *a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_conns--;
    free(c->out);
    free(c);
    if (a->closing && a->n_conns == 0 && a->tcp.data == NULL) /* the listener closed before */
        free(a);
}

static void conn_close(struct admin_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->closes = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void respond(struct admin_conn *c, int code, const char *reason, const char *type,
                    char *body, bool head_only)
{
    size_t blen = body ? strlen(body) : 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        free(body);
        conn_close(c);
        return;
    }
    fprintf(f,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            code, reason, type, blen);
    if (body && !head_only)
        fwrite(body, 1, blen, f);
    free(body);
    if (fclose(f) != 0) {
        free(buf);
        conn_close(c);
        return;
    }
    c->out = buf;
    c->len = len;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)c->len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c);
}

static void handle(struct admin_conn *c)
{
    struct cli_admin_state *st = c->a->st;
    char method[8] = "", target[256] = "";
    int minor = -1;
    /* "GET /metrics HTTP/1.1": anything else is a 400. The query string is ignored. */
    if (sscanf(c->head, "%7[A-Z] %255[^ \r\n] HTTP/1.%d", method, target, &minor) != 3 ||
        (minor != 0 && minor != 1)) {
        respond(c, 400, "Bad Request", "text/plain", strdup("bad request\n"), false);
        return;
    }
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond(c, 405, "Method Not Allowed", "text/plain", strdup("GET or HEAD\n"), false);
        return;
    }
    if (strcmp(target, "/metrics") == 0) {
        respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics_body(st), head);
    } else if (strcmp(target, "/healthz") == 0) {
        bool ok;
        char *body = health_body(st, &ok);
        respond(c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain", body, head);
    } else if (strcmp(target, "/status") == 0) {
        respond(c, 200, "OK", "application/json", status_body(st), head);
    } else {
        respond(c, 404, "Not Found", "text/plain",
                strdup("not found: /metrics, /healthz and /status are served here\n"), head);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;
    (void)hint;
    size_t used = strlen(c->head);
    *buf = uv_buf_init(c->head + used, (unsigned)(sizeof(c->head) - 1 - used));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    size_t used = (size_t)(buf->base - c->head); /* where this read went: after the last one */
    c->head[used + (size_t)n] = '\0';
    if (memchr(c->head + used, '\0', (size_t)n)) { /* a NUL byte: not a request we serve */
        respond(c, 400, "Bad Request", "text/plain", strdup("bad request\n"), false);
        return;
    }
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        handle(c);
    else if (strlen(c->head) >= sizeof(c->head) - 1)
        respond(c, 431, "Request Header Fields Too Large", "text/plain", strdup("too large\n"),
                false);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct cli_admin *a = server->data;
    if (status < 0 || a->closing)
        return;
    struct admin_conn *c = calloc(1, sizeof(*c)); /* freed in conn_closed */
    if (!c || a->n_conns >= ADMIN_MAX_CONNS) {
        /* Take it off the queue so the listener does not spin; the peer sees a close. */
        free(c);
        uv_tcp_t *tmp = malloc(sizeof(*tmp)); /* freed by its close callback */
        if (tmp && uv_tcp_init(server->loop, tmp) == 0) {
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
        } else {
            free(tmp);
        }
        return;
    }
    c->a = a;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, ADMIN_TIMEOUT_MS, 0);
}

int cli_admin_start(uv_loop_t *loop, const struct awf_listen *at, struct cli_admin_state *st,
                    struct cli_admin **out, char *err, size_t errlen)
{
    struct cli_admin *a = calloc(1, sizeof(*a)); /* freed by cli_admin_close's callbacks */
    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    a->st = st;
    const struct sockaddr *sa = (const struct sockaddr *)&at->addr;
    int rc = uv_tcp_init(loop, &a->tcp);
    a->tcp.data = a;
    if (rc == 0)
        rc = uv_tcp_bind(&a->tcp, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->tcp, 64, on_connection);
    if (rc == 0) {
        int len = sizeof(a->bound);
        rc = uv_tcp_getsockname(&a->tcp, (struct sockaddr *)&a->bound, &len);
    }
    if (rc != 0) {
        snprintf(err, errlen, "admin: cannot listen on %s: %s", at->text, uv_strerror(rc));
        cli_admin_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

void cli_admin_bound(const struct cli_admin *a, struct sockaddr_storage *out)
{
    *out = a->bound;
}

static void listener_closed(uv_handle_t *h)
{
    struct cli_admin *a = h->data;
    a->tcp.data = NULL;
    if (a->n_conns == 0)
        free(a);
}

void cli_admin_close(struct cli_admin *a)
{
    if (!a || a->closing)
        return;
    a->closing = true;
    for (struct admin_conn *c = a->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&a->tcp, listener_closed);
}
