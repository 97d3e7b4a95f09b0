/* See diag.h. */
#include "common/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Set once by `run` before any other thread exists, read-only afterwards: the one global
 * besides signal plumbing, because stderr itself is one per process. */
static bool stamp;

void awf_diag_stamp(bool on)
{
    stamp = on;
}

/* The format attribute lets clang check the callers rather than refuse the vsnprintf below
 * (-Wformat-nonliteral). */
__attribute__((format(printf, 2, 0))) static void vdiag(int fd, const char *fmt, va_list ap)
{
    char line[2048];
    size_t n = 0;
    if (stamp) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "awf-proxy: ");
    int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (m < 0)
        m = 0;
    n = n + (size_t)m < sizeof(line) - 1 ? n + (size_t)m : sizeof(line) - 2; /* cut, not lost */
    line[n++] = '\n';
    fflush(stderr); /* anything still buffered by stdio goes first */
    ssize_t w = write(fd, line, n);
    (void)w; /* nowhere left to report a failed diagnostic */
}

void awf_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(STDERR_FILENO, fmt, ap);
    va_end(ap);
}

void awf_diag_fd(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(fd, fmt, ap);
    va_end(ap);
}
