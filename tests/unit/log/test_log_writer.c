/* The writer: several threads logging at once, everything written by destroy, whole lines only;
 * reopen after logrotate's rename; open errors; stdout; long lines. Real files in a temporary
 * directory. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "log/log.h"
#include "log/writer-int.h"
#include "log_test_util.h"

#define THREADS    4
#define PER_THREAD 5000

struct tmpdir {
    char dir[64];
    char a[128];
    char b[128];
};

static int setup_dir(void **state)
{
    struct tmpdir *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    strcpy(t->dir, "/tmp/awf-log-test-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->a, sizeof(t->a), "%s/access.log", t->dir);
    snprintf(t->b, sizeof(t->b), "%s/audit.jsonl", t->dir);
    *state = t;
    return 0;
}

static int teardown_dir(void **state)
{
    struct tmpdir *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    int rc = system(cmd);
    free(t);
    return rc == 0 ? 0 : -1;
}

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        abort();
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

struct producer {
    struct awf_log *log;
    int id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct sockaddr_storage cli = test_addr("127.0.0.1", 40000 + (unsigned)p->id);
    char url[64];
    struct test_hdr hdrs[] = {{"Host", "h.test:443", 0}, {"User-Agent", "ua/1", 0}, {0, 0, 0}};
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(url, sizeof(url), "http://h.test/t%d/i%d?secret", p->id, i);
        struct awf_log_record r = {
            .end_us = test_us(1761074374, 646, 0),
            .client = (struct sockaddr *)&cli,
            .method = "GET",
            .url = url,
            .http_major = 1,
            .http_minor = 1,
            .status = 200,
            .tag = "TCP_MISS",
            .hier = "HIER_DIRECT",
            .req_header = test_hdr_lookup,
            .header_ctx = hdrs,
        };
        awf_log_write(p->log, &r);
    }
    return NULL;
}

/* Checks every line of buf is one whole record line and every (thread, i) appears once. */
static void check_lines(char *buf, const char *marker)
{
    static unsigned char seen[THREADS][PER_THREAD];
    memset(seen, 0, sizeof(seen));
    size_t lines = 0;
    char *save = NULL;
    size_t len = strlen(buf);
    assert_true(len > 0 && buf[len - 1] == '\n');
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int t = -1, i = -1;
        const char *u = strstr(line, "http://h.test/t");
        if (!u || sscanf(u, "http://h.test/t%d/i%d?", &t, &i) != 2 || t < 0 || t >= THREADS ||
            i < 0 || i >= PER_THREAD || !strstr(line, marker) || strstr(line, "secret"))
            fail_msg("bad line %zu: %s", lines, line);
        if (seen[t][i]++)
            fail_msg("duplicate line: %s", line);
        lines++;
    }
    assert_int_equal(lines, THREADS * PER_THREAD);
}

static void test_log_writer_threads_all_lines_whole(void **state)
{
    struct tmpdir *t = *state;
    struct awf_log_output_spec outs[] = {
        {"firewall_detailed", t->a},
        {"audit_jsonl", t->b},
    };
    struct awf_log *log = NULL;
    char err[256];
    assert_int_equal(awf_log_create(outs, 2, true, "1.0", &log, err, sizeof(err)), 0);

    pthread_t th[THREADS];
    struct producer p[THREADS];
    for (int k = 0; k < THREADS; k++) {
        p[k] = (struct producer){log, k};
        assert_int_equal(pthread_create(&th[k], NULL, produce, &p[k]), 0);
    }
    for (int k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    assert_int_equal(log_dropped(log), 0);
    awf_log_destroy(log); /* must write everything still queued */

    struct stat st;
    assert_int_equal(stat(t->a, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    char *a = slurp(t->a, NULL);
    char *b = slurp(t->b, NULL);
    assert_non_null(a);
    assert_non_null(b);
    check_lines(a, " \"ua/1\"");
    check_lines(b, "{\"_schema\":\"audit/v1.0\",");
    free(a);
    free(b);
}

static void write_n(struct awf_log *log, const char *tag, int n)
{
    char url[64];
    for (int i = 0; i < n; i++) {
        snprintf(url, sizeof(url), "%s-%d", tag, i);
        struct awf_log_record r = {.method = "GET", .url = url};
        awf_log_write(log, &r);
    }
}

static size_t count_prefix(const char *buf, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *p = buf; *p;) {
        if (strncmp(p, prefix, plen) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

static void test_log_writer_reopen_after_rename(void **state)
{
    struct tmpdir *t = *state;
    struct awf_log_output_spec outs[] = {{"%rm %ru", t->a}};
    struct awf_log *log = NULL;
    assert_int_equal(awf_log_create(outs, 1, false, NULL, &log, NULL, 0), 0);
    write_n(log, "before", 100);

    char rotated[160];
    snprintf(rotated, sizeof(rotated), "%s.1", t->a);
    assert_int_equal(rename(t->a, rotated), 0); /* logrotate's move */
    awf_log_reopen(log);
    /* Wait for the writer to have reopened (it recreates the path); an event, not a timing. */
    struct stat st;
    for (int k = 0; k < 100000 && stat(t->a, &st) != 0; k++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(stat(t->a, &st), 0);
    write_n(log, "after", 50);
    awf_log_destroy(log);

    char *old = slurp(rotated, NULL);
    char *cur = slurp(t->a, NULL);
    assert_non_null(old);
    assert_non_null(cur);
    assert_int_equal(count_prefix(old, "GET before-"), 100);
    assert_int_equal(count_prefix(old, "GET after-"), 0);
    assert_int_equal(count_prefix(cur, "GET after-"), 50);
    assert_int_equal(count_prefix(cur, "GET before-"), 0);
    free(old);
    free(cur);
}

static void test_log_writer_errors_name_the_path(void **state)
{
    struct tmpdir *t = *state;
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/access.log", t->dir);
    struct awf_log_output_spec outs[] = {{"squid", t->a}, {"squid", bad}};
    struct awf_log *log = (struct awf_log *)1;
    char err[256];
    assert_int_equal(awf_log_create(outs, 2, true, NULL, &log, err, sizeof(err)), -ENOENT);
    assert_null(log);
    assert_non_null(strstr(err, bad));

    struct awf_log_output_spec badfmt[] = {{"%ts %bogus", t->a}};
    assert_int_equal(awf_log_create(badfmt, 1, true, NULL, &log, err, sizeof(err)),
                     AWF_E_LOGFORMAT);
    assert_non_null(strstr(err, t->a));
    assert_non_null(strstr(err, "character 5"));

    /* A unix socket also fails open(2) with ENXIO, as a FIFO with no reader does: an error,
     * not a FIFO to wait on. */
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/sock", t->dir);
    int sfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(sfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    struct awf_log_output_spec sock[] = {{"squid", sun.sun_path}};
    assert_int_equal(awf_log_create(sock, 1, true, NULL, &log, err, sizeof(err)), -ENXIO);
    assert_null(log);
    assert_non_null(strstr(err, "No such device or address"));
    close(sfd);

    /* No outputs at all is a valid, silent log. */
    assert_int_equal(awf_log_create(NULL, 0, true, NULL, &log, err, sizeof(err)), 0);
    write_n(log, "x", 3);
    awf_log_reopen(log);
    awf_log_destroy(log);
    awf_log_destroy(NULL);
}

static void test_log_writer_stdout_and_long_lines(void **state)
{
    struct tmpdir *t = *state;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(t->b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    close(fd);

    struct awf_log_output_spec outs[] = {{"%ru", "-"}};
    struct awf_log *log = NULL;
    assert_int_equal(awf_log_create(outs, 1, false, NULL, &log, NULL, 0), 0);
    size_t big = 100000;
    char *url = malloc(big + 1);
    memset(url, 'a', big);
    url[big] = '\0';
    struct awf_log_record r = {.url = url};
    awf_log_write(log, &r);
    r.url = "short";
    awf_log_reopen(log); /* stdout is never reopened or closed */
    awf_log_write(log, &r);
    awf_log_destroy(log);
    assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
    close(saved);

    size_t len = 0;
    char *got = slurp(t->b, &len);
    assert_int_equal(len, big + 1 + 6);
    assert_int_equal(got[big], '\n');
    assert_string_equal(got + big + 1, "short\n");
    free(got);
    free(url);
}

struct drain {
    int fd;
    size_t lines;
    size_t bad;
    size_t line_len;
    atomic_bool reading; /* set at the first read: destroy must not race the thread's start */
};

/* Reads the FIFO to EOF, checking that every line has the one expected length. */
static void *drain_fifo(void *arg)
{
    struct drain *d = arg;
    char buf[65536];
    size_t cur = 0;
    ssize_t n;
    while ((n = read(d->fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        atomic_store(&d->reading, true);
        for (ssize_t k = 0; k < n; k++) {
            cur++;
            if (buf[k] == '\n') {
                if (cur != d->line_len)
                    d->bad++;
                d->lines++;
                cur = 0;
            }
        }
    }
    return NULL;
}

/* A reader that stops reading (a stuck disk): the queue fills to its cap, further lines are
 * dropped and counted, and every line not counted as dropped arrives whole. */
static void test_log_writer_full_queue_drops_are_counted(void **state)
{
    struct tmpdir *t = *state;
    char fifo[160];
    snprintf(fifo, sizeof(fifo), "%s/fifo", t->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(rfd >= 0);
    assert_int_equal(fcntl(rfd, F_SETFL, 0), 0); /* blocking reads from now on */

    struct awf_log_output_spec outs[] = {{"%ru", fifo}};
    struct awf_log *log = NULL;
    assert_int_equal(awf_log_create(outs, 1, false, NULL, &log, NULL, 0), 0);
    char url[1024];
    memset(url, 'u', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    struct awf_log_record r = {.url = url};
    uint64_t written = 0;
    /* 64 MiB of 1 KiB lines is ~65k lines; stop at the first drop, give up far beyond. */
    while (log_dropped(log) == 0 && written < 1000000) {
        awf_log_write(log, &r);
        written++;
    }
    assert_true(log_dropped(log) > 0);
    for (int k = 0; k < 100; k++, written++)
        awf_log_write(log, &r); /* more drops while still full */

    struct drain d = {.fd = rfd, .line_len = sizeof(url)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_fifo, &d), 0);
    uint64_t dropped_before = log_dropped(log);
    /* destroy gives up on a reader idle for 0.5 s; on a loaded machine a new thread may not
     * run that soon, which is not what this test is about. */
    while (!atomic_load(&d.reading))
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    awf_log_destroy(log); /* flushes into the now-draining FIFO, then closes it: EOF */
    pthread_join(th, NULL);
    close(rfd);
    assert_int_equal(d.bad, 0);
    assert_true(dropped_before >= 100);
    assert_int_equal(d.lines + dropped_before, written);
}

/* stderr to a file from now on; returns the original, for restore_stderr(). */
static int capture_stderr(const char *path)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int efd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(saved >= 0 && efd >= 0);
    dup2(efd, STDERR_FILENO);
    close(efd);
    return saved;
}

static void restore_stderr(int saved)
{
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct fifo_log {
    char fifo[160];
    char errpath[160]; /* where stderr goes until restore_stderr(saved) */
    int saved;
    struct awf_log *log;
};

/* A log on a new FIFO that nobody has opened (plus t->a when two), stderr captured. Create must
 * not block in open(2): SIGALRM ends the test if it does. */
static void fifo_log_create(struct tmpdir *t, struct fifo_log *f, size_t n)
{
    snprintf(f->fifo, sizeof(f->fifo), "%s/fifo", t->dir);
    snprintf(f->errpath, sizeof(f->errpath), "%s/stderr", t->dir);
    assert_int_equal(mkfifo(f->fifo, 0600), 0);
    f->saved = capture_stderr(f->errpath);
    struct awf_log_output_spec outs[] = {{"%ru", f->fifo}, {"%ru", t->a}};
    alarm(20);
    assert_int_equal(awf_log_create(outs, n, false, NULL, &f->log, NULL, 0), 0);
    alarm(0);
}

/* A FIFO that nobody has opened yet (the log shipper starts after the proxy): create must not
 * block in open(2) (SIGALRM ends the test if it does); lines wait, and all of them arrive once
 * a reader comes, which is said on stderr. */
static void test_log_writer_fifo_reader_comes_later(void **state)
{
    struct tmpdir *t = *state;
    struct fifo_log f;
    fifo_log_create(t, &f, 2);
    struct awf_log *log = f.log;
    struct awf_log_record r = {.url = "http://h.test/0123456789"};
    for (int i = 0; i < 5; i++)
        awf_log_write(log, &r);
    usleep(300000); /* the writer tries, finds no reader, waits */
    assert_int_equal(log_dropped(log), 0);

    int rfd = open(f.fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(rfd >= 0);
    /* Blocking reads only once the writer has it open: before, read(2) says EOF at once. */
    assert_int_equal(poll(&(struct pollfd){.fd = rfd, .events = POLLIN}, 1, 10000), 1);
    assert_int_equal(fcntl(rfd, F_SETFL, 0), 0);
    struct drain d = {.fd = rfd, .line_len = strlen(r.url) + 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_fifo, &d), 0);
    for (int i = 0; i < 5; i++)
        awf_log_write(log, &r);
    awf_log_destroy(log);
    pthread_join(th, NULL);
    close(rfd);
    restore_stderr(f.saved);
    assert_int_equal(d.lines, 10);
    assert_int_equal(d.bad, 0);
    char *text = slurp(f.errpath, NULL);
    assert_non_null(strstr(text, "no reader on this FIFO yet"));
    assert_non_null(strstr(text, "a reader opened the FIFO; writing\n"));
    assert_null(strstr(text, "lost ("));
    free(text);
    text = slurp(t->a, NULL);
    assert_int_equal(strlen(text), 10 * d.line_len); /* the other output waited, lost nothing */
    free(text);
}

/* A FIFO that no reader ever opens: destroy gives up within a second, and the lines it could
 * not write are reported lost with the reason. */
static void test_log_writer_fifo_never_read_destroy_ends(void **state)
{
    struct tmpdir *t = *state;
    struct fifo_log f;
    fifo_log_create(t, &f, 1);
    struct awf_log *log = f.log;
    struct awf_log_record r = {.url = "http://h.test/"};
    for (int i = 0; i < 3; i++)
        awf_log_write(log, &r);
    long long t0 = mono_ms();
    alarm(20);
    awf_log_destroy(log);
    alarm(0);
    long long took = mono_ms() - t0;
    restore_stderr(f.saved);
    assert_true(took < 2000);
    char *text = slurp(f.errpath, NULL);
    assert_non_null(strstr(text, "3 lines lost (no reader at exit: nobody opened the FIFO); 3 "
                                 "since start\n"));
    free(text);
}

/* Lines that queue while the writer waits for a first reader make a second batch: once the
 * first is given up on, that one is lost for the same reason (it used to say the reader "took
 * nothing", as if one had come). */
static void test_log_writer_fifo_never_read_later_batches_same_reason(void **state)
{
    struct tmpdir *t = *state;
    struct fifo_log f;
    fifo_log_create(t, &f, 1);
    struct awf_log *log = f.log;
    struct awf_log_record r = {.url = "http://h.test/"};
    for (int i = 0; i < 3; i++)
        awf_log_write(log, &r);
    usleep(300000); /* the writer holds those 3 and waits for a reader */
    for (int i = 0; i < 2; i++)
        awf_log_write(log, &r);
    alarm(20);
    awf_log_destroy(log);
    alarm(0);
    restore_stderr(f.saved);
    char *text = slurp(f.errpath, NULL);
    assert_non_null(strstr(text, "(no reader at exit: nobody opened the FIFO); 5 since start\n"));
    assert_null(strstr(text, "took nothing"));
    free(text);
}

/* A write that fails (/dev/full: ENOSPC) loses its lines: counted per output in
 * awf_log_stats(), and reported on stderr with an ISO-8601 timestamp without further traffic;
 * destroy reports what is left. */
static void test_log_writer_losses_counted_and_reported(void **state)
{
    struct tmpdir *t = *state;
    char errpath[160];
    snprintf(errpath, sizeof(errpath), "%s/stderr", t->dir);
    int saved = capture_stderr(errpath);

    struct awf_log_output_spec outs[] = {{"%ru", "/dev/full"}, {"%ru", t->a}};
    struct awf_log *log = NULL;
    assert_int_equal(awf_log_create(outs, 2, false, NULL, &log, NULL, 0), 0);
    struct awf_log_record r = {.url = "http://h.test/"};
    for (int i = 0; i < 10; i++)
        awf_log_write(log, &r);
    char *text = NULL;
    for (int i = 0; i < 2000; i++) { /* the report comes on its own: 20 s at most */
        free(text);
        text = slurp(errpath, NULL);
        if (text && strstr(text, "10 since start"))
            break;
        usleep(10000);
    }
    struct awf_log_output_stats st[3];
    assert_int_equal(awf_log_stats(log, st, 3), 2);
    assert_string_equal(st[0].path, "/dev/full");
    assert_int_equal(st[0].dropped, 10);
    assert_int_equal(st[0].written, 0);
    assert_int_equal(st[0].error, -ENOSPC);
    assert_true(st[0].failing);
    assert_int_equal(st[1].dropped, 0);
    assert_false(st[1].failing);
    assert_int_equal(log_dropped(log), 10);
    awf_log_write(log, &r);
    awf_log_destroy(log);

    restore_stderr(saved);
    assert_non_null(text);
    int y, mo, d, h, mi, s, ms, n;
    char tail[64];
    assert_int_equal(sscanf(text,
                            "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ awf-proxy: access log /dev/full: "
                            "%d lines lost (%63[^)])",
                            &y, &mo, &d, &h, &mi, &s, &ms, &n, tail),
                     9);
    assert_true(n >= 1 && n <= 10); /* the ten may come in more than one batch */
    assert_string_equal(tail, strerror(ENOSPC));
    free(text);
    /* destroy's last report: the eleventh line. */
    text = slurp(errpath, NULL);
    assert_non_null(strstr(text, "1 line lost (No space left on device); 11 since start\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_writer_threads_all_lines_whole, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_reopen_after_rename, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_errors_name_the_path, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_stdout_and_long_lines, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_full_queue_drops_are_counted, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_losses_counted_and_reported, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_fifo_reader_comes_later, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_fifo_never_read_destroy_ends, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_writer_fifo_never_read_later_batches_same_reason,
                                        setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
