/* The kernel relay of tunnels (proxy/splice.c), end to end on loopback: a real proxy on its own
 * loop thread, a CONNECT tunnel to a local upstream socket, 64 MiB through it to a slow reader
 * (bytes exact, memory bounded, pipes used while bulk flows), then half-closes both ways while
 * the tunnel is spliced. */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "proxy/conn.h"
#include "proxy/proxy.h"
#include "tests/unit/policy/helpers.h"

#define DOWN_BYTES (64u * 1024 * 1024)
#define UP_BYTES   (3u * 1024 * 1024)

struct loop_thread {
    uv_loop_t loop;
    uv_async_t stop;
    struct awf_proxy *px;
    pthread_t tid;
    int done;
};

static void done_cb(void *arg)
{
    (*(int *)arg)++;
}

static void stop_cb(uv_async_t *a)
{
    struct loop_thread *lt = a->data;
    awf_proxy_shutdown(lt->px, 0, done_cb, &lt->done);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    struct loop_thread *lt = arg;
    uv_run(&lt->loop, UV_RUN_DEFAULT);
    return NULL;
}

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 7u + (i >> 13));
}

/* The client's bytes: another pattern, so a mix-up of directions shows. */
static uint8_t upward(uint64_t i)
{
    return (uint8_t)(i * 13u + 5u);
}

static int count_pipes(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], link[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len > 0) {
            link[len] = '\0';
            n += strncmp(link, "pipe:", 5) == 0;
        }
    }
    closedir(d);
    return n;
}

static long vm_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

struct upstream_side {
    int fd;
    uint64_t got;
    bool bad;
};

/* The upstream: sends DOWN_BYTES of the pattern and FIN, then reads the client's bytes to EOF. */
static void *upstream_main(void *arg)
{
    struct upstream_side *u = arg;
    static uint8_t buf[65536];
    uint64_t sent = 0;
    /* The client speaks first (the proxy peeks at its first bytes before relaying). */
    char hello[6];
    for (size_t have = 0; have < sizeof(hello);) {
        ssize_t r = read(u->fd, hello + have, sizeof(hello) - have);
        if (r <= 0) {
            u->bad = true;
            return NULL;
        }
        have += (size_t)r;
    }
    if (memcmp(hello, "START\n", 6) != 0)
        u->bad = true;
    while (sent < DOWN_BYTES) {
        size_t n = sizeof(buf);
        if (n > DOWN_BYTES - sent)
            n = DOWN_BYTES - sent;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(sent + i);
        ssize_t w = write(u->fd, buf, n);
        if (w <= 0) {
            u->bad = true;
            return NULL;
        }
        sent += (uint64_t)w;
    }
    shutdown(u->fd, SHUT_WR);
    for (;;) {
        ssize_t r = read(u->fd, buf, sizeof(buf));
        if (r < 0) {
            u->bad = true;
            break;
        }
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != upward(u->got + (uint64_t)i))
                u->bad = true;
        u->got += (uint64_t)r;
    }
    return NULL;
}

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A proxy on its own loop thread, listening on a free loopback port (*bound). */
static struct awf_policy *start_proxy(struct loop_thread *lt, struct sockaddr_storage *bound)
{
    char err[256] = "";
    struct awf_policy *p = from_yaml("version: 1\nallow: [\"127.0.0.1\"]\n"
                                     "addresses: {allow: [\"127.0.0.0/8\"]}\n"
                                     "ports: [\"1024-65535\"]\nlisten: [\"127.0.0.1:0\"]\n"
                                     "tunnels: {opaque_ports: [\"1024-65535\"]}\n");
    assert_int_equal(awf_proxy_create(&lt->loop, p, NULL, &lt->px, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_listen(lt->px, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_bound(lt->px, bound, 1), 1);
    assert_int_equal(uv_async_init(&lt->loop, &lt->stop, stop_cb), 0);
    lt->stop.data = lt;
    assert_int_equal(pthread_create(&lt->tid, NULL, loop_main, lt), 0);
    return p;
}

static void stop_proxy(struct loop_thread *lt, struct awf_policy *p, int pipes_start)
{
    uv_async_send(&lt->stop);
    assert_int_equal(pthread_join(lt->tid, NULL), 0);
    assert_int_equal(lt->done, 1);
    /* The loop's free pipes are closed with the proxy. */
    assert_int_equal(count_pipes(), pipes_start);
    awf_policy_unref(p);
    assert_int_equal(uv_loop_close(&lt->loop), 0);
}

/* CONNECT through the proxy at bound to a new local upstream; *ufd is the upstream's end.
 * Returns the client's socket, with the 200 answer read. */
static int open_tunnel(const struct sockaddr_storage *bound, int *ufd)
{
    uint16_t up_port;
    int lfd = listen_any(&up_port);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(cfd >= 0);
    assert_int_equal(connect(cfd, (const struct sockaddr *)bound, sizeof(struct sockaddr_in)), 0);
    char req[128];
    int n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: x\r\n\r\n",
                     (unsigned)up_port);
    assert_int_equal(write(cfd, req, (size_t)n), n);
    *ufd = accept(lfd, NULL, NULL);
    assert_true(*ufd >= 0);
    close(lfd);
    /* The 200 head, byte by byte so nothing of the tunnel is taken with it. */
    char head[256];
    size_t hl = 0;
    while (hl < 4 || memcmp(head + hl - 4, "\r\n\r\n", 4) != 0) {
        assert_true(hl < sizeof(head) - 1);
        assert_int_equal(read(cfd, head + hl, 1), 1);
        hl++;
    }
    head[hl] = '\0';
    assert_non_null(strstr(head, " 200 "));
    return cfd;
}

struct sink {
    int fd;
    uint64_t got;
    bool bad;
};

/* Reads upward() bytes to EOF. */
static void *sink_main(void *arg)
{
    struct sink *k = arg;
    static uint8_t buf[65536];
    for (;;) {
        ssize_t r = read(k->fd, buf, sizeof(buf));
        if (r <= 0) {
            k->bad = r < 0;
            return NULL;
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != upward(k->got + (uint64_t)i))
                k->bad = true;
        k->got += (uint64_t)r;
    }
}

/* The client uploads first: the switch happens in the client's read callback, with the block
 * just read written ahead of the spliced bytes. Then the upstream answers and closes first. */
static void test_bulk_upload_then_answer(void **state)
{
    (void)state;
    struct loop_thread lt = {0};
    assert_int_equal(uv_loop_init(&lt.loop), 0);
    int pipes_start = count_pipes();
    struct sockaddr_storage bound;
    struct awf_policy *p = start_proxy(&lt, &bound);
    struct sink k = {0};
    int cfd = open_tunnel(&bound, &k.fd);
    pthread_t kt;
    assert_int_equal(pthread_create(&kt, NULL, sink_main, &k), 0);
    static uint8_t out[65536];
    for (uint64_t sent = 0; sent < 4 * UP_BYTES;) {
        for (size_t i = 0; i < sizeof(out); i++)
            out[i] = upward(sent + i);
        ssize_t w = write(cfd, out, sizeof(out));
        assert_true(w > 0);
        sent += (uint64_t)w;
    }
    /* The client half-closes; the upstream sees every byte, then its EOF. */
    assert_int_equal(shutdown(cfd, SHUT_WR), 0);
    assert_int_equal(pthread_join(kt, NULL), 0);
    assert_false(k.bad);
    assert_int_equal(k.got, 4 * UP_BYTES);
    /* The answer still comes back through the half-closed tunnel, then the upstream's FIN. */
    assert_int_equal(write(k.fd, "done\n", 5), 5);
    assert_int_equal(shutdown(k.fd, SHUT_WR), 0);
    char ans[16];
    size_t al = 0;
    for (;;) {
        ssize_t r = read(cfd, ans + al, sizeof(ans) - al);
        assert_true(r >= 0);
        if (r == 0)
            break;
        al += (size_t)r;
        assert_true(al < sizeof(ans));
    }
    assert_int_equal(al, 5);
    assert_memory_equal(ans, "done\n", 5);
    close(k.fd);
    close(cfd);
    stop_proxy(&lt, p, pipes_start);
}

static void test_bulk_slow_reader_and_half_close(void **state)
{
    (void)state;
    struct loop_thread lt = {0};
    char err[256] = "";
    assert_int_equal(uv_loop_init(&lt.loop), 0);
    int pipes_start = count_pipes(); /* with libuv's own */
    struct awf_policy *p = from_yaml("version: 1\nallow: [\"127.0.0.1\"]\n"
                                     "addresses: {allow: [\"127.0.0.0/8\"]}\n"
                                     "ports: [\"1024-65535\"]\nlisten: [\"127.0.0.1:0\"]\n"
                                     "tunnels: {opaque_ports: [\"1024-65535\"]}\n");
    assert_int_equal(awf_proxy_create(&lt.loop, p, NULL, &lt.px, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_listen(lt.px, err, sizeof(err)), 0);
    struct sockaddr_storage bound;
    assert_int_equal(awf_proxy_bound(lt.px, &bound, 1), 1);
    assert_int_equal(uv_async_init(&lt.loop, &lt.stop, stop_cb), 0);
    lt.stop.data = &lt;
    int pipes_before = count_pipes();
    assert_int_equal(pthread_create(&lt.tid, NULL, loop_main, &lt), 0);

    uint16_t up_port;
    int lfd = listen_any(&up_port);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(cfd >= 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&bound, sizeof(struct sockaddr_in)), 0);
    char req[128];
    int n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: x\r\n\r\n",
                     (unsigned)up_port);
    assert_int_equal(write(cfd, req, (size_t)n), n);
    struct upstream_side u = {.fd = accept(lfd, NULL, NULL)};
    assert_true(u.fd >= 0);
    close(lfd);

    /* The 200 head, byte by byte so nothing of the tunnel is taken with it. */
    char head[256];
    size_t hl = 0;
    while (hl < 4 || memcmp(head + hl - 4, "\r\n\r\n", 4) != 0) {
        assert_true(hl < sizeof(head) - 1);
        assert_int_equal(read(cfd, head + hl, 1), 1);
        hl++;
    }
    head[hl] = '\0';
    assert_non_null(strstr(head, " 200 "));

    assert_int_equal(write(cfd, "START\n", 6), 6);
    long rss_before = vm_kb("VmRSS");
    pthread_t ut;
    assert_int_equal(pthread_create(&ut, NULL, upstream_main, &u), 0);

    /* A slow reader: small reads with pauses, so the proxy's side fills up and must hold back
     * rather than buffer. */
    static uint8_t buf[16384];
    uint64_t got = 0;
    int pipes_during = 0;
    bool bad = false;
    for (unsigned i = 0;; i++) {
        ssize_t r = read(cfd, buf, (i & 1) ? sizeof(buf) : 1000);
        assert_true(r >= 0);
        if (r == 0)
            break;
        for (ssize_t k = 0; k < r; k++)
            if (buf[k] != pattern(got + (uint64_t)k))
                bad = true;
        got += (uint64_t)r;
        if (i % 512 == 0)
            usleep(1000);
        if (got > DOWN_BYTES / 2 && !pipes_during)
            pipes_during = count_pipes();
    }
    assert_false(bad);
    assert_int_equal(got, DOWN_BYTES);
    /* Bulk went through a pipe (the kernel relay), and nothing grew with the transfer: the
     * tunnel holds at most one pipe per direction, never the stream. */
    assert_true(pipes_during > pipes_before);
    long growth = vm_kb("VmRSS") - rss_before;
    assert_true(growth < 8 * 1024);

    /* The upstream's FIN came through; the other direction still works, then closes. */
    static uint8_t out[65536];
    uint64_t sent = 0;
    while (sent < UP_BYTES) {
        size_t m = sizeof(out);
        for (size_t k = 0; k < m; k++)
            out[k] = upward(sent + k);
        ssize_t w = write(cfd, out, m);
        assert_true(w > 0);
        sent += (uint64_t)w; /* after a partial write the pattern restarts at sent */
    }
    assert_int_equal(shutdown(cfd, SHUT_WR), 0);
    assert_int_equal(pthread_join(ut, NULL), 0);
    assert_false(u.bad);
    assert_int_equal(u.got, UP_BYTES);
    /* Both directions are done: the proxy closes the tunnel. */
    assert_int_equal(read(cfd, buf, sizeof(buf)), 0);
    close(u.fd);
    close(cfd);

    uv_async_send(&lt.stop);
    assert_int_equal(pthread_join(lt.tid, NULL), 0);
    assert_int_equal(lt.done, 1);
    /* The loop's free pipes are closed with the proxy. */
    assert_int_equal(count_pipes(), pipes_start);
    awf_policy_unref(p);
    assert_int_equal(uv_loop_close(&lt.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_slow_reader_and_half_close),
        cmocka_unit_test(test_bulk_upload_then_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
