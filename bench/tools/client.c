/* awf-bench-client: the load side of the CONNECT and startup benchmarks, loopback only.
 *
 *   bulk    --connect ADDR [--tunnel HOST:PORT] --bytes N
 *           asks the upstream for N bytes ("SEND N") and reads them: GB/s.
 *   idle    --connect ADDR [--tunnel HOST:PORT] --count N
 *           opens N connections (tunnels), prints "ready N", holds them until SIGTERM/SIGINT.
 *   churn   --connect ADDR [--tunnel HOST:PORT] [--tls NAME] --seconds S --clients C
 *           [--names SUFFIX] [--total N] [--requests K]
 *           C threads, each: new connection (tunnel) + one GET + close, for S seconds. With
 *           --tls, a full TLS handshake (SNI NAME, no resumption) comes before the GET.
 *           --names: every connection names a host never used before, "nK" then SUFFIX
 *           (CONNECT target, SNI and Host), K counting from 0 across threads: an ssl-bump proxy
 * mints a certificate for each. --total: stop after N connections (not S seconds).
 *           --requests: K keep-alive GETs per connection instead of one.
 *   startup --connect ADDR -- CMD [ARGS...]
 *           runs CMD, reports the time from exec to the first accepted connection on ADDR,
 *           then SIGTERM and the time to exit.
 *
 * With --tunnel, ADDR is a proxy and every connection first does CONNECT HOST:PORT; without it
 * ADDR is the upstream itself (the "direct" column). Results are one key=value line on stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_net.h"

struct opts {
    const char *mode;
    struct bench_addr connect;
    const char *connect_str;
    const char *tunnel; /* NULL: direct */
    const char *tls;    /* churn: SNI name of a TLS handshake per request; NULL: plain */
    const char *names;  /* churn: a new name per connection, "nK" + names; NULL: one name */
    uint64_t total;     /* churn: connections to make; 0: as many as fit in seconds */
    uint64_t requests;  /* churn: GETs per connection */
    uint64_t bytes;
    unsigned long count;
    unsigned long seconds;
    unsigned long clients;
    char **cmd; /* startup: argv of the command */
};

static int usage(void)
{
    fprintf(stderr,
            "usage: awf-bench-client bulk|idle|churn|startup --connect ADDR "
            "[--tunnel HOST:PORT] [--tls NAME] [--bytes N] [--count N] [--seconds S] [--clients C] "
            "[--names SUFFIX] [--total N] [--requests K] [-- CMD ARGS]\n");
    return 2;
}

static int parse_num(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->count = 1000;
    o->seconds = 5;
    o->clients = 2;
    o->bytes = 1ull << 30;
    o->requests = 1;
    if (argc < 2)
        return -1;
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (strcmp(k, "--") == 0) {
            o->cmd = &argv[i + 1];
            break;
        }
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        uint64_t n = 0;
        if (strcmp(k, "--connect") == 0) {
            o->connect_str = v;
            if (bench_addr_parse(v, &o->connect) != 0)
                return -1;
        } else if (strcmp(k, "--tunnel") == 0) {
            o->tunnel = v;
        } else if (strcmp(k, "--tls") == 0) {
            o->tls = v;
        } else if (strcmp(k, "--names") == 0) {
            o->names = v;
        } else if (parse_num(v, &n) != 0) {
            return -1;
        } else if (strcmp(k, "--bytes") == 0) {
            o->bytes = n;
        } else if (strcmp(k, "--count") == 0) {
            o->count = (unsigned long)n;
        } else if (strcmp(k, "--seconds") == 0) {
            o->seconds = (unsigned long)n;
        } else if (strcmp(k, "--clients") == 0) {
            o->clients = (unsigned long)n;
        } else if (strcmp(k, "--total") == 0) {
            o->total = n;
        } else if (strcmp(k, "--requests") == 0 && n > 0) {
            o->requests = n;
        } else {
            return -1;
        }
    }
    return o->connect_str == NULL ? -1 : 0;
}

/* A connection to the upstream, through a tunnel to target when it is not NULL; fd or -1. */
static int open_to(const struct opts *o, const char *target)
{
    int fd = bench_dial(&o->connect);
    if (fd < 0)
        return -1;
    if (target != NULL && bench_connect_tunnel(fd, target) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}
static int open_stream(const struct opts *o)
{
    int fd = bench_dial(&o->connect);
    if (fd < 0)
        return -1;
    if (o->tunnel != NULL && bench_connect_tunnel(fd, o->tunnel) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int run_bulk(const struct opts *o)
{
    enum { BUF = 1 << 20 };
    char *buf = malloc(BUF); /* freed below */
    if (buf == NULL)
        return 1;
    uint64_t t0 = bench_now_ns(), got = 0;
    int fd = open_stream(o);
    if (fd < 0) {
        free(buf);
        return 1;
    }
    int n = snprintf(buf, BUF, "SEND %" PRIu64 "\n", o->bytes);
    if (bench_write_all(fd, buf, (size_t)n) != 0)
        goto out;
    for (;;) {
        ssize_t r = read(fd, buf, BUF);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (uint64_t)r;
    }
out:
    close(fd);
    free(buf);
    double s = (double)(bench_now_ns() - t0) / 1e9;
    if (got != o->bytes) {
        fprintf(stderr, "awf-bench-client: bulk: got %" PRIu64 " of %" PRIu64 " bytes\n", got,
                o->bytes);
        return 1;
    }
    printf("bytes=%" PRIu64 " seconds=%.4f gbps=%.3f\n", got, s, (double)got / s / 1e9);
    return 0;
}

static int run_idle(const struct opts *o)
{
    int *fds = calloc(o->count, sizeof(*fds)); /* freed at exit of this function */
    if (fds == NULL)
        return 1;
    /* Block the stop signals first so sigwait receives them however early they come. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    unsigned long opened = 0;
    int rc = 0;
    for (; opened < o->count; opened++) {
        fds[opened] = open_stream(o);
        if (fds[opened] < 0) {
            fprintf(stderr, "awf-bench-client: idle: failed after %lu connections\n", opened);
            rc = 1;
            break;
        }
    }
    printf("%s %lu\n", rc == 0 ? "ready" : "failed", opened);
    fflush(stdout);
    if (rc == 0) {
        int sig = 0;
        sigwait(&set, &sig);
    }
    for (unsigned long i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    return rc;
}

struct churn {
    const struct opts *o;
    SSL_CTX *tls; /* shared by the threads (OpenSSL 3 contexts are); NULL: plain */
    uint64_t deadline_ns;
    atomic_uint_fast64_t *next; /* connections started by all threads (--names, --total) */
    uint64_t done;              /* connections whose every GET was answered */
    uint64_t errors;
};

/* One connection's I/O, plain or over TLS. Both return bytes moved or <= 0. */
static ssize_t io_write(int fd, SSL *ssl, const char *p, size_t n)
{
    if (ssl != NULL)
        return SSL_write(ssl, p, (int)n);
    return bench_write_all(fd, p, n) == 0 ? (ssize_t)n : -1;
}
static ssize_t io_read(int fd, SSL *ssl, char *p, size_t n)
{
    ssize_t r;
    if (ssl != NULL)
        return SSL_read(ssl, p, (int)n);
    do
        r = read(fd, p, n);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Says once per process why a request failed, so an n/a in the table has a reason. */
static void churn_fail(const char *stage, const char *detail)
{
    static atomic_flag said = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&said))
        fprintf(stderr, "awf-bench-client: churn: %s failed%s%s\n", stage, detail ? ": " : "",
                detail ? detail : "");
}

/* One connection: a new connection (tunnel) to name (NULL: the options' host), [a TLS
 * handshake,] o->requests GETs each read to the end of its 100-byte answer, close. The answer's
 * head is short, so header end + 100 bytes is the whole answer. */
static int churn_once(const struct churn *c, const char *name, char *buf, size_t cap)
{
    const struct opts *o = c->o;
    char target[300];
    const char *port = o->tunnel ? strrchr(o->tunnel, ':') : NULL;
    if (name != NULL && port != NULL)
        snprintf(target, sizeof(target), "%s%s", name, port);
    int fd = open_to(o, name != NULL && port != NULL ? target : o->tunnel);
    if (fd < 0) {
        churn_fail(o->tunnel ? "connect or CONNECT" : "connect", NULL);
        return -1;
    }
    /* Host names the port too: a bumping Squid builds the URL from it, not from the CONNECT. */
    char hostbuf[300];
    const char *host = name ? name : o->tls ? o->tls : o->tunnel ? o->tunnel : o->connect_str;
    if (port != NULL && host != o->tunnel) {
        snprintf(hostbuf, sizeof(hostbuf), "%s%s", host, port);
        host = hostbuf;
    }
    int rc = -1;
    SSL *ssl = NULL;
    if (c->tls != NULL) {
        const char *sni = name ? name : o->tls;
        ssl = SSL_new(c->tls);
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, sni) != 1 ||
            SSL_connect(ssl) != 1) {
            char e[256];
            ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
            churn_fail("TLS handshake", e);
            goto out;
        }
    }
    for (uint64_t i = 0; i < o->requests; i++) {
        rc = -1;
        int n = snprintf(buf, cap, "GET /small HTTP/1.1\r\nHost: %s\r\n\r\n", host);
        if (io_write(fd, ssl, buf, (size_t)n) != n)
            goto out;
        size_t have = 0;
        while (have < cap - 1) {
            ssize_t r = io_read(fd, ssl, buf + have, cap - 1 - have);
            if (r <= 0)
                break;
            have += (size_t)r;
            buf[have] = '\0';
            const char *end = strstr(buf, "\r\n\r\n");
            if (end != NULL && have - (size_t)(end + 4 - buf) >= 100) {
                rc = strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
                break;
            }
        }
        if (rc != 0) {
            buf[have < 40 ? have : 40] = '\0';
            churn_fail("GET", have ? buf : "no answer");
            goto out;
        }
    }
out:
    if (ssl != NULL) {
        SSL_free(ssl); /* no close_notify: the connection is dropped either way */
        ERR_clear_error();
    }
    close(fd);
    return rc;
}

static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    const struct opts *o = c->o;
    char buf[2048], name[256];
    while (o->total ? true : bench_now_ns() < c->deadline_ns) {
        uint64_t k = atomic_fetch_add(c->next, 1);
        if (o->total && k >= o->total)
            break;
        if (o->names)
            snprintf(name, sizeof(name), "n%" PRIu64 "%s", k, o->names);
        if (churn_once(c, o->names ? name : NULL, buf, sizeof(buf)) == 0)
            c->done++;
        else
            c->errors++;
    }
    return NULL;
}

static int run_churn(const struct opts *o)
{
    enum { MAX_CLIENTS = 64 };
    struct churn c[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    unsigned long n = o->clients < 1 ? 1 : o->clients > MAX_CLIENTS ? MAX_CLIENTS : o->clients;
    SSL_CTX *tls = NULL; /* freed below */
    if (o->tls != NULL) {
        /* Certificates are not verified: the upstream's is self-signed, and what is measured
         * is the handshake through the proxy. No session cache: every handshake is full. */
        tls = SSL_CTX_new(TLS_client_method());
        if (tls == NULL)
            return 1;
        SSL_CTX_set_verify(tls, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_session_cache_mode(tls, SSL_SESS_CACHE_OFF);
    }
    uint64_t t0 = bench_now_ns(), done = 0, errors = 0;
    atomic_uint_fast64_t next = 0;
    for (unsigned long i = 0; i < n; i++) {
        c[i] = (struct churn){
            .o = o, .tls = tls, .next = &next, .deadline_ns = t0 + o->seconds * 1000000000ull};
        if (pthread_create(&th[i], NULL, churn_thread, &c[i]) != 0)
            return 1;
    }
    for (unsigned long i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        done += c[i].done;
        errors += c[i].errors;
    }
    SSL_CTX_free(tls);
    double s = (double)(bench_now_ns() - t0) / 1e9;
    /* requests and per_sec count GETs; conns the connections that made them. */
    uint64_t gets = done * o->requests;
    printf("requests=%" PRIu64 " conns=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f per_sec=%.1f\n",
           gets, done, errors, s, (double)gets / s);
    return errors > done / 100 ? 1 : 0; /* more than 1% failures: the figure means nothing */
}

static int run_startup(const struct opts *o)
{
    if (o->cmd == NULL || o->cmd[0] == NULL)
        return usage();
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO); /* our stdout carries only the result line */
        execvp(o->cmd[0], o->cmd);
        _exit(127);
    }
    /* Polls every 100 µs: the figure is tens of milliseconds, so the step adds little. */
    uint64_t ready_ns = 0, deadline = t0 + 30 * 1000000000ull;
    while (bench_now_ns() < deadline) {
        int fd = bench_dial(&o->connect);
        if (fd >= 0) {
            ready_ns = bench_now_ns();
            close(fd);
            break;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "awf-bench-client: startup: %s exited before accepting\n", o->cmd[0]);
            return 1;
        }
        nanosleep(&(struct timespec){.tv_nsec = 100000}, NULL);
    }
    uint64_t t1 = bench_now_ns();
    kill(pid, SIGTERM);
    int status = 0;
    /* Bounded wait: a process that ignores SIGTERM for 10 s is killed and reported as such. */
    uint64_t stop_deadline = t1 + 15 * 1000000000ull;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (bench_now_ns() > stop_deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        nanosleep(&(struct timespec){.tv_nsec = 200000}, NULL);
    }
    uint64_t t2 = bench_now_ns();
    if (ready_ns == 0) {
        fprintf(stderr, "awf-bench-client: startup: no connection accepted in 30 s\n");
        return 1;
    }
    printf("start_ms=%.2f stop_ms=%.2f\n", (double)(ready_ns - t0) / 1e6, (double)(t2 - t1) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    bench_raise_nofile();
    if (strcmp(o.mode, "bulk") == 0)
        return run_bulk(&o);
    if (strcmp(o.mode, "idle") == 0)
        return run_idle(&o);
    if (strcmp(o.mode, "churn") == 0)
        return run_churn(&o);
    if (strcmp(o.mode, "startup") == 0)
        return run_startup(&o);
    return usage();
}
