/* The answer map (AWF_ANSWERS in proxy/conn-t.h) against proxy/README's Answers table, and the
 * log tags with their _ABORTED forms. The README is what operators read: a row there that the
 * code does not give, or an answer the code gives that no row names, fails here. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/conn.h"

/* One (status, page, number, tag, header) combination; number is "<errno>" or digits. */
struct row {
    int status;
    char page[40], arg[16], tag[40], header[40];
    int line;
};

#define MAX_ROWS 64

/* Copies the i-th backticked span of cell [p, end) to out; false when there is none. */
static bool backticked(const char *p, const char *end, int i, char *out, size_t cap)
{
    for (;;) {
        const char *a = memchr(p, '`', (size_t)(end - p));
        if (!a)
            return false;
        const char *b = memchr(a + 1, '`', (size_t)(end - a - 1));
        if (!b)
            return false;
        if (i-- == 0) {
            size_t n = (size_t)(b - a - 1);
            if (n >= cap)
                return false;
            memcpy(out, a + 1, n);
            out[n] = '\0';
            return true;
        }
        p = b + 1;
    }
}

/* Reads the README's Answers table: one row per error page a line names. */
static size_t read_readme(struct row *rows)
{
    const char *src = getenv("AWF_SOURCE_DIR");
    assert_non_null(src);
    char path[4096];
    snprintf(path, sizeof(path), "%s/proxy/README.md", src);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int ln = 0, in = 0;
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        ln++;
        if (!in) {
            in = strncmp(line, "## Answers", 10) == 0;
            continue;
        }
        if (strncmp(line, "## ", 3) == 0)
            break;
        if (line[0] != '|' || strncmp(line, "| case", 6) == 0 || strncmp(line, "|---", 4) == 0)
            continue;
        const char *cell[6];
        int k = 0;
        for (char *p = line; *p && k < 6; p++)
            if (*p == '|')
                cell[k++] = p;
        if (k < 5) {
            fail_msg("proxy/README.md:%d: an Answers row needs 4 cells", ln);
        }
        struct row r = {.line = ln};
        r.status = (int)strtol(cell[1] + 1, NULL, 10);
        backticked(cell[1], cell[2], 0, r.header, sizeof(r.header));
        assert_true(backticked(cell[3], cell[4], 0, r.tag, sizeof(r.tag)));
        char page[64];
        for (int i = 0; backticked(cell[2], cell[3], i, page, sizeof(page)); i++) {
            struct row x = r;
            if (sscanf(page, "%39s %15s", x.page, x.arg) != 2)
                fail_msg("proxy/README.md:%d: `%s` is not `ERR_NAME NUMBER`", ln, page);
            assert_true(n < MAX_ROWS);
            rows[n++] = x;
        }
    }
    fclose(f);
    assert_true(in);
    return n;
}

static void from_map(enum proxy_ans a, struct row *r)
{
    const struct proxy_answer_def *d = proxy_answer_def(a);
    assert_non_null(d);
    memset(r, 0, sizeof(*r));
    r->status = d->status;
    snprintf(r->page, sizeof(r->page), "%s", d->page);
    if (d->arg == AWF_ANS_ERRNO)
        snprintf(r->arg, sizeof(r->arg), "<errno>");
    else
        snprintf(r->arg, sizeof(r->arg), "%d", d->arg);
    snprintf(r->tag, sizeof(r->tag), "%s", proxy_tag_name(d->tag));
    snprintf(r->header, sizeof(r->header), "%s", d->header ? d->header : "");
}

static bool same(const struct row *a, const struct row *b)
{
    return a->status == b->status && strcmp(a->page, b->page) == 0 && strcmp(a->arg, b->arg) == 0 &&
           strcmp(a->tag, b->tag) == 0 && strcmp(a->header, b->header) == 0;
}

static void test_answer_map_matches_readme(void **state)
{
    (void)state;
    struct row rows[MAX_ROWS], m;
    size_t n = read_readme(rows);
    assert_true(n >= AWF_ANS_COUNT / 2);
    for (int a = 0; a < AWF_ANS_COUNT; a++) {
        from_map((enum proxy_ans)a, &m);
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = same(&m, &rows[i]);
        if (!found)
            fail_msg("answer %d (%d %s %s, %s) has no row in proxy/README.md's Answers table", a,
                     m.status, m.page, m.arg, m.tag);
    }
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int a = 0; a < AWF_ANS_COUNT && !found; a++) {
            from_map((enum proxy_ans)a, &m);
            found = same(&m, &rows[i]);
        }
        if (!found)
            fail_msg("proxy/README.md:%d: %d `%s %s` %s is not in AWF_ANSWERS", rows[i].line,
                     rows[i].status, rows[i].page, rows[i].arg, rows[i].tag);
    }
}

static void test_answer_tags_and_aborted_forms(void **state)
{
    (void)state;
    assert_string_equal(proxy_tag_name(AWF_TAG_UNSET), "NONE_NONE");
    assert_string_equal(proxy_tag_name(AWF_TAG_TCP_MISS), "TCP_MISS");
    assert_int_equal(proxy_tag_aborted(AWF_TAG_TCP_MISS), AWF_TAG_TCP_MISS_ABORTED);
    assert_int_equal(proxy_tag_aborted(AWF_TAG_TCP_TUNNEL), AWF_TAG_TCP_TUNNEL_ABORTED);
    assert_int_equal(proxy_tag_aborted(AWF_TAG_TCP_DENIED), AWF_TAG_TCP_DENIED);
    assert_int_equal(proxy_tag_aborted(AWF_TAG_UNSET), AWF_TAG_NONE_NONE);
    assert_string_equal(proxy_hier_name(AWF_HIER_NONE), "HIER_NONE");
    assert_string_equal(proxy_hier_name(AWF_HIER_PARENT), "FIRSTUP_PARENT");
    for (int t = 1; t < AWF_TAG_COUNT; t++) {
        /* An aborted form is its own aborted form, and says so in its name when it differs. */
        enum proxy_tag ab = proxy_tag_aborted((enum proxy_tag)t);
        assert_int_equal(proxy_tag_aborted(ab), ab);
        if (ab != (enum proxy_tag)t) {
            char want[64];
            snprintf(want, sizeof(want), "%s_ABORTED", proxy_tag_name((enum proxy_tag)t));
            assert_string_equal(proxy_tag_name(ab), want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_map_matches_readme),
        cmocka_unit_test(test_answer_tags_and_aborted_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
