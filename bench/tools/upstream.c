/* awf-bench-upstream: the raw TCP end of the CONNECT benchmarks. One libuv loop, loopback only.
 *
 * A connection's first line says what it wants:
 *   "SEND <n>\n"        n bytes of zeros come back, then the server closes (bulk download);
 *   "SINK\n"            everything after the line is counted until EOF, then "OK <n>\n";
 *   "GET ... HTTP/1.1"  a 100-byte HTTP/1.1 answer per request head, keep-alive (tunnel churn);
 *   nothing             the connection is held open and costs only its socket (idle tunnels).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench_net.h"

#define CHUNK     (256 * 1024) /* one write of a bulk send */
#define IN_FLIGHT 2            /* writes queued per bulk connection: keeps the socket full */
#define LINE_MAX_ 128

enum mode { MODE_LINE, MODE_SEND, MODE_SINK, MODE_HTTP, MODE_DONE };

struct conn {
    uv_tcp_t tcp;
    uv_write_t wr[IN_FLIGHT];
    uv_shutdown_t sd;
    enum mode mode;
    unsigned in_flight;
    uint64_t to_send; /* bytes of a SEND not yet queued */
    uint64_t sunk;
    unsigned crlf; /* HTTP: how much of "\r\n\r\n" has been seen */
    size_t line_len;
    char line[LINE_MAX_];
};

struct server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sig_term, sig_int;
    uint64_t accepted;
    uint64_t http_answers;
};

/* Read-only payloads shared by every connection. One read buffer serves all sockets: libuv hands
 * each read to on_read before the next alloc, so an idle connection holds no buffer at all. */
static const char zeros[CHUNK];
static char readbuf[64 * 1024];
#define HTTP_BODY                                                                                  \
    "01234567890123456789012345678901234567890123456789"                                           \
    "0123456789012345678901234567890123456789012345678\n"
_Static_assert(sizeof(HTTP_BODY) == 101, "the answer's Content-Length says 100");
static const char http_answer[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 100\r\n\r\n" HTTP_BODY;

static void on_closed(uv_handle_t *h)
{
    free(h->data); /* the conn; its handle is its first member */
}

static void conn_close(struct conn *c)
{
    c->mode = MODE_DONE;
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void pump(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    req->data = NULL; /* the slot is free again */
    c->in_flight--;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->mode == MODE_SEND)
        pump(c);
}

/* Keeps IN_FLIGHT chunks queued; after the last one, half-closes so the client sees EOF. */
static void pump(struct conn *c)
{
    while (c->in_flight < IN_FLIGHT && c->to_send > 0) {
        size_t n = c->to_send < CHUNK ? (size_t)c->to_send : CHUNK;
        uv_buf_t b = uv_buf_init((char *)zeros, (unsigned)n);
        uv_write_t *w = NULL; /* a free slot exists: fewer than IN_FLIGHT are queued */
        for (unsigned i = 0; i < IN_FLIGHT && w == NULL; i++)
            if (c->wr[i].data == NULL)
                w = &c->wr[i];
        w->data = c;
        if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            w->data = NULL;
            conn_close(c);
            return;
        }
        c->in_flight++;
        c->to_send -= n;
    }
    if (c->to_send == 0 && c->in_flight == 0) {
        c->mode = MODE_DONE;
        c->sd.data = c;
        if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
            conn_close(c);
    }
}

static void on_http_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0)
        conn_close(c);
}

static void http_answer_one(struct conn *c)
{
    struct server *s = c->tcp.loop->data;
    uv_write_t *w = malloc(sizeof(*w)); /* freed in on_http_written; pipelined heads need many */
    if (w == NULL) {
        conn_close(c);
        return;
    }
    w->data = c;
    uv_buf_t b = uv_buf_init((char *)http_answer, sizeof(http_answer) - 1);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_http_written) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    s->http_answers++;
}

/* The command line is complete in c->line: switch mode. */
static void start_command(struct conn *c)
{
    unsigned long long n = 0;
    if (sscanf(c->line, "SEND %llu", &n) == 1) {
        c->mode = MODE_SEND;
        c->to_send = n;
        for (unsigned i = 0; i < IN_FLIGHT; i++)
            c->wr[i].data = NULL;
        pump(c);
    } else if (strncmp(c->line, "SINK", 4) == 0) {
        c->mode = MODE_SINK;
    } else if (strncmp(c->line, "GET ", 4) == 0) {
        c->mode = MODE_HTTP;
        c->crlf = 2; /* the line's own "\r\n" was consumed */
    } else {
        fprintf(stderr, "awf-bench-upstream: unknown command \"%.40s\"\n", c->line);
        conn_close(c);
    }
}

static void feed(struct conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n && c->mode != MODE_DONE; i++) {
        char ch = p[i];
        switch (c->mode) {
        case MODE_LINE:
            if (ch == '\n') {
                c->line[c->line_len] = '\0';
                start_command(c);
            } else if (ch != '\r' && c->line_len < LINE_MAX_ - 1) {
                c->line[c->line_len++] = ch;
            }
            break;
        case MODE_SINK:
            c->sunk += n - i;
            return;
        case MODE_HTTP:
            /* Counts consecutive "\r\n" bytes: a blank line ends a request head. */
            if ((ch == '\r' && (c->crlf == 0 || c->crlf == 2)) ||
                (ch == '\n' && (c->crlf == 1 || c->crlf == 3)))
                c->crlf++;
            else
                c->crlf = ch == '\r' ? 1 : 0;
            if (c->crlf == 4) {
                c->crlf = 0;
                http_answer_one(c);
            }
            break;
        case MODE_SEND: /* the client has nothing more to say; ignore */
        case MODE_DONE:
            return;
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(readbuf, sizeof(readbuf));
}

static void on_sink_reported(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    free(req);
    conn_close(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (nread > 0) {
        feed(c, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    /* EOF or error. A SINK reports its count; a SEND still writing finishes on its own. */
    uv_read_stop(st);
    if (c->mode == MODE_SINK && nread == UV_EOF) {
        char *msg = c->line; /* the command is done with; the answer lives as long as c */
        int len = snprintf(msg, sizeof(c->line), "OK %" PRIu64 "\n", c->sunk);
        uv_write_t *w = malloc(sizeof(*w)); /* freed in on_sink_reported */
        uv_buf_t b = uv_buf_init(msg, (unsigned)len);
        if (w != NULL) {
            w->data = c;
            c->mode = MODE_DONE;
            if (uv_write(w, st, &b, 1, on_sink_reported) == 0)
                return;
            free(w);
        }
    }
    if (c->mode != MODE_SEND || nread != UV_EOF)
        conn_close(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct server *s = l->data;
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof(*c)); /* freed in on_closed */
    if (c == NULL)
        return;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    s->accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_TCP && h->data != arg ? on_closed : NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    (void)signum;
    uv_walk(s->loop, close_any, s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: awf-bench-upstream 127.0.0.1:PORT\n"
                        "Serves SEND <n> / SINK / GET requests for bench/run.sh.\n");
        return 2;
    }
    struct bench_addr a;
    if (bench_addr_parse(argv[1], &a) != 0)
        return 2;
    bench_raise_nofile();
    struct server s = {.loop = uv_default_loop()};
    s.loop->data = &s;
    uv_tcp_init(s.loop, &s.listener);
    s.listener.data = &s;
    int rc = uv_tcp_bind(&s.listener, (const struct sockaddr *)&a.ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s.listener, 4096, on_connection);
    if (rc != 0) {
        fprintf(stderr, "awf-bench-upstream: %s: %s\n", argv[1], uv_strerror(rc));
        return 1;
    }
    uv_signal_init(s.loop, &s.sig_term);
    uv_signal_init(s.loop, &s.sig_int);
    s.sig_term.data = s.sig_int.data = &s;
    uv_signal_start(&s.sig_term, on_signal, SIGTERM);
    uv_signal_start(&s.sig_int, on_signal, SIGINT);
    /* The bound address, so a caller that asked for port 0 learns the port. */
    struct sockaddr_storage bound = {0};
    int blen = sizeof(bound);
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (uv_tcp_getsockname(&s.listener, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET6) {
            const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)&bound;
            uv_ip6_name(b6, host, sizeof(host));
            port = ntohs(b6->sin6_port);
        } else {
            const struct sockaddr_in *b4 = (const struct sockaddr_in *)&bound;
            uv_ip4_name(b4, host, sizeof(host));
            port = ntohs(b4->sin_port);
        }
    }
    printf(bound.ss_family == AF_INET6 ? "awf-bench-upstream: listening on [%s]:%u\n"
                                       : "awf-bench-upstream: listening on %s:%u\n",
           host, port);
    fflush(stdout);
    uv_run(s.loop, UV_RUN_DEFAULT);
    fprintf(stderr, "awf-bench-upstream: %" PRIu64 " connections, %" PRIu64 " HTTP answers\n",
            s.accepted, s.http_answers);
    uv_loop_close(s.loop);
    return 0;
}
