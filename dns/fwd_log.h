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
    int fd;
    uv_fs_t req;
    bool writing, reopen_wanted, closing;
    char *queue, *out; /* owned; lines waiting, lines being written */
    size_t queue_len, queue_cap, out_len, out_done, out_cap;
    uint64_t dropped;
    void (*done)(void *arg);
    void *done_arg;
};

/* spec: a path (appended to, created 0640), "-" for stdout, "stderr". Returns 0, or -errno with
 * err saying which path. */
int dns_fwd_log_open(struct dns_fwd_log *l, uv_loop_t *loop, const char *spec, char *err,
                     size_t errlen);

/* Queues the line of one query: "TIME CLIENT NAME TYPE DECISION RCODE ANSWERS" (README.md);
 * q NULL for a malformed packet (name, type and rcode "-"). */
void dns_fwd_log_query(struct dns_fwd_log *l, const struct sockaddr_storage *peer,
                       const struct dns_wire_query *q, const char *decision, int rcode, size_t n);

/* Reopens the file (logrotate) once the write in flight is done. */
void dns_fwd_log_reopen(struct dns_fwd_log *l);

/* Writes what is still queued (blocking: this is shutdown), closes the file and frees. Returns
 * false when done; true when a write is in flight, and done(arg) runs once it has finished. */
bool dns_fwd_log_close(struct dns_fwd_log *l, void (*done)(void *arg), void *arg);

#endif
