/* The access-log writer. Event loops render lines and append them to a per-output queue under
 * one short mutex; a single writer thread swaps each queue out and write(2)s it as one batch.
 * Only the writer touches the file descriptors, and every append is a whole line, so lines are
 * never interleaved or cut, however many loops log at once. Lost lines are counted per output
 * and reported on stderr by a third thread (report.c), never silently. */

#include "log/log.h"
#include "log/logformat-int.h"
#include "log/writer-int.h"
#include "common/diag.h"
#include "common/logfile.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Over AWF_LOG_QUEUE_CAP queued bytes per output (the disk is stuck or far too slow), lines are
 * dropped and counted rather than letting memory grow without bound. */
/* A drained queue buffer bigger than this is freed rather than kept for the next batch, so one
 * burst does not pin its peak memory for the life of the process. */
#define LOG_KEEP_CAP (1u << 20)
/* How long the writer lets lines gather after a wake-up: one futex wake and one write(2) per
 * output per batch instead of per line, for at most 2 ms of extra delay on disk. */
#define LOG_BATCH_NS 2000000L
/* At exit, a FIFO whose reader took nothing for this long is given up on (the rest counted and
 * reported lost), so that SIGTERM ends the process well within a second. */
#define STUCK_AT_EXIT_MS 500
/* How often the writer tries again to open a FIFO that has no reader yet, while lines wait. */
#define NO_READER_RETRY_MS 100
/* Lines up to this size render on the stack; longer ones get one malloc. */
#define LOG_LINE_STACK 4096

/* Opened non-blocking (common/logfile.h), so that a FIFO with no reader yet fails at once
 * (ENXIO) instead of blocking open(2) until one comes: the proxy must start and serve, and
 * SIGTERM must end it, whatever the log shipper on the other end does. A FIFO stays
 * non-blocking (a reader that stops reading must not pin the writer in write(2) beyond what
 * write_all() decides); anything else goes back to blocking writes. Returns the fd or -errno;
 * *no_reader set with -ENXIO: a FIFO that nobody has open for reading. */
static int open_path(const char *path, bool *no_reader)
{
    return awf_logfile_open(path, true, no_reader);
}

/* n lines of o are lost because of err (-errno, or AWF_LOG_E_QUEUE_FULL): counted, and the
 * reporter is told. Any thread. */
static void count_dropped(struct awf_log *log, struct log_output *o, uint64_t n, int err)
{
    if (n == 0)
        return;
    __atomic_add_fetch(&o->dropped, n, __ATOMIC_RELAXED);
    __atomic_store_n(&o->error, err, __ATOMIC_RELAXED);
    __atomic_store_n(&o->failing, true, __ATOMIC_RELAXED);
    log_report_wake(log);
}

static bool is_regular(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Writes all of p, waiting out EAGAIN (a FIFO, stdout as a non-blocking pipe) for as long as
 * the reader takes — except once the log is stopping, when a reader that took nothing for
 * STUCK_AT_EXIT_MS is given up on (-EAGAIN): SIGTERM must end the process, not wait forever on
 * a stopped log shipper. Returns 0 or -errno; *done says how much was written either way. */
static int write_all(struct awf_log *log, int fd, const char *p, size_t n, size_t *done)
{
    *done = 0;
    int idle_ms = 0;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (__atomic_load_n(&log->stop, __ATOMIC_RELAXED) && idle_ms >= STUCK_AT_EXIT_MS)
                    return -EAGAIN;
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, 100) == 0)
                    idle_ms += 100;
                continue;
            }
            return -errno;
        }
        idle_ms = 0;
        p += w;
        n -= (size_t)w;
        *done += (size_t)w;
    }
    return 0;
}

/* o now writes to fd (the old one, if any, closed). Writer thread, or create before it runs. */
static void set_fd(struct awf_log *log, struct log_output *o, int fd)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = fd;
    o->regular = is_regular(fd);
    if (o->no_reader) {
        o->no_reader = false;
        __atomic_store_n(&o->attached, true, __ATOMIC_RELAXED);
        log_report_wake(log);
    }
}

/* A FIFO with no reader yet (the proxy started before its log shipper): the writer waits for
 * one as it waits for a slow reader, trying the open every NO_READER_RETRY_MS, while new lines
 * queue (the queue cap applies). Once the log is stopping, a reader that did not come within
 * STUCK_AT_EXIT_MS is given up on (-ENXIO). Returns 0 with o->fd open, or -errno. */
static int wait_reader(struct awf_log *log, struct log_output *o)
{
    for (int idle_ms = 0;; idle_ms += NO_READER_RETRY_MS) {
        bool no_reader;
        int fd = open_path(o->path, &no_reader);
        if (fd >= 0) {
            set_fd(log, o, fd);
            return 0;
        }
        if (!no_reader)
            return fd;
        if (__atomic_load_n(&log->stop, __ATOMIC_RELAXED) && idle_ms >= STUCK_AT_EXIT_MS)
            return -ENXIO;
        nanosleep(&(struct timespec){.tv_nsec = NO_READER_RETRY_MS * 1000000L}, NULL);
    }
}

/* A file that was deleted under us is created again (with a note on stderr) rather than
 * filling an invisible inode; if that fails, the batch is lost and counted. fstat per batch,
 * not per line: at most one every LOG_BATCH_NS. Returns 0 or -errno. */
static int check_deleted(struct awf_log *log, struct log_output *o)
{
    struct stat st;
    if (!o->path || !o->regular || fstat(o->fd, &st) != 0 || st.st_nlink > 0)
        return 0;
    bool no_reader;
    int fd = open_path(o->path, &no_reader);
    if (fd < 0)
        return fd;
    set_fd(log, o, fd);
    __atomic_store_n(&o->recreated, true, __ATOMIC_RELAXED);
    log_report_wake(log);
    return 0;
}

/* Writes one batch of whole lines. When a write fails part-way (a full disk), the lines that
 * made it count as written, the rest as lost, and a line the failure cut is truncated off a
 * regular file: the file never ends in half a line that the next one would run into. */
static void write_batch(struct awf_log *log, struct log_output *o, const struct qbuf *b)
{
    size_t done = 0;
    if (o->gave_up) { /* the rest of the final flush goes the same way, without waiting again */
        count_dropped(log, o, b->lines, o->gave_up);
        return;
    }
    int rc = o->fd < 0 ? wait_reader(log, o) : check_deleted(log, o);
    if (rc == 0)
        rc = write_all(log, o->fd, b->p, b->len, &done);
    if (rc == -EAGAIN || (rc == -ENXIO && o->no_reader))
        o->gave_up = rc;
    if (rc == 0) {
        __atomic_add_fetch(&o->written, b->lines, __ATOMIC_RELAXED);
        if (__atomic_exchange_n(&o->failing, false, __ATOMIC_RELAXED))
            log_report_wake(log); /* "writing again" */
        return;
    }
    uint64_t whole = 0;
    size_t end = 0; /* just past the last whole line written */
    for (const char *q = b->p, *e = b->p + done; q < e;) {
        const char *nl = memchr(q, '\n', (size_t)(e - q));
        if (!nl)
            break;
        whole++;
        q = nl + 1;
        end = (size_t)(q - b->p);
    }
    if (done > end && o->regular) {
        off_t at = lseek(o->fd, 0, SEEK_CUR); /* O_APPEND: just past our own bytes */
        if (at >= (off_t)(done - end) && ftruncate(o->fd, at - (off_t)(done - end)) != 0)
            at = -1; /* nothing more to do: the cut line stays, the count says so */
    }
    __atomic_add_fetch(&o->written, whole, __ATOMIC_RELAXED);
    count_dropped(log, o, b->lines - whole, rc);
}

/* Opens the new file before closing the old one: if the directory is gone, lines keep going to
 * the old file rather than nowhere. A FIFO with no reader now keeps what it has (its old
 * descriptor, or the wait for a first reader): there is nothing to rotate. */
static void reopen_outputs(struct awf_log *log)
{
    for (size_t i = 0; i < log->n; i++) {
        struct log_output *o = &log->outs[i];
        if (!o->path)
            continue;
        bool no_reader;
        int fd = open_path(o->path, &no_reader);
        if (fd < 0) {
            if (!no_reader)
                awf_diag("cannot reopen access log %s: %s", o->path, strerror(-fd));
            continue;
        }
        set_fd(log, o, fd);
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
                count_dropped(log, &log->outs[i], log->outs[i].q.lines, -ENOMEM);
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
            if (b->len)
                write_batch(log, &log->outs[i], b);
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
        awf_log_format_free(o->fmt);
    }
    log_report_fini(log);
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
    log_report_init(log);
    log->strip_query = strip_query;
    for (size_t i = 0; i < n; i++)
        log->outs[i].fd = -1;
    log->n = n;

    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct log_output *o = &log->outs[i];
        const char *path = outs[i].path ? outs[i].path : "-";
        char ferr[256];
        rc = awf_log_format_compile(outs[i].format, awf_version, &o->fmt, ferr, sizeof(ferr));
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
        int fd = open_path(path, &o->no_reader);
        if (fd >= 0) {
            o->fd = fd;
            o->regular = is_regular(fd);
        } else if (o->no_reader) {
            /* Start anyway: the writer opens it when a reader comes (wait_reader). */
            awf_diag("access log %s: no reader on this FIFO yet; lines wait for one (up to %u "
                     "MiB, then they are counted lost)",
                     path, AWF_LOG_QUEUE_CAP >> 20);
        } else {
            rc = fd;
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
        log->started = rc == 0;
        if (rc == 0)
            rc = log_report_start(log);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc < 0 && err && errlen)
            snprintf(err, errlen, "cannot start the access log writer: %s", strerror(-rc));
    }
    if (rc < 0) {
        if (log->started)
            awf_log_destroy(log); /* stops the writer, then frees */
        else
            destroy_outputs(log);
        return rc;
    }
    *out = log;
    return 0;
}

static bool enqueue(struct qbuf *q, const char *line, size_t len)
{
    if (q->len + len > q->cap) {
        if (q->len + len > AWF_LOG_QUEUE_CAP)
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
        size_t len = log_format_render(o->fmt, r, log->strip_query, stack, sizeof(stack));
        if (len >= sizeof(stack)) {
            line = malloc(len + 1);
            if (!line) {
                count_dropped(log, o, 1, -ENOMEM);
                continue;
            }
            log_format_render(o->fmt, r, log->strip_query, line, len + 1);
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
            count_dropped(log, o, 1, AWF_LOG_E_QUEUE_FULL);
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
        __atomic_store_n(&log->stop, true, __ATOMIC_RELAXED); /* write_all() reads it unlocked */
        pthread_cond_signal(&log->cv);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->thread, NULL);
    }
    /* After the writer: what the last flush lost is reported too. */
    log_report_stop(log);
    destroy_outputs(log);
}
