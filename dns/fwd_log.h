#ifndef AWF_DNS_FWD_LOG_H
#define AWF_DNS_FWD_LOG_H

/* The forwarder's query log: whole lines queued in memory and written by libuv's thread pool
 * (uv_fs_write), one write in flight at a time carrying everything queued, so the loop never
 * waits on a disk or a full pipe. Bounded: past 1 MiB queued, lines are dropped and counted.
 * Private to dns/. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "dns/wire.h"

struct dns_fwd_log {
    uv_loop_t *loop;
    char *path; /* owned; NULL for stdout and stderr */
    int fd;     /* -1: a FIFO that has had no reader yet (retry opens it) */
    bool fifo;  /* fd is a FIFO opened by path, non-blocking: a full pipe gives EAGAIN */
    uv_fs_t req;
    uv_timer_t retry;  /* a FIFO: the open (no reader yet) or the write (a full pipe) tried again */
    bool retry_init;   /* retry was initialized (and must be closed) */
    unsigned stall_ms; /* a full pipe: the current back-off before the write is tried again */
    uint64_t idle_since; /* closing: uv_now() when a FIFO last took something (or close began) */
    bool writing, reopen_wanted, closing;
    char *queue, *out; /* owned; lines waiting, lines being written */
    size_t queue_len, queue_cap, out_len, out_done, out_cap;
    uint64_t dropped;
    void (*done)(void *arg);
    void *done_arg;
};

/* spec: a path (appended to, created 0640), "-" for stdout, "stderr". Returns 0, or -errno with
 * err saying which path. Never blocks: a FIFO that nobody reads yet is noted on stderr and
 * opened once a reader comes (lines wait, up to the queue's cap); at close, after 0.5 s more
 * without a reader, its lines are counted lost and reported on stderr. */
int dns_fwd_log_open(struct dns_fwd_log *l, uv_loop_t *loop, const char *spec, char *err,
                     size_t errlen);

/* Queues the line of one query: "TIME CLIENT NAME TYPE DECISION RCODE ANSWERS" (README.md);
 * q NULL for a malformed packet (name, type and rcode "-"). */
void dns_fwd_log_query(struct dns_fwd_log *l, const struct sockaddr_storage *peer,
                       const struct dns_wire_query *q, const char *decision, int rcode, size_t n);

/* Reopens the file (logrotate) once the write in flight is done. */
void dns_fwd_log_reopen(struct dns_fwd_log *l);

/* Writes what is still queued (blocking: this is shutdown; a FIFO without blocking, and one that
 * took nothing, or that nobody opened, for 0.5 s is given up on, its lines counted lost and said
 * on stderr), closes the file and frees. Returns false when done; true when a write is in flight,
 * lines wait for a FIFO's reader, or a timer must close first: done(arg) runs once all that has
 * finished. */
bool dns_fwd_log_close(struct dns_fwd_log *l, void (*done)(void *arg), void *arg);

#endif
