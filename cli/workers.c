/* Extra event-loop threads, one proxy each. See workers.h. */
#include "cli/workers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "proxy/proxy.h"

struct worker {
    uv_loop_t loop;
    uv_async_t wake; /* main -> worker: a new policy or a stop is waiting under mu */
    uv_thread_t thread;
    struct awf_proxy *proxy; /* NULL once its shutdown completed */
    uv_mutex_t mu;
    struct awf_policy *next_policy;        /* guarded by mu; a reference the worker takes over */
    struct awf_dns_hosts_file *next_hosts; /* guarded by mu; likewise */
    bool stop;                             /* guarded by mu */
    uint64_t drain_ms;                     /* guarded by mu */
    struct cli_workers *owner;             /* NULL while not running (nobody to tell) */
};

struct cli_workers {
    size_t n;
    size_t running;    /* __atomic: workers whose shutdown has not completed */
    uv_async_t *done;  /* the main loop's; sent as each worker finishes */
    struct worker w[]; /* owned; freed by cli_workers_join */
};

unsigned cli_workers_wanted(const struct awf_settings *s)
{
    unsigned n = s->threads ? s->threads : uv_available_parallelism();
    return n ? n : 1;
}

static void on_proxy_done(void *arg)
{
    struct worker *w = arg;
    w->proxy = NULL;
    uv_close((uv_handle_t *)&w->wake, NULL); /* the last handle: the loop ends */
    if (w->owner != NULL) {
        /* Send first: once running reaches 0 the main loop may close its async handle. */
        uv_async_send(w->owner->done);
        __atomic_sub_fetch(&w->owner->running, 1, __ATOMIC_ACQ_REL);
    }
}

static void on_wake(uv_async_t *h)
{
    struct worker *w = h->data;
    uv_mutex_lock(&w->mu);
    struct awf_policy *p = w->next_policy;
    struct awf_dns_hosts_file *hosts = w->next_hosts;
    w->next_policy = NULL;
    w->next_hosts = NULL;
    bool stop = w->stop;
    uint64_t drain = w->drain_ms;
    uv_mutex_unlock(&w->mu);
    if (p != NULL && w->proxy != NULL)
        awf_proxy_set_policy(w->proxy, p);
    if (hosts != NULL && w->proxy != NULL)
        awf_proxy_set_hosts(w->proxy, hosts);
    if (p != NULL)
        awf_policy_unref(p);
    awf_dns_hosts_release(hosts);
    if (stop && w->proxy != NULL && !uv_is_closing((uv_handle_t *)&w->wake))
        awf_proxy_shutdown(w->proxy, drain, on_proxy_done, w);
}

static void join_all(struct cli_workers *ws);

static void worker_main(void *arg)
{
    struct worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Tears down a worker whose thread never started: its loop runs here until its handles close. */
static void abandon(struct worker *w)
{
    if (w->proxy != NULL)
        awf_proxy_shutdown(w->proxy, 0, on_proxy_done, w);
    else
        uv_close((uv_handle_t *)&w->wake, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    uv_mutex_destroy(&w->mu);
}

int cli_workers_start(size_t n, struct awf_proxy *main_proxy, struct awf_policy *policy,
                      struct awf_log *log, struct awf_proxy_counters *ctr,
                      const struct sockaddr_storage *bound, size_t n_bound, uv_async_t *done,
                      struct cli_workers **out, char *err, size_t errlen)
{
    *out = NULL;
    if (n == 0)
        return 0;
    struct cli_workers *ws = calloc(1, sizeof(*ws) + n * sizeof(ws->w[0]));
    if (ws == NULL) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    size_t made = 0;
    int rc = 0;
    for (; made < n; made++) {
        struct worker *w = &ws->w[made];
        uv_loop_init(&w->loop);
        uv_mutex_init(&w->mu);
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        rc = awf_proxy_create_counted(&w->loop, policy, log, ctr ? &ctr[made] : NULL, &w->proxy,
                                      err, errlen);
        if (rc == 0) {
            awf_proxy_share_limits(w->proxy, main_proxy);
            awf_proxy_share_dns_cache(w->proxy, main_proxy);
            awf_proxy_share_tls(w->proxy, main_proxy);
            rc = awf_proxy_listen_at(w->proxy, bound, n_bound, err, errlen);
        }
        if (rc != 0) {
            made++;
            goto fail;
        }
    }
    ws->done = done;
    for (size_t i = 0; i < n; i++) {
        ws->w[i].owner = ws;
        __atomic_add_fetch(&ws->running, 1, __ATOMIC_ACQ_REL);
        if ((rc = uv_thread_create(&ws->w[i].thread, worker_main, &ws->w[i])) != 0) {
            snprintf(err, errlen, "cannot start an event-loop thread: %s", uv_strerror(rc));
            /* Threads already running stop the ordinary way; the rest never ran. */
            ws->w[i].owner = NULL;
            ws->n = i;
            cli_workers_stop(ws, 0);
            join_all(ws);
            for (size_t k = i; k < n; k++)
                abandon(&ws->w[k]);
            free(ws);
            return rc;
        }
    }
    ws->n = n;
    *out = ws;
    return 0;
fail:
    for (size_t i = 0; i < made; i++)
        abandon(&ws->w[i]);
    free(ws);
    return rc;
}

size_t cli_workers_running(const struct cli_workers *ws)
{
    return ws ? __atomic_load_n(&ws->running, __ATOMIC_ACQUIRE) : 0;
}

void cli_workers_set_policy(struct cli_workers *ws, struct awf_policy *policy,
                            struct awf_dns_hosts_file *hosts)
{
    for (size_t i = 0; ws != NULL && i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        uv_mutex_lock(&w->mu);
        if (w->next_policy != NULL)
            awf_policy_unref(w->next_policy);
        w->next_policy = awf_policy_ref(policy);
        if (hosts != NULL) {
            awf_dns_hosts_release(w->next_hosts);
            w->next_hosts = awf_dns_hosts_ref(hosts);
        }
        uv_mutex_unlock(&w->mu);
        uv_async_send(&w->wake);
    }
}

void cli_workers_stop(struct cli_workers *ws, uint64_t drain_ms)
{
    for (size_t i = 0; ws != NULL && i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        uv_mutex_lock(&w->mu);
        w->stop = true;
        w->drain_ms = drain_ms;
        uv_mutex_unlock(&w->mu);
        uv_async_send(&w->wake);
    }
}

static void join_all(struct cli_workers *ws)
{
    for (size_t i = 0; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        uv_thread_join(&w->thread);
        if (w->next_policy != NULL)
            awf_policy_unref(w->next_policy);
        awf_dns_hosts_release(w->next_hosts);
        uv_loop_close(&w->loop);
        uv_mutex_destroy(&w->mu);
    }
}

void cli_workers_join(struct cli_workers *ws)
{
    if (ws == NULL)
        return;
    join_all(ws);
    free(ws);
}
