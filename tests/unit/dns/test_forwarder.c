/* The DNS forwarder end to end: a real dnsmasq on 127.0.0.1 upstream (servers.c), the forwarder
 * on its own loop in a second thread, and this thread as the agent, sending DNS packets it
 * builds byte by byte over real UDP and TCP sockets. dnsmasq's query log proves what left and
 * what did not. Without dnsmasq the tests skip, except under CI=true where they fail. */

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "common/error.h"
#include "dns/forwarder.h"
#include "dns/fwd_int.h"
#include "dns/wire.h"
#include "policy/policy.h"
#include "tests/unit/dns/fixture.h"
#include "tests/unit/policy/helpers.h"

/* ---- the forwarder on a loop thread ---------------------------------------------------------- */

struct fx {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct awf_policy *policy;
    struct awf_dns_fwd *fwd;
    struct dns_fwd_stats stats; /* filled when stopped */
    struct dns_test_silent silent;
    bool use_silent;
    uint16_t port;
    char dir[64], log[96];
};

static void on_stop(uv_async_t *a)
{
    struct fx *fx = a->data;
    dns_fwd_stats(fx->fwd, &fx->stats);
    awf_dns_fwd_destroy(fx->fwd);
    fx->fwd = NULL;
    uv_close((uv_handle_t *)&fx->stop, NULL);
    if (fx->use_silent)
        uv_close((uv_handle_t *)&fx->silent.udp, NULL);
}

static void *loop_main(void *arg)
{
    struct fx *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct start {
    const char *listen;  /* NULL: 127.0.0.1:0 */
    const char *extra;   /* YAML under dns.forwarder */
    bool silent;         /* upstream: a server that never answers, not dnsmasq */
    const char *timeout; /* timeouts.dns; NULL: 5s */
    const char *swap;    /* an allow list for a second policy set before the loop starts */
};

/* Starts a forwarder (a free port) upstream of dnsmasq or of a silent server. */
static void fwd_start_with(struct fx *fx, const struct start *o)
{
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/awf-fwd-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->log, sizeof(fx->log), "%s/queries.log", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    bool silent = o->silent;
    fx->use_silent = silent;
    if (silent)
        assert_int_equal(dns_test_silent_start(&fx->loop, &fx->silent), 0);

    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "version: 1\n"
             "allow: [alias.test, chain.test, nx.test, big.test, \"1.2.3.4\", arpa]\n"
             "dns:\n"
             "  servers: [\"%s\"]\n"
             "  hosts_file: \"\"\n"
             "  forwarder:\n"
             "    listen: [\"%s\"]\n"
             "    log: \"%s\"\n"
             "%s"
             "timeouts:\n"
             "  dns: %s\n",
             silent ? fx->silent.addr : srv.addr, o->listen ? o->listen : "127.0.0.1:0", fx->log,
             o->extra ? o->extra : "", o->timeout ? o->timeout : "5s");
    fx->policy = from_yaml(yaml);
    char err[256] = "";
    if (awf_dns_fwd_create(&fx->loop, fx->policy, NULL, &fx->fwd, err, sizeof(err)) != 0)
        fail_msg("create: %s", err);
    assert_non_null(fx->fwd);
    struct sockaddr_storage ss;
    assert_int_equal(awf_dns_fwd_bound(fx->fwd, &ss, 1), 1);
    fx->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    if (o->swap) {
        char swap[256];
        snprintf(swap, sizeof(swap), "version: 1\nallow: [%s]\n", o->swap);
        struct awf_policy *p = from_yaml(swap);
        awf_dns_fwd_set_policy(fx->fwd, p);
        awf_policy_unref(p); /* the forwarder holds its own reference */
    }
    assert_int_not_equal(fx->port, 0);
    uv_async_init(&fx->loop, &fx->stop, on_stop);
    fx->stop.data = fx;
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_main, fx), 0);
}

static void fwd_start(struct fx *fx, const char *extra, bool silent, const char *timeout)
{
    struct start o = {.extra = extra, .silent = silent, .timeout = timeout};
    fwd_start_with(fx, &o);
}

static void fwd_stop(struct fx *fx)
{
    uv_async_send(&fx->stop);
    pthread_join(fx->thread, NULL);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    awf_policy_unref(fx->policy);
}

/* The query log's lines after the forwarder stopped; the directory is removed. */
static char *fwd_log_text(struct fx *fx)
{
    static char text[65536];
    text[0] = '\0';
    FILE *f = fopen(fx->log, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    unlink(fx->log);
    rmdir(fx->dir);
    return text;
}

/* ---- DNS packets, built and read here independently of dns/wire.c ---------------------------- */

static size_t put_name(uint8_t *p, const char *name)
{
    size_t o = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[o++] = (uint8_t)l;
        memcpy(p + o, name, l);
        o += l;
        name += l + (dot ? 1 : 0);
    }
    p[o++] = 0;
    return o;
}

static size_t make_query(uint8_t *p, uint16_t id, const char *name, uint16_t type, uint16_t cls)
{
    memset(p, 0, 12);
    p[0] = (uint8_t)(id >> 8), p[1] = (uint8_t)id;
    p[2] = 0x01; /* RD */
    p[5] = 1;    /* one question */
    size_t o = 12 + put_name(p + 12, name);
    p[o++] = (uint8_t)(type >> 8), p[o++] = (uint8_t)type;
    p[o++] = (uint8_t)(cls >> 8), p[o++] = (uint8_t)cls;
    return o;
}

struct rr {
    uint16_t type;
    uint32_t ttl;
    char owner[256];
    char data[256]; /* an address in text, or a CNAME target */
};

struct reply {
    uint16_t id;
    int rcode;
    bool qr, tc, rd, ra;
    int qd, an;
    char qname[256];
    uint16_t qtype;
    struct rr rr[64];
};

static size_t get_name(const uint8_t *m, size_t len, size_t pos, char *out)
{
    size_t o = 0, end = 0;
    int hops = 0;
    out[0] = '\0';
    for (;;) {
        assert_true(pos < len);
        uint8_t l = m[pos];
        if ((l & 0xC0) == 0xC0) {
            assert_true(pos + 1 < len && hops++ < 32);
            if (!end)
                end = pos + 2;
            pos = (size_t)(l & 0x3F) << 8 | m[pos + 1];
            continue;
        }
        if (l == 0) {
            if (!end)
                end = pos + 1;
            break;
        }
        assert_true(pos + 1 + l <= len && o + l + 2 < 256);
        if (o)
            out[o++] = '.';
        memcpy(out + o, m + pos + 1, l);
        o += l;
        out[o] = '\0';
        pos += 1 + l;
    }
    return end;
}

static void parse_reply(const uint8_t *m, size_t len, struct reply *r)
{
    memset(r, 0, sizeof(*r));
    assert_true(len >= 12);
    r->id = (uint16_t)(m[0] << 8 | m[1]);
    r->qr = m[2] & 0x80, r->tc = m[2] & 0x02, r->rd = m[2] & 0x01, r->ra = m[3] & 0x80;
    r->rcode = m[3] & 0x0F;
    r->qd = m[4] << 8 | m[5];
    r->an = m[6] << 8 | m[7];
    assert_int_equal(r->qd, 1);
    assert_true(r->an <= 64);
    size_t pos = get_name(m, len, 12, r->qname);
    assert_true(pos + 4 <= len);
    r->qtype = (uint16_t)(m[pos] << 8 | m[pos + 1]);
    pos += 4;
    for (int i = 0; i < r->an; i++) {
        struct rr *x = &r->rr[i];
        pos = get_name(m, len, pos, x->owner);
        assert_true(pos + 10 <= len);
        x->type = (uint16_t)(m[pos] << 8 | m[pos + 1]);
        x->ttl = (uint32_t)m[pos + 4] << 24 | (uint32_t)m[pos + 5] << 16 |
                 (uint32_t)m[pos + 6] << 8 | m[pos + 7];
        size_t rdlen = (size_t)(m[pos + 8] << 8 | m[pos + 9]);
        pos += 10;
        assert_true(pos + rdlen <= len);
        if (x->type == AWF_DNS_WIRE_A && rdlen == 4)
            inet_ntop(AF_INET, m + pos, x->data, sizeof(x->data));
        else if (x->type == AWF_DNS_WIRE_AAAA && rdlen == 16)
            inet_ntop(AF_INET6, m + pos, x->data, sizeof(x->data));
        else if (x->type == AWF_DNS_WIRE_CNAME)
            assert_int_equal(get_name(m, len, pos, x->data), pos + rdlen);
        pos += rdlen;
    }
    assert_int_equal(pos, len);
}

/* ---- clients --------------------------------------------------------------------------------- */

static struct sockaddr_in fwd_addr(const struct fx *fx)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(fx->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A socket whose reads give up after 10 s: a hang fails the test instead of blocking it. */
static int client_socket(int type)
{
    int fd = socket(AF_INET, type, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int udp_client(const struct fx *fx)
{
    int fd = client_socket(SOCK_DGRAM);
    struct sockaddr_in a = fwd_addr(fx);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void udp_recv_reply(int fd, struct reply *r)
{
    uint8_t buf[65536];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
        fail_msg("no UDP answer: %s", n < 0 ? strerror(errno) : "empty");
    parse_reply(buf, (size_t)n, r);
}

/* One UDP query, its answer parsed. */
static void ask_udp(const struct fx *fx, const char *name, uint16_t type, uint16_t cls,
                    struct reply *r)
{
    static uint16_t next_id = 0x1000;
    uint8_t q[512];
    uint16_t id = next_id++;
    size_t len = make_query(q, id, name, type, cls);
    int fd = udp_client(fx);
    assert_int_equal(send(fd, q, len, 0), (ssize_t)len);
    udp_recv_reply(fd, r);
    close(fd);
    assert_int_equal(r->id, id);
    assert_true(r->qr);
    assert_true(r->rd);
    assert_string_equal(r->qname, name);
    assert_int_equal(r->qtype, type);
}

static int tcp_client(const struct fx *fx)
{
    int fd = client_socket(SOCK_STREAM);
    struct sockaddr_in a = fwd_addr(fx);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void tcp_recv_reply(int fd, struct reply *r)
{
    static uint8_t buf[65536];
    uint8_t len[2];
    assert_true(read_full(fd, len, 2));
    size_t n = (size_t)(len[0] << 8 | len[1]);
    assert_true(read_full(fd, buf, n));
    parse_reply(buf, n, r);
}

/* True when the server closed the connection (EOF or reset) rather than answering. */
static bool tcp_closed(int fd)
{
    uint8_t b;
    ssize_t n = recv(fd, &b, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static const struct rr *find_rr(const struct reply *r, uint16_t type, const char *owner)
{
    for (int i = 0; i < r->an; i++)
        if (r->rr[i].type == type && strcmp(r->rr[i].owner, owner) == 0)
            return &r->rr[i];
    return NULL;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* An allowed name behind two CNAMEs: the chain in order with dnsmasq's TTLs, A and AAAA. Asked
 * again, it comes from the cache (dnsmasq saw one query) with TTLs never above the originals. */
static void test_forwarder_cname_chain_with_ttls(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, NULL, false, NULL);
    struct reply r;
    ask_udp(&fx, "alias.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_NOERROR);
    assert_true(r.ra);
    assert_int_equal(r.an, 3);
    assert_int_equal(r.rr[0].type, AWF_DNS_WIRE_CNAME);
    assert_string_equal(r.rr[0].owner, "alias.test");
    assert_string_equal(r.rr[0].data, "mid.test");
    assert_int_equal(r.rr[0].ttl, 600);
    assert_int_equal(r.rr[1].type, AWF_DNS_WIRE_CNAME);
    assert_string_equal(r.rr[1].owner, "mid.test");
    assert_string_equal(r.rr[1].data, "chain.test");
    assert_int_equal(r.rr[1].ttl, 900);
    assert_int_equal(r.rr[2].type, AWF_DNS_WIRE_A);
    assert_string_equal(r.rr[2].owner, "chain.test");
    assert_string_equal(r.rr[2].data, "192.0.2.20");
    assert_int_equal(r.rr[2].ttl, 120);

    ask_udp(&fx, "alias.test", AWF_DNS_WIRE_AAAA, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_NOERROR);
    assert_int_equal(r.an, 3);
    const struct rr *aaaa = find_rr(&r, AWF_DNS_WIRE_AAAA, "chain.test");
    assert_non_null(aaaa);
    assert_string_equal(aaaa->data, "2001:db8::20");
    assert_int_equal(aaaa->ttl, 120);

    /* The client's letter case comes back in the question (0x20 randomisation survives). */
    ask_udp(&fx, "ALIAS.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.an, 3);
    assert_true(r.rr[0].ttl <= 600 && r.rr[1].ttl <= 900 && r.rr[2].ttl <= 120);
    assert_string_equal(r.rr[2].data, "192.0.2.20");

    /* A CNAME query gets the first link only. */
    ask_udp(&fx, "alias.test", AWF_DNS_WIRE_CNAME, 1, &r);
    assert_int_equal(r.an, 1);
    assert_string_equal(r.rr[0].data, "mid.test");

    fwd_stop(&fx);
    assert_int_equal(dns_test_logged(&srv, "A", "alias.test"), 1);
    assert_int_equal(dns_test_logged(&srv, "AAAA", "alias.test"), 1);
    assert_int_equal(fx.stats.cache_hits, 1);
    assert_int_equal(fx.stats.upstream, 3);
    const char *log = fwd_log_text(&fx);
    assert_non_null(strstr(log, " alias.test A allowed NOERROR 3\n"));
    assert_non_null(strstr(log, " ALIAS.test A allowed NOERROR 3\n"));
    assert_non_null(strstr(log, " alias.test AAAA allowed NOERROR 3\n"));
    assert_non_null(strstr(log, " alias.test CNAME allowed NOERROR 1\n"));
}

/* Names the policy would not let through get REFUSED and never reach dnsmasq: a name dnsmasq
 * knows (a.test), an unknown one, an allowlisted IP literal, a reverse name even with "arpa"
 * allowed, a PTR query, another class, a name that is not a host name. */
static void test_forwarder_denied_names_never_leave(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, NULL, false, NULL);
    struct reply r;
    const struct {
        const char *name;
        uint16_t type, cls;
    } denied[] = {
        {"a.test", AWF_DNS_WIRE_A, 1},
        {"evil.example", AWF_DNS_WIRE_AAAA, 1},
        {"1.2.3.4", AWF_DNS_WIRE_A, 1},
        {"20.2.0.192.in-addr.arpa", AWF_DNS_WIRE_A, 1},
        {"x.arpa", AWF_DNS_WIRE_PTR, 1},
        {"alias.test", AWF_DNS_WIRE_A, 3}, /* CHAOS */
        {"bad name.alias.test", AWF_DNS_WIRE_A, 1},
    };
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        ask_udp(&fx, denied[i].name, denied[i].type, denied[i].cls, &r);
        assert_int_equal(r.rcode, AWF_DNS_WIRE_REFUSED);
        assert_int_equal(r.an, 0);
    }
    fwd_stop(&fx);
    assert_int_equal(dns_test_logged(&srv, "A", "a.test"), 0);
    assert_int_equal(dns_test_logged(&srv, "AAAA", "evil.example"), 0);
    assert_int_equal(dns_test_logged(&srv, "A", "1.2.3.4"), 0);
    assert_int_equal(dns_test_logged(&srv, "A", "20.2.0.192.in-addr.arpa"), 0);
    assert_int_equal(fx.stats.denied, sizeof(denied) / sizeof(denied[0]));
    assert_int_equal(fx.stats.upstream, 0);
    const char *log = fwd_log_text(&fx);
    assert_non_null(strstr(log, " 127.0.0.1:"));
    assert_non_null(strstr(log, " a.test A denied REFUSED 0\n"));
    assert_non_null(strstr(log, " evil.example AAAA denied REFUSED 0\n"));
    assert_non_null(strstr(log, " bad\\032name.alias.test A denied REFUSED 0\n"));
}

/* deny_rcode nxdomain; and an allowed name that does not exist is NXDOMAIN from upstream. */
static void test_forwarder_nxdomain_setting(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, "    deny_rcode: nxdomain\n", false, NULL);
    struct reply r;
    ask_udp(&fx, "a.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_NXDOMAIN);
    assert_int_equal(r.an, 0);
    ask_udp(&fx, "nx.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_NXDOMAIN);
    ask_udp(&fx, "nx.test", AWF_DNS_WIRE_A, 1, &r); /* negative answers are cached too */
    assert_int_equal(r.rcode, AWF_DNS_WIRE_NXDOMAIN);
    fwd_stop(&fx);
    assert_int_equal(dns_test_logged(&srv, "A", "a.test"), 0);
    assert_int_equal(dns_test_logged(&srv, "A", "nx.test"), 1);
    const char *log = fwd_log_text(&fx);
    assert_non_null(strstr(log, " a.test A denied NXDOMAIN 0\n"));
    assert_non_null(strstr(log, " nx.test A allowed NXDOMAIN 0\n"));
}

/* TXT, MX, HTTPS for an allowed name: NOERROR with no answer, nothing asked upstream. */
static void test_forwarder_other_types_empty(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, NULL, false, NULL);
    struct reply r;
    const uint16_t types[] = {AWF_DNS_WIRE_TXT, AWF_DNS_WIRE_MX, AWF_DNS_WIRE_HTTPS,
                              AWF_DNS_WIRE_ANY};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        ask_udp(&fx, "alias.test", types[i], 1, &r);
        assert_int_equal(r.rcode, AWF_DNS_WIRE_NOERROR);
        assert_int_equal(r.an, 0);
    }
    fwd_stop(&fx);
    assert_int_equal(dns_test_logged(&srv, "TXT", "alias.test"), 0);
    assert_int_equal(dns_test_logged(&srv, "MX", "alias.test"), 0);
    assert_int_equal(fx.stats.upstream, 0);
    const char *log = fwd_log_text(&fx);
    assert_non_null(strstr(log, " alias.test TXT allowed NOERROR 0\n"));
    assert_non_null(strstr(log, " alias.test HTTPS allowed NOERROR 0\n"));
}

/* Malformed packets get no answer and are counted; the next good query on the same socket is
 * the one answered, so the server kept serving. */
static void test_forwarder_malformed_dropped(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, NULL, false, NULL);
    uint8_t good[512], bad[600];
    size_t glen = make_query(good, 0x7777, "alias.test", AWF_DNS_WIRE_A, 1);
    int fd = udp_client(&fx);
    size_t n_bad = 0;

    static const uint8_t garbage[] = {1, 2, 3};
    assert_int_equal(send(fd, garbage, sizeof(garbage), 0), (ssize_t)sizeof(garbage));
    n_bad++;
    memcpy(bad, good, glen); /* a response, not a query */
    bad[2] |= 0x80;
    assert_int_equal(send(fd, bad, glen, 0), (ssize_t)glen);
    n_bad++;
    memcpy(bad, good, glen); /* two questions announced, one present */
    bad[5] = 2;
    assert_int_equal(send(fd, bad, glen, 0), (ssize_t)glen);
    n_bad++;
    memcpy(bad, good, glen); /* trailing bytes */
    bad[glen] = 0;
    assert_int_equal(send(fd, bad, glen + 1, 0), (ssize_t)glen + 1);
    n_bad++;
    memcpy(bad, good, glen); /* a label running past the end */
    bad[12] = 60;
    assert_int_equal(send(fd, bad, glen, 0), (ssize_t)glen);
    n_bad++;
    memcpy(bad, good, 12); /* a compression pointer pointing at itself */
    bad[12] = 0xC0, bad[13] = 12, bad[14] = 0, bad[15] = 1, bad[16] = 0, bad[17] = 1;
    assert_int_equal(send(fd, bad, 18, 0), 18);
    n_bad++;
    memcpy(bad, good, glen); /* opcode STATUS */
    bad[2] = (uint8_t)(2 << 3);
    assert_int_equal(send(fd, bad, glen, 0), (ssize_t)glen);
    n_bad++;

    assert_int_equal(send(fd, good, glen, 0), (ssize_t)glen);
    struct reply r;
    udp_recv_reply(fd, &r);
    assert_int_equal(r.id, 0x7777);
    assert_int_equal(r.an, 3);
    close(fd);
    fwd_stop(&fx);
    assert_int_equal(fx.stats.malformed, n_bad);
    assert_int_equal(fx.stats.queries, 1);
    const char *log = fwd_log_text(&fx);
    assert_non_null(strstr(log, " - - malformed - 0\n"));
}

/* Two queries in one write on one TCP connection, two framed answers; then a third query on
 * the same connection after the answers. */
static void test_forwarder_tcp_two_queries_one_connection(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, NULL, false, NULL);
    uint8_t buf[1024];
    size_t l1 = make_query(buf + 2, 0x0101, "alias.test", AWF_DNS_WIRE_A, 1);
    buf[0] = 0, buf[1] = (uint8_t)l1;
    size_t l2 = make_query(buf + 4 + l1, 0x0202, "a.test", AWF_DNS_WIRE_A, 1);
    buf[2 + l1] = 0, buf[3 + l1] = (uint8_t)l2;
    int fd = tcp_client(&fx);
    assert_int_equal(send(fd, buf, l1 + l2 + 4, 0), (ssize_t)(l1 + l2 + 4));
    struct reply r1, r2;
    tcp_recv_reply(fd, &r1);
    tcp_recv_reply(fd, &r2);
    if (r1.id == 0x0202) { /* answers may come in any order */
        struct reply t = r1;
        r1 = r2;
        r2 = t;
    }
    assert_int_equal(r1.id, 0x0101);
    assert_int_equal(r1.rcode, AWF_DNS_WIRE_NOERROR);
    assert_int_equal(r1.an, 3);
    assert_int_equal(r2.id, 0x0202);
    assert_int_equal(r2.rcode, AWF_DNS_WIRE_REFUSED);

    size_t l3 = make_query(buf + 2, 0x0303, "alias.test", AWF_DNS_WIRE_AAAA, 1);
    buf[0] = 0, buf[1] = (uint8_t)l3;
    assert_int_equal(send(fd, buf, l3 + 2, 0), (ssize_t)(l3 + 2));
    tcp_recv_reply(fd, &r1);
    assert_int_equal(r1.id, 0x0303);
    assert_int_equal(r1.an, 3);
    /* The client closes its side: the server finishes and closes too. */
    shutdown(fd, SHUT_WR);
    assert_true(tcp_closed(fd));
    close(fd);
    fwd_stop(&fx);
    assert_int_equal(fx.stats.tcp_conns, 1);
    assert_int_equal(fx.stats.malformed, 0);
    fwd_log_text(&fx);
}

/* A frame cut short by EOF, a frame too short to be a message, and a frame holding garbage:
 * each connection is closed without an answer and counted. A byte at a time still works. */
static void test_forwarder_tcp_truncated_frames(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, NULL, false, NULL);
    uint8_t buf[600];
    size_t len = make_query(buf + 2, 0x4242, "alias.test", AWF_DNS_WIRE_A, 1);
    buf[0] = 0, buf[1] = (uint8_t)len;

    int fd = tcp_client(&fx); /* the length says more than comes */
    assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    assert_true(tcp_closed(fd));
    close(fd);

    fd = tcp_client(&fx); /* only half the length prefix */
    assert_int_equal(send(fd, buf, 1, 0), 1);
    shutdown(fd, SHUT_WR);
    assert_true(tcp_closed(fd));
    close(fd);

    fd = tcp_client(&fx); /* a 5-byte frame */
    static const uint8_t tiny[] = {0, 5, 1, 2, 3, 4, 5};
    assert_int_equal(send(fd, tiny, sizeof(tiny), 0), (ssize_t)sizeof(tiny));
    assert_true(tcp_closed(fd));
    close(fd);

    fd = tcp_client(&fx); /* one byte per write */
    for (size_t i = 0; i < len + 2; i++)
        assert_int_equal(send(fd, buf + i, 1, 0), 1);
    struct reply r;
    tcp_recv_reply(fd, &r);
    assert_int_equal(r.id, 0x4242);
    assert_int_equal(r.an, 3);
    close(fd);

    fwd_stop(&fx);
    assert_int_equal(fx.stats.malformed, 3);
    assert_int_equal(fx.stats.tcp_conns, 4);
    fwd_log_text(&fx);
}

/* Upstream never answers: SERVFAIL once c-ares gives up (timeouts.dns), not cached. */
static void test_forwarder_upstream_timeout_servfail(void **state)
{
    (void)state;
    struct fx fx;
    fwd_start(&fx, NULL, true, "300ms");
    struct reply r;
    ask_udp(&fx, "alias.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_SERVFAIL);
    assert_int_equal(r.an, 0);
    ask_udp(&fx, "alias.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_SERVFAIL);
    fwd_stop(&fx);
    assert_int_equal(fx.stats.servfail, 2);
    assert_int_equal(fx.stats.upstream, 2);
    assert_true(fx.silent.received >= 2);
    const char *log = fwd_log_text(&fx);
    assert_non_null(strstr(log, " alias.test A allowed SERVFAIL 0\n"));
}

/* An answer over 512 bytes goes over UDP with TC set and no records; over TCP whole. */
static void test_forwarder_udp_truncation(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    fwd_start(&fx, NULL, false, NULL);
    struct reply r;
    ask_udp(&fx, "big.test", AWF_DNS_WIRE_A, 1, &r);
    assert_true(r.tc);
    assert_int_equal(r.an, 0);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_NOERROR);

    uint8_t buf[600];
    size_t len = make_query(buf + 2, 0x5151, "big.test", AWF_DNS_WIRE_A, 1);
    buf[0] = 0, buf[1] = (uint8_t)len;
    int fd = tcp_client(&fx);
    assert_int_equal(send(fd, buf, len + 2, 0), (ssize_t)(len + 2));
    tcp_recv_reply(fd, &r);
    close(fd);
    assert_false(r.tc);
    assert_int_equal(r.an, AWF_DNS_WIRE_MAX_RR);
    for (int i = 0; i < r.an; i++)
        assert_string_equal(r.rr[i].owner, "big.test");
    fwd_stop(&fx);
    assert_int_equal(fx.stats.truncated, 1);
    /* One query from the forwarder, the TCP answer from its cache (c-ares itself retried
     * over TCP when dnsmasq's UDP answer came truncated). */
    assert_int_equal(fx.stats.upstream, 1);
    assert_int_equal(fx.stats.cache_hits, 1);
    fwd_log_text(&fx);
}

/* A new policy decides the next queries: a.test allowed now, alias.test denied. */
static void test_forwarder_set_policy(void **state)
{
    (void)state;
    require_server();
    struct fx fx;
    struct start o = {.swap = "a.test"};
    fwd_start_with(&fx, &o);
    struct reply r;
    ask_udp(&fx, "a.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_NOERROR);
    assert_int_equal(r.an, 1);
    assert_string_equal(r.rr[0].data, "192.0.2.1");
    assert_int_equal(r.rr[0].ttl, 300);
    ask_udp(&fx, "alias.test", AWF_DNS_WIRE_A, 1, &r);
    assert_int_equal(r.rcode, AWF_DNS_WIRE_REFUSED);
    fwd_stop(&fx);
    fwd_log_text(&fx);
}

/* A listener on ::1, UDP and TCP. Skips where the host has no IPv6 loopback. */
static void test_forwarder_ipv6_listener(void **state)
{
    (void)state;
    require_server();
    int probe = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (probe >= 0)
        close(probe);
    if (!have_v6)
        skip();
    struct fx fx;
    struct start o = {.listen = "[::1]:0"};
    fwd_start_with(&fx, &o);
    a.sin6_port = htons(fx.port);
    uint8_t q[300], buf[600];
    size_t len = make_query(q + 2, 0x6666, "alias.test", AWF_DNS_WIRE_AAAA, 1);
    q[0] = 0, q[1] = (uint8_t)len;
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(sendto(fd, q + 2, len, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)len);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    close(fd);
    struct reply r;
    parse_reply(buf, (size_t)n, &r);
    assert_int_equal(r.id, 0x6666);
    assert_int_equal(r.an, 3);
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(send(fd, q, len + 2, 0), (ssize_t)(len + 2));
    tcp_recv_reply(fd, &r);
    close(fd);
    assert_int_equal(r.id, 0x6666);
    assert_int_equal(r.an, 3);
    fwd_stop(&fx);
    const char *log = fwd_log_text(&fx);
    assert_non_null(strstr(log, " [::1]:"));
}

/* No listen address: the forwarder is off and create says so with NULL. */
static void test_forwarder_off_without_listen(void **state)
{
    (void)state;
    struct awf_policy *p = from_yaml("version: 1\nallow: [example.com]\n");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct awf_dns_fwd *f = (struct awf_dns_fwd *)&loop;
    char err[128] = "";
    assert_int_equal(awf_dns_fwd_create(&loop, p, NULL, &f, err, sizeof(err)), 0);
    assert_null(f);
    awf_dns_fwd_destroy(NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
    awf_policy_unref(p);
}

/* A listen address already taken: an error naming it, nothing left behind. */
static void test_forwarder_bind_error(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char yaml[256];
    snprintf(yaml, sizeof(yaml),
             "version: 1\ndns:\n  servers: [\"127.0.0.1:9\"]\n  forwarder:\n"
             "    listen: [\"127.0.0.1:%u\"]\n    log: \"-\"\n",
             ntohs(a.sin_port));
    struct awf_policy *p = from_yaml(yaml);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct awf_dns_fwd *f = NULL;
    char err[256] = "";
    assert_int_equal(awf_dns_fwd_create(&loop, p, NULL, &f, err, sizeof(err)), -EADDRINUSE);
    assert_null(f);
    assert_non_null(strstr(err, "dns.forwarder.listen 127.0.0.1:"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    awf_policy_unref(p);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwarder_cname_chain_with_ttls),
        cmocka_unit_test(test_forwarder_denied_names_never_leave),
        cmocka_unit_test(test_forwarder_nxdomain_setting),
        cmocka_unit_test(test_forwarder_other_types_empty),
        cmocka_unit_test(test_forwarder_malformed_dropped),
        cmocka_unit_test(test_forwarder_tcp_two_queries_one_connection),
        cmocka_unit_test(test_forwarder_tcp_truncated_frames),
        cmocka_unit_test(test_forwarder_upstream_timeout_servfail),
        cmocka_unit_test(test_forwarder_udp_truncation),
        cmocka_unit_test(test_forwarder_set_policy),
        cmocka_unit_test(test_forwarder_ipv6_listener),
        cmocka_unit_test(test_forwarder_off_without_listen),
        cmocka_unit_test(test_forwarder_bind_error),
    };
    return cmocka_run_group_tests(tests, start_dnsmasq, stop_dnsmasq);
}
