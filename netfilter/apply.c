/* Applying a ruleset: iptables-save / iptables-restore run with fork+exec, text on stdin, no
 * shell. Each table of each family is one `iptables-restore --noflush` (one kernel transaction);
 * a table that fails rolls back those loaded before it from their saved copies. */
#include "netfilter/netfilter-int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

static const char *const table_name[2] = {"filter", "nat"};
static const char *const save_tool[2] = {"iptables-save", "ip6tables-save"};
static const char *const restore_tool[2] = {"iptables-restore", "ip6tables-restore"};

/* ------------------------------------------------------------------ running a tool */

/* In the child: argv[0] through PATH, then where Debian puts the tools, since a non-root PATH
 * often lacks /usr/sbin. Never returns. */
static void child_exec(const char *const argv[])
{
    char path[256];
    execvp(argv[0], (char *const *)argv);
    if (errno == ENOENT && !strchr(argv[0], '/')) {
        static const char *const dirs[] = {"/usr/sbin/", "/sbin/"};
        for (size_t i = 0; i < 2; i++) {
            snprintf(path, sizeof(path), "%s%s", dirs[i], argv[0]);
            execv(path, (char *const *)argv);
        }
    }
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Moves what a pipe has into t (or drops it when t is NULL). Returns 1 at EOF, 0 otherwise. */
static int drain(int fd, struct awf_nf_text *t)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (n == 0)
        return 1;
    if (t && netfilter_text_append(t, buf, (size_t)n) < 0)
        return 1;
    return 0;
}

int netfilter_exec(const char *const argv[], const char *in, size_t inlen, struct awf_nf_text *out,
                   struct awf_nf_text *errout)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    sigset_t pipe_set, old_set;
    int rc = 0;

    if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
        rc = -errno;
        goto out;
    }
    /* A tool that exits without reading its stdin must not kill us with SIGPIPE: block it for
     * the exchange and take back any pending one after. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
        goto out;
    }
    if (pid == 0) {
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
        if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(perr[1], 2) < 0)
            _exit(127);
        child_exec(argv);
    }
    close_fd(&pin[0]);
    close_fd(&pout[1]);
    close_fd(&perr[1]);
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    if (!in || inlen == 0)
        close_fd(&pin[1]);

    /* Feed stdin and read both outputs together: a tool writing a lot before it has read all
     * its input would otherwise deadlock against us. */
    size_t off = 0;
    while (pin[1] >= 0 || pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd pf[3] = {{pin[1], POLLOUT, 0}, {pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pin[1] >= 0 && pf[0].revents) {
            ssize_t n = write(pin[1], in + off, inlen - off);
            if (n > 0)
                off += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || off == inlen)
                close_fd(&pin[1]);
        }
        if (pout[0] >= 0 && pf[1].revents && drain(pout[0], out))
            close_fd(&pout[0]);
        if (perr[0] >= 0 && pf[2].revents && drain(perr[0], errout))
            close_fd(&perr[0]);
    }

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    if (rc == 0)
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : -ECHILD;

    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
out:
    close_fd(&pin[0]);
    close_fd(&pin[1]);
    close_fd(&pout[0]);
    close_fd(&pout[1]);
    close_fd(&perr[0]);
    close_fd(&perr[1]);
    return rc;
}

/* The first line of a tool's stderr, for a message. */
static void first_line(const struct awf_nf_text *t, char *buf, size_t len)
{
    const char *s = t->len ? t->p : "no message";
    size_t n = strcspn(s, "\n");
    snprintf(buf, len, "%.*s", (int)n, s);
}

/* ------------------------------------------------------------------ planning */

static int plan_table(const struct awf_nf_opts *o, struct awf_nf_plan *plan, enum awf_nf_family f,
                      enum awf_nf_table t)
{
    const char *save = plan->saved_ok[f][t] ? plan->saved[f][t].p : "";
    if (!save)
        save = ""; /* a table that saved to nothing */
    if (plan->action == AWF_NF_REMOVE)
        return netfilter_build_remove(save, o->side, t, &plan->load[f][t]);
    struct awf_nf_table_state st;
    netfilter_scan(save, o, t, &st);
    return netfilter_build(o, f, t, &st, &plan->load[f][t]);
}

/* Saves one table into plan->saved. Returns 0, or a positive exit status / negative code with
 * the tool's first line of stderr in why. */
static int save_table(struct awf_nf_plan *plan, enum awf_nf_family f, enum awf_nf_table t,
                      char *why, size_t whylen)
{
    const char *argv[] = {save_tool[f], "-t", table_name[t], NULL};
    struct awf_nf_text errout = {0};
    int rc = netfilter_exec(argv, NULL, 0, &plan->saved[f][t], &errout);
    if (rc != 0)
        first_line(&errout, why, whylen);
    else
        plan->saved_ok[f][t] = true;
    awf_netfilter_text_free(&errout);
    return rc;
}

int awf_netfilter_plan(const struct awf_nf_opts *o, enum awf_nf_action action,
                       struct awf_nf_plan *plan, char *err, size_t errlen)
{
    char why[256];
    int rc;

    memset(plan, 0, sizeof(*plan));
    plan->action = action;
    snprintf(plan->sysctl_scope, sizeof(plan->sysctl_scope), "%s",
             o->side == AWF_NF_HOST ? o->bridge : "all");

    for (int t = 0; t < 2; t++) {
        if (!netfilter_chain(o->side, t))
            continue;
        rc = save_table(plan, AWF_NF_V4, t, why, sizeof(why));
        if (rc != 0 && action != AWF_NF_PRINT) {
            snprintf(err, errlen, "cannot read the %s table with iptables-save: %s", table_name[t],
                     why);
            return AWF_E_NETFILTER;
        }
        if (rc != 0)
            plan->state_unknown = true;
        if ((rc = plan_table(o, plan, AWF_NF_V4, t)) < 0)
            return rc;
    }

    /* remove takes out whatever an earlier apply put in, whatever --ipv6 says now */
    enum awf_nf_ipv6 ipv6 = action == AWF_NF_REMOVE ? AWF_NF_IPV6_AUTO : o->ipv6;
    if (ipv6 == AWF_NF_IPV6_OFF) {
        plan->v6_sysctl = true;
        snprintf(plan->v6_reason, sizeof(plan->v6_reason), "--ipv6 off");
        return 0;
    }
    plan->v6_rules = true;
    for (int t = 0; t < 2 && plan->v6_rules; t++) {
        if (!netfilter_chain(o->side, t))
            continue;
        rc = save_table(plan, AWF_NF_V6, t, why, sizeof(why));
        if (rc != 0 && plan->state_unknown) {
            /* nothing could be read (print without root): show the full ruleset */
        } else if (rc != 0 && ipv6 == AWF_NF_IPV6_ON) {
            snprintf(err, errlen, "--ipv6 on, but ip6tables cannot be used: %s", why);
            return AWF_E_NETFILTER;
        } else if (rc != 0) {
            /* auto: no ip6tables means no IPv6 filter; IPv6 itself is switched off instead */
            plan->v6_rules = false;
            plan->v6_sysctl = action != AWF_NF_REMOVE;
            snprintf(plan->v6_reason, sizeof(plan->v6_reason), "ip6tables cannot be used (%.120s)",
                     why);
            for (int u = 0; u < 2; u++)
                awf_netfilter_text_free(&plan->load[AWF_NF_V6][u]);
            break;
        }
        if ((rc = plan_table(o, plan, AWF_NF_V6, t)) < 0)
            return rc;
    }
    return 0;
}

void awf_netfilter_plan_free(struct awf_nf_plan *plan)
{
    for (int f = 0; f < 2; f++)
        for (int t = 0; t < 2; t++) {
            awf_netfilter_text_free(&plan->load[f][t]);
            awf_netfilter_text_free(&plan->saved[f][t]);
        }
}

static const char *const sysctl_keys_all[] = {"all", "default"};

int awf_netfilter_plan_text(const struct awf_nf_plan *plan, struct awf_nf_text *out)
{
    static const char *const fam_name[2] = {"iptables (IPv4)", "ip6tables (IPv6)"};
    int rc = 0;
    for (int f = 0; f < 2 && rc == 0; f++)
        for (int t = 0; t < 2 && rc == 0; t++) {
            const struct awf_nf_text *l = &plan->load[f][t];
            if (l->len == 0)
                continue;
            rc = netfilter_text_printf(out, "# %s table %s\n%s", fam_name[f], table_name[t], l->p);
        }
    if (rc == 0 && plan->v6_sysctl) {
        bool all = strcmp(plan->sysctl_scope, "all") == 0;
        rc = netfilter_text_printf(
            out, "# IPv6: %s: IPv6 is disabled by sysctl instead:", plan->v6_reason);
        for (int i = 0; i < (all ? 2 : 1) && rc == 0; i++)
            rc = netfilter_text_printf(out, " net.ipv6.conf.%s.disable_ipv6=1",
                                       all ? sysctl_keys_all[i] : plan->sysctl_scope);
        if (rc == 0)
            rc = netfilter_text_printf(out, "\n");
    }
    return rc;
}

/* ------------------------------------------------------------------ committing */

static int restore(enum awf_nf_family f, const struct awf_nf_text *text, bool noflush,
                   const char *table, char *why, size_t whylen)
{
    const char *argv_nf[] = {restore_tool[f], "-w", "--noflush", NULL};
    /* rollback: the saved table replaces the table as a whole, as it was */
    const char *argv_full[] = {restore_tool[f], "-w", "-T", table, NULL};
    struct awf_nf_text errout = {0};
    int rc = netfilter_exec(noflush ? argv_nf : argv_full, text->p, text->len, NULL, &errout);
    if (rc != 0) {
        if (rc < 0)
            snprintf(why, whylen, "cannot run %s: %s", restore_tool[f], strerror(-rc));
        else
            first_line(&errout, why, whylen);
    }
    awf_netfilter_text_free(&errout);
    return rc;
}

static int write_sysctl(const char *scope, char *why, size_t whylen)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", scope);
    struct stat sb;
    if (stat("/proc/sys/net/ipv6", &sb) < 0)
        return 0; /* no IPv6 in this kernel: nothing to switch off */
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "1\n", 2) != 2) {
        snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Puts back every table loaded before the one that failed (index `failed` in load order). */
static bool rollback(const struct awf_nf_plan *plan, int failed, char *why, size_t whylen)
{
    bool ok = true;
    for (int i = failed - 1; i >= 0; i--) {
        int f = i / 2, t = i % 2;
        if (plan->load[f][t].len == 0)
            continue;
        char w[256];
        if (!plan->saved_ok[f][t] ||
            restore(f, &plan->saved[f][t], false, table_name[t], w, sizeof(w)) != 0) {
            snprintf(why, whylen, "%s table %s: %s", restore_tool[f], table_name[t],
                     plan->saved_ok[f][t] ? w : "no saved copy");
            ok = false;
        }
    }
    return ok;
}

int awf_netfilter_commit(const struct awf_nf_plan *plan, char *err, size_t errlen)
{
    char why[256], rb_why[300] = "";
    int i;
    for (i = 0; i < 4; i++) {
        int f = i / 2, t = i % 2;
        if (plan->load[f][t].len == 0)
            continue;
        if (restore(f, &plan->load[f][t], true, table_name[t], why, sizeof(why)) != 0) {
            bool ok = rollback(plan, i, rb_why, sizeof(rb_why));
            snprintf(err, errlen, "%s failed on the %s table: %s; %s%s", restore_tool[f],
                     table_name[t], why,
                     ok ? "rolled back to the rules there before" : "ROLLBACK FAILED: ", rb_why);
            return AWF_E_NETFILTER;
        }
    }
    if (plan->v6_sysctl && plan->action == AWF_NF_APPLY) {
        bool all = strcmp(plan->sysctl_scope, "all") == 0;
        for (int k = 0; k < (all ? 2 : 1); k++) {
            if (write_sysctl(all ? sysctl_keys_all[k] : plan->sysctl_scope, why, sizeof(why)) < 0) {
                bool ok = rollback(plan, 4, rb_why, sizeof(rb_why));
                snprintf(
                    err, errlen, "cannot disable IPv6: %s; %s%s", why,
                    ok ? "rolled back to the rules there before" : "ROLLBACK FAILED: ", rb_why);
                return AWF_E_NETFILTER;
            }
        }
    }
    return 0;
}
