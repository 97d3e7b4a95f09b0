/* The loss reporter: a thread that says on stderr, with an ISO-8601 UTC timestamp, how many
 * access-log lines were lost and why, at most once a second, whatever blocks the writer (a
 * FIFO nobody reads, a hung NFS server). It sleeps until there is news, so an idle or healthy
 * proxy pays no wake-up for it. Lines look like:
 *   2026-12-05T09:01:02.123Z awf-proxy: access log /var/log/a.log: 17 lines lost (No space
 *   left on device); 17 since start
 *   2026-12-05T09:01:03.125Z awf-proxy: access log /var/log/a.log: writing again
 *   2026-12-05T09:01:04.130Z awf-proxy: access log /var/log/a.log was deleted; created it again
 *   2026-12-05T09:01:05.002Z awf-proxy: access log /run/awf.fifo: a reader opened the FIFO;
 *   writing
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "log/writer-int.h"

#define REPORT_INTERVAL_NS 1000000000LL

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void log_report_init(struct awf_log *log)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&log->rcv, &a);
    pthread_condattr_destroy(&a);
    pthread_mutex_init(&log->rmu, NULL);
}

void log_report_fini(struct awf_log *log)
{
    pthread_cond_destroy(&log->rcv);
    pthread_mutex_destroy(&log->rmu);
}

void log_report_wake(struct awf_log *log)
{
    /* Only the first piece of news takes the mutex: a storm of drops costs one atomic each. */
    if (__atomic_exchange_n(&log->news, true, __ATOMIC_ACQ_REL))
        return;
    pthread_mutex_lock(&log->rmu);
    pthread_cond_signal(&log->rcv);
    pthread_mutex_unlock(&log->rmu);
}

static const char *reason(int err, char *buf, size_t len)
{
    if (err == AWF_LOG_E_QUEUE_FULL) {
        snprintf(buf, len, "the writer is blocked: %u MiB queued", AWF_LOG_QUEUE_CAP >> 20);
        return buf;
    }
    if (err == -EAGAIN)
        return "no reader at exit: it took nothing for 0.5 s";
    if (err == -ENXIO) /* only the writer's wait_reader() gives it */
        return "no reader at exit: nobody opened the FIFO";
    return strerror(err < 0 ? -err : err);
}

/* "2026-12-05T09:01:02.123Z" */
static void iso_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* One line per output with news. The reporter thread only (or the last report at stop). */
static void report(struct awf_log *log)
{
    char when[40], why[64];
    iso_now(when, sizeof(when));
    for (size_t i = 0; i < log->n; i++) {
        struct log_output *o = &log->outs[i];
        const char *path = o->path ? o->path : "-";
        if (__atomic_exchange_n(&o->attached, false, __ATOMIC_RELAXED))
            fprintf(stderr, "%s awf-proxy: access log %s: a reader opened the FIFO; writing\n",
                    when, path);
        if (__atomic_exchange_n(&o->recreated, false, __ATOMIC_RELAXED))
            fprintf(stderr, "%s awf-proxy: access log %s was deleted; created it again\n", when,
                    path);
        uint64_t d = __atomic_load_n(&o->dropped, __ATOMIC_RELAXED);
        if (d > o->reported) {
            int err = __atomic_load_n(&o->error, __ATOMIC_RELAXED);
            fprintf(stderr,
                    "%s awf-proxy: access log %s: %llu line%s lost (%s); %llu since start\n", when,
                    path, (unsigned long long)(d - o->reported), d - o->reported == 1 ? "" : "s",
                    reason(err, why, sizeof(why)), (unsigned long long)d);
            o->reported = d;
            o->reported_failing = true;
        }
        /* In the same report as the loss when a good write came since: no further news may
         * follow to bring it out. */
        if (o->reported_failing && !__atomic_load_n(&o->failing, __ATOMIC_RELAXED)) {
            fprintf(stderr, "%s awf-proxy: access log %s: writing again\n", when, path);
            o->reported_failing = false;
        }
    }
}

static void *reporter_main(void *arg)
{
    struct awf_log *log = arg;
    long long last = 0; /* when the last report was made; 0: never */
    pthread_mutex_lock(&log->rmu);
    while (!log->rstop) {
        if (!__atomic_load_n(&log->news, __ATOMIC_ACQUIRE)) {
            pthread_cond_wait(&log->rcv, &log->rmu);
            continue;
        }
        long long now = now_ns();
        if (last && now < last + REPORT_INTERVAL_NS) {
            /* At most one report a second: what happens meanwhile goes into the next one. */
            long long at = last + REPORT_INTERVAL_NS;
            struct timespec ts = {.tv_sec = at / 1000000000LL, .tv_nsec = at % 1000000000LL};
            pthread_cond_timedwait(&log->rcv, &log->rmu, &ts);
            continue;
        }
        __atomic_store_n(&log->news, false, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&log->rmu);
        report(log);
        last = now;
        pthread_mutex_lock(&log->rmu);
    }
    pthread_mutex_unlock(&log->rmu);
    return NULL;
}

int log_report_start(struct awf_log *log)
{
    int rc = pthread_create(&log->reporter, NULL, reporter_main, log);
    log->rstarted = rc == 0;
    return -rc;
}

void log_report_stop(struct awf_log *log)
{
    if (log->rstarted) {
        pthread_mutex_lock(&log->rmu);
        log->rstop = true;
        pthread_cond_signal(&log->rcv);
        pthread_mutex_unlock(&log->rmu);
        pthread_join(log->reporter, NULL);
        log->rstarted = false;
    }
    /* The last word, even within a second of the previous one: nothing is left unsaid. */
    if (__atomic_load_n(&log->news, __ATOMIC_ACQUIRE))
        report(log);
}

size_t awf_log_stats(const struct awf_log *log, struct awf_log_output_stats *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; log && i < log->n && n < max; i++, n++) {
        const struct log_output *o = &log->outs[i];
        out[n] = (struct awf_log_output_stats){
            .path = o->path ? o->path : "-",
            .written = __atomic_load_n(&o->written, __ATOMIC_RELAXED),
            .dropped = __atomic_load_n(&o->dropped, __ATOMIC_RELAXED),
            .error = __atomic_load_n(&o->error, __ATOMIC_RELAXED),
            .failing = __atomic_load_n(&o->failing, __ATOMIC_RELAXED),
        };
    }
    return n;
}

uint64_t log_dropped(const struct awf_log *log)
{
    uint64_t d = 0;
    for (size_t i = 0; log && i < log->n; i++)
        d += __atomic_load_n(&log->outs[i].dropped, __ATOMIC_RELAXED);
    return d;
}
