#ifndef AWF_LOG_LOG_H
#define AWF_LOG_LOG_H

/* Access logs: Squid logformat strings compiled once, rendered per transaction, written by a
 * writer thread so an event loop never blocks on disk. Safe to call from several loops. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/error.h"

struct awf_log_format;
struct awf_log;

/* One finished transaction. Every pointer may be NULL and every string may be absent (rendered
 * as "-"); strings need not outlive awf_log_write(). method NULL or "NONE" means no request was
 * read: %la %lp %>rv then render "-", as Squid logs it (log/README.md). */
struct awf_log_record {
    int64_t start_us; /* transaction start, microseconds since the epoch (%tr measures from it) */
    int64_t end_us;   /* when it ended: %ts.%03tu, %tl, %tg use this */
    const struct sockaddr *client;  /* %>a %>p */
    const struct sockaddr *local;   /* %la %lp %>la %>lp: the listener address */
    const struct sockaddr *server;  /* %<a %<p: the upstream dialled; NULL: "-" */
    const char *method;             /* %rm: "GET", "CONNECT"; NULL: no request */
    const char *url;                /* %ru as Squid shows it: "http://h/p", "h:443", "error:..." */
    const char *domain;             /* %>rd */
    uint8_t http_major, http_minor; /* %rv %>rv; 0.0 for no request, as Squid */
    int status;                     /* %>Hs: status sent to the client; 0 when none */
    int upstream_status;            /* %<Hs: 0 when none */
    const char *tag;                /* %Ss: "TCP_TUNNEL", "TCP_DENIED", "NONE_NONE", ... */
    const char *hier;               /* %Sh: "HIER_DIRECT", "HIER_NONE", "ORIGINAL_DST" */
    uint64_t bytes_to_client;       /* %<st */
    uint64_t bytes_from_client;     /* %>st */
    const char *mime;               /* %mt: reply Content-Type */
    const char *user;               /* %un %[un */
    /* %{Name}>h and %{Name}<h: request and reply header lookup; NULL when not known. The
     * returned value is borrowed until the function is called again. */
    const char *(*req_header)(void *ctx, const char *name, size_t *len);
    const char *(*rep_header)(void *ctx, const char *name, size_t *len);
    void *header_ctx;
    uint32_t skip; /* bit i set: output i does not log this record (squid.conf access_log
                      ACL conditions, awf_policy_log_wanted()); outputs 32 and up always log */
};

/* Compiles a Squid logformat string ("%ts.%03tu %6tr %>a ..."). Built-in names
 * "firewall_detailed", "audit_jsonl", "squid" are accepted too. Returns 0 and *out, or
 * AWF_E_LOGFORMAT with err naming the offset and code at fault. awf_version fills
 * ${AWF_VERSION} in audit_jsonl. */
int awf_log_format_compile(const char *fmt, const char *awf_version, struct awf_log_format **out,
                           char *err, size_t errlen);
void awf_log_format_free(struct awf_log_format *f);

struct awf_log_output_spec {
    const char *format; /* built-in name or logformat string */
    const char *path;   /* "-" is stdout */
};

/* Opens every output (files appended to, created 0640) and starts the writer thread. */
int awf_log_create(const struct awf_log_output_spec *outs, size_t n, bool strip_query,
                   const char *awf_version, struct awf_log **out, char *err, size_t errlen);

/* Renders r for every output and queues the lines; never blocks on I/O. Thread-safe. */
void awf_log_write(struct awf_log *log, const struct awf_log_record *r);

/* Reopens files (logrotate, SIGUSR1). Thread-safe, asynchronous. Takes a mutex, so it is not
 * async-signal-safe: call it from the loop's SIGUSR1 watcher (uv_signal_t), not a raw handler.
 * Lines logged before the call go to the old file, lines logged after it completes to the new. */
void awf_log_reopen(struct awf_log *log);

/* Writes out everything queued, stops the writer, closes files and frees. */
void awf_log_destroy(struct awf_log *log);

/* Per output, at most this many bytes wait for the writer; lines beyond are lost (counted). */
#define AWF_LOG_QUEUE_CAP (64u << 20)
/* The error of a line lost because its output's queue was full (the writer is blocked). */
#define AWF_LOG_E_QUEUE_FULL AWF_E_LIMIT

/* One output's counters, for metrics and health checks. Losses are also reported on stderr, at
 * most once a second, with an ISO-8601 UTC timestamp (log/README.md). */
struct awf_log_output_stats {
    const char *path; /* "-" for stdout; valid while the log lives */
    uint64_t written; /* lines written out */
    uint64_t dropped; /* lines lost */
    int error;        /* why lines were last lost: -errno or AWF_LOG_E_QUEUE_FULL; 0: never */
    bool failing;     /* the last line for this output was lost (no good write since) */
};

/* Fills out[] with up to max outputs' counters (in the order given to awf_log_create) and
 * returns how many. Any thread; each counter is read atomically, not all at one instant. */
size_t awf_log_stats(const struct awf_log *log, struct awf_log_output_stats *out, size_t max);

#endif
