/* `run`: the proxy on one event loop, with the process's signal plumbing. */
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <uv.h>

#include "cli/admin.h"
#include "cli/options.h"
#include "cli/reload.h"
#include "common/diag.h"
#include "common/logfile.h"
#include "common/error.h"
#include "cli/workers.h"
#include "tls/tls.h"
#include "dns/forwarder.h"
#include "log/log.h"
#include "proxy/proxy.h"

struct runner {
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_async_t workers_done; /* a worker finished its shutdown */
    struct cli_policy_opts *opts;
    struct awf_policy *policy;       /* the current one; the proxy holds its own references */
    struct awf_policy *started;      /* the one at start: what listeners, logs... were made from */
    struct awf_dns_hosts_info hosts; /* the hosts file the resolvers answer from */
    struct awf_proxy *proxy;         /* the main loop's; more loops in workers */
    struct cli_workers *workers;     /* NULL with one thread */
    struct awf_tls_bump *tls;        /* ssl-bump's CA and contexts; NULL when off; owned */
    struct awf_dns_fwd *dnsfwd;      /* NULL when the policy has no DNS listener */
    struct awf_log *log;
    struct cli_admin *admin;        /* NULL without `admin:` */
    struct cli_admin_state st;      /* what the admin reports */
    struct awf_proxy_counters *ctr; /* one per loop; owned, freed after every loop is gone */
    int ready_fd;                   /* the original stderr when cache_log took it over; else -1 */
    uv_timer_t cache_log_retry;     /* cache_log is a FIFO with no reader yet: tried again */
    bool cache_log_wait;            /* cache_log_retry is initialized (and must be closed) */
    bool stopping;
};

static void close_signals(struct runner *r)
{
    uv_close((uv_handle_t *)&r->sig_term, NULL);
    uv_close((uv_handle_t *)&r->sig_int, NULL);
    uv_close((uv_handle_t *)&r->sig_hup, NULL);
    uv_close((uv_handle_t *)&r->sig_usr1, NULL);
}

/* The signal handlers stay until every loop is done, so a second SIGTERM during a drain is
 * still ours and not the default action. */
static void maybe_finish(struct runner *r)
{
    if (r->proxy != NULL || cli_workers_running(r->workers) > 0)
        return;
    close_signals(r);
    if (r->cache_log_wait)
        uv_close((uv_handle_t *)&r->cache_log_retry, NULL);
    r->cache_log_wait = false;
    cli_admin_close(r->admin);
    r->admin = NULL;
    /* Closing the handles restored the default actions; from here the process only flushes
     * its logs and exits, and a late SIGTERM must not cut that short. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    uv_close((uv_handle_t *)&r->workers_done, NULL);
}

static void on_proxy_done(void *arg)
{
    struct runner *r = arg;
    r->proxy = NULL;
    maybe_finish(r);
}

static void on_worker_done(uv_async_t *h)
{
    struct runner *r = h->data;
    if (r->stopping)
        maybe_finish(r);
}

static void on_stop(uv_signal_t *h, int signum)
{
    struct runner *r = h->data;
    (void)signum;
    if (r->stopping)
        return;
    r->stopping = true;
    r->st.draining = true;
    uint64_t drain = awf_policy_settings(r->policy)->timeouts.shutdown_drain_ms;
    awf_dns_fwd_destroy(r->dnsfwd);
    r->dnsfwd = NULL;
    cli_workers_stop(r->workers, drain);
    awf_proxy_shutdown(r->proxy, drain, on_proxy_done, r);
}

/* What a reload says about the hosts file: "hosts file PATH: 3 names, 4 addresses, sha256 HEX". */
static void describe_hosts(const char *path, const struct awf_dns_hosts_info *h, char *buf,
                           size_t len)
{
    if (path == NULL || path[0] == '\0')
        snprintf(buf, len, "no hosts file");
    else if (h->missing)
        snprintf(buf, len, "hosts file %s: missing, no names", path);
    else
        snprintf(buf, len, "hosts file %s: %zu names, %zu addresses, sha256 %s", path, h->names,
                 h->addrs, h->sha256);
}

/* ssl-bump's CA on a reload: read again (new paths or new contents) for new connections, the
 * leaf cache flushed; a CA that cannot be loaded is reported with its file and the running one
 * kept (the rest of the reload still applies: the CA is not part of the decisions). */
static void reload_ca(struct runner *r, const struct awf_settings *set)
{
    if (r->tls == NULL || !set->ssl_bump.enabled)
        return;
    struct awf_tls_bump_opts to = {.ca_cert = set->ssl_bump.ca_cert,
                                   .ca_key = set->ssl_bump.ca_key,
                                   .upstream_ca_file = set->ssl_bump.upstream_ca_file};
    char err[AWF_POLICY_ERRLEN] = "";
    if (awf_tls_bump_reload(r->tls, &to, err, sizeof(err)) != 0)
        awf_diag("ssl-bump: %s; the running CA is kept", err);
    else
        awf_diag("ssl-bump: CA reloaded from %s, minted certificates flushed", to.ca_cert);
}

/* A reload rebuilds the policy from the same file and flags and re-reads the hosts file, and
 * hands both to every loop. What was bound, opened or started from the start-up settings stays
 * (cli/reload.h); the message names each such key that changed, so "reloaded" never hides a
 * change that did not happen. Either everything applicable is applied or nothing is. */
static void on_reload(uv_signal_t *h, int signum)
{
    struct runner *r = h->data;
    (void)signum;
    if (r->stopping)
        return;
    struct awf_policy *p = cli_policy_build(r->opts);
    const char *hosts_path = p ? awf_policy_settings(p)->dns.hosts_file : NULL;
    struct awf_dns_hosts_file *hosts = NULL;
    struct awf_dns_hosts_info hi;
    int hrc = p ? awf_dns_hosts_open(hosts_path, &hosts, &hi) : 0;
    if (hrc < 0) /* readable a moment ago in cli_policy_build, not now */
        awf_diag("hosts file %s: %s", hosts_path, awf_strerror(hrc));
    if (p == NULL || hrc < 0) {
        awf_policy_unref(p);
        r->st.reload_failures++;
        awf_diag("reload refused; the running policy is kept");
        return;
    }
    reload_ca(r, awf_policy_settings(p));
    char restart[512];
    if (cli_reload_restart_keys(awf_policy_settings(r->started), awf_policy_settings(p),
                                r->tls != NULL, restart, sizeof(restart)) > 0)
        awf_diag("reload: needs a restart, running with the start-up values: %s", restart);
    awf_proxy_set_policy(r->proxy, p);
    awf_proxy_set_hosts(r->proxy, hosts);
    cli_workers_set_policy(r->workers, p, hosts);
    awf_dns_fwd_set_policy(r->dnsfwd, p);
    awf_dns_hosts_release(hosts); /* each loop took its own reference */
    const char *old_path = awf_policy_settings(r->policy)->dns.hosts_file;
    bool hosts_same = strcmp(old_path ? old_path : "", hosts_path ? hosts_path : "") == 0 &&
                      strcmp(hi.sha256, r->hosts.sha256) == 0 && hi.missing == r->hosts.missing;
    awf_policy_unref(r->policy);
    r->policy = p;
    r->st.reloads++;
    char old_sha[sizeof(r->st.policy_sha256)];
    memcpy(old_sha, r->st.policy_sha256, sizeof(old_sha));
    cli_admin_hash_policy(&r->st, p);
    r->hosts = hi;
    char hdesc[PATH_MAX + 160];
    describe_hosts(hosts_path, &hi, hdesc, sizeof(hdesc));
    awf_diag("policy reloaded from %s: sha256 %s (%s); %s (%s)", r->st.policy_source,
             r->st.policy_sha256, strcmp(old_sha, r->st.policy_sha256) ? "changed" : "unchanged",
             hdesc, hosts_same ? "unchanged" : "changed");
}

static void on_reopen(uv_signal_t *h, int signum)
{
    struct runner *r = h->data;
    (void)signum;
    awf_log_reopen(r->log);
    awf_dns_fwd_reopen_log(r->dnsfwd);
}

/* The handles are initialized before any is started, so close_signals() may close all four
 * whichever start failed. */
static int start_signal(struct runner *r, uv_signal_t *h, uv_signal_cb cb, int signum)
{
    h->data = r;
    return uv_signal_start(h, cb, signum);
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Thousands of tunnels need two descriptors each: take the hard limit the system grants. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The readiness lines tests and operators wait for. */
static void print_bound(const struct awf_proxy *px, const struct awf_dns_fwd *fwd,
                        const struct cli_admin *admin, int ready_fd)
{
    struct sockaddr_storage ss[32];
    char buf[INET6_ADDRSTRLEN + 16];
    size_t n = awf_proxy_bound(px, ss, 32);
    for (size_t i = 0; i < n; i++) {
        cli_format_addr(&ss[i], buf, sizeof(buf));
        awf_diag("listening on %s", buf);
        if (ready_fd >= 0)
            awf_diag_fd(ready_fd, "listening on %s", buf);
    }
    n = fwd ? awf_dns_fwd_bound(fwd, ss, 32) : 0;
    for (size_t i = 0; i < n; i++) {
        cli_format_addr(&ss[i], buf, sizeof(buf));
        awf_diag("dns forwarder on %s (udp+tcp)", buf);
    }
    if (admin) {
        cli_admin_bound(admin, &ss[0]);
        cli_format_addr(&ss[0], buf, sizeof(buf));
        awf_diag("admin on %s (/metrics /healthz /status)", buf);
    }
}

/* squid.conf's cache_log: diagnostics (this process's stderr) appended to a file from now on.
 * *ready_fd keeps the original stderr, where the readiness lines still go (README: whoever
 * started the proxy waits for them there). A FIFO that nobody reads yet does not hold up
 * start-up (the open is non-blocking): *wait is set, diagnostics stay on stderr, and
 * on_cache_log_retry takes the FIFO over once a reader has opened it. */
static int redirect_diagnostics(const char *path, int *ready_fd, bool *wait)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    bool no_reader;
    int fd = awf_logfile_open(path, false, &no_reader);
    if (fd < 0 && no_reader) {
        awf_diag("cache_log %s: no reader on this FIFO yet; diagnostics stay on stderr until "
                 "one opens it",
                 path);
        *wait = true;
        return 0;
    }
    if (fd >= 0)
        *ready_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
        awf_diag("cache_log %s: %s", path, strerror(fd < 0 ? -fd : errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* cache_log is a FIFO without a reader: every 100 ms, until one has opened it. The readiness
 * lines went to stderr already, so stderr simply becomes the FIFO (no ready_fd needed). Loop
 * thread; the open never blocks. */
static void on_cache_log_retry(uv_timer_t *t)
{
    struct runner *r = t->data;
    const char *path = awf_policy_settings(r->started)->cache_log;
    bool no_reader;
    int fd = awf_logfile_open(path, false, &no_reader);
    if (fd < 0)
        return; /* no reader yet, or nothing that can be opened now: stay on stderr */
    awf_diag("cache_log %s: a reader opened the FIFO; diagnostics go there from now on", path);
    if (dup2(fd, STDERR_FILENO) < 0)
        awf_diag("cache_log %s: %s", path, strerror(errno));
    close(fd);
    uv_close((uv_handle_t *)t, NULL);
    r->cache_log_wait = false;
}

/* squid.conf's pid_filename: written once listening, before the readiness lines; removed at
 * exit if it was written (returns whether: a path that could not be written, a FIFO say, is not
 * ours to remove). */
static bool write_pid_file(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return false;
    /* O_NONBLOCK: a FIFO given as the pid file fails (ENXIO) rather than hold up start-up. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0666);
    bool ok = fd >= 0 && dprintf(fd, "%ld\n", (long)getpid()) >= 0;
    int err = errno;
    if (fd >= 0 && close(fd) != 0 && ok)
        ok = false, err = errno;
    if (!ok)
        awf_diag("pid file %s: %s", path, strerror(err));
    return ok;
}

static int open_logs(struct runner *r)
{
    const struct awf_settings *s = awf_policy_settings(r->policy);
    struct awf_log_output_spec specs[16];
    size_t n = s->n_logs < 16 ? s->n_logs : 16;
    for (size_t i = 0; i < n; i++)
        specs[i] = (struct awf_log_output_spec){s->logs[i].format, s->logs[i].path};
    char err[256] = "";
    if (awf_log_create(specs, n, s->strip_query, s->awf_version, &r->log, err, sizeof(err)) != 0) {
        awf_diag("%s", err);
        return -1;
    }
    return 0;
}

int cli_cmd_run(int argc, char **argv)
{
    struct cli_policy_opts o = {0};
    struct runner r = {.opts = &o, .ready_fd = -1};
    awf_diag_stamp(true); /* run's stderr is a log: every line has its time */
    int rc = 2, first;
    int pr = cli_parse(argc, argv, &o, "Usage: awf-proxy [run] [OPTIONS]\n", NULL, &first);
    if (pr <= 0) {
        rc = pr == 0 ? 0 : 2;
        goto out;
    }
    if (first < argc) {
        awf_diag("unexpected argument \"%s\" (see awf-proxy --help)", argv[first]);
        goto out;
    }
    r.policy = cli_policy_build(&o);
    if (r.policy == NULL)
        goto out;
    r.started = awf_policy_ref(r.policy);
    {
        /* Only for the reload message's "changed": each resolver reads the file itself. */
        struct awf_dns_hosts_file *hf = NULL;
        awf_dns_hosts_open(awf_policy_settings(r.policy)->dns.hosts_file, &hf, &r.hosts);
        awf_dns_hosts_release(hf);
    }
    const struct awf_settings *set = awf_policy_settings(r.policy);
    bool cache_log_wait = false;
    if (cli_logformats_check(set) != 0 ||
        redirect_diagnostics(set->cache_log, &r.ready_fd, &cache_log_wait) != 0 ||
        open_logs(&r) != 0)
        goto out_policy;
    cli_policy_notices(r.policy); /* once, at start, where Squid would write them: cache_log */

    /* A peer that vanishes mid-write must be an error return, not the end of the process; so
     * must an access log that reaches the file-size limit (EFBIG, counted and reported). */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    raise_nofile();
    char err[AWF_POLICY_ERRLEN] = "";
    if (set->ssl_bump.enabled) {
        /* The CA key is read here, before anything else runs: the container starts us with it
         * readable. A reload reads it again (reload_ca), if it still can. */
        struct awf_tls_bump_opts to = {.ca_cert = set->ssl_bump.ca_cert,
                                       .ca_key = set->ssl_bump.ca_key,
                                       .upstream_ca_file = set->ssl_bump.upstream_ca_file,
                                       .cache_bytes = set->ssl_bump.cert_cache_bytes};
        if (awf_tls_bump_create(&to, &r.tls, err, sizeof(err)) != 0) {
            awf_diag("ssl-bump: %s", err);
            rc = 2;
            awf_log_destroy(r.log);
            goto out_policy;
        }
    }
    uv_loop_init(&r.loop);
    rc = 1;
    size_t n_loops = cli_workers_wanted(set);
    r.ctr = calloc(n_loops, sizeof(*r.ctr));
    if (r.ctr == NULL) {
        awf_diag("out of memory");
        goto out_loop;
    }
    r.st = (struct cli_admin_state){
        .ctr = r.ctr,
        .n_ctr = n_loops,
        .log = r.log,
        .policy_source = o.squid_conf    ? o.squid_conf
                         : o.policy_file ? o.policy_file
                         : o.have_lists  ? "flags"
                                         : "<default>",
        .started_us = wall_us(),
    };
    cli_admin_hash_policy(&r.st, r.policy);
    if (awf_proxy_create_counted(&r.loop, r.policy, r.log, &r.ctr[0], &r.proxy, err, sizeof(err)) ==
        0)
        awf_proxy_set_tls(r.proxy, r.tls);
    if (r.proxy == NULL || awf_proxy_listen(r.proxy, err, sizeof(err)) != 0) {
        awf_diag("%s", err);
        if (r.proxy != NULL)
            awf_proxy_shutdown(r.proxy, 0, NULL, NULL);
        uv_run(&r.loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    struct sockaddr_storage bound[64];
    size_t n_bound = awf_proxy_bound(r.proxy, bound, 64);
    uv_async_init(&r.loop, &r.workers_done, on_worker_done);
    r.workers_done.data = &r;
    r.st.n_listeners = n_bound < 32 ? n_bound : 32;
    memcpy(r.st.listeners, bound, r.st.n_listeners * sizeof(bound[0]));
    if (cli_workers_start(n_loops - 1, r.proxy, r.policy, r.log, r.ctr + 1, bound, n_bound,
                          &r.workers_done, &r.workers, err, sizeof(err)) != 0 ||
        awf_dns_fwd_create(&r.loop, r.policy, NULL, &r.dnsfwd, err, sizeof(err)) != 0 ||
        (set->admin.text &&
         cli_admin_start(&r.loop, &set->admin, &r.st, &r.admin, err, sizeof(err)) != 0)) {
        awf_diag("%s", err);
        awf_dns_fwd_destroy(r.dnsfwd);
        cli_workers_stop(r.workers, 0);
        awf_proxy_shutdown(r.proxy, 0, NULL, NULL);
        uv_close((uv_handle_t *)&r.workers_done, NULL);
        uv_run(&r.loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    uv_signal_init(&r.loop, &r.sig_term);
    uv_signal_init(&r.loop, &r.sig_int);
    uv_signal_init(&r.loop, &r.sig_hup);
    uv_signal_init(&r.loop, &r.sig_usr1);
    if (start_signal(&r, &r.sig_term, on_stop, SIGTERM) != 0 ||
        start_signal(&r, &r.sig_int, on_stop, SIGINT) != 0 ||
        start_signal(&r, &r.sig_hup, on_reload, SIGHUP) != 0 ||
        start_signal(&r, &r.sig_usr1, on_reopen, SIGUSR1) != 0) {
        awf_diag("cannot install signal handlers");
        r.stopping = true;
        cli_admin_close(r.admin);
        awf_dns_fwd_destroy(r.dnsfwd);
        cli_workers_stop(r.workers, 0);
        awf_proxy_shutdown(r.proxy, 0, on_proxy_done, &r);
        uv_run(&r.loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    /* A copy: a reload replaces the settings this points into. Written before the readiness
     * lines: whoever waits for them (a supervisor, logrotate's postrotate) may read it at once. */
    char *pid_file = set->pid_file && set->pid_file[0] ? strdup(set->pid_file) : NULL;
    if (!write_pid_file(pid_file)) {
        free(pid_file);
        pid_file = NULL;
    }
    print_bound(r.proxy, r.dnsfwd, r.admin, r.ready_fd);
    if (cache_log_wait) { /* closed by maybe_finish */
        uv_timer_init(&r.loop, &r.cache_log_retry);
        r.cache_log_retry.data = &r;
        uv_timer_start(&r.cache_log_retry, on_cache_log_retry, 100, 100);
        r.cache_log_wait = true;
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);
    rc = 0;
    if (pid_file != NULL)
        unlink(pid_file);
    free(pid_file);
out_loop:
    cli_workers_join(r.workers);
    uv_loop_close(&r.loop);
    free(r.ctr);
    awf_log_destroy(r.log);
    awf_tls_bump_destroy(r.tls);
out_policy:
    awf_policy_unref(r.started);
    awf_policy_unref(r.policy);
out:
    if (r.ready_fd >= 0)
        close(r.ready_fd);
    cli_policy_opts_free(&o);
    return rc;
}
