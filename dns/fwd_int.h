#ifndef AWF_DNS_FWD_INT_H
#define AWF_DNS_FWD_INT_H

/* What the forwarder's two halves share, private to dns/: forwarder.c decides and answers one
 * query at a time (policy, cache, upstream); fwd_net.c owns the sockets (UDP and TCP
 * listeners, TCP framing, backpressure, sending answers). A query travels net -> decision as
 * f->up->packet(), its answer decision -> net as dns_fwd_respond(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "dns/forwarder.h"
#include "dns/fwd_cache.h"
#include "dns/fwd_log.h"
#include "dns/list.h"
#include "dns/raw.h"
#include "dns/wire.h"

/* The forwarder's counters (tests read them). */
struct dns_fwd_stats {
    uint64_t queries;    /* well-formed queries */
    uint64_t allowed;    /* answered for an allowed name (any rcode) */
    uint64_t denied;     /* answered REFUSED / NXDOMAIN by policy */
    uint64_t malformed;  /* packets dropped, TCP connections closed on a bad frame */
    uint64_t upstream;   /* queries sent upstream */
    uint64_t cache_hits; /* answered from the cache */
    uint64_t servfail;   /* upstream timed out or failed */
    uint64_t truncated;  /* UDP answers sent with TC */
    uint64_t tcp_conns;  /* TCP connections accepted */
    uint64_t log_dropped;
};
void dns_fwd_stats(const struct awf_dns_fwd *fwd, struct dns_fwd_stats *out);

struct fwd_listener {
    struct awf_dns_fwd *fwd;
    uv_udp_t udp;
    uv_tcp_t tcp;
    struct sockaddr_storage bound;
    bool udp_init, tcp_init;
};

struct fwd_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    struct awf_dns_fwd *fwd;
    struct dns_link link;    /* in fwd->conns */
    struct dns_link pending; /* struct fwd_pending.link */
    struct sockaddr_storage peer;
    uint8_t *buf; /* frame assembly; allocated when a read comes, freed when emptied */
    size_t len;
    int n_pending;
    int handles; /* open handles: freed at 0 */
    bool closing, eof, reading;
    bool taking; /* in take_frames: an answer given synchronously must not re-enter it */
};

/* A query waiting on upstream. */
struct fwd_pending {
    struct dns_link link; /* fwd->udp_pending, or its connection's pending */
    struct awf_dns_fwd *fwd;
    struct fwd_conn *conn;  /* NULL: UDP */
    struct fwd_listener *l; /* UDP: the socket to answer from */
    struct sockaddr_storage peer;
    struct dns_raw *raw;
    struct dns_wire_query q;
    char host[AWF_DNS_WIRE_NAME_MAX];
};

struct awf_dns_fwd {
    uv_loop_t *loop;
    const struct fwd_up *up;   /* forwarder.c's, for fwd_net.c */
    struct awf_policy *policy; /* own reference */
    struct awf_dns *dns;
    bool own_dns;
    struct fwd_listener *listeners; /* owned array */
    size_t n_listeners;
    struct dns_fwd_cache cache;
    bool cache_ok;
    struct dns_fwd_log log;
    bool log_ok;
    struct dns_link udp_pending;
    struct dns_link conns;
    size_t n_conns;
    int deny_rcode;
    uint64_t idle_ms;
    uint32_t min_ttl_s, max_ttl_s, negative_ttl_s;
    struct dns_fwd_stats stats;
    int refs; /* what must finish before free: handles, connections, a log write */
    bool closing;
    uint8_t udp_buf[65536];
};

/* What fwd_net.c reports up to the decision (forwarder.c fills it in at create): the sockets
 * call nothing of forwarder.c by name, so the two halves are layers, not a call cycle
 * (callcycles_dns).
 *   packet: answers or starts answering one packet from peer (on listener l's UDP socket when
 *     c is NULL, else on TCP connection c). Returns 0, or AWF_E_BAD_REQUEST when it was dropped
 *     as malformed (a TCP connection is then closed by the caller).
 *   drop_pending: cancels the upstream query of every pending entry in list and frees them
 *     unanswered.
 *   release: drops one of f->refs; the last one, once destroyed, frees f. */
struct fwd_up {
    int (*packet)(struct awf_dns_fwd *f, struct fwd_listener *l, struct fwd_conn *c,
                  const struct sockaddr_storage *peer, const uint8_t *msg, size_t len);
    void (*drop_pending)(struct dns_link *list);
    void (*release)(struct awf_dns_fwd *f);
};

/* ---- fwd_net.c: the sockets ---- */

/* Encodes the answer and sends it to the client q came from (c NULL: UDP from l to peer).
 * Returns the records sent (0 when truncated or not sent). */
size_t dns_fwd_respond(struct awf_dns_fwd *f, struct fwd_listener *l, struct fwd_conn *c,
                       const struct sockaddr_storage *peer, const struct dns_wire_query *q,
                       int rcode, const struct dns_wire_rr *rr, size_t n, const uint8_t *pool,
                       uint32_t age_s);

/* A query of c's was answered: finishes the connection if the client is done, else reads on. */
void dns_fwd_conn_answered(struct fwd_conn *c);

/* Closes at once: queries in flight are dropped, answers not yet written may be lost. */
void dns_fwd_conn_close(struct fwd_conn *c);

/* Binds UDP and TCP for cfg and starts both; each initialised handle holds one of f->refs.
 * Returns 0 or a negative code with err saying why. */
int dns_fwd_listen(struct awf_dns_fwd *f, struct fwd_listener *l, const struct awf_listen *cfg,
                   char *err, size_t errlen);

/* Closes l's handles (their close callbacks release f). */
void dns_fwd_unlisten(struct fwd_listener *l);

#endif
