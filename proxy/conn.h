#ifndef AWF_PROXY_CONN_H
#define AWF_PROXY_CONN_H

/* Types shared inside proxy/ only: the proxy, its listeners, client connections and upstream
 * connections. Hot-path structs are visible here so they embed their libuv handles. */

#include <llhttp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/sockaddr.h"
#include "dns/dns.h"
#include "log/log.h"
#include "policy/policy.h"
#include "proxy/bufpool.h"
#include "proxy/conn-t.h"
#include "proxy/http.h"
#include "proxy/proxy.h"

/* Block size and write-queue watermarks, measured on loopback (2 cores, nginx upstream, 1 GiB
 * through the proxy): 16 KiB blocks ~1.1 GB/s, 64 KiB ~1.2 GB/s, 128 KiB ~2.3 GB/s, 256 KiB
 * ~0.9 GB/s. A side stops being read while the other side has more than AWF_WQ_HIGH bytes
 * queued and resumes at AWF_WQ_LOW, so a slow reader costs at most about HIGH + one block per
 * direction. Free blocks kept beyond AWF_BUF_MAX_FREE go back to malloc. */
#define AWF_BUF_BLOCK     (128 * 1024)
#define AWF_BUF_MAX_FREE  32
#define AWF_WQ_HIGH       (256 * 1024)
#define AWF_WQ_LOW        (64 * 1024)
#define AWF_POOL_MAX_IDLE 256
/* The kernel relay (splice.c): a tunnel moves to splice(2) once this many bytes have crossed,
 * a response body when at least this many are left (short ones stay on libuv: the switch costs
 * syscalls). Pipe capacity: proxy CPU per GiB relayed, 2 cores, medians of 3-6 (tunnel / HTTP
 * body): 64 KiB ~0.16 / 0.27 s, 256 KiB 0.125 / 0.185 s, 1 MiB 0.09 / 0.09 s (pipe-max-size,
 * the most an unprivileged process may ask); throughput did not differ beyond noise. Empty
 * pipes kept per loop for the next bulk burst: few, as each counts its full capacity against
 * the user's pipe budget (fs.pipe-user-pages-soft, 64 MiB by default) even when empty. */
#define AWF_SPLICE_AFTER  (256 * 1024)
#define AWF_PIPE_SIZE     (1024 * 1024)
#define AWF_PIPE_MAX_FREE 8
/* Hash buckets (powers of two): idle upstreams by address and port, and connected upstreams by
 * their local port (loop detection). Chains stay short at AWF_POOL_MAX_IDLE idle upstreams. */
#define AWF_POOL_BUCKETS  64
#define AWF_LOCAL_BUCKETS 256

/* The states of a client connection. Only awf_conn_set_state() changes them; it checks the
 * transition against a table (awf_conn_transition_ok). */
enum awf_conn_state {
    AWF_CS_SNIFF,       /* first bytes of a connection: decides the kind of traffic */
    AWF_CS_HEAD,        /* reading a request head (or idle between keep-alive requests) */
    AWF_CS_PEEK,        /* reading a TLS ClientHello (intercepted, or first bytes of a tunnel) */
    AWF_CS_RESOLVING,   /* waiting for the resolver */
    AWF_CS_CONNECTING,  /* dialling the upstream */
    AWF_CS_FORWARD,     /* an HTTP request and its response are crossing */
    AWF_CS_TUNNEL,      /* bytes both ways (CONNECT, WebSocket after 101) */
    AWF_CS_BUMP_CLIENT, /* ssl-bump: TLS handshake with the client (minted certificate) */
    AWF_CS_BUMP_UP,     /* ssl-bump: TLS handshake with the upstream (verified) */
    AWF_CS_FLUSH,       /* writing the last bytes to the client, then closing */
    AWF_CS_CLOSING,     /* handles closing; freed in the last close callback */
    AWF_CS_COUNT
};

bool awf_conn_transition_ok(enum awf_conn_state from, enum awf_conn_state to);
const char *awf_conn_state_name(enum awf_conn_state s);

/* Flags that cross states. */
enum {
    AWF_CF_REQ_DONE = 1u << 0,          /* the request message is fully read and passed on */
    AWF_CF_RESP_DONE = 1u << 1,         /* the final response is complete */
    AWF_CF_CLIENT_EOF = 1u << 2,        /* client sent FIN */
    AWF_CF_UP_EOF = 1u << 3,            /* upstream sent FIN */
    AWF_CF_LOGGED = 1u << 4,            /* this transaction's log line is written */
    AWF_CF_TXN = 1u << 5,               /* a transaction is open (something to log) */
    AWF_CF_KEEPALIVE = 1u << 6,         /* the client allows another request */
    AWF_CF_REUSED = 1u << 7,            /* the upstream came from the idle pool */
    AWF_CF_WEBSOCKET = 1u << 8,         /* a WebSocket upgrade is being forwarded */
    AWF_CF_HEAD_REQ = 1u << 9,          /* HEAD request: the response has no body */
    AWF_CF_CONNECT = 1u << 10,          /* CONNECT request */
    AWF_CF_ABORTED = 1u << 11,          /* a side dropped early: tag gets _ABORTED */
    AWF_CF_TUNNEL_CNT = 1u << 12,       /* counted in px->tunnels */
    AWF_CF_CLIENT_RD = 1u << 13,        /* reading the client */
    AWF_CF_CLIENT_SHUT = 1u << 14,      /* shutdown(write) sent to the client */
    AWF_CF_UP_SHUT = 1u << 15,          /* shutdown(write) sent to the upstream */
    AWF_CF_RESP_STARTED = 1u << 16,     /* response bytes were sent to the client */
    AWF_CF_REQ_BODY = 1u << 17,         /* the request has a body */
    AWF_CF_MSG_END = 1u << 18,          /* set by a parser callback at a message end */
    AWF_CF_UP_NOREUSE = 1u << 19,       /* the upstream may not go back to the pool */
    AWF_CF_OVERLOAD = 1u << 20,         /* accepted beyond max_connections: answered 503 */
    AWF_CF_CLIENT_SHUT_DONE = 1u << 21, /* the shutdown(write) to the client has completed */
    AWF_CF_UP_SHUT_DONE = 1u << 22,     /* the shutdown(write) to the upstream has completed */
    AWF_CF_NOPOOL = 1u << 23,           /* dial fresh: a pooled upstream just failed this request */
    AWF_CF_INTERCEPT = 1u << 24,        /* intercepted traffic (origin-form HTTP or raw TLS) */
    AWF_CF_PEEKED = 1u << 25,           /* the client's first tunnel bytes were checked */
    AWF_CF_ESTABLISHED = 1u << 26,      /* "200 Connection established" is sent */
    AWF_CF_NO_ANSWER = 1u << 27,        /* the client expects TLS: no HTTP answer, just close */
    AWF_CF_RESP_BODY = 1u << 28,        /* the final response head is sent: body bytes pass */
    AWF_CF_CLOSE_AFTER = 1u << 29,  /* the response head told the client the connection closes */
    AWF_CF_RESP_HDONE = 1u << 30,   /* set by a parser callback at a response head's end */
    AWF_CF_DECIDE_ADDRS = 1u << 31, /* resolving the target for the decision (squid.conf dst) */
};

struct awf_proxy;
struct awf_conn;
struct awf_splice;
struct awf_bump;
struct awf_tls_bump;
struct ssl_st;

struct awf_upstream {
    uv_tcp_t tcp;    /* dialled with a uv_connect_t of its own (upstream.c) */
    uv_timer_t idle; /* runs only while pooled */
    struct awf_proxy *px;
    struct awf_conn *conn;              /* attached connection, NULL while pooled or closing */
    struct awf_conn *notify;            /* told when tcp has closed (it counted the close) */
    struct awf_upstream *prev, *next;   /* px idle pool, least recently pooled last */
    struct awf_upstream *bprev, *bnext; /* px->idle_bucket[] chain, while pooled */
    struct awf_upstream *lprev, *lnext; /* px->by_local[] chain, while indexed */
    union awf_sockaddr addr;
    union awf_sockaddr local; /* our end, once connected: spots our own traffic coming back */
    unsigned handles;         /* open handles; freed at 0 */
    unsigned writes;          /* writes in flight: a pooled upstream has none */
    bool reading, pooled, closing, has_local, indexed;
    bool parent; /* a connection to the parent proxy: pooled apart from direct ones */
    /* ssl-bump: TLS towards the upstream (bump.c), owned; tls_name (owned) is the verified
     * name with the origin's port when not 443, part of the pool key (through a parent the
     * address is the parent's); tls_done once the handshake completed. */
    struct ssl_st *ssl;
    char *tls_name;
    bool tls_done;
};

/* The longest target name kept (DNS names are at most 253 characters). */
#define AWF_HOST_MAX 255

/* The upstream's response being parsed (forward.c), or the parent proxy's answer to our
 * CONNECT (parent.c). Only HTTP needs it: allocated by the first request that goes upstream,
 * kept for the next keep-alive requests, freed when a tunnel starts (its bytes are not parsed)
 * or with the connection. */
struct awf_resp {
    llhttp_t parser;
    char mime[64];  /* the final response's Content-Type, for the log (c->mime points here) */
    char hname[16]; /* the response field name being read, to spot Content-Type */
    uint8_t hname_len;
    bool hname_ct;
};

/* A client connection. What only some phases need lives apart: the response parser (struct
 * awf_resp) and the addresses to dial are freed when a tunnel starts, a tunnel's request head is
 * compacted to what it holds (its log line needs it), shutdown requests are allocated when sent.
 * An idle tunnel keeps little more than its two handles and what its log line needs. */
struct awf_conn {
    uv_tcp_t client;
    uv_timer_t timer;
    struct awf_proxy *px;
    struct awf_policy *policy; /* reference taken at accept: kept for the connection's life */
    const struct awf_settings *set;
    struct awf_conn *prev, *next; /* px->conns */
    struct awf_upstream *up;
    struct awf_dns_req *dns_req;
    enum awf_conn_state state;
    uint32_t flags;
    unsigned closes;           /* close callbacks still to come */
    unsigned requests;         /* transactions started on this connection */
    struct awf_splice *splice; /* the kernel relay, while bulk flows (splice.c); owned */
    struct awf_bump *bump;     /* ssl-bump: the client's TLS and the TLS name (bump.c); owned */
    union awf_sockaddr peer, local, server;
    bool has_server;
    /* splice.c: bulk flows (a tunnel, or a response body) but writes are in flight (wait),
     * or they are done and the switch runs from the timer in the next loop turn, with reading
     * stopped meanwhile (due). */
    bool splice_wait, splice_due;
    bool heard; /* the client sent at least one byte (a health probe sends none) */
    llhttp_t req;
    struct awf_resp *resp;  /* owned; NULL until a request goes upstream, and in a tunnel */
    const char *parse_base; /* start of the bytes being parsed (obs-fold check) */
    char parse_prev;        /* the byte before them */
    int parse_err;          /* our error from a parser callback */
    struct awf_http_head head;
    struct awf_target target;
    char *host; /* the target's name, NUL-terminated, once decided; owned; NULL or "" before */
    uint16_t host_cap;             /* bytes at host */
    struct awf_listener *listener; /* borrowed: listeners outlive connections */
    struct awf_buf *pend;  /* client bytes read and not yet handled; reading stops meanwhile */
    struct awf_buf *hello; /* client bytes held while peeking at a ClientHello */
    char *sni_hp;          /* "sni:port" of intercepted TLS, for the log; owned */
    union awf_sockaddr orig_dst; /* intercepted: where the client was headed (intercept.c) */
    bool orig_looked, has_orig_dst;
    /* Checked addresses to dial; owned, kept for the next request, freed once a tunnel
     * starts (nothing is dialled again then). */
    union awf_sockaddr *addrs;
    size_t n_addrs, next_addr, cap_addrs;
    uint64_t timer_due; /* when the armed timer fires (loop ms); it re-arms if not yet due */
    bool timer_armed;
    struct awf_buf *rhead; /* a response head being collected, before it is rewritten; owned */
    const char *why;       /* why the transaction was denied (static text), for debugging */
    int last_err;
    unsigned client_writes; /* uv writes to the client in flight */
    /* per transaction */
    int64_t start_us;
    uint64_t last_active, born, state_since; /* loop time, ms */
    uint64_t head_bytes, bytes_in, bytes_out;
    int status, upstream_status;
    bool via_parent;  /* this transaction goes through settings.parent (parent.c) */
    bool parent_wait; /* our CONNECT is sent to the parent: waiting for its answer */
    enum awf_tag tag;
    enum awf_hier hier;
    const char *log_url, *log_method;
    /* The response's Content-Type for the log: static text for our own answers, or
     * resp->mime while a response is forwarded; NULL or empty: none. */
    const char *mime;
};

/* The counts limits.max_connections and limits.max_tunnels apply to. Process-wide: the proxies
 * of several loops (threads) share one (awf_proxy_share_limits), so N loops do not allow N times
 * the limit. Freed with the last proxy using it. */
struct awf_shared_counts {
    atomic_uint refs;
    atomic_ulong conns, tunnels;
};

struct awf_listener {
    uv_tcp_t tcp;
    struct awf_proxy *px;
    struct sockaddr_storage addr; /* bound */
    uint16_t intercept_port;      /* the port intercepted traffic here stands for; 0: unknown */
    bool open;
};

struct awf_proxy {
    uv_loop_t *loop;
    struct awf_policy *policy;
    struct awf_log *log;
    struct awf_dns *dns;
    struct awf_bufpool bufs;
    struct awf_listener *listeners;
    size_t n_listeners;
    struct sockaddr_storage *local_addrs; /* this host's addresses, for loop detection */
    size_t n_local_addrs;
    struct awf_conn *conns;
    struct awf_upstream *idle_head, *idle_tail;
    size_t n_idle;
    uint64_t accepted, active, tunnels; /* this proxy's (stats) */
    struct awf_proxy_counters *ctr;     /* own_ctr or the creator's (/metrics) */
    struct awf_proxy_counters *own_ctr; /* owned; NULL when the creator gave counters */
    struct awf_shared_counts *counts;   /* the process's (limits); owned by reference */
    size_t live;                        /* conns, upstreams, listeners and timers not yet closed */
    struct awf_upstream *idle_bucket[AWF_POOL_BUCKETS];
    struct awf_upstream *by_local[AWF_LOCAL_BUCKETS];
    uv_timer_t drain;
    bool shutting_down, done_called, draining;
    bool debug;               /* AWF_PROXY_DEBUG set: one stderr line per denial, saying why */
    bool no_splice;           /* AWF_PROXY_NO_SPLICE set: tunnels stay on libuv reads and writes */
    struct awf_tls_bump *tls; /* ssl-bump's CA and contexts, process-wide; borrowed; NULL: off */
    int pipe_free[AWF_PIPE_MAX_FREE][2]; /* empty pipes for splice.c */
    size_t n_pipe_free;
    void (*done)(void *arg);
    void *done_arg;
};

/* metrics.c */
/* Counts c's ending transaction in px->ctr. True if it is a health probe (a connection from a
 * loopback address that the client closed before sending a byte): counted as such and not
 * logged, as AWF's squid.conf leaves them out (`!healthcheck_localhost`). */
bool awf_metrics_txn(struct awf_conn *c, enum awf_tag tag);
bool awf_proxy_is_loopback(const struct sockaddr *sa);

/* conn.c */
void awf_conn_accept(struct awf_proxy *px, struct awf_listener *l);
void awf_conn_set_state(struct awf_conn *c, enum awf_conn_state to);
/* Ends the connection: logs the open transaction once, closes every handle. */
void awf_conn_close(struct awf_conn *c);
/* Makes sure the timer fires by the current deadline. Lazy: a timer already due earlier is left
 * alone (its callback re-arms for the rest), so the hot path rarely touches the timer heap. */
void awf_conn_arm_timer(struct awf_conn *c);
/* When the current state's timeout (or the lifetime) is due, in loop ms. Pure: unit-tested. */
uint64_t awf_conn_deadline(const struct awf_conn *c);
/* Sends "200 Connection established" to the client (once). Returns 0 or a negative code. */
int awf_conn_send_established(struct awf_conn *c);
/* Reserves a slot under limits.max_tunnels (CONNECT, intercepted TLS, WebSocket) at the
 * decision; false when none is left. Released when the connection closes or, for a WebSocket
 * upgrade that was refused, when the transaction ends. */
bool awf_conn_tunnel_reserve(struct awf_conn *c);
void awf_conn_tunnel_release(struct awf_conn *c);
/* Writes b to the client or the upstream; takes ownership of b. Returns 0 or a negative code
 * (b is freed then). */
int awf_conn_write(struct awf_conn *c, uv_stream_t *dst, struct awf_buf *b);
/* The same below TLS: b goes to the socket as it is (bump.c's ciphertext). */
int awf_conn_write_raw(struct awf_conn *c, uv_stream_t *dst, struct awf_buf *b);
/* Client bytes (plain text) for the current state's handler; takes ownership of b. */
void awf_conn_client_input(struct awf_conn *c, struct awf_buf *b);
/* The client's end of stream (UV_EOF) or a read error. */
void awf_conn_client_eof(struct awf_conn *c, int status);
void awf_conn_sync_reading(struct awf_conn *c);
/* Appends b to *dst (taking ownership of b): b itself when *dst is NULL, else its bytes,
 * moving to a larger block when *dst is full. Returns 0 or -ENOMEM (b is freed either way). */
int awf_conn_append(struct awf_conn *c, struct awf_buf **dst, struct awf_buf *b);
void awf_conn_touch(struct awf_conn *c);
/* Writes the transaction's log line once; with px->debug, also why it was denied. */
void awf_conn_log(struct awf_conn *c);
/* Squid's spelling of a tag ("TCP_MISS"; AWF_TAG_UNSET: "NONE_NONE"), and the form it takes when
 * a side dropped early ("TCP_MISS_ABORTED"). */
const char *awf_tag_name(enum awf_tag t);
enum awf_tag awf_tag_aborted(enum awf_tag t);
const char *awf_hier_name(enum awf_hier h);
/* A handle the connection counted has closed (frees it after the last one). */
void awf_conn_handle_closed(struct awf_conn *c);
/* The transaction is over and the client may send another request. */
void awf_conn_next_request(struct awf_conn *c);
/* Sends FIN to the client once queued writes are out, then closes (state FLUSH). */
void awf_conn_flush_close(struct awf_conn *c);
/* Sends FIN on s (the client or the upstream) after its queued writes. The request is
 * allocated here and freed by its callback, which libuv always runs (UV_ECANCELED when s closes
 * first, before s's close callback). c is still there then only because every close of s is
 * counted in c->closes: the client's by awf_conn_close, an attached upstream's through
 * up->notify in awf_upstream_release, so never close an attached upstream any other way.
 * Returns 0 or a negative code. */
int awf_conn_shutdown(struct awf_conn *c, uv_stream_t *s);
/* Wall-clock time in microseconds, for log records. */
int64_t awf_now_us(void);

/* request.c */
void awf_conn_req_parser_init(struct awf_conn *c);
/* Client bytes while a request head is being read (SNIFF, HEAD); takes ownership of b. */
void awf_request_input(struct awf_conn *c, struct awf_buf *b);
/* Resolves c->host (state RESOLVING), checks every address, then dials or peeks. */
void awf_request_resolve(struct awf_conn *c);
/* What a forwarded request's head says for later (HEAD, a body, a WebSocket upgrade when ws,
 * keep-alive), into c->flags: plain HTTP and requests inside bumped TLS alike. */
void awf_request_set_flags(struct awf_conn *c, bool ws);
/* After an allow, with rq as decided: the parent choice, and the slot of a tunnel (CONNECT or a
 * WebSocket upgrade). Returns false when c was answered. */
bool awf_request_admit(struct awf_conn *c, const struct awf_policy_req *rq);
/* Runs parser p over d[0, n); *used is how many bytes belong to what was parsed (up to a pause
 * at a head or message end). Parser callbacks may set c->parse_err. */
llhttp_errno_t awf_conn_parse(struct awf_conn *c, llhttp_t *p, const char *d, size_t n,
                              size_t *used);
/* After the decision the request parser only frames the body: trailer fields of a chunked body
 * are counted against limits.header_bytes, never stored (the head's buffer must not move while
 * c->target points into it). */
void awf_request_body_only(struct awf_conn *c);
/* The policy's request for c's current transaction (host, port, traffic, client, method), for
 * awf_policy_decide_req, awf_policy_log_wanted and friends; rq borrows c's strings. method NULL:
 * c->log_method. */
void awf_conn_policy_req(const struct awf_conn *c, const char *method, struct awf_policy_req *rq);
/* Decides c's transaction (method NULL: c->log_method) with the URL url_regex ACLs match when
 * the policy has any, and with the target's addresses when addrs_known (addrs NULL: the lookup
 * failed). Returns 0, or -ENOMEM (no verdict). */
int awf_request_decide(struct awf_conn *c, const char *method, const struct awf_dns_addrs *addrs,
                       bool addrs_known, struct awf_verdict *v);
/* What follows an allow of an intercepted ClientHello (peek.c): parent choice, ECH, tunnel slot.
 * Returns true to go on resolving, false when c was answered or closed. */
bool awf_peek_allowed(struct awf_conn *c, const struct awf_policy_req *rq);
/* c->host := a copy of p[0, n). Returns 0, AWF_E_BAD_REQUEST (over AWF_HOST_MAX) or -ENOMEM. */
int awf_conn_set_host(struct awf_conn *c, const char *p, size_t n);

/* answer.c: sends answer a (a row of AWF_ANSWERS), logs the transaction and closes after
 * writing. why is a short reason shown in the body (static text). */
void awf_answer(struct awf_conn *c, enum awf_ans a, const char *why);
/* The same for an answer whose error page carries an errno (AWF_ANS_ERRNO): err, positive. */
void awf_answer_errno(struct awf_conn *c, enum awf_ans a, int err, const char *why);
/* Row a of AWF_ANSWERS; NULL when there is none. */
const struct awf_answer_def *awf_answer_def(enum awf_ans a);

/* upstream.c */
void awf_upstream_dial(struct awf_conn *c);
/* The upstream is connected (or taken from the pool): via a parent, a tunnel first asks it for
 * one (parent.c); then awf_upstream_use. */
void awf_upstream_ready(struct awf_conn *c);
/* Starts what the upstream is for: the ClientHello check, a tunnel, or forwarding. */
void awf_upstream_use(struct awf_conn *c);
void awf_upstream_release(struct awf_conn *c, bool reuse);
void awf_upstream_close(struct awf_upstream *up);
/* Takes a connected upstream into (or out of) the local-port index awf_upstream_is_ours uses. */
void awf_upstream_index(struct awf_upstream *up);
void awf_upstream_pool_drain(struct awf_proxy *px);
/* An idle upstream to sa, to the parent proxy (parent) or direct (!parent); NULL if none. */
/* tls_name: a TLS upstream verified for that name[:port] (ssl-bump), NULL: a plain one. */
struct awf_upstream *awf_upstream_pool_take(struct awf_proxy *px, const union awf_sockaddr *sa,
                                            bool parent, const char *tls_name);
void awf_upstream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void awf_upstream_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
/* Upstream bytes (plain text) for the current state's handler; takes ownership of b. */
void awf_upstream_input(struct awf_conn *c, struct awf_buf *b);
/* The upstream's end of stream (UV_EOF) or a read error, for the current state. */
void awf_upstream_eof(struct awf_conn *c, int status);
void awf_upstream_write_cb(uv_write_t *req, int status);
/* Whether sa (address and port) is the local end of one of this proxy's connected upstreams: a
 * connection from there is our own traffic redirected back to us. A hash lookup by local port.
 * Only this loop's upstreams are known: with several loops, each sees its own. */
bool awf_upstream_is_ours(const struct awf_proxy *px, const union awf_sockaddr *sa);

/* forward.c: HTTP request body and response relaying */
/* Makes c->resp ready for a response parsed with settings (allocated on first use; parent.c
 * parses the parent's answer with it too). Returns 0 or -ENOMEM. */
int awf_conn_resp_init(struct awf_conn *c, const llhttp_settings_t *settings);
void awf_forward_start(struct awf_conn *c);
void awf_forward_client_input(struct awf_conn *c, struct awf_buf *b);
void awf_forward_up_input(struct awf_conn *c, struct awf_buf *b);
void awf_forward_client_eof(struct awf_conn *c, int status);
void awf_forward_up_eof(struct awf_conn *c, int status);
void awf_forward_timeout(struct awf_conn *c);
/* From the timer once writes are done (splice_due): moves the rest of the response body to
 * the kernel relay if it still qualifies. Returns 0 or a negative code as awf_splice_body. */
int awf_forward_splice(struct awf_conn *c);
/* The body the kernel relayed has ended: fin, the upstream closed (the end of a body delimited
 * by the close, or a short one); else exactly its Content-Length bytes passed. The message ends
 * as if llhttp had parsed them. May free c. */
void awf_forward_body_spliced(struct awf_conn *c, bool fin);

/* peek.c: the ClientHello check (SNI inside CONNECT tunnels, intercepted TLS) */
/* A CONNECT tunnel is dialled: answers 200 and holds client bytes until the ClientHello (or
 * non-TLS first bytes) is checked. */
void awf_peek_start_connect(struct awf_conn *c);
void awf_peek_start_intercept(struct awf_conn *c, struct awf_buf *b);
void awf_peek_input(struct awf_conn *c, struct awf_buf *b);
/* Denies TLS traffic (a ClientHello that fails the check, or intercepted TLS whose target is
 * denied): with tls.alert_on_deny an unrecognized_name alert goes out first. Logs TCP_DENIED
 * and closes: may free c. */
void awf_peek_deny(struct awf_conn *c);

/* parent.c: tunnels through the parent proxy (settings.parent) */
/* Whether the allowed transaction goes through the parent: sets c->via_parent. */
void awf_parent_choose(struct awf_conn *c, const struct awf_policy_req *rq);
/* Connected to the parent for a tunnel: sends "CONNECT host:port" and waits (parent_wait). On
 * its 2xx, awf_upstream_use; on anything else, a 502 answer (the parent's status logged as
 * %<Hs). May free c. */
void awf_parent_connect(struct awf_conn *c);
/* Bytes and end of the parent's answer while parent_wait; take ownership of b. May free c. */
void awf_parent_input(struct awf_conn *c, struct awf_buf *b);
void awf_parent_eof(struct awf_conn *c, int status);

/* intercept.c: where intercepted traffic was headed */
/* The port intercepted traffic was headed to: the original destination's when the NAT happened
 * in this namespace (SO_ORIGINAL_DST, looked up once and kept in c->orig_dst), else the
 * listener's intercept_port, else fallback. */
uint16_t awf_conn_intercept_port(struct awf_conn *c, uint16_t fallback);
/* Whether an intercepted connection is one of the proxy's own upstream connections that a
 * REDIRECT in its own namespace sent back to it (a loop): NAT'd here, from a local address, from
 * the local end of one of our upstream connections. */
bool awf_intercept_is_loop(struct awf_conn *c);
/* Pure parts, unit-tested: whether conntrack's original destination differs from the socket's
 * own address (it was NAT'd), and the port chosen from the original destination (NULL: none),
 * the listener's intercept_port (0: none) and the fallback, in that order. */
bool awf_intercept_is_nat(const struct sockaddr *orig, const struct sockaddr *local);
uint16_t awf_intercept_choose_port(const struct sockaddr *orig, uint16_t listener_port,
                                   uint16_t fallback);

/* tunnel.c */
/* Frees what only HTTP and dialling needed (c->resp, c->addrs), then relays. */
void awf_tunnel_start(struct awf_conn *c);
void awf_tunnel_input(struct awf_conn *c, bool from_client, struct awf_buf *b);
void awf_tunnel_eof(struct awf_conn *c, bool from_client, int status);

/* splice.c: the kernel relay of established tunnels and of response bodies */
/* From a tunnel's read callback, with the block b just read (from_client: from the client):
 * moves the tunnel to splice(2) and takes b (it is written first; NULL: none). Returns 0 then;
 * else b is still the caller's and the tunnel stays on libuv: -EAGAIN while writes are in
 * flight (try again once they are done), another negative code for good. */
int awf_splice_start(struct awf_conn *c, bool from_client, struct awf_buf *b);
/* awf_splice_body's left for a body that ends when the upstream closes. */
#define AWF_SPLICE_TO_EOF UINT64_MAX
/* From forward.c once the final response head is sent and the request is complete: moves the
 * next left body bytes (AWF_SPLICE_TO_EOF: up to the upstream's FIN) upstream -> client, b
 * (already counted in bytes_out; NULL: none) written first, then calls
 * awf_forward_body_spliced. Returns 0 then (b taken; c may be closed); else b is still the
 * caller's and the body stays on user space: -EAGAIN while writes are in flight (try again
 * once they are done), another negative code for now (pipe2 failing, a busy watcher). */
int awf_splice_body(struct awf_conn *c, struct awf_buf *b, uint64_t left);
bool awf_splice_active(const struct awf_conn *c);
/* Closes the poll handles (counted in c->closes) and gives the pipes back. */
void awf_splice_close(struct awf_conn *c);
void awf_splice_free(struct awf_conn *c);
/* Closes the loop's free pipes. */
void awf_splice_pool_cleanup(struct awf_proxy *px);

/* bump.c: ssl-bump */
/* Whether TLS the policy allowed is bumped or terminated rather than spliced (ssl-bump on and
 * the policy's ssl_bump rules say so). */
bool awf_bump_wanted(struct awf_conn *c);
/* After awf_bump_wanted: bumps (awf_bump_start) or terminates (a TLS alert, TCP_DENIED). */
void awf_bump_take(struct awf_conn *c);
/* Answers the client's TLS (its ClientHello in c->hello) with a leaf minted for c->host
 * (state BUMP_CLIENT); then requests are read inside (HEAD). May close c. */
void awf_bump_start(struct awf_conn *c);
/* Ciphertext from the client of a bumped connection; takes ownership of b. May close c. */
void awf_bump_client_read(struct awf_conn *c, struct awf_buf *b);
/* Decides a request read inside bumped TLS (request.c's decide for bumped connections). */
void awf_bump_decide(struct awf_conn *c);
/* The upstream is connected for a bumped request: TLS to it (state BUMP_UP), verified, then
 * awf_upstream_use again. A failure answers 503. */
void awf_bump_up_start(struct awf_conn *c);
/* Ciphertext from a TLS upstream; takes ownership of b. May close c. */
void awf_bump_up_read(struct awf_conn *c, struct awf_buf *b);
/* Whether writes to s go through TLS (the bumped client after its handshake, a TLS upstream
 * after its handshake), and awf_conn_write for those: b is encrypted. */
bool awf_bump_is_tls(struct awf_conn *c, uv_stream_t *s);
int awf_bump_write(struct awf_conn *c, uv_stream_t *dst, struct awf_buf *b);
/* Sends TLS close_notify on s if it speaks TLS (before its TCP shutdown). */
void awf_bump_close_notify(struct awf_conn *c, uv_stream_t *s);
void awf_bump_free(struct awf_conn *c);
/* The TLS name[:port] requests of a bumped connection go to (the pool key), NULL otherwise. */
const char *awf_conn_tls_name(const struct awf_conn *c);

/* proxy.c */
void awf_proxy_object_gone(struct awf_proxy *px);
bool awf_proxy_is_self(const struct awf_proxy *px, const struct sockaddr *sa);
/* Whether sa's address (port ignored) is loopback or one of this host's addresses. */
bool awf_proxy_is_local(const struct awf_proxy *px, const struct sockaddr *sa);

#endif
