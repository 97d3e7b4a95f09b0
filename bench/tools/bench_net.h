#ifndef AWF_BENCH_TOOLS_BENCH_NET_H
#define AWF_BENCH_TOOLS_BENCH_NET_H

/* Blocking socket helpers shared by the bench tools. Loopback-only by design: an address that
 * is not in 127.0.0.0/8 or ::1 is refused, so a typo can never send load anywhere else. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct bench_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "127.0.0.1:PORT" or "[::1]:PORT" into out (port 0: the kernel picks, for listening).
 * Returns 0, or -1 with a message on stderr (also for any non-loopback address). */
int bench_addr_parse(const char *s, struct bench_addr *out);

/* A connected TCP socket (blocking, TCP_NODELAY) or -errno. */
int bench_dial(const struct bench_addr *a);

/* Sends "CONNECT target HTTP/1.1" on fd and reads the proxy's answer head. Returns 0 on a 2xx,
 * -1 otherwise (the status line goes to stderr once per process, so a denied run says why).
 * Reads only the head: the bench upstream speaks only when spoken to, so nothing follows it. */
int bench_connect_tunnel(int fd, const char *target);

/* Writes all of buf or returns -errno. */
int bench_write_all(int fd, const void *buf, size_t len);

/* Raises the soft open-file limit to the hard one (9,000 tunnels need ~9,000 descriptors). */
void bench_raise_nofile(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

#endif
