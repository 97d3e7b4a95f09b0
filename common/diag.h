#ifndef AWF_COMMON_DIAG_H
#define AWF_COMMON_DIAG_H

/* Diagnostics: one line "awf-proxy: message" on stderr, written with one write(2) so lines from
 * several threads never interleave. `run` turns stamping on before it starts any thread: its
 * stderr (or squid.conf's cache_log) is a log that people read later, so every line then starts
 * with an ISO-8601 UTC time, "2026-12-05T09:01:02.123Z awf-proxy: ...", the form the log loss
 * reports use. One-shot commands (check, explain, netfilter...) print bare
 * "awf-proxy: FILE:LINE:COL: reason" lines, as compilers do, for scripts and editors. */

#include <stdbool.h>

/* Process-wide (one stderr per process); call before any thread that prints starts. */
void awf_diag_stamp(bool on);

void awf_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same to another descriptor (the readiness line also goes to the original stderr when
 * stderr was redirected to a cache_log). */
void awf_diag_fd(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
