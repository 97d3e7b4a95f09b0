/* The kernel relay: socket -> pipe -> socket with splice(2), so bulk bytes never cross into user
 * space. Two users share it: established tunnels (tunnel.c), both directions, and the response
 * bodies of forwarded HTTP (forward.c), upstream -> client only.
 *
 * A tunnel starts on libuv reads and writes (tunnel.c): the SNI/Host peek and short tunnels (one
 * request, an idle browser tunnel) cost nothing more. Once AWF_SPLICE_AFTER bytes have crossed,
 * the next read callback hands the tunnel over here. A response body comes here from forward.c
 * once its head is sent, when the rest is framed by Content-Length (at least AWF_SPLICE_AFTER
 * bytes left: exactly that many are moved) or by the upstream closing; when they have passed,
 * forward.c ends the message as llhttp would have (the callback it gave) and the sockets go
 * back to libuv for the next request.
 *
 * Either way uv reading stops on both sockets and one uv_poll_t per socket drives splice (states
 * TUNNEL_SPLICED, BODY_SPLICED). libuv allows one watcher per fd, so the switch happens only
 * when neither stream has a write in flight (no POLLOUT left on its watcher): the hand-over
 * waits for them in TUNNEL_SPLICE_WAIT / BODY_SPLICE_WAIT and runs from the *_SPLICE_DUE state's
 * timeout (conn-t.h); uv_poll_init refuses (UV_EEXIST) if a watcher is still busy, and the
 * bytes stay on libuv. Going back, closing the poll handles stops their watchers at once, so the
 * streams may read again in the same callback; the handles' memory is libuv's until their close
 * callbacks, so a new switch on the connection waits for those (-EAGAIN).
 *
 * Per direction, one pipe taken from a per-loop free list when bytes are about to move. A
 * tunnel gives it back as soon as it is empty and the source has nothing more, so an idle
 * tunnel holds no pipe; a body holds its pipe until it ends, so a pipe that cannot be had
 * (pipe2 failing) is known before the switch and the body stays on user space; a tunnel that
 * finds none later stops reading and goes back to libuv for good once its other pipe is empty. A
 * pipe is only read into when empty: at most one pipe's worth (AWF_PIPE_SIZE) is buffered per
 * direction, and a side is not polled for reading while its pipe still holds bytes (backpressure).
 * In a tunnel, a FIN (splice returns 0) becomes shutdown(SHUT_WR) of the other socket once its pipe
 * is drained; the tunnel closes when both directions are done, as tunnel.c does. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/conn.h"

struct proxy_splice_dir {
    int rd, wr;             /* the pipe's ends; -1 while none is held */
    size_t queued;          /* bytes in the pipe */
    struct proxy_buf *lead; /* bytes libuv read just before the switch: written first; owned */
    bool eof;               /* the source sent FIN (a body: the client side is never read) */
};

struct proxy_splice {
    uv_poll_t poll[2]; /* 0: the client's socket, 1: the upstream's */
    int fd[2];
    struct proxy_splice_dir dir[2]; /* 0: client -> upstream, 1: upstream -> client */
    int events[2];                  /* what poll[i] watches now */
    unsigned inited;                /* bit i: poll[i] is initialised and not closing */
    unsigned closing;               /* bit i: poll[i] is closing: libuv still holds it */
    bool active;                    /* the kernel relays this connection's bytes now */
    bool body;                      /* a response body (upstream -> client), not a tunnel */
    bool refused;                   /* a tunnel that could not switch: it stays on libuv */
    bool no_pipe;                   /* a tunnel found no pipe (pipe2 failed): back to libuv */
    bool client_fin;                /* a body: the client's FIN was seen (it may still read) */
    uint64_t left;                  /* a body: bytes still to read from the upstream */
    /* a body: what goes on once it has passed (forward.c's, given to proxy_splice_body) */
    void (*body_done)(struct proxy_conn *c, bool fin);
};

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
/* Splices per direction per wake-up, so one busy connection does not hold the loop (2 to 32
 * measured the same). SPLICE_F_MORE on the writes gained nothing measurable and would hold a
 * body's last partial segment back. */
#define PUMP_ROUNDS 8

static void poll_cb(uv_poll_t *h, int status, int events);

/* ---- the per-loop pipe pool ---- */

static int pipe_get(struct awf_proxy *px, struct proxy_splice_dir *d)
{
    if (px->n_pipe_free) {
        px->n_pipe_free--;
        d->rd = px->pipe_free[px->n_pipe_free][0];
        d->wr = px->pipe_free[px->n_pipe_free][1];
        return 0;
    }
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    /* Larger than the 64 KiB default: fewer splices and wake-ups per byte (measured in
     * README.md). A refusal (over the user's pipe quota, fs.pipe-user-pages-soft) leaves a
     * smaller pipe, which still works. */
    (void)fcntl(p[1], F_SETPIPE_SZ, AWF_PIPE_SIZE);
    d->rd = p[0];
    d->wr = p[1];
    return 0;
}

/* Gives d's pipe back: to the free list when empty, else closed (its bytes are dropped). */
static void pipe_put(struct awf_proxy *px, struct proxy_splice_dir *d)
{
    if (d->rd < 0)
        return;
    if (!d->queued && px->n_pipe_free < AWF_PIPE_MAX_FREE) {
        px->pipe_free[px->n_pipe_free][0] = d->rd;
        px->pipe_free[px->n_pipe_free][1] = d->wr;
        px->n_pipe_free++;
    } else {
        close(d->rd);
        close(d->wr);
    }
    d->rd = d->wr = -1;
    d->queued = 0;
}

void proxy_splice_pool_cleanup(struct awf_proxy *px)
{
    for (size_t i = 0; i < px->n_pipe_free; i++) {
        close(px->pipe_free[i][0]);
        close(px->pipe_free[i][1]);
    }
    px->n_pipe_free = 0;
}

/* ---- relaying ---- */

/* Whether direction i's source has nothing more to give: its FIN, or a body's last byte. */
static bool src_done(const struct proxy_splice *s, int i)
{
    return s->dir[i].eof || (s->body && s->left == 0);
}

static void sync_polls(struct proxy_conn *c)
{
    struct proxy_splice *s = c->splice;
    for (int i = 0; i < 2; i++) {
        const struct proxy_splice_dir *out = &s->dir[i], *in = &s->dir[!i];
        int ev = 0;
        if (!src_done(s, i) && !out->queued && !out->lead && !s->no_pipe)
            ev |= UV_READABLE;
        if (in->queued || in->lead)
            ev |= UV_WRITABLE;
        /* A body does not read the client (a pipelined request waits in its socket): its
         * hang-up is still watched, so a client that resets is noticed while the upstream is
         * slow, not only at the next write. */
        if (s->body && i == 0 && !s->client_fin)
            ev |= UV_DISCONNECT;
        if (ev == s->events[i])
            continue;
        s->events[i] = ev;
        if (ev)
            uv_poll_start(&s->poll[i], ev, poll_cb);
        else
            uv_poll_stop(&s->poll[i]);
    }
}

/* Moves what direction i can move now. Returns 0 or a negative errno (the relay is broken). */
static int pump(struct proxy_conn *c, int i)
{
    struct proxy_splice *s = c->splice;
    struct proxy_splice_dir *d = &s->dir[i];
    int src = s->fd[i], dst = s->fd[!i];
    bool moved = false;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        if (d->lead) {
            ssize_t n = write(dst, d->lead->data + d->lead->off, d->lead->len);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
            moved = true;
            d->lead->off += (size_t)n;
            d->lead->len -= (size_t)n;
            if (d->lead->len)
                return 0; /* the socket is full: wait for it to drain */
            proxy_bufpool_put(&c->px->bufs, d->lead);
            d->lead = NULL;
            continue;
        }
        if (d->queued) {
            ssize_t n = splice(d->rd, NULL, dst, NULL, d->queued, SPLICE_FLAGS);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
            moved = true; /* a slow reader draining the pipe is activity too */
            d->queued -= (size_t)n;
            if (d->queued)
                return 0;
            continue;
        }
        if (src_done(s, i))
            break;
        if (d->rd < 0) {
            int rc = pipe_get(c->px, d);
            if (rc < 0 && s->body)
                return rc; /* cannot happen: a body holds its pipe from the switch on */
            if (rc < 0) {
                /* Out of fds or pipe memory: nothing was read, so once the other direction's
                 * pipe is empty the tunnel goes back to libuv (settle) instead of failing. */
                s->no_pipe = true;
                return 0;
            }
        }
        size_t want = AWF_PIPE_SIZE;
        if (s->body && s->left < want)
            want = (size_t)s->left; /* not one byte past the body: the next response's */
        ssize_t n = splice(src, NULL, d->wr, NULL, want, SPLICE_FLAGS);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            if (!s->body)
                pipe_put(c->px, d); /* empty and nothing to read: an idle direction holds none */
            break;
        }
        if (n == 0) {
            /* A TCP splice also stops at urgent data (SO_OOBINLINE or not). recv takes that
             * byte inline (every socket has SO_OOBINLINE: proxy.c, upstream.c): it goes out
             * as a lead of one byte, and splicing carries on. */
            char urg;
            if (recv(src, &urg, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
                struct proxy_buf *b = proxy_bufpool_get(&c->px->bufs, 1);
                if (!b)
                    return -ENOMEM;
                if (recv(src, b->data, 1, MSG_DONTWAIT) != 1) {
                    proxy_bufpool_put(&c->px->bufs, b);
                    return -EIO;
                }
                b->len = 1;
                d->lead = b;
                if (s->body && s->left != AWF_SPLICE_TO_EOF)
                    s->left -= 1;
                if (i == 0)
                    c->bytes_in += 1;
                else
                    c->bytes_out += 1;
                continue;
            }
            d->eof = true;
            if (!s->body) { /* a body's end is forward.c's to judge (s->body_done) */
                c->flags |= i == 0 ? AWF_CF_CLIENT_EOF : AWF_CF_UP_EOF;
                pipe_put(c->px, d);
            }
            break;
        }
        d->queued = (size_t)n;
        moved = true;
        if (s->body && s->left != AWF_SPLICE_TO_EOF)
            s->left -= (uint64_t)n;
        if (i == 0)
            c->bytes_in += (uint64_t)n;
        else
            c->bytes_out += (uint64_t)n;
    }
    if (moved)
        proxy_conn_touch(c);
    uint64_t shut = i == 0 ? AWF_CF_UP_SHUT : AWF_CF_CLIENT_SHUT;
    if (!s->body && d->eof && !d->queued && !d->lead && !(c->flags & shut)) {
        /* The FIN goes on after every byte before it. Synchronous: uv_shutdown would start
         * the stream's own watcher on a fd the poll handle owns now. */
        c->flags |= shut | (i == 0 ? AWF_CF_UP_SHUT_DONE : AWF_CF_CLIENT_SHUT_DONE);
        if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN)
            return -errno;
    }
    return 0;
}

static void poll_closed_cb(uv_handle_t *h)
{
    struct proxy_conn *c = h->data;
    struct proxy_splice *s = c->splice;
    s->closing &= h == (uv_handle_t *)&s->poll[0] ? ~1u : ~2u;
    /* Idle again: freed, so a later tunnel on this connection (a WebSocket upgrade after a
     * spliced body) may switch too. A closing connection frees it itself (conn.c:conn_free). */
    if (!s->closing && !s->inited && !s->refused && c->state != AWF_CS_CLOSING) {
        free(s);
        c->splice = NULL;
    }
    proxy_conn_handle_closed(c);
}

/* Closes the poll handles (counted in c->closes) and gives the pipes back: the streams own
 * their fds again at once. */
static void detach(struct proxy_conn *c)
{
    struct proxy_splice *s = c->splice;
    for (int i = 0; i < 2; i++) {
        if (s->inited & (1u << i)) {
            c->closes++;
            s->closing |= 1u << i;
            uv_close((uv_handle_t *)&s->poll[i], poll_closed_cb);
        }
        pipe_put(c->px, &s->dir[i]);
        proxy_bufpool_put(&c->px->bufs, s->dir[i].lead);
        s->dir[i].lead = NULL;
    }
    s->inited = 0;
    s->active = false;
}

/* After pumping (rc: pump's result): aborts on an error, ends what is done, else polls for
 * what is next. May close c (state CLOSING after; freed later, in its last close callback): the
 * caller checks the state before going on. */
static void settle(struct proxy_conn *c, int rc)
{
    struct proxy_splice *s = c->splice;
    if (rc < 0) {
        c->last_err = rc;
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    if (s->body) {
        const struct proxy_splice_dir *d = &s->dir[1];
        if (src_done(s, 1) && !d->queued && !d->lead) {
            bool fin = d->eof;
            detach(c);
            proxy_conn_set_state(c, AWF_CS_FORWARD);
            s->body_done(c, fin);
            return;
        }
    } else {
        const uint64_t all =
            AWF_CF_CLIENT_EOF | AWF_CF_UP_EOF | AWF_CF_CLIENT_SHUT_DONE | AWF_CF_UP_SHUT_DONE;
        if ((c->flags & all) == all) {
            proxy_conn_close(c);
            return;
        }
        if (s->no_pipe && !s->dir[0].queued && !s->dir[1].queued && !s->dir[0].lead &&
            !s->dir[1].lead) {
            detach(c);
            s->refused = true;
            proxy_conn_set_state(c, AWF_CS_TUNNEL);
            proxy_conn_sync_reading(c);
            return;
        }
    }
    sync_polls(c);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct proxy_conn *c = h->data;
    struct proxy_splice *s = c->splice;
    if (c->state == AWF_CS_CLOSING || !s->active)
        return;
    int i = h == &s->poll[0] ? 0 : 1;
    if (status < 0) {
        /* POLLERR (libuv has stopped the handle): a reset does not take back what arrived
         * before it, and the kernel hands those bytes out first; splice and write report the
         * error themselves once nothing is left. Only a side that is not read (a body's
         * client) ends here. */
        s->events[i] = 0;
        bool reads = !src_done(s, i) && !(s->body && i == 0);
        int rc = reads ? pump(c, i) : 0;
        if (rc == 0)
            rc = pump(c, !i);
        settle(c, rc == 0 && !reads ? status : rc);
        return;
    }
    int rc = 0;
    if (s->body && i == 0 && (events & UV_DISCONNECT))
        s->client_fin = true; /* a half-close: the response still goes out (as forward.c) */
    /* A hang-up shows as readable: the splice that follows reports it. */
    if (events & UV_READABLE)
        rc = pump(c, i);
    if (rc == 0 && (events & UV_WRITABLE))
        rc = pump(c, !i);
    settle(c, rc);
}

/* ---- switching over and closing ---- */

/* The connection's relay state, reused when idle; NULL when out of memory. */
static struct proxy_splice *splice_get(struct proxy_conn *c)
{
    struct proxy_splice *s = c->splice;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return NULL;
        c->splice = s; /* freed when idle again (poll_closed_cb) or with the connection */
    }
    for (int i = 0; i < 2; i++) {
        s->dir[i] = (struct proxy_splice_dir){.rd = -1, .wr = -1};
        s->events[i] = 0;
    }
    s->body = s->client_fin = false;
    s->left = 0;
    return s;
}

/* Stops libuv reading both sockets and puts a poll handle on each. Returns 0, or -EBUSY when a
 * libuv watcher still holds one of the fds (libuv reading is restored then). */
static int attach(struct proxy_conn *c)
{
    struct proxy_splice *s = c->splice;
    struct proxy_upstream *up = c->up;
    uv_stream_t *st[2] = {(uv_stream_t *)&c->client, (uv_stream_t *)&up->tcp};
    uv_read_stop(st[0]);
    uv_read_stop(st[1]);
    c->flags &= ~AWF_CF_CLIENT_RD;
    up->reading = false;
    for (int i = 0; i < 2; i++) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)st[i], &fd) < 0 ||
            uv_poll_init(c->px->loop, &s->poll[i], fd) < 0)
            break;
        s->fd[i] = fd;
        s->poll[i].data = c;
        s->inited |= 1u << i;
    }
    if (s->inited != 3u) {
        detach(c);
        proxy_conn_sync_reading(c);
        return -EBUSY;
    }
    s->active = true;
    return 0;
}

/* Whether a switch may be tried now: 0, -EAGAIN (later), or -ENOTSUP (not on this connection). */
static int may_switch(const struct proxy_conn *c)
{
    const struct proxy_splice *s = c->splice;
    if (c->px->no_splice || !c->up || c->up->closing || (s && (s->active || s->refused)))
        return -ENOTSUP;
    if ((s && s->closing) || c->up->writes || c->client_writes)
        return -EAGAIN;
    return 0;
}

/* The relay state for a switch now (*out), or why not: may_switch's codes, -ENOMEM. */
static int prepare(struct proxy_conn *c, struct proxy_splice **out)
{
    int rc = may_switch(c);
    if (rc < 0)
        return rc;
    *out = splice_get(c);
    return *out ? 0 : -ENOMEM;
}

int proxy_splice_start(struct proxy_conn *c, bool from_client, struct proxy_buf *b)
{
    const uint64_t ends = AWF_CF_CLIENT_EOF | AWF_CF_UP_EOF | AWF_CF_CLIENT_SHUT | AWF_CF_UP_SHUT;
    if ((c->state != AWF_CS_TUNNEL && c->state != AWF_CS_TUNNEL_SPLICE_DUE) || (c->flags & ends) ||
        c->pend)
        return -ENOTSUP;
    struct proxy_splice *s;
    int rc = prepare(c, &s);
    if (rc < 0)
        return rc;
    if (attach(c) < 0) {
        s->refused = true; /* stays on libuv for good, as before the relay existed */
        return -EBUSY;
    }
    proxy_conn_set_state(c, AWF_CS_TUNNEL_SPLICED);
    int i = from_client ? 0 : 1;
    s->dir[i].lead = b;
    settle(c, pump(c, i));
    return 0;
}

int proxy_splice_body(struct proxy_conn *c, struct proxy_buf *b, uint64_t left,
                      void (*done)(struct proxy_conn *c, bool fin))
{
    if ((c->state != AWF_CS_FORWARD && c->state != AWF_CS_BODY_SPLICE_DUE) || !left)
        return -ENOTSUP;
    struct proxy_splice *s;
    int rc = prepare(c, &s);
    if (rc < 0)
        return rc;
    rc = pipe_get(c->px, &s->dir[1]);
    if (rc < 0) {
        if (!s->inited && !s->closing) { /* nothing attached: a later tunnel may still switch */
            free(s);
            c->splice = NULL;
        }
        return rc;
    }
    if ((rc = attach(c)) < 0) /* gave the pipe back */
        return rc;
    proxy_conn_set_state(c, AWF_CS_BODY_SPLICED);
    s->body = true;
    s->left = left;
    s->body_done = done;
    s->dir[0].eof = true; /* the client's bytes (a pipelined request) wait in its socket */
    s->dir[1].lead = b;
    settle(c, pump(c, 1));
    return 0;
}

void proxy_splice_close(struct proxy_conn *c)
{
    if (c->splice)
        detach(c);
}
