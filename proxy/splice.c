/* The kernel relay of an established tunnel: socket -> pipe -> socket with splice(2), so tunnel
 * bytes never cross into user space.
 *
 * A tunnel starts on libuv reads and writes (tunnel.c): the SNI/Host peek and short tunnels (one
 * request, an idle browser tunnel) cost nothing more. Once AWF_SPLICE_AFTER bytes have crossed,
 * the next read callback hands the tunnel over here: uv reading stops on both sockets and one
 * uv_poll_t per socket drives splice. libuv allows one watcher per fd, so the switch happens
 * only when neither stream has a write in flight (no POLLOUT left on its watcher); uv_poll_init
 * refuses (UV_EEXIST) otherwise and the tunnel stays on libuv.
 *
 * Per direction, one pipe taken from a per-loop free list when bytes are about to move and given
 * back as soon as it is empty and the source has nothing more, so an idle tunnel holds no pipe.
 * A pipe is only read into when empty: at most one pipe's worth (AWF_PIPE_SIZE) is buffered per
 * direction, and a side is not polled for reading while its pipe still holds bytes
 * (backpressure). A FIN (splice returns 0) becomes shutdown(SHUT_WR) of the other socket once
 * its pipe is drained; the tunnel closes when both directions are done, as tunnel.c does. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/conn.h"

struct awf_splice_dir {
    int rd, wr;           /* the pipe's ends; -1 while none is held */
    size_t queued;        /* bytes in the pipe */
    struct awf_buf *lead; /* bytes libuv read just before the switch: written first; owned */
    bool eof;             /* the source sent FIN */
};

struct awf_splice {
    uv_poll_t poll[2]; /* 0: the client's socket, 1: the upstream's */
    int fd[2];
    struct awf_splice_dir dir[2]; /* 0: client -> upstream, 1: upstream -> client */
    int events[2];                /* what poll[i] watches now */
    unsigned inited;              /* bit i: poll[i] is initialised (closed with the conn) */
    bool active;                  /* the kernel relays this tunnel */
};

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
/* Splices per direction per wake-up, so one busy tunnel does not hold the loop. */
#define PUMP_ROUNDS 8

static void poll_cb(uv_poll_t *h, int status, int events);

/* ---- the per-loop pipe pool ---- */

static int pipe_get(struct awf_proxy *px, struct awf_splice_dir *d)
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
    /* Larger than the 64 KiB default: fewer splices and wake-ups per byte (1 GiB tunnel: 64 KiB
     * ~0.21 s CPU, 256 KiB ~0.19 s, 1 MiB ~0.10 s). A refusal (over the user's pipe quota,
     * fs.pipe-user-pages-soft) leaves a smaller pipe, which still works. */
    (void)fcntl(p[1], F_SETPIPE_SZ, AWF_PIPE_SIZE);
    d->rd = p[0];
    d->wr = p[1];
    return 0;
}

/* Gives d's pipe back: to the free list when empty, else closed (its bytes are dropped). */
static void pipe_put(struct awf_proxy *px, struct awf_splice_dir *d)
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

void awf_splice_pool_cleanup(struct awf_proxy *px)
{
    for (size_t i = 0; i < px->n_pipe_free; i++) {
        close(px->pipe_free[i][0]);
        close(px->pipe_free[i][1]);
    }
    px->n_pipe_free = 0;
}

/* ---- relaying ---- */

static void sync_polls(struct awf_conn *c)
{
    struct awf_splice *s = c->splice;
    for (int i = 0; i < 2; i++) {
        const struct awf_splice_dir *out = &s->dir[i], *in = &s->dir[!i];
        int ev = 0;
        if (!out->eof && !out->queued && !out->lead)
            ev |= UV_READABLE;
        if (in->queued || in->lead)
            ev |= UV_WRITABLE;
        if (ev == s->events[i])
            continue;
        s->events[i] = ev;
        if (ev)
            uv_poll_start(&s->poll[i], ev, poll_cb);
        else
            uv_poll_stop(&s->poll[i]);
    }
}

/* Moves what direction i can move now. Returns 0 or a negative errno (the tunnel is broken). */
static int pump(struct awf_conn *c, int i)
{
    struct awf_splice *s = c->splice;
    struct awf_splice_dir *d = &s->dir[i];
    int src = s->fd[i], dst = s->fd[!i];
    bool moved = false;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        if (d->lead) {
            ssize_t n = write(dst, d->lead->data + d->lead->off, d->lead->len);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
            d->lead->off += (size_t)n;
            d->lead->len -= (size_t)n;
            if (d->lead->len)
                return 0; /* the socket is full: wait for it to drain */
            awf_bufpool_put(&c->px->bufs, d->lead);
            d->lead = NULL;
            continue;
        }
        if (d->queued) {
            ssize_t n = splice(d->rd, NULL, dst, NULL, d->queued, SPLICE_FLAGS);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
            d->queued -= (size_t)n;
            if (d->queued)
                return 0;
            continue;
        }
        if (d->eof)
            break;
        if (d->rd < 0) {
            int rc = pipe_get(c->px, d);
            if (rc < 0)
                return rc;
        }
        ssize_t n = splice(src, NULL, d->wr, NULL, AWF_PIPE_SIZE, SPLICE_FLAGS);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            pipe_put(c->px, d); /* empty and nothing to read: an idle direction holds none */
            break;
        }
        if (n == 0) {
            d->eof = true;
            c->flags |= i == 0 ? AWF_CF_CLIENT_EOF : AWF_CF_UP_EOF;
            pipe_put(c->px, d);
            break;
        }
        d->queued = (size_t)n;
        moved = true;
        if (i == 0)
            c->bytes_in += (uint64_t)n;
        else
            c->bytes_out += (uint64_t)n;
    }
    if (moved)
        awf_conn_touch(c);
    uint32_t shut = i == 0 ? AWF_CF_UP_SHUT : AWF_CF_CLIENT_SHUT;
    if (d->eof && !d->queued && !d->lead && !(c->flags & shut)) {
        /* The FIN goes on after every byte before it. Synchronous: uv_shutdown would start
         * the stream's own watcher on a fd the poll handle owns now. */
        c->flags |= shut | (i == 0 ? AWF_CF_UP_SHUT_DONE : AWF_CF_CLIENT_SHUT_DONE);
        if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN)
            return -errno;
    }
    return 0;
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct awf_conn *c = h->data;
    struct awf_splice *s = c->splice;
    if (c->state != AWF_CS_TUNNEL)
        return;
    int i = h == &s->poll[0] ? 0 : 1;
    int rc = status;
    /* An error or hang-up shows as readable: the splice that follows reports it. */
    if (rc == 0 && (events & UV_READABLE))
        rc = pump(c, i);
    if (rc == 0 && (events & UV_WRITABLE))
        rc = pump(c, !i);
    if (rc < 0) {
        c->last_err = rc;
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return;
    }
    const uint32_t all =
        AWF_CF_CLIENT_EOF | AWF_CF_UP_EOF | AWF_CF_CLIENT_SHUT_DONE | AWF_CF_UP_SHUT_DONE;
    if ((c->flags & all) == all) {
        awf_conn_close(c);
        return;
    }
    sync_polls(c);
}

/* ---- switching over and closing ---- */

static void poll_closed_cb(uv_handle_t *h)
{
    awf_conn_handle_closed(h->data);
}

int awf_splice_start(struct awf_conn *c, bool from_client, struct awf_buf *b)
{
    struct awf_upstream *up = c->up;
    const uint32_t ends = AWF_CF_CLIENT_EOF | AWF_CF_UP_EOF | AWF_CF_CLIENT_SHUT | AWF_CF_UP_SHUT;
    if (c->splice || c->px->no_splice || c->state != AWF_CS_TUNNEL || !up || up->closing ||
        (c->flags & ends) || c->pend)
        return -ENOTSUP;
    if (up->writes || c->client_writes)
        return -EAGAIN;
    struct awf_splice *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    c->splice = s; /* freed with the connection (awf_splice_free) */
    for (int i = 0; i < 2; i++)
        s->dir[i].rd = s->dir[i].wr = -1;
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
        /* A watcher is still busy on one of the fds: stay on libuv for this tunnel. */
        for (int i = 0; i < 2; i++) {
            if (s->inited & (1u << i)) {
                c->closes++;
                uv_close((uv_handle_t *)&s->poll[i], poll_closed_cb);
            }
        }
        s->inited = 0;
        awf_conn_sync_reading(c);
        return -EBUSY;
    }
    /* Urgent data at the head of a receive queue makes a TCP splice read return 0, which would
     * pass for EOF and cut the direction short: take it inline as ordinary bytes instead. */
    int on = 1;
    setsockopt(s->fd[0], SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on));
    setsockopt(s->fd[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on));
    s->active = true;
    int i = from_client ? 0 : 1;
    s->dir[i].lead = b;
    int rc = pump(c, i);
    if (rc < 0) {
        c->last_err = rc;
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return 0;
    }
    sync_polls(c);
    return 0;
}

bool awf_splice_active(const struct awf_conn *c)
{
    return c->splice && c->splice->active;
}

void awf_splice_close(struct awf_conn *c)
{
    struct awf_splice *s = c->splice;
    if (!s)
        return;
    for (int i = 0; i < 2; i++) {
        if (s->inited & (1u << i)) {
            c->closes++;
            uv_close((uv_handle_t *)&s->poll[i], poll_closed_cb);
        }
        pipe_put(c->px, &s->dir[i]);
        awf_bufpool_put(&c->px->bufs, s->dir[i].lead);
        s->dir[i].lead = NULL;
    }
    s->inited = 0;
    s->active = false;
}

void awf_splice_free(struct awf_conn *c)
{
    free(c->splice);
    c->splice = NULL;
}
