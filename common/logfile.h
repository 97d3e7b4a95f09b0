#ifndef AWF_COMMON_LOGFILE_H
#define AWF_COMMON_LOGFILE_H

/* Opening a log file (access logs, the DNS forwarder's query log, cache_log) without ever
 * blocking on a FIFO that nobody has opened for reading yet: a log shipper started after the
 * proxy must not hold up start-up, a SIGUSR1 reopen, or SIGTERM. */

#include <stdbool.h>

/* Opens path for appending (created 0640), non-blocking, so that a FIFO with no reader fails at
 * once with ENXIO instead of waiting in open(2). The fd returned writes blocking again, except a
 * FIFO when fifo_nonblocking is set (the access log's writer waits out EAGAIN itself). Returns
 * the fd or -errno; *no_reader says that -ENXIO came from a FIFO with no reader yet (a unix
 * socket or a missing device gives ENXIO too: those are errors). */
int awf_logfile_open(const char *path, bool fifo_nonblocking, bool *no_reader);

#endif
