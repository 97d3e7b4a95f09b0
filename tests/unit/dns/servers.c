/* Servers for the resolver's tests, all on loopback: dnsmasq from Debian with a configuration of
 * our own, and a UDP server of the test's own that drops queries (or answers only A). */

#include "tests/unit/dns/servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* AWF_DNSMASQ overrides the path (to check that CI=true turns a missing dnsmasq into failure). */
static const char *dnsmasq_path(void)
{
    const char *p = getenv("AWF_DNSMASQ");
    return p && p[0] ? p : "/usr/sbin/dnsmasq";
}

/* ---- dnsmasq ------------------------------------------------------------------------------ */

/* Whether a socket of this type can bind 127.0.0.1:port now. */
static bool bind_port(int type, int port)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A port free for both UDP and TCP a moment ago (dnsmasq binds both), below the kernel's
 * ephemeral range: right after a benchmark or a busy test, an ephemeral UDP port is often held
 * by a TCP connection or its TIME_WAIT, and dnsmasq's TCP bind would fail. */
static int free_udp_port(void)
{
    static unsigned seed; /* test plumbing: a different start in each call and process */
    if (!seed)
        seed = (unsigned)getpid() * 2654435761u;
    for (int i = 0; i < 200; i++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000);
        if (bind_port(SOCK_STREAM, port) && bind_port(SOCK_DGRAM, port))
            return port;
    }
    return -1;
}

/* One A query for "ready.probe" over UDP; true when any answer comes back. */
static bool probe(int port)
{
    static const unsigned char q[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0, 0,
                                      0,    0,    5,    'r',  'e', 'a', 'd', 'y', 5, 'p',
                                      'r',  'o',  'b',  'e',  0,   0,   1,   0,   1};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    unsigned char buf[512];
    bool ok = sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)sizeof(q) &&
              recv(fd, buf, sizeof(buf), 0) > 0;
    close(fd);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool write_conf(const struct dns_test_server *srv, const char *path, int port)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f,
            "no-resolv\nno-hosts\nport=%d\nlisten-address=127.0.0.1\nbind-interfaces\n"
            "pid-file=\nlog-queries\nlog-facility=%s\n"
            /* Everything under .test is answered here: unknown names NXDOMAIN, a missing
             * record type NODATA; anything else is REFUSED (no upstream). */
            "local=/test/\nlocal-ttl=300\n"
            "address=/a.test/192.0.2.1\n"
            "address=/nx.test/\n"
            "host-record=dual.test,192.0.2.2,2001:db8::2\n"
            "host-record=v6.test,2001:db8::6\n"
            "host-record=join.test,192.0.2.3\n"
            "host-record=cancel.test,192.0.2.4\n"
            "host-record=orphan.test,192.0.2.5\n"
            "host-record=peer.test,192.0.2.99\n"
            "host-record=short.test,192.0.2.10,1\n"
            "host-record=long.test,192.0.2.11,3600\n"
            /* For the forwarder: a CNAME chain alias -> mid -> chain with a TTL each, and a
             * name with 40 addresses, too many for a 512-byte UDP answer. */
            "host-record=chain.test,192.0.2.20,2001:db8::20,120\n"
            "cname=mid.test,chain.test,900\n"
            "cname=alias.test,mid.test,600\n",
            port, srv->log);
    for (int i = 1; i <= 40; i++)
        fprintf(f, "host-record=big.test,192.0.2.%d\n", 100 + i);
    if (getuid() == 0)
        fputs("user=root\n", f); /* keep root: it owns the temporary directory */
    return fclose(f) == 0;
}

int dns_test_dnsmasq_start(struct dns_test_server *srv)
{
    memset(srv, 0, sizeof(*srv));
    const char *ci = getenv("CI");
    const char *dnsmasq = dnsmasq_path();
    if (access(dnsmasq, X_OK) != 0) {
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "dnsmasq missing (%s) and CI=true: failing\n", dnsmasq);
            return -1;
        }
        fprintf(stderr, "dnsmasq missing: the tests that need it skip\n");
        return 0;
    }
    snprintf(srv->dir, sizeof(srv->dir), "/tmp/awf-dns-XXXXXX");
    if (!mkdtemp(srv->dir))
        return -1;
    snprintf(srv->log, sizeof(srv->log), "%s/queries.log", srv->dir);
    snprintf(srv->hosts, sizeof(srv->hosts), "%s/hosts", srv->dir);
    char conf[96];
    snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", srv->dir);

    for (int attempt = 0; attempt < 5; attempt++) {
        int port = free_udp_port();
        if (port < 0 || !write_conf(srv, conf, port))
            return -1;
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            int devnull = open("/dev/null", O_RDWR);
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            char arg[128];
            snprintf(arg, sizeof(arg), "--conf-file=%s", conf);
            execl(dnsmasq, "dnsmasq", "--keep-in-foreground", arg, (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 100; i++) {
            if (probe(port)) {
                srv->pid = pid;
                srv->available = true;
                snprintf(srv->addr, sizeof(srv->addr), "127.0.0.1:%d", port);
                return 0;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                pid = -1; /* exited: the port was taken meanwhile; try another */
                break;
            }
            sleep_ms(50);
        }
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    return -1;
}

void dns_test_dnsmasq_stop(struct dns_test_server *srv)
{
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        waitpid(srv->pid, NULL, 0);
        srv->pid = 0;
    }
    if (srv->dir[0]) {
        unlink(srv->log);
        unlink(srv->hosts);
        char conf[96];
        snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", srv->dir);
        unlink(conf);
        rmdir(srv->dir);
    }
}

/* How many "query[TYPE] NAME from" lines the server logged. */
int dns_test_logged(const struct dns_test_server *srv, const char *type, const char *name)
{
    char needle[160], line[512];
    snprintf(needle, sizeof(needle), "query[%s] %s from ", type, name);
    FILE *f = fopen(srv->log, "r");
    if (!f)
        return -1;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* A server of the test's own that reads every query and answers none. */

static void silent_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)size;
    struct dns_test_silent *s = h->data;
    *buf = uv_buf_init(s->buf, sizeof(s->buf));
}

static void silent_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                        unsigned flags)
{
    (void)buf;
    (void)flags;
    struct dns_test_silent *s = u->data;
    if (n <= 12 || !from)
        return;
    s->received++;
    if (!s->answer_a)
        return;
    /* The reply: the query's header and question, then one A record naming the question. */
    size_t q = 12;
    while (q < (size_t)n && s->buf[q] != 0)
        q += (size_t)(unsigned char)s->buf[q] + 1;
    if (q + 5 > (size_t)n || s->buf[q + 1] != 0 || s->buf[q + 2] != 1)
        return; /* not an A query: dropped */
    unsigned char out[600];
    size_t qend = q + 5;
    if (qend + 16 > sizeof(out))
        return;
    memcpy(out, s->buf, qend);
    out[2] = 0x81, out[3] = 0x80;            /* response, recursion available */
    out[6] = 0, out[7] = 1;                  /* one answer */
    out[8] = out[9] = out[10] = out[11] = 0; /* no authority, no additional */
    static const unsigned char rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 77};
    memcpy(out + qend, rr, sizeof(rr));
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)(qend + sizeof(rr)));
    uv_udp_try_send(u, &b, 1, from);
}

int dns_test_silent_start(uv_loop_t *loop, struct dns_test_silent *s)
{
    memset(s, 0, sizeof(*s));
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_udp_init(loop, &s->udp) != 0)
        return -1;
    s->udp.data = s;
    if (uv_udp_bind(&s->udp, (struct sockaddr *)&a, 0) != 0)
        return -1;
    int len = sizeof(a);
    if (uv_udp_getsockname(&s->udp, (struct sockaddr *)&a, &len) != 0)
        return -1;
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", ntohs(a.sin_port));
    return uv_udp_recv_start(&s->udp, silent_alloc, silent_recv) == 0 ? 0 : -1;
}
