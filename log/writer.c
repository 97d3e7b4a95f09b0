/* The access-log writer. Event loops render lines and append them to a per-output queue under
 * one short mutex; a single writer thread swaps each queue out and write(2)s it as one batch.
 * Only the writer touches the file descriptors, and every append is a whole line, so lines are
 * never interleaved or cut, however many loops log at once. */

#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Over this many queued bytes per output (the disk is stuck or far too slow), lines are dropped
 * and counted rather than letting memory grow without bound. */
#define LOG_QUEUE_CAP (64u << 20)
/* A drained queue buffer bigger than this is freed rather than kept for the next batch, so one
 * burst does not pin its peak memory for the life of the process. */
#define LOG_KEEP_CAP (1u << 20)
/* How long the writer lets lines gather after a wake-up: one futex wake and one write(2) per
 * output per batch instead of per line, for at most 2 ms of extra delay on disk. */
#define LOG_BATCH_NS 2000000L
/* Lines up to this size render on the stack; longer ones get one malloc. */
#define LOG_LINE_STACK 4096

struct qbuf {
    char *p;
    size_t len;
    size_t cap;
    uint64_t lines;
};

struct log_output {
    struct awf_logformat *fmt; /* owned */
    char *path;                /* owned; NULL for stdout */
    int fd;
    struct qbuf q; /* guarded by awf_log.mu */
};

struct awf_log {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the writer waits on it for lines, reopen or stop */
    pthread_t thread;
    bool started;
    bool stop;    /* guarded by mu */
    bool reopen;  /* guarded by mu */
    bool pending; /* some queue is non-empty; guarded by mu */
    bool strip_query;
    uint64_t dropped; /* __atomic */
    size_t n;
    struct log_output outs[];
};

static int open_path(const char *path)
{
    int fd;
    do {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static void count_dropped(struct awf_log *log, uint64_t n)
{
    __atomic_add_fetch(&log->dropped, n, __ATOMIC_RELAXED);
}

/* Writes all of p, waiting out EAGAIN (stdout may be a non-blocking pipe). Returns 0 or
 * -errno; on error the rest of the batch is lost. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                (void)poll(&pfd, 1, 1000);
                continue;
            }
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Opens the new file before closing the old one: if the directory is gone, lines keep going to
 * the old file rather than nowhere. */
static void reopen_outputs(struct awf_log *log)
{
    for (size_t i = 0; i < log->n; i++) {
        struct log_output *o = &log->outs[i];
        if (!o->path)
            continue;
        int fd = open_path(o->path);
        if (fd < 0) {
            fprintf(stderr, "awf-proxy: cannot reopen access log %s: %s\n", o->path, strerror(-fd));
            continue;
        }
        close(o->fd);
        o->fd = fd;
    }
}

static void *writer_main(void *arg)
{
    struct awf_log *log = arg;
    struct qbuf *batch = calloc(log->n ? log->n : 1, sizeof(*batch));

    pthread_mutex_lock(&log->mu);
    for (;;) {
        while (!log->pending && !log->reopen && !log->stop)
            pthread_cond_wait(&log->cv, &log->mu);
        if (!log->stop && !log->reopen) {
            /* Let a batch gather: producers only signal on empty -> non-empty, so while this
             * thread naps `pending` stays set and a busy proxy pays no wake-up per line. */
            pthread_mutex_unlock(&log->mu);
            nanosleep(&(struct timespec){.tv_nsec = LOG_BATCH_NS}, NULL);
            pthread_mutex_lock(&log->mu);
        }
        bool reopen = log->reopen;
        bool stop = log->stop;
        log->reopen = false;
        log->pending = false;
        /* Swap each queue with the (empty) batch buffer: producers keep appending to a warm
         * buffer while this thread writes the other one. */
        for (size_t i = 0; batch && i < log->n; i++) {
            struct qbuf t = log->outs[i].q;
            log->outs[i].q = batch[i];
            batch[i] = t;
        }
        pthread_mutex_unlock(&log->mu);

        if (!batch) {
            /* Could not allocate at start: nothing can be written; drain and count. */
            pthread_mutex_lock(&log->mu);
            for (size_t i = 0; i < log->n; i++) {
                count_dropped(log, log->outs[i].q.lines);
                log->outs[i].q.len = 0;
                log->outs[i].q.lines = 0;
            }
            if (stop)
                break;
            continue;
        }
        /* Lines queued before a reopen was asked for go to the old file (they were logged
         * before logrotate's postrotate ran), the rest to the new one. */
        for (size_t i = 0; i < log->n; i++) {
            struct qbuf *b = &batch[i];
            if (b->len && write_all(log->outs[i].fd, b->p, b->len) < 0)
                count_dropped(log, b->lines);
            b->len = 0;
            b->lines = 0;
            if (b->cap > LOG_KEEP_CAP) {
                free(b->p);
                b->p = NULL;
                b->cap = 0;
            }
        }
        if (reopen)
            reopen_outputs(log);

        pthread_mutex_lock(&log->mu);
        if (stop && !log->pending)
            break;
    }
    pthread_mutex_unlock(&log->mu);
    for (size_t i = 0; batch && i < log->n; i++)
        free(batch[i].p);
    free(batch);
    return NULL;
}

static void destroy_outputs(struct awf_log *log)
{
    for (size_t i = 0; i < log->n; i++) {
        struct log_output *o = &log->outs[i];
        if (o->path && o->fd >= 0)
            close(o->fd);
        free(o->path);
        free(o->q.p);
        awf_logformat_free(o->fmt);
    }
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    free(log);
}

int awf_log_create(const struct awf_log_output_spec *outs, size_t n, bool strip_query,
                   const char *awf_version, struct awf_log **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    struct awf_log *log = calloc(1, sizeof(*log) + n * sizeof(log->outs[0]));
    if (!log)
        return -ENOMEM;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    log->strip_query = strip_query;
    for (size_t i = 0; i < n; i++)
        log->outs[i].fd = -1;
    log->n = n;

    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct log_output *o = &log->outs[i];
        const char *path = outs[i].path ? outs[i].path : "-";
        char ferr[256];
        rc = awf_logformat_compile(outs[i].format, awf_version, &o->fmt, ferr, sizeof(ferr));
        if (rc < 0) {
            if (err && errlen)
                snprintf(err, errlen, "access log %s: %s", path, ferr);
            break;
        }
        if (strcmp(path, "-") == 0) {
            o->fd = STDOUT_FILENO;
            continue;
        }
        o->path = strdup(path);
        if (!o->path) {
            rc = -ENOMEM;
            break;
        }
        o->fd = open_path(path);
        if (o->fd < 0) {
            rc = o->fd;
            if (err && errlen)
                snprintf(err, errlen, "cannot open access log %s: %s", path, strerror(-rc));
        }
    }
    if (rc == 0) {
        /* The writer must never take SIGTERM/SIGUSR1 meant for the event loop's handlers:
         * start it with every signal blocked (the mask is inherited). */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = -pthread_create(&log->thread, NULL, writer_main, log);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc < 0 && err && errlen)
            snprintf(err, errlen, "cannot start the access log writer: %s", strerror(-rc));
        log->started = rc == 0;
    }
    if (rc < 0) {
        destroy_outputs(log);
        return rc;
    }
    *out = log;
    return 0;
}

static bool enqueue(struct qbuf *q, const char *line, size_t len)
{
    if (q->len + len > q->cap) {
        if (q->len + len > LOG_QUEUE_CAP)
            return false;
        size_t cap = q->cap ? q->cap : 16384;
        while (cap < q->len + len)
            cap *= 2;
        char *p = realloc(q->p, cap);
        if (!p)
            return false;
        q->p = p;
        q->cap = cap;
    }
    memcpy(q->p + q->len, line, len);
    q->len += len;
    q->lines++;
    return true;
}

void awf_log_write(struct awf_log *log, const struct awf_log_record *r)
{
    if (!log)
        return;
    for (size_t i = 0; i < log->n; i++) {
        struct log_output *o = &log->outs[i];
        if (i < 32 && (r->skip >> i) & 1)
            continue;
        char stack[LOG_LINE_STACK];
        char *line = stack;
        /* Render outside the lock: the mutex only covers the memcpy into the queue. */
        size_t len = awf_logformat_render(o->fmt, r, log->strip_query, stack, sizeof(stack));
        if (len >= sizeof(stack)) {
            line = malloc(len + 1);
            if (!line) {
                count_dropped(log, 1);
                continue;
            }
            awf_logformat_render(o->fmt, r, log->strip_query, line, len + 1);
        }
        pthread_mutex_lock(&log->mu);
        bool ok = enqueue(&o->q, line, len);
        bool wake = ok && !log->pending;
        if (ok)
            log->pending = true;
        pthread_mutex_unlock(&log->mu);
        /* Signal only on empty -> non-empty: a busy writer will see the rest on its next swap. */
        if (wake)
            pthread_cond_signal(&log->cv);
        if (!ok)
            count_dropped(log, 1);
        if (line != stack)
            free(line);
    }
}

void awf_log_reopen(struct awf_log *log)
{
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    log->reopen = true;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

void awf_log_destroy(struct awf_log *log)
{
    if (!log)
        return;
    if (log->started) {
        pthread_mutex_lock(&log->mu);
        log->stop = true;
        pthread_cond_signal(&log->cv);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->thread, NULL);
    }
    destroy_outputs(log);
}

uint64_t awf_log_dropped(const struct awf_log *log)
{
    return log ? __atomic_load_n(&log->dropped, __ATOMIC_RELAXED) : 0;
}
