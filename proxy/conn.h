#ifndef AWF_PROXY_CONN_H
#define AWF_PROXY_CONN_H

/* Functions shared inside proxy/ only (the module's internal header: proxy_* names), grouped by
 * the file that defines them; proxy/README's Layers says which file may call which. The types
 * are in proxy/conn-t.h. */

#include "proxy/conn-t.h"

/* metrics.c */
/* Counts c's ending transaction in px->ctr. True if it is a health probe (a connection from a
 * loopback address that the client closed before sending a byte): counted as such and not
 * logged, as AWF's squid.conf leaves them out (`!healthcheck_localhost`). */
bool proxy_metrics_txn(struct proxy_conn *c, enum proxy_tag tag);

/* logline.c: log records */
/* Writes the transaction's log line once; with px->debug, also why it was denied. */
void proxy_conn_log(struct proxy_conn *c);
/* Squid's spelling of a tag ("TCP_MISS"; AWF_TAG_UNSET: "NONE_NONE"), and the form it takes when
 * a side dropped early ("TCP_MISS_ABORTED"). */
const char *proxy_tag_name(enum proxy_tag t);
enum proxy_tag proxy_tag_aborted(enum proxy_tag t);
const char *proxy_hier_name(enum proxy_hier h);
/* Wall-clock time in microseconds, for log records. */
int64_t proxy_now_us(void);
/* The policy's request for c's current transaction (host, port, traffic, client, method), for
 * awf_policy_decide_req, awf_policy_log_wanted and friends; rq borrows c's strings. method NULL:
 * c->log_method. */
void proxy_conn_policy_req(const struct proxy_conn *c, const char *method,
                           struct awf_policy_req *rq);

/* state.c: the state machine as data */
bool proxy_conn_transition_ok(enum proxy_conn_state from, enum proxy_conn_state to);
const char *proxy_conn_state_name(enum proxy_conn_state s);
/* Writes the names of the flags set in f to out ("TXN|CONNECT|..."; bits without a name as
 * hex), NUL-terminated and cut to fit cap. Returns out. */
char *proxy_conn_flags_str(uint64_t f, char *out, size_t cap);

/* parse.c: the connection's llhttp parsers */
void proxy_conn_req_parser_init(struct proxy_conn *c);
/* Runs parser p over d[0, n); *used is how many bytes belong to what was parsed (up to a pause
 * at a head or message end). Parser callbacks may set c->rd.err. */
llhttp_errno_t proxy_conn_parse(struct proxy_conn *c, llhttp_t *p, const char *d, size_t n,
                                size_t *used);
/* After the decision the request parser only frames the body: trailer fields of a chunked body
 * are counted against limits.header_bytes, never stored (the head's buffer must not move while
 * c->target points into it). */
void proxy_request_body_only(struct proxy_conn *c);
/* Makes c->resp ready for a response parsed with settings (allocated on first use; forward.c's
 * responses, parent.c's answer to CONNECT). Returns 0 or -ENOMEM. */
int proxy_conn_resp_init(struct proxy_conn *c, const llhttp_settings_t *settings);

/* conn.c: the connection's mechanics, below every phase */
void proxy_conn_accept(struct awf_proxy *px, struct proxy_listener *l);
/* The one place a state changes: checks the transition against AWF_STATES (aborts on a bad one,
 * in every build) and runs the new state's deadline. */
void proxy_conn_set_state(struct proxy_conn *c, enum proxy_conn_state to);
/* Ends the connection: logs the open transaction once, closes every handle. */
void proxy_conn_close(struct proxy_conn *c);
/* Makes sure the timer fires by the current deadline. Lazy: a timer already due earlier is left
 * alone (its callback re-arms for the rest), so the hot path rarely touches the timer heap. */
void proxy_conn_arm_timer(struct proxy_conn *c);
/* When the current state's timeout (or the lifetime) is due, in loop ms. Pure: unit-tested. */
uint64_t proxy_conn_deadline(const struct proxy_conn *c);
/* Sends "200 Connection established" to the client (once). Returns 0 or a negative code. */
int proxy_conn_send_established(struct proxy_conn *c);
/* Reserves a slot under limits.max_tunnels (CONNECT, intercepted TLS, WebSocket) at the
 * decision; false when none is left. Released when the connection closes or, for a WebSocket
 * upgrade that was refused, when the transaction ends. */
bool proxy_conn_tunnel_reserve(struct proxy_conn *c);
void proxy_conn_tunnel_release(struct proxy_conn *c);
/* Writes b to the client or the upstream; takes ownership of b. Returns 0 or a negative code
 * (b is freed then). */
int proxy_conn_write(struct proxy_conn *c, uv_stream_t *dst, struct proxy_buf *b);
/* The same below TLS: b goes to the socket as it is (bump.c's ciphertext). */
int proxy_conn_write_raw(struct proxy_conn *c, uv_stream_t *dst, struct proxy_buf *b);
/* The client's end of stream (UV_EOF) or a read error: noted in c->flags, then the current
 * state's handler. */
void proxy_conn_client_eof(struct proxy_conn *c, int status);
void proxy_conn_sync_reading(struct proxy_conn *c);
/* Appends b to *dst (taking ownership of b): b itself when *dst is NULL, else its bytes,
 * moving to a larger block when *dst is full. Returns 0 or -ENOMEM (b is freed either way). */
int proxy_conn_append(struct proxy_conn *c, struct proxy_buf **dst, struct proxy_buf *b);
void proxy_conn_touch(struct proxy_conn *c);
/* A handle the connection counted has closed (frees it after the last one). */
void proxy_conn_handle_closed(struct proxy_conn *c);
/* The transaction is over and the client may send another request. */
void proxy_conn_next_request(struct proxy_conn *c);
/* Sends FIN to the client once queued writes are out, then closes (state FLUSH). */
void proxy_conn_flush_close(struct proxy_conn *c);
/* Sends FIN on s (the client or the upstream) after its queued writes. The request is
 * allocated here and freed by its callback, which libuv always runs (UV_ECANCELED when s closes
 * first, before s's close callback). c is still there then only because every close of s is
 * counted in c->closes: the client's by proxy_conn_close, an attached upstream's through
 * up->notify in proxy_upstream_release, so never close an attached upstream any other way.
 * Returns 0 or a negative code. */
int proxy_conn_shutdown(struct proxy_conn *c, uv_stream_t *s);
/* Dials c's target (c->addrs from c->next_addr on; a pooled upstream first when allowed). */
void proxy_conn_dial(struct proxy_conn *c);

/* request.c */
/* Client bytes while a request head is being read (SNIFF, HEAD); takes ownership of b. */
void proxy_request_input(struct proxy_conn *c, struct proxy_buf *b);

/* resolve.c: deciding and resolving a request whose target is known */
/* Resolves c->host (through a parent, the parent's name; state RESOLVING), checks every
 * address, then dials them (intercepted TLS decided again on its addresses may be bumped
 * instead, bump.c). */
void proxy_request_resolve(struct proxy_conn *c);
/* The resolver did not answer in time (RESOLVING): 503. */
void proxy_request_timeout(struct proxy_conn *c);
/* After an allow, with rq as decided: the parent choice, and the slot of a tunnel (CONNECT or a
 * WebSocket upgrade). Returns false when c was answered. */
bool proxy_request_admit(struct proxy_conn *c, const struct awf_policy_req *rq);
/* proxy_request_admit with c's request as the policy saw it. addrs: the target's addresses when
 * the decision needed them. Returns false when c was answered. */
bool proxy_request_allowed(struct proxy_conn *c, const struct awf_dns_addrs *addrs);
/* Decides c's transaction (method NULL: c->log_method) with the URL url_regex ACLs match when
 * the policy has any, and with the target's addresses when addrs_known (addrs NULL: the lookup
 * failed). Returns 0, or -ENOMEM (no verdict). */
int proxy_request_decide(struct proxy_conn *c, const char *method,
                         const struct awf_dns_addrs *addrs, bool addrs_known,
                         struct awf_verdict *v);
/* What follows an allow of an intercepted ClientHello (peek.c): parent choice, tunnel slot, the
 * held ClientHello to go first. Returns true to go on resolving, false when c was closed. */
bool proxy_request_admit_hello(struct proxy_conn *c, const struct awf_policy_req *rq);
/* c->host := a copy of p[0, n). Returns 0, AWF_E_BAD_REQUEST (longer than a name and its
 * trailing dot, AWF_HOST_MAX + 1) or -ENOMEM. */
int proxy_conn_set_host(struct proxy_conn *c, const char *p, size_t n);

/* answer.c: sends answer a (a row of AWF_ANSWERS), logs the transaction and closes after
 * writing. why is a short reason shown in the body (static text). */
void proxy_answer(struct proxy_conn *c, enum proxy_ans a, const char *why);
/* The same for an answer whose error page carries an errno (AWF_ANS_ERRNO): err, positive. */
void proxy_answer_errno(struct proxy_conn *c, enum proxy_ans a, int err, const char *why);
/* Row a of AWF_ANSWERS; NULL when there is none. */
const struct proxy_answer_def *proxy_answer_def(enum proxy_ans a);
/* Denies a client that cannot take an HTTP answer (it speaks TLS to us, or has its "200
 * Connection established"; a plain tunnel's bytes): logs tag (TCP_DENIED, TCP_DENIED_OPAQUE),
 * with alert and tls.alert_on_deny after a TLS unrecognized_name alert, and closes c (freed
 * only in its last close callback). */
void proxy_answer_close_denied(struct proxy_conn *c, enum proxy_tag tag, bool alert);
/* A TLS alert record: type, version, length 2, level, description. Its version is TLS 1.0's,
 * which every client accepts before a ServerHello. */
#define AWF_TLS_ALERT_LEN 7
/* Sends rec as the client's whole answer (its TLS has not started), logs c as it stands and
 * closes c once the record is sent; closes at once when it cannot be queued. */
void proxy_answer_close_alert(struct proxy_conn *c, const char rec[AWF_TLS_ALERT_LEN]);

/* dispatch.c: what each event means in the connection's state, on top of every other file */
extern const struct proxy_upstream_hooks proxy_conn_up_hooks;
/* The phases (AWF_STATES' handlers), reached through px->phases (set by proxy.c). */
extern const struct proxy_phase proxy_conn_phases[AWF_CS_COUNT];

/* upstream.c: the transport; reports events through px->up_hooks and calls nothing above it */
/* Dials c->addrs from c->next_addr on; first an idle pooled upstream to one of them when
 * c->next_addr is 0 and the request allows (tls_name: the pool key of a bumped request). */
void proxy_upstream_dial(struct proxy_conn *c, const char *tls_name);
void proxy_upstream_release(struct proxy_conn *c, bool reuse);
void proxy_upstream_pool_drain(struct awf_proxy *px);
void proxy_upstream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void proxy_upstream_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
void proxy_upstream_write_cb(uv_write_t *req, int status);
/* Whether sa (address and port) is the local end of one of this proxy's connected upstreams: a
 * connection from there is our own traffic redirected back to us. A hash lookup by local port.
 * Only this loop's upstreams are known: with several loops, each sees its own. */
bool proxy_upstream_is_ours(const struct awf_proxy *px, const union awf_sockaddr *sa);

/* forward.c: HTTP request body and response relaying */
void proxy_forward_start(struct proxy_conn *c);
void proxy_forward_client_input(struct proxy_conn *c, struct proxy_buf *b);
void proxy_forward_up_input(struct proxy_conn *c, struct proxy_buf *b);
void proxy_forward_client_eof(struct proxy_conn *c, int status);
void proxy_forward_up_eof(struct proxy_conn *c, int status);
void proxy_forward_timeout(struct proxy_conn *c);
/* BODY_SPLICE_DUE's timeout (the writes are done): moves the rest of the response body to the
 * kernel relay if it still qualifies (BODY_SPLICED); else back to BODY_SPLICE_WAIT when writes
 * are in flight again, or to FORWARD. May close c (freed only in its last close callback). */
void proxy_forward_splice_due(struct proxy_conn *c);

/* peek.c: the ClientHello check (SNI inside CONNECT tunnels, intercepted TLS) */
/* A CONNECT tunnel is dialled: answers 200 and holds client bytes until the ClientHello (or
 * non-TLS first bytes) is checked. */
void proxy_peek_start_connect(struct proxy_conn *c);
void proxy_peek_start_intercept(struct proxy_conn *c, struct proxy_buf *b);
void proxy_peek_input(struct proxy_conn *c, struct proxy_buf *b);
/* The client's EOF while peeking: CONNECT, 200, then FIN before any byte is an empty tunnel. */
void proxy_peek_client_eof(struct proxy_conn *c, int status);

/* parent.c: tunnels through the parent proxy (settings.parent) */
/* Connected to the parent for a tunnel: sends "CONNECT host:port" and waits (PARENT_WAIT). On
 * anything but a 2xx, a 502 answer (the parent's status logged as %<Hs). May close c (freed
 * only in its last close callback). */
void proxy_parent_connect(struct proxy_conn *c);
/* Bytes of the parent's answer (PARENT_WAIT); takes ownership of b. Returns, once the parent
 * granted the tunnel, the bytes after its head (the server's, speaking first; maybe none; the
 * caller's); else NULL: more are needed, or the parent refused (answered: c may be closed). */
struct proxy_buf *proxy_parent_input(struct proxy_conn *c, struct proxy_buf *b);
/* The parent closed before answering (PARENT_WAIT): 502. May close c. */
void proxy_parent_eof(struct proxy_conn *c, int status);

/* intercept.c: where intercepted traffic was headed */
/* The port intercepted traffic was headed to: the original destination's when the NAT happened
 * in this namespace (SO_ORIGINAL_DST, looked up once and kept in c->orig_dst), else the
 * listener's intercept_port, else fallback. */
uint16_t proxy_conn_intercept_port(struct proxy_conn *c, uint16_t fallback);
/* Whether an intercepted connection is one of the proxy's own upstream connections that a
 * REDIRECT in its own namespace sent back to it (a loop): NAT'd here, from a local address, from
 * the local end of one of our upstream connections. */
bool proxy_intercept_is_loop(struct proxy_conn *c);
/* Pure parts, unit-tested: whether conntrack's original destination differs from the socket's
 * own address (it was NAT'd), and the port chosen from the original destination (NULL: none),
 * the listener's intercept_port (0: none) and the fallback, in that order. */
bool proxy_intercept_is_nat(const struct sockaddr *orig, const struct sockaddr *local);
uint16_t proxy_intercept_choose_port(const struct sockaddr *orig, uint16_t listener_port,
                                     uint16_t fallback);

/* tunnel.c */
/* Frees what only HTTP and dialling needed (c->resp, c->addrs), then relays. */
void proxy_tunnel_start(struct proxy_conn *c);
/* Bytes (taken) and EOF from either side of a tunnel; the upstream's ones also while PEEK (a
 * server speaking first, or closing first). */
void proxy_tunnel_client_input(struct proxy_conn *c, struct proxy_buf *b);
void proxy_tunnel_up_input(struct proxy_conn *c, struct proxy_buf *b);
void proxy_tunnel_client_eof(struct proxy_conn *c, int status);
void proxy_tunnel_up_eof(struct proxy_conn *c, int status);
/* TUNNEL_SPLICE_DUE's timeout (the writes are done): moves the tunnel to the kernel relay
 * (TUNNEL_SPLICED); else back to TUNNEL_SPLICE_WAIT when writes are in flight again, or to
 * TUNNEL. May close c (freed only in its last close callback). */
void proxy_tunnel_splice_due(struct proxy_conn *c);

/* splice.c: the kernel relay of established tunnels and of response bodies */
/* From TUNNEL's data handlers (tunnel.c), with the block b just read (from_client: from the
 * client), or from TUNNEL_SPLICE_DUE's timeout (b NULL): moves the tunnel to splice(2)
 * (TUNNEL_SPLICED) and takes b (it is written first; NULL: none). Returns 0 then (c may be
 * closed); else b is still the caller's, the state unchanged, and the tunnel stays on libuv:
 * -EAGAIN while writes are in flight (try again once they are done), another negative code for
 * good. */
int proxy_splice_start(struct proxy_conn *c, bool from_client, struct proxy_buf *b);
/* proxy_splice_body's left for a body that ends when the upstream closes. */
#define AWF_SPLICE_TO_EOF UINT64_MAX
/* From forward.c once the final response head is sent and the request is complete (FORWARD,
 * or BODY_SPLICE_DUE): moves the next left body bytes (AWF_SPLICE_TO_EOF: up to the upstream's
 * FIN) upstream -> client (BODY_SPLICED), b (already counted in bytes_out; NULL: none) written
 * first, then goes back to FORWARD and calls done (fin: the upstream closed). Returns 0 then (b
 * taken; c may be closed); else b is still the caller's, the state unchanged, and the body
 * stays on user space: -EAGAIN while writes are in flight (try again once they are done),
 * another negative code for now (pipe2 failing, a busy watcher). */
int proxy_splice_body(struct proxy_conn *c, struct proxy_buf *b, uint64_t left,
                      void (*done)(struct proxy_conn *c, bool fin));
/* Closes the poll handles (counted in c->closes) and gives the pipes back: px->splice_close,
 * when c closes. */
void proxy_splice_close(struct proxy_conn *c);
/* Closes the loop's free pipes. */
void proxy_splice_pool_cleanup(struct awf_proxy *px);

/* bump.c: ssl-bump */
/* Whether TLS the policy allowed is bumped or terminated rather than spliced (ssl-bump on and
 * the policy's ssl_bump rules say so). */
bool proxy_bump_wanted(struct proxy_conn *c);
/* After proxy_bump_wanted: bumps (answers the client's TLS with a leaf minted for c->host,
 * state BUMP_CLIENT) or terminates (a TLS alert, TCP_DENIED). */
void proxy_bump_take(struct proxy_conn *c);
/* The upstream is connected for a bumped request (dispatch.c:up_use): TLS to it (state
 * BUMP_UP), verified, then proxy_forward_start. A failure answers 503. */
void proxy_bump_up_start(struct proxy_conn *c);
/* The upstream closed, or its deadline passed, during its handshake (BUMP_UP): 503, 504. */
void proxy_bump_up_eof(struct proxy_conn *c, int status);
void proxy_bump_up_timeout(struct proxy_conn *c);
/* Ciphertext from a TLS upstream; takes ownership of b. May close c. */
void proxy_bump_up_read(struct proxy_conn *c, struct proxy_buf *b);
/* The TLS record layer conn.c reads and writes through (px->tls_io). */
extern const struct proxy_tls_io proxy_bump_tls_io;

/* Whether c is in the forward family of states (FORWARD, or a response body's hand-over to the
 * kernel relay and after: BODY_SPLICE_WAIT, BODY_SPLICE_DUE, BODY_SPLICED), or in the tunnel
 * family (TUNNEL and its TUNNEL_SPLICE_WAIT, TUNNEL_SPLICE_DUE, TUNNEL_SPLICED): a handler
 * that may have closed or answered c checks this before going on. */
static inline bool proxy_conn_in_forward(const struct proxy_conn *c)
{
    return c->state == AWF_CS_FORWARD || c->state == AWF_CS_BODY_SPLICE_WAIT ||
           c->state == AWF_CS_BODY_SPLICE_DUE || c->state == AWF_CS_BODY_SPLICED;
}

static inline bool proxy_conn_in_tunnel(const struct proxy_conn *c)
{
    return c->state == AWF_CS_TUNNEL || c->state == AWF_CS_TUNNEL_SPLICE_WAIT ||
           c->state == AWF_CS_TUNNEL_SPLICE_DUE || c->state == AWF_CS_TUNNEL_SPLICED;
}

/* The current state's row of AWF_STATES, and its handlers for plain bytes from either side
 * (taking ownership of b) and the upstream's EOF: how a handler hands an event on without
 * naming the next one. */
static inline const struct proxy_phase *proxy_conn_phase(const struct proxy_conn *c)
{
    return &c->px->phases[c->state];
}

static inline void proxy_conn_client_input(struct proxy_conn *c, struct proxy_buf *b)
{
    proxy_conn_phase(c)->client_data(c, b);
}

static inline void proxy_conn_up_input(struct proxy_conn *c, struct proxy_buf *b)
{
    proxy_conn_phase(c)->up_data(c, b);
}

static inline void proxy_conn_up_eof(struct proxy_conn *c, int status)
{
    proxy_conn_phase(c)->up_eof(c, status);
}

/* addr.c: this host's and this proxy's addresses */
/* Whether sa (address and port) is one of this proxy's listeners (a loop). */
bool proxy_is_self(const struct awf_proxy *px, const struct sockaddr *sa);
/* Whether sa's address is loopback (127/8, ::1, IPv4-mapped 127/8): a health probe's. */
bool proxy_is_loopback(const struct sockaddr *sa);
/* Whether sa's address (port ignored) is loopback or one of this host's addresses. */
bool proxy_is_local(const struct awf_proxy *px, const struct sockaddr *sa);

#endif
