#ifndef AWF_LOG_WRITER_INT_H
#define AWF_LOG_WRITER_INT_H

/* What writer.c (the queues and the writer thread) and report.c (the loss reporter) share.
 * Not part of the module's API: log/log.h is. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "log/log.h"

struct qbuf {
    char *p;
    size_t len;
    size_t cap;
    uint64_t lines;
};

struct log_output {
    struct awf_log_format *fmt; /* owned */
    char *path;                 /* owned; NULL for stdout */
    int fd;
    bool regular;   /* fd is a regular file: a cut line can be truncated off, deletion noticed */
    int gave_up;    /* writer thread: at exit, why the FIFO was given up on (-errno), else 0 */
    bool no_reader; /* writer thread: fd is -1, the FIFO has had no reader to open it yet */
    struct qbuf q;  /* guarded by awf_log.mu */
    /* Counters, any thread, __atomic: */
    uint64_t written;
    uint64_t dropped;
    int error;      /* why lines were last lost: -errno or AWF_LOG_E_QUEUE_FULL */
    bool failing;   /* the last line for this output was lost; cleared by a good write */
    bool recreated; /* the file was deleted and created again; cleared by the reporter */
    bool attached;  /* a first reader opened the FIFO; cleared by the reporter */
    /* The reporter's own: */
    uint64_t reported;     /* dropped lines already reported */
    bool reported_failing; /* a loss was reported and no "writing again" since */
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
    /* The loss reporter (report.c). */
    pthread_mutex_t rmu;
    pthread_cond_t rcv; /* CLOCK_MONOTONIC */
    pthread_t reporter;
    bool rstarted;
    bool rstop; /* guarded by rmu */
    bool news;  /* __atomic: something for the reporter to say */
    size_t n;
    struct log_output outs[];
};

/* report.c. init/fini bracket the object's life; start/stop the thread (stop makes a last
 * report, so call it after the writer's final flush). wake: any thread, cheap when there is
 * already news waiting. */
void log_report_init(struct awf_log *log);
int log_report_start(struct awf_log *log);
void log_report_wake(struct awf_log *log);
void log_report_stop(struct awf_log *log);
void log_report_fini(struct awf_log *log);

/* Lines lost, all outputs together: queue over its cap, a failed write (ENOSPC, EFBIG, EIO,
 * EPIPE...), out of memory. Should stay 0. Any thread. For the tests: the proxy reads the
 * per-output counters of awf_log_stats(). */
uint64_t log_dropped(const struct awf_log *log);

#endif
