/* The forwarder's query log writer. The queue and the buffer in flight swap roles at each
 * write, so a line is copied once and a busy log costs two buffers. */

#include "dns/fwd_log.h"
#include "common/diag.h"
#include "common/logfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX (1u << 20)
/* A FIFO with no reader yet: how often the open is tried again while lines wait. A FIFO whose
 * pipe is full (its reader stopped reading): the first retry of the write, doubled at each
 * EAGAIN up to NO_READER_RETRY_MS, so a short pause is caught up on soon and a reader that
 * stopped costs ten wake-ups a second. At close, a FIFO that took nothing (or that nobody
 * opened) for STUCK_AT_EXIT_MS is given up on, its lines counted lost: SIGTERM must end the
 * process whatever the log shipper does (as the access logs do). */
#define NO_READER_RETRY_MS 100
#define STALL_RETRY_MS     10
#define STUCK_AT_EXIT_MS   500

static void on_retry(uv_timer_t *t);

/* The timer that retries a FIFO's open or its write. Unreferenced: it never keeps a loop alive
 * on its own; dns_fwd_log_close references it and closes it. */
static void init_retry(struct dns_fwd_log *l)
{
    if (l->retry_init)
        return;
    uv_timer_init(l->loop, &l->retry);
    if (!l->closing)
        uv_unref((uv_handle_t *)&l->retry);
    l->retry.data = l;
    l->retry_init = true;
}

/* l writes to fd from now on. A FIFO (opened by path) stays non-blocking (awf_logfile_open):
 * a full pipe gives EAGAIN in the thread pool instead of pinning a thread there forever, and
 * its lines wait on the loop until the reader reads again. */
static void set_fd(struct dns_fwd_log *l, int fd)
{
    struct stat st;
    l->fd = fd;
    l->fifo = fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
    if (l->fifo)
        init_retry(l);
}

int dns_fwd_log_open(struct dns_fwd_log *l, uv_loop_t *loop, const char *spec, char *err,
                     size_t errlen)
{
    memset(l, 0, sizeof(*l));
    l->loop = loop;
    if (strcmp(spec, "-") == 0) {
        l->fd = STDOUT_FILENO;
        return 0;
    }
    if (strcmp(spec, "stderr") == 0) {
        l->fd = STDERR_FILENO;
        return 0;
    }
    if (!(l->path = strdup(spec)))
        return -ENOMEM;
    bool no_reader;
    int fd = awf_logfile_open(spec, true, &no_reader);
    if (fd >= 0) {
        set_fd(l, fd);
        return 0;
    }
    l->fd = fd;
    if (no_reader) {
        /* Start anyway (the log shipper may come later): on_retry opens it once a reader
         * has, meanwhile lines queue up to QUEUE_MAX. */
        init_retry(l);
        awf_diag("dns.forwarder.log %s: no reader on this FIFO yet; lines wait for one (up to %u "
                 "KiB, then they are counted lost)",
                 spec, QUEUE_MAX >> 10);
        return 0;
    }
    snprintf(err, errlen, "dns.forwarder.log: cannot open %s: %s", spec, strerror(-fd));
    free(l->path);
    l->path = NULL;
    return fd;
}

/* Writes everything to the end, blocking; for shutdown only, never to a FIFO. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    if (n == 0)
        return 0;
    for (const char *e = p + n; p < e && (p = memchr(p, '\n', (size_t)(e - p))); p++)
        lines++;
    return lines;
}

/* What is left of the buffer in flight, then the queue; the file closed. A FIFO gets no
 * blocking write here (its reader may never read again): what it has not taken by now (close_step
 * wrote what it would take) is lost, counted and said once on stderr. */
static void finish(struct dns_fwd_log *l)
{
    if (l->fd < 0 || l->fifo) {
        size_t lost = count_lines(l->out + l->out_done, l->out_len - l->out_done) +
                      count_lines(l->queue, l->queue_len);
        l->dropped += lost;
        if (lost && l->fd < 0)
            awf_diag("dns.forwarder.log %s: no reader at exit: nobody opened the FIFO; %zu lines "
                     "lost",
                     l->path, lost);
        else if (lost)
            awf_diag("dns.forwarder.log %s: the reader stopped reading: %zu lines lost at exit",
                     l->path, lost);
        l->out_done = l->out_len;
        l->queue_len = 0;
    }
    if (l->out_done < l->out_len)
        write_all(l->fd, l->out + l->out_done, l->out_len - l->out_done);
    if (l->queue_len)
        write_all(l->fd, l->queue, l->queue_len);
    if (l->path && l->fd >= 0)
        close(l->fd);
    free(l->path);
    free(l->queue);
    free(l->out);
    l->path = l->queue = l->out = NULL;
}

static void start_write(struct dns_fwd_log *l);

static void on_retry_closed(uv_handle_t *h)
{
    struct dns_fwd_log *l = h->data;
    l->done(l->done_arg);
}

/* The end of a close: finish(), then the retry timer's close if there is one. Returns true when
 * done() will be called later, false when all is done now. */
static bool wind_up(struct dns_fwd_log *l)
{
    finish(l);
    if (!l->retry_init)
        return false;
    l->retry.data = l;
    uv_close((uv_handle_t *)&l->retry, on_retry_closed);
    return true;
}

static bool fifo_pending(const struct dns_fwd_log *l)
{
    return l->fifo && l->fd >= 0 && (l->out_done < l->out_len || l->queue_len);
}

/* Closing, nothing in flight: a FIFO's lines go on being written without blocking (on_written
 * comes back here), then all is wound up and done() called. */
static void close_step(struct dns_fwd_log *l)
{
    if (fifo_pending(l)) {
        start_write(l);
        if (l->writing)
            return;
    }
    if (!wind_up(l))
        l->done(l->done_arg);
}

/* The write found a FIFO's pipe full: the lines stay where they are, and the write is tried
 * again after a back-off. Closing, a FIFO that took nothing for STUCK_AT_EXIT_MS is given up
 * on (finish() counts and reports what it did not take). */
static void stall(struct dns_fwd_log *l)
{
    if (l->closing && uv_now(l->loop) - l->idle_since >= STUCK_AT_EXIT_MS) {
        if (!wind_up(l))
            l->done(l->done_arg);
        return;
    }
    l->stall_ms = l->stall_ms ? l->stall_ms * 2 : STALL_RETRY_MS;
    if (l->stall_ms > NO_READER_RETRY_MS)
        l->stall_ms = NO_READER_RETRY_MS;
    uv_timer_start(&l->retry, on_retry, l->stall_ms, 0);
}

/* A FIFO with no reader yet: tries the open again; a FIFO whose pipe was full: tries the write
 * again. Loop thread; never blocks (O_NONBLOCK). While closing, a FIFO that nobody opened within
 * STUCK_AT_EXIT_MS is given up on (finish() counts and reports the lines). */
static void on_retry(uv_timer_t *t)
{
    struct dns_fwd_log *l = t->data;
    if (l->fd < 0) {
        bool no_reader;
        int fd = awf_logfile_open(l->path, true, &no_reader);
        if (fd < 0) {
            if (!l->closing || uv_now(l->loop) - l->idle_since < STUCK_AT_EXIT_MS)
                return; /* still no reader (or a path that cannot be opened now): try again */
            uv_timer_stop(&l->retry);
            close_step(l);
            return;
        }
        uv_timer_stop(&l->retry);
        set_fd(l, fd);
        l->idle_since = uv_now(l->loop);
        awf_diag("dns.forwarder.log %s: a reader opened the FIFO; writing", l->path);
    }
    if (l->closing)
        close_step(l);
    else
        start_write(l);
}

static void on_written(uv_fs_t *req)
{
    struct dns_fwd_log *l = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    l->writing = false;
    if (r == UV_EAGAIN && l->fifo) {
        stall(l); /* the reader stopped reading: nothing lost yet */
        return;
    }
    if (r > 0) {
        l->stall_ms = 0;
        l->idle_since = uv_now(l->loop);
    }
    if (r > 0 && (size_t)r < l->out_len - l->out_done) {
        l->out_done += (size_t)r; /* a short write: the rest goes next */
    } else {
        /* Done, or failed (a full disk, EPIPE from a FIFO whose reader left): a log line is
         * not worth retrying, but the lines lost are counted. */
        if (r < 0)
            l->dropped += count_lines(l->out + l->out_done, l->out_len - l->out_done);
        l->out_done = l->out_len;
    }
    if (l->closing) {
        close_step(l);
        return;
    }
    start_write(l);
}

static void start_write(struct dns_fwd_log *l)
{
    if (l->writing)
        return;
    if (l->fifo && uv_is_active((uv_handle_t *)&l->retry))
        return;      /* a full pipe: on_retry tries again, not every new line */
    if (l->fd < 0) { /* a FIFO with no reader yet: on_retry starts writing once one came */
        l->reopen_wanted = false; /* nothing to rotate */
        if (l->queue_len && !uv_is_active((uv_handle_t *)&l->retry)) {
            l->retry.data = l;
            uv_timer_start(&l->retry, on_retry, NO_READER_RETRY_MS, NO_READER_RETRY_MS);
        }
        return;
    }
    if (l->out_done == l->out_len) {
        if (l->reopen_wanted && l->path) {
            /* Non-blocking: a FIFO without a reader now keeps its old descriptor. */
            bool no_reader;
            int fd = awf_logfile_open(l->path, true, &no_reader);
            if (fd >= 0) { /* else keep writing to the old file */
                close(l->fd);
                set_fd(l, fd);
            }
        }
        l->reopen_wanted = false;
        if (l->queue_len == 0)
            return;
        /* Swap: the queue goes out, the old out buffer becomes the queue. */
        char *t = l->out;
        size_t cap = l->out_cap;
        l->out = l->queue, l->out_cap = l->queue_cap, l->out_len = l->queue_len;
        l->queue = t, l->queue_cap = cap, l->queue_len = 0;
        l->out_done = 0;
    }
    uv_buf_t b = uv_buf_init(l->out + l->out_done, (unsigned)(l->out_len - l->out_done));
    l->req.data = l;
    if (uv_fs_write(l->loop, &l->req, l->fd, &b, 1, -1, on_written) == 0) {
        l->writing = true;
    } else {
        l->dropped += count_lines(l->out + l->out_done, l->out_len - l->out_done);
        l->out_done = l->out_len;
    }
}

/* Queues one line (with its '\n'); never blocks. */
static void queue_line(struct dns_fwd_log *l, const char *line, size_t len)
{
    if (l->closing)
        return;
    if (l->queue_len + len > QUEUE_MAX) {
        l->dropped++;
        return;
    }
    if (l->queue_len + len > l->queue_cap) {
        size_t cap = l->queue_cap ? l->queue_cap : 4096;
        while (cap < l->queue_len + len)
            cap *= 2;
        char *q = realloc(l->queue, cap);
        if (!q) {
            l->dropped++;
            return;
        }
        l->queue = q;
        l->queue_cap = cap;
    }
    memcpy(l->queue + l->queue_len, line, len);
    l->queue_len += len;
    start_write(l);
}

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        snprintf(out, cap, "-");
    }
}

void dns_fwd_log_query(struct dns_fwd_log *l, const struct sockaddr_storage *peer,
                       const struct dns_wire_query *q, const char *decision, int rcode, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* The name in presentation form, bytes outside [A-Za-z0-9_-] escaped: a query name is
     * the client's to choose and must not be able to forge or split a line. */
    char client[INET6_ADDRSTRLEN + 16], name[4 * AWF_DNS_WIRE_NAME_MAX + 2], tb[16], rb[16];
    char line[sizeof(name) + 160];
    peer_text(peer, client, sizeof(client));
    if (q)
        dns_wire_name_text(q->qname, q->qname_len, name);
    int len = snprintf(line, sizeof(line), "%lld.%03ld %s %s %s %s %s %zu\n", (long long)ts.tv_sec,
                       ts.tv_nsec / 1000000, client, q ? name : "-",
                       q ? dns_wire_type_name(q->qtype, tb) : "-", decision,
                       q ? dns_wire_rcode_name(rcode, rb) : "-", n);
    if (len > 0 && (size_t)len < sizeof(line))
        queue_line(l, line, (size_t)len);
}

void dns_fwd_log_reopen(struct dns_fwd_log *l)
{
    l->reopen_wanted = true;
    start_write(l);
}

bool dns_fwd_log_close(struct dns_fwd_log *l, void (*done)(void *arg), void *arg)
{
    l->closing = true;
    l->done = done;
    l->done_arg = arg;
    l->idle_since = uv_now(l->loop);
    if (l->retry_init) /* a FIFO's retries now keep the loop alive, STUCK_AT_EXIT_MS at most */
        uv_ref((uv_handle_t *)&l->retry);
    if (l->writing)
        return true; /* on_written goes on */
    if (l->fd < 0 && l->queue_len) {
        /* Lines wait for a FIFO's first reader: give it STUCK_AT_EXIT_MS more. */
        uv_timer_start(&l->retry, on_retry, 0, NO_READER_RETRY_MS);
        return true;
    }
    if (l->fifo && uv_is_active((uv_handle_t *)&l->retry))
        return true; /* a full pipe: on_retry goes on */
    if (fifo_pending(l)) {
        start_write(l);
        if (l->writing)
            return true;
    }
    return wind_up(l);
}
