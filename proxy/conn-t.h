#ifndef AWF_PROXY_CONN_T_H
#define AWF_PROXY_CONN_T_H

/* Types shared inside proxy/ only (HAProxy's foo-t.h / foo.h split): the proxy, its listeners,
 * client connections and upstream connections, their states and flags, what a connection logs
 * and answers, and the hooks through which a file reaches one above it without naming it
 * (struct awf_proxy's up_hooks, phases, tls_io, object_gone, splice_close; proxy/README:
 * Layers). Hot-path structs are visible here so they embed their libuv handles. The functions
 * are in proxy/conn.h. */

#include <errno.h>
#include <llhttp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/host.h"
#include "common/sockaddr.h"
#include "dns/dns.h"
#include "log/log.h"
#include "policy/policy.h"
#include "proxy/bufpool.h"
#include "proxy/http.h"
#include "proxy/proxy.h"

/* Squid's result codes (%Ss) the proxy logs, each with the form it takes when a side dropped
 * early (AWF_CF_ABORTED). A tag is an enum value, so a mistyped one does not compile, and its
 * name is spelt once, here. */
#define AWF_TAGS(X)                                                                                \
    X(NONE_NONE, NONE_NONE)                                                                        \
    X(TCP_MISS, TCP_MISS_ABORTED)                                                                  \
    X(TCP_MISS_ABORTED, TCP_MISS_ABORTED)                                                          \
    X(TCP_TUNNEL, TCP_TUNNEL_ABORTED)                                                              \
    X(TCP_TUNNEL_ABORTED, TCP_TUNNEL_ABORTED)                                                      \
    X(TCP_DENIED, TCP_DENIED)                                                                      \
    X(TCP_DENIED_OPAQUE, TCP_DENIED_OPAQUE)

enum proxy_tag {
    AWF_TAG_UNSET, /* nothing decided yet: logged NONE_NONE error:transaction-end-before-headers */
#define AWF_X(name, aborted) AWF_TAG_##name,
    AWF_TAGS(AWF_X)
#undef AWF_X
        AWF_TAG_COUNT
};

/* Squid's hierarchy codes (%Sh): how the upstream was reached. */
#define AWF_HIERS(X)                                                                               \
    X(NONE, HIER_NONE)                                                                             \
    X(DIRECT, HIER_DIRECT)                                                                         \
    X(ORIGINAL_DST, ORIGINAL_DST)                                                                  \
    X(PARENT, FIRSTUP_PARENT)

enum proxy_hier {
#define AWF_X(name, squid) AWF_HIER_##name,
    AWF_HIERS(AWF_X)
#undef AWF_X
        AWF_HIER_COUNT
};

/* The number after an answer's error page is the caller's errno (proxy_answer_errno). */
#define AWF_ANS_ERRNO (-1)

/* The proxy's own answers: the status, Squid's error page named in X-Squid-Error with the
 * number after it, the log tag, and one extra header line (NULL: none). proxy/README's Answers
 * table lists the same rows; tests/unit/proxy/test_answer.c checks one against the other. */
#define AWF_ANSWERS(X)                                                                             \
    X(DENIED, 403, ERR_ACCESS_DENIED, 0, TCP_DENIED, NULL)                                         \
    X(DNS_FAIL, 503, ERR_DNS_FAIL, 0, TCP_MISS, NULL)                                              \
    X(CONNECT_FAIL, 503, ERR_CONNECT_FAIL, AWF_ANS_ERRNO, TCP_MISS, NULL)                          \
    X(CONNECT_NO_TUNNEL, 503, ERR_CONNECT_FAIL, AWF_ANS_ERRNO, NONE_NONE, NULL)                    \
    X(NOMEM, 503, ERR_CONNECT_FAIL, ENOMEM, TCP_MISS, NULL)                                        \
    X(PARENT_FAIL, 502, ERR_CONNECT_FAIL, AWF_ANS_ERRNO, TCP_MISS, NULL)                           \
    X(TIMEOUT, 504, ERR_READ_TIMEOUT, 0, TCP_MISS_ABORTED, NULL)                                   \
    X(UP_CLOSED, 502, ERR_ZERO_SIZE_OBJECT, 0, TCP_MISS_ABORTED, NULL)                             \
    X(UP_RESET, 502, ERR_READ_ERROR, AWF_ANS_ERRNO, TCP_MISS_ABORTED, NULL)                        \
    X(UP_WRITE_FAIL, 502, ERR_READ_ERROR, AWF_ANS_ERRNO, TCP_MISS, NULL)                           \
    X(INVALID_RESP, 502, ERR_INVALID_RESP, 0, TCP_MISS_ABORTED, NULL)                              \
    X(INVALID_REQ, 400, ERR_INVALID_REQ, 0, NONE_NONE, NULL)                                       \
    X(PROTOCOL_UNKNOWN, 400, ERR_PROTOCOL_UNKNOWN, 0, NONE_NONE, NULL)                             \
    X(UNSUP_VERSION, 505, ERR_UNSUP_HTTPVERSION, 0, NONE_NONE, NULL)                               \
    X(INVALID_BODY, 400, ERR_INVALID_REQ, 0, TCP_MISS_ABORTED, NULL)                               \
    X(TOO_BIG, 431, ERR_TOO_BIG, 0, NONE_NONE, NULL)                                               \
    X(OVERLOAD, 503, ERR_CANNOT_FORWARD, 0, NONE_NONE, "Retry-After: 1")                           \
    X(TLS_FAIL, 503, ERR_SECURE_CONNECT_FAIL, 0, TCP_MISS, NULL)

enum proxy_ans {
#define AWF_X(name, status, page, arg, tag, hdr) AWF_ANS_##name,
    AWF_ANSWERS(AWF_X)
#undef AWF_X
        AWF_ANS_COUNT
};

/* One row of AWF_ANSWERS. */
struct proxy_answer_def {
    int status;
    const char *page; /* Squid's error page, e.g. "ERR_ACCESS_DENIED" */
    int arg;          /* the number after it, or AWF_ANS_ERRNO */
    enum proxy_tag tag;
    const char *header; /* one extra header line without CRLF, or NULL */
};

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

/* The connection's state machine on one screen. Per state: its name; what handles client bytes,
 * the client's EOF (or a read error), upstream bytes, the upstream's EOF (or a read error), and
 * its deadline passing; which sides are read (AWF_RD_*); which deadline runs (AWF_DL_*, see
 * conn.c:deadline); and the states it may go to. Only proxy_conn_set_state() (conn.c) changes a
 * state, checking this last column (state.c). The handlers are reached only through px->phases
 * (dispatch.c:proxy_conn_phases): by the event entry points (conn.c: client reads, EOF and the
 * timer; dispatch.c: the upstream's events) and by a handler that changed the state and hands
 * bytes on to the new one (conn.h: proxy_conn_client_input, proxy_conn_up_input, ...).
 * Names without a prefix are dispatch.c's handlers: hold (client bytes wait in c->pend), drop,
 * eof_abort / timeout_abort (close, logged _ABORTED once decided), eof_close / timeout_close,
 * eof_wait (a FIN waits for the answer), eof_flush, ignore_eof / ignore_timeout (CLOSING),
 * dial_timeout (the next address, else 504) and parent_answer (the parent's answer to our
 * CONNECT, which goes on as a direct connection would once granted).
 *
 * The paths: SNIFF (first bytes) -> HEAD (a request head) or PEEK (intercepted TLS, then
 * RESOLVING once its SNI is allowed); HEAD -> RESOLVING -> CONNECTING -> FORWARD (HTTP; back to
 * HEAD for keep-alive, to CONNECTING when a pooled upstream failed before answering, to TUNNEL
 * after 101) or TUNNEL (CONNECT) or PEEK (a CONNECT whose first bytes are checked before any of
 * them goes upstream; TUNNEL once they pass). A failed connect dials the next address
 * (CONNECTING again). Through a parent proxy a tunnel waits in PARENT_WAIT for its answer to our
 * CONNECT, then goes on as from CONNECTING (a timeout dials the next address: back to
 * CONNECTING). ssl-bump: HEAD -> PEEK (the ClientHello decides before anything is dialled) ->
 * BUMP_CLIENT (the client's handshake; from RESOLVING when intercepted TLS waited for its
 * addresses) -> HEAD for the requests inside; CONNECTING (or PARENT_WAIT) -> BUMP_UP (the
 * upstream's handshake) -> FORWARD. A state before a tunnel, and the forward family until a body
 * is the kernel's (BODY_SPLICE_DUE, BODY_SPLICED), may answer (FLUSH); every state may close.
 *
 * The kernel relay (splice.c) takes over a tunnel once AWF_SPLICE_AFTER bytes have crossed, and
 * a large response body once its head is sent: TUNNEL -> TUNNEL_SPLICED, FORWARD ->
 * BODY_SPLICED (poll handles own both sockets; nothing is read through libuv, and a body goes
 * back to FORWARD when it ends, a tunnel that finds no pipe back to TUNNEL). libuv allows one
 * watcher per socket, so while writes are in flight the hand-over waits (*_SPLICE_WAIT, which
 * relays as its family does); once they are done (conn.c:proxy_conn_sync_reading sees the last
 * write end) it is due (*_SPLICE_DUE: reads nothing so no write starts, and its deadline is now,
 * as libuv drops a watcher's POLLOUT only after the write callback returns): its timeout is the
 * switch (tunnel.c:proxy_tunnel_splice_due, forward.c:proxy_forward_splice_due), back to
 * waiting if writes started again, or to the family's first state if the relay is not to be
 * had. proxy_conn_in_forward/in_tunnel (conn.h) say whether a state is of the forward (FORWARD,
 * BODY_*) or the tunnel family. */
// clang-format off
#define AWF_STATES(X) \
/*  state               name                  client data                 client EOF                upstream data           upstream EOF          timeout                   reads                                                   deadline        may go to */ \
  X(SNIFF,              "sniff",              proxy_request_input,        eof_abort,                drop,                   eof_close,            timeout_abort,            AWF_RD_CLIENT | AWF_RD_HOLD,                            AWF_DL_HEAD,    T(HEAD) | T(PEEK) | T(FLUSH) | T(CLOSING)) \
  X(HEAD,               "head",               proxy_request_input,        eof_abort,                drop,                   eof_close,            timeout_abort,            AWF_RD_CLIENT | AWF_RD_HOLD,                            AWF_DL_HEAD,    T(RESOLVING) | T(PEEK) | T(FLUSH) | T(CLOSING)) \
  X(PEEK,               "peek",               proxy_peek_input,           proxy_peek_client_eof,    proxy_tunnel_up_input,  proxy_tunnel_up_eof,  timeout_abort,            AWF_RD_CLIENT | AWF_RD_UP,                              AWF_DL_PEEK,    T(RESOLVING) | T(TUNNEL) | T(BUMP_CLIENT) | T(FLUSH) | T(CLOSING)) \
  X(RESOLVING,          "resolving",          hold,                       eof_wait,                 drop,                   eof_close,            proxy_request_timeout,    AWF_RD_CLIENT | AWF_RD_HOLD,                            AWF_DL_DNS,     T(CONNECTING) | T(BUMP_CLIENT) | T(FLUSH) | T(CLOSING)) \
  X(CONNECTING,         "connecting",         hold,                       eof_wait,                 drop,                   eof_close,            dial_timeout,             AWF_RD_CLIENT | AWF_RD_HOLD,                            AWF_DL_CONNECT, T(CONNECTING) | T(PARENT_WAIT) | T(PEEK) | T(FORWARD) | T(TUNNEL) | T(BUMP_UP) | T(FLUSH) | T(CLOSING)) \
  X(PARENT_WAIT,        "parent-wait",        hold,                       eof_wait,                 parent_answer,          proxy_parent_eof,     dial_timeout,             AWF_RD_CLIENT | AWF_RD_HOLD | AWF_RD_UP,                AWF_DL_CONNECT, T(CONNECTING) | T(PEEK) | T(TUNNEL) | T(BUMP_UP) | T(FLUSH) | T(CLOSING)) \
  X(FORWARD,            "forward",            proxy_forward_client_input, proxy_forward_client_eof, proxy_forward_up_input, proxy_forward_up_eof, proxy_forward_timeout,    AWF_RD_CLIENT | AWF_RD_HOLD | AWF_RD_UP | AWF_RD_WFAIL, AWF_DL_IDLE,    T(HEAD) | T(CONNECTING) | T(TUNNEL) | T(BODY_SPLICE_WAIT) | T(BODY_SPLICED) | T(FLUSH) | T(CLOSING)) \
  X(BODY_SPLICE_WAIT,   "body-splice-wait",   proxy_forward_client_input, proxy_forward_client_eof, proxy_forward_up_input, proxy_forward_up_eof, proxy_forward_timeout,    AWF_RD_CLIENT | AWF_RD_HOLD | AWF_RD_UP | AWF_RD_WFAIL, AWF_DL_IDLE,    T(HEAD) | T(CONNECTING) | T(TUNNEL) | T(BODY_SPLICE_DUE) | T(FLUSH) | T(CLOSING)) \
  X(BODY_SPLICE_DUE,    "body-splice-due",    proxy_forward_client_input, proxy_forward_client_eof, proxy_forward_up_input, proxy_forward_up_eof, proxy_forward_splice_due, 0,                                                      AWF_DL_NOW,     T(FORWARD) | T(BODY_SPLICE_WAIT) | T(BODY_SPLICED) | T(CLOSING)) \
  X(BODY_SPLICED,       "body-spliced",       proxy_forward_client_input, proxy_forward_client_eof, proxy_forward_up_input, proxy_forward_up_eof, proxy_forward_timeout,    0,                                                      AWF_DL_IDLE,    T(FORWARD) | T(CLOSING)) \
  X(TUNNEL,             "tunnel",             proxy_tunnel_client_input,  proxy_tunnel_client_eof,  proxy_tunnel_up_input,  proxy_tunnel_up_eof,  timeout_abort,            AWF_RD_CLIENT | AWF_RD_HOLD | AWF_RD_UP | AWF_RD_WFAIL, AWF_DL_IDLE,    T(TUNNEL_SPLICE_WAIT) | T(TUNNEL_SPLICED) | T(CLOSING)) \
  X(TUNNEL_SPLICE_WAIT, "tunnel-splice-wait", proxy_tunnel_client_input,  proxy_tunnel_client_eof,  proxy_tunnel_up_input,  proxy_tunnel_up_eof,  timeout_abort,            AWF_RD_CLIENT | AWF_RD_HOLD | AWF_RD_UP | AWF_RD_WFAIL, AWF_DL_IDLE,    T(TUNNEL_SPLICE_DUE) | T(CLOSING)) \
  X(TUNNEL_SPLICE_DUE,  "tunnel-splice-due",  proxy_tunnel_client_input,  proxy_tunnel_client_eof,  proxy_tunnel_up_input,  proxy_tunnel_up_eof,  proxy_tunnel_splice_due,  0,                                                      AWF_DL_NOW,     T(TUNNEL) | T(TUNNEL_SPLICE_WAIT) | T(TUNNEL_SPLICED) | T(CLOSING)) \
  X(TUNNEL_SPLICED,     "tunnel-spliced",     proxy_tunnel_client_input,  proxy_tunnel_client_eof,  proxy_tunnel_up_input,  proxy_tunnel_up_eof,  timeout_abort,            0,                                                      AWF_DL_IDLE,    T(TUNNEL) | T(CLOSING)) \
  X(BUMP_CLIENT,        "bump-client",        hold,                       eof_abort,                drop,                   eof_close,            timeout_abort,            AWF_RD_CLIENT,                                          AWF_DL_HELLO,   T(HEAD) | T(FLUSH) | T(CLOSING)) \
  X(BUMP_UP,            "bump-upstream",      hold,                       eof_abort,                drop,                   proxy_bump_up_eof,    proxy_bump_up_timeout,    AWF_RD_CLIENT | AWF_RD_HOLD | AWF_RD_UP,                AWF_DL_CONNECT, T(FORWARD) | T(FLUSH) | T(CLOSING)) \
  X(FLUSH,              "flush",              drop,                       eof_flush,                drop,                   eof_close,            timeout_close,            AWF_RD_CLIENT | AWF_RD_DROP,                            AWF_DL_FLUSH,   T(CLOSING)) \
  X(CLOSING,            "closing",            drop,                       ignore_eof,               drop,                   ignore_eof,           ignore_timeout,           0,                                                      AWF_DL_IDLE,    0)
// clang-format on

enum proxy_conn_state {
#define AWF_X(st, name, cd, ce, ud, ue, tmo, rd, dl, to) AWF_CS_##st,
    AWF_STATES(AWF_X)
#undef AWF_X
        AWF_CS_COUNT
};

/* Which sides a state reads (proxy_conn_sync_reading). A side is never read after its EOF. */
enum {
    AWF_RD_CLIENT = 1 << 0, /* the client */
    AWF_RD_HOLD = 1 << 1,   /* ... except while c->pend holds bytes not yet handled */
    AWF_RD_DROP = 1 << 2,   /* ... only to drop what it sends (closing after an answer) */
    AWF_RD_UP = 1 << 3,     /* the upstream (until the response is done) */
    AWF_RD_WFAIL = 1 << 4,  /* a failed upstream write ends the relay as its EOF would */
};

/* Which deadline a state runs against (conn.c:deadline; every one bounded by the lifetime). */
enum proxy_deadline {
    AWF_DL_HEAD,    /* request_headers from the first byte; client_idle between requests */
    AWF_DL_PEEK,    /* read_idle until a ClientHello starts, then client_hello from its start */
    AWF_DL_DNS,     /* dns + 1 s */
    AWF_DL_CONNECT, /* connect, from the dial (a parent's answer and TLS to the upstream too) */
    AWF_DL_HELLO,   /* client_hello: the client's TLS handshake */
    AWF_DL_FLUSH,   /* read_idle, capped at request_headers; a short linger after our FIN */
    AWF_DL_IDLE,    /* read_idle since the last activity */
    AWF_DL_NOW,     /* at once, in the next loop turn: the state's timeout is its work */
};

struct proxy_conn;
struct proxy_buf;

/* One row of AWF_STATES: what a state does on each event. */
struct proxy_phase {
    void (*client_data)(struct proxy_conn *c, struct proxy_buf *b); /* takes ownership of b */
    void (*client_eof)(struct proxy_conn *c, int status);           /* UV_EOF or a read error */
    void (*up_data)(struct proxy_conn *c, struct proxy_buf *b);     /* takes ownership of b */
    void (*up_eof)(struct proxy_conn *c, int status);               /* UV_EOF or a read error */
    void (*timeout)(struct proxy_conn *c); /* the state's deadline passed */
    uint8_t reads;                         /* AWF_RD_* */
    uint8_t deadline;                      /* enum proxy_deadline */
};

/* Flags: what crosses states. One bit each, in this order (AWF_CF_<NAME>, 64 bits);
 * proxy_conn_flags_str() prints their names. */
#define AWF_CONN_FLAGS(X)                                                                          \
    X(REQ_DONE)         /* the request message is fully read and passed on */                      \
    X(RESP_DONE)        /* the final response is complete */                                       \
    X(CLIENT_EOF)       /* client sent FIN */                                                      \
    X(UP_EOF)           /* upstream sent FIN */                                                    \
    X(LOGGED)           /* this transaction's log line is written */                               \
    X(TXN)              /* a transaction is open (something to log) */                             \
    X(KEEPALIVE)        /* the client allows another request */                                    \
    X(REUSED)           /* the upstream came from the idle pool */                                 \
    X(WEBSOCKET)        /* a WebSocket upgrade is being forwarded */                               \
    X(HEAD_REQ)         /* HEAD request: the response has no body */                               \
    X(CONNECT)          /* CONNECT request */                                                      \
    X(ABORTED)          /* a side dropped early: tag gets _ABORTED */                              \
    X(TUNNEL_CNT)       /* counted in px->tunnels */                                               \
    X(CLIENT_RD)        /* reading the client */                                                   \
    X(CLIENT_SHUT)      /* shutdown(write) sent to the client */                                   \
    X(UP_SHUT)          /* shutdown(write) sent to the upstream */                                 \
    X(RESP_STARTED)     /* response bytes were sent to the client */                               \
    X(REQ_BODY)         /* the request has a body */                                               \
    X(MSG_END)          /* set by a parser callback at a message end */                            \
    X(UP_NOREUSE)       /* the upstream may not go back to the pool */                             \
    X(OVERLOAD)         /* accepted beyond max_connections: answered 503 */                        \
    X(CLIENT_SHUT_DONE) /* the shutdown(write) to the client has completed */                      \
    X(UP_SHUT_DONE)     /* the shutdown(write) to the upstream has completed */                    \
    X(NOPOOL)           /* dial fresh: a pooled upstream just failed this request */               \
    X(INTERCEPT)        /* intercepted traffic (origin-form HTTP or raw TLS) */                    \
    X(PEEKED)           /* the client's first tunnel bytes were checked */                         \
    X(ESTABLISHED)      /* "200 Connection established" is sent */                                 \
    X(NO_ANSWER)        /* the client expects TLS: no HTTP answer, just close */                   \
    X(RESP_BODY)        /* the final response head is sent: body bytes pass */                     \
    X(CLOSE_AFTER)      /* the response head told the client the connection closes */              \
    X(RESP_HDONE)       /* set by a parser callback at a response head's end */                    \
    X(DECIDE_ADDRS)     /* resolving the target for the decision (squid.conf dst) */               \
    X(HAS_SERVER)       /* c->server holds the upstream's address (for the log) */                 \
    X(HEARD)            /* the client sent at least one byte (a health probe sends none) */        \
    X(ORIG_LOOKED)      /* the original destination was looked up (intercept.c) */                 \
    X(HAS_ORIG_DST)     /* c->orig_dst holds it: NAT'd in this namespace */                        \
    X(TIMER_ARMED)      /* the timer runs, due at c->timer_due */                                  \
    X(VIA_PARENT)       /* this transaction goes through settings.parent (parent.c) */

enum proxy_conn_flag_bit {
#define AWF_X(name) AWF_CFB_##name,
    AWF_CONN_FLAGS(AWF_X)
#undef AWF_X
        AWF_CFB_COUNT
};
_Static_assert(AWF_CFB_COUNT <= 64, "struct proxy_conn's flags are 64 bits");

/* Static consts rather than enumerators: C17 enumerators are ints (31 bits), and they fold to
 * constants just the same. */
#define AWF_X(name) static const uint64_t AWF_CF_##name = UINT64_C(1) << AWF_CFB_##name;
AWF_CONN_FLAGS(AWF_X)
#undef AWF_X

struct awf_proxy;
struct proxy_conn;
struct proxy_splice;
struct proxy_bump;
struct awf_tls_bump;
struct ssl_st;

/* What upstream.c reports about an upstream to the connection it serves (status: for EOF,
 * UV_EOF or a read error; for WRITE_FAILED the error; for DIAL_FAILED a positive errno; b: the
 * bytes read, for DATA, owned by the receiver). */
enum proxy_up_event {
    AWF_UP_DIALLING,     /* a dial starts (or a pooled upstream is taken): state CONNECTING */
    AWF_UP_CONNECTED,    /* connected, or taken from the pool */
    AWF_UP_DIAL_FAILED,  /* every address failed */
    AWF_UP_DATA,         /* bytes read (TLS records of a bumped upstream included) */
    AWF_UP_EOF,          /* end of stream or a read error */
    AWF_UP_WRITTEN,      /* a write completed */
    AWF_UP_WRITE_FAILED, /* a write failed */
    AWF_UP_CLOSED,       /* the upstream's socket has closed (counted in c->closes) */
};

/* How upstream.c reaches the layers above it without calling them by name: the connection's
 * event handler and the proxy's object count. One static instance (dispatch.c). */
struct proxy_upstream_hooks {
    void (*event)(struct proxy_conn *c, enum proxy_up_event ev, int status, struct proxy_buf *b);
    void (*gone)(struct awf_proxy *px); /* an upstream was freed (px->live) */
};

/* ssl-bump's TLS record layer between the sockets and the connection (bump.c): conn.c reads,
 * writes and closes through it without naming bump.c, whose decisions sit above conn.c. One
 * static instance, proxy_bump_tls_io. */
struct proxy_tls_io {
    /* Ciphertext from the client of a bumped connection; takes ownership of b. May close c. */
    void (*client_read)(struct proxy_conn *c, struct proxy_buf *b);
    /* Whether writes to s go through TLS (the bumped client, a TLS upstream, after their
     * handshakes), and proxy_conn_write for those: b is encrypted (taken). */
    bool (*is_tls)(struct proxy_conn *c, uv_stream_t *s);
    int (*write)(struct proxy_conn *c, uv_stream_t *dst, struct proxy_buf *b);
    /* Sends TLS close_notify on s if it speaks TLS (before its TCP shutdown). */
    void (*close_notify)(struct proxy_conn *c, uv_stream_t *s);
    void (*free)(struct proxy_conn *c); /* frees c->bump */
};

/* ssl-bump's side of a connection (bump.c makes it; request.c decides each request inside with
 * its name and port; conn.c keys pooled upstreams by its authority). */
struct proxy_bump {
    struct ssl_st *ssl; /* towards the client; owned */
    uint8_t kind;       /* enum awf_tls_name (tls/tls.h) */
    uint16_t port;
    bool hs_done;
    char name[AWF_HOST_MAX + 1];
    char authority[AWF_HOST_MAX + 10]; /* the Host the upstream gets */
    char url[8192];                    /* the current request's URL, for the log */
};

struct proxy_upstream {
    uv_tcp_t tcp;    /* dialled with a uv_connect_t of its own (upstream.c) */
    uv_timer_t idle; /* runs only while pooled */
    struct awf_proxy *px;
    struct proxy_conn *conn;              /* attached connection, NULL while pooled or closing */
    struct proxy_conn *notify;            /* told when tcp has closed (it counted the close) */
    struct proxy_upstream *prev, *next;   /* px idle pool, least recently pooled last */
    struct proxy_upstream *bprev, *bnext; /* px->idle_bucket[] chain, while pooled */
    struct proxy_upstream *lprev, *lnext; /* px->by_local[] chain, while indexed */
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

/* The upstream's response being parsed (forward.c), or the parent proxy's answer to our
 * CONNECT (parent.c). Only HTTP needs it: allocated by the first request that goes upstream,
 * kept for the next keep-alive requests, freed when a tunnel starts (its bytes are not parsed)
 * or with the connection. */
struct proxy_resp {
    llhttp_t parser;
    char mime[64];  /* the final response's Content-Type, for the log (c->mime points here) */
    char hname[16]; /* the response field name being read, to spot Content-Type */
    uint8_t hname_len;
    bool hname_ct;
};

/* A client connection. What only some phases need lives apart: the response parser (struct
 * proxy_resp) and the addresses to dial are freed when a tunnel starts, a tunnel's request head is
 * compacted to what it holds (its log line needs it), shutdown requests are allocated when sent.
 * An idle tunnel keeps little more than its two handles and what its log line needs. */
struct proxy_conn {
    uv_tcp_t client;
    uv_timer_t timer;
    struct awf_proxy *px;
    struct awf_policy *policy; /* reference taken at accept: kept for the connection's life */
    const struct awf_settings *set;
    struct proxy_conn *prev, *next; /* px->conns */
    struct proxy_upstream *up;
    struct awf_dns_req *dns_req;
    enum proxy_conn_state state;
    uint64_t flags;              /* AWF_CF_* */
    unsigned closes;             /* close callbacks still to come */
    unsigned requests;           /* transactions started on this connection */
    struct proxy_splice *splice; /* the kernel relay, while bulk flows (splice.c); owned */
    struct proxy_bump *bump;     /* ssl-bump: the client's TLS and the TLS name (bump.c); owned */
    union awf_sockaddr peer, local, server;
    llhttp_t req;
    struct proxy_resp *resp;     /* owned; NULL until a request goes upstream, and in a tunnel */
    struct proxy_http_reader rd; /* the parsers' position; req's callbacks fill head through it */
    struct proxy_http_head head;
    struct proxy_target target;
    char *host; /* the target's name, NUL-terminated, once decided; owned; NULL or "" before */
    uint16_t host_cap;               /* bytes at host */
    struct proxy_listener *listener; /* borrowed: listeners outlive connections */
    struct proxy_buf *pend;  /* client bytes read and not yet handled; reading stops meanwhile */
    struct proxy_buf *hello; /* client bytes held while peeking at a ClientHello */
    char *sni_hp;            /* "sni:port" of intercepted TLS, for the log; owned */
    union awf_sockaddr orig_dst; /* intercepted: where the client was headed (intercept.c) */
    /* Checked addresses to dial; owned, kept for the next request, freed once a tunnel
     * starts (nothing is dialled again then). */
    union awf_sockaddr *addrs;
    size_t n_addrs, next_addr, cap_addrs;
    uint64_t timer_due;      /* when the armed timer fires (loop ms); it re-arms if not yet due */
    struct proxy_buf *rhead; /* a response head being collected, before it is rewritten; owned */
    const char *why;         /* why the transaction was denied (static text), for debugging */
    int last_err;
    unsigned client_writes; /* uv writes to the client in flight */
    /* per transaction */
    int64_t start_us;
    uint64_t last_active, born, state_since; /* loop time, ms */
    uint64_t head_bytes, bytes_in, bytes_out;
    int status, upstream_status;
    enum proxy_tag tag;
    enum proxy_hier hier;
    const char *log_url, *log_method;
    /* The response's Content-Type for the log: static text for our own answers, or
     * resp->mime while a response is forwarded; NULL or empty: none. */
    const char *mime;
};

/* The counts limits.max_connections and limits.max_tunnels apply to. Process-wide: the proxies
 * of several loops (threads) share one (awf_proxy_share_limits), so N loops do not allow N times
 * the limit. Freed with the last proxy using it. */
struct proxy_shared_counts {
    atomic_uint refs;
    atomic_ulong conns, tunnels;
};

struct proxy_listener {
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
    struct proxy_bufpool bufs;
    struct proxy_listener *listeners;
    size_t n_listeners;
    struct sockaddr_storage *local_addrs; /* this host's addresses, for loop detection */
    size_t n_local_addrs;
    struct proxy_conn *conns;
    struct proxy_upstream *idle_head, *idle_tail;
    size_t n_idle;
    uint64_t accepted, active, tunnels; /* this proxy's (stats) */
    struct awf_proxy_counters *ctr;     /* own_ctr or the creator's (/metrics) */
    struct awf_proxy_counters *own_ctr; /* owned; NULL when the creator gave counters */
    struct proxy_shared_counts *counts; /* the process's (limits); owned by reference */
    size_t live;                        /* conns, upstreams, listeners and timers not yet closed */
    struct proxy_upstream *idle_bucket[AWF_POOL_BUCKETS];
    struct proxy_upstream *by_local[AWF_LOCAL_BUCKETS];
    uv_timer_t drain;
    bool shutting_down, done_called, draining;
    bool debug;               /* AWF_PROXY_DEBUG set: one stderr line per denial, saying why */
    bool no_splice;           /* AWF_PROXY_NO_SPLICE set: tunnels stay on libuv reads and writes */
    struct awf_tls_bump *tls; /* ssl-bump's CA and contexts, process-wide; borrowed; NULL: off */
    /* The hooks: how a file reaches one above it without naming it, so that proxy/ has no call
     * cycle. Set once by proxy.c when the proxy is created; proxy/README (Layers) says who
     * calls each and why. */
    const struct proxy_upstream_hooks *up_hooks; /* &proxy_conn_up_hooks (dispatch.c) */
    const struct proxy_phase *phases;  /* proxy_conn_phases (dispatch.c): AWF_STATES' handlers */
    const struct proxy_tls_io *tls_io; /* &proxy_bump_tls_io (bump.c): ssl-bump's records */
    /* proxy.c's object_gone: a conn, upstream or handle of px has closed (live--; may end the
     * drain or the shutdown). Called by conn.c and dispatch.c. */
    void (*object_gone)(struct awf_proxy *px);
    /* splice.c:proxy_splice_close: when a connection closes, the kernel relay's poll handles
     * close (counted in c->closes) and its pipes go back. Called by conn.c. */
    void (*splice_close)(struct proxy_conn *c);
    int pipe_free[AWF_PIPE_MAX_FREE][2]; /* empty pipes for splice.c */
    size_t n_pipe_free;
    void (*done)(void *arg);
    void *done_arg;
};

#endif
