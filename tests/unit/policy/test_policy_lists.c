/* AWF's list forms: --allow-domains a,b and the one-per-line (or comma) list files. */

#include "helpers.h"

#include <errno.h>
#include <unistd.h>

static char *write_temp(const char *text, size_t len)
{
    char *path = strdup("/tmp/awf-policy-list-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_lists_flag_items_trimmed_empty_skipped(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists(" a.test , b.test,,c.test, ", NULL);
    const struct awf_policy_entry *e;
    assert_int_equal(awf_policy_entries(p, &e), 3);
    assert_string_equal(e[0].text, "a.test");
    assert_string_equal(e[1].text, "b.test");
    assert_string_equal(e[2].text, "c.test");
    awf_policy_unref(p);
}

static void test_lists_file_lines_commas_comments(void **state)
{
    (void)state;
    static const char text[] = "# GitHub\n"
                               "github.com\n"
                               "\n"
                               "  api.example.com, *.cdn.test  # two on a line\r\n"
                               "https://secure.test\n"
                               "   # only a comment\n"
                               "last.test";
    char *path = write_temp(text, sizeof text - 1);
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(awf_policy_add_list_file(b, false, path, err, sizeof err), 0);
    assert_int_equal(awf_policy_add_list_file(b, true, path, err, sizeof err), 0);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    assert_non_null(p);
    awf_policy_builder_destroy(b);
    const struct awf_policy_entry *e;
    assert_int_equal(awf_policy_entries(p, &e), 10);
    static const struct {
        const char *text;
        unsigned line, col;
    } want[] = {{"github.com", 2, 1},
                {"api.example.com", 4, 3},
                {"*.cdn.test", 4, 20},
                {"https://secure.test", 5, 1},
                {"last.test", 7, 1}};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(e[i].text, want[i].text);
        assert_string_equal(e[i].origin.source, path);
        assert_int_equal(e[i].origin.line, want[i].line);
        assert_int_equal(e[i].origin.col, want[i].col);
        assert_false(e[i].block);
        assert_true(e[i + 5].block);
        assert_string_equal(e[i + 5].text, want[i].text);
    }
    EXPECT(p, "x.cdn.test", 443, TLS, false, "blocked", "*.cdn.test");
    awf_policy_unref(p);
    unlink(path);
    free(path);
}

static void test_lists_file_error_position(void **state)
{
    (void)state;
    static const char text[] = "good.test\n# comment\nok.test,   a b.test\n";
    char *path = write_temp(text, sizeof text - 1);
    char err[AWF_POLICY_ERRLEN] = "", want[AWF_POLICY_ERRLEN];
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(awf_policy_add_list_file(b, false, path, err, sizeof err),
                     AWF_E_POLICY_INVALID);
    snprintf(want, sizeof want, "%s:3:12: invalid entry \"a b.test\": whitespace inside", path);
    assert_string_equal(err, want);
    awf_policy_builder_destroy(b);
    unlink(path);
    free(path);

    static const char nul[] = "a.test\nb\0c.test\n";
    path = write_temp(nul, sizeof nul - 1);
    b = awf_policy_builder_create();
    assert_int_equal(awf_policy_add_list_file(b, false, path, err, sizeof err),
                     AWF_E_POLICY_INVALID);
    snprintf(want, sizeof want, "%s:2:1: invalid entry \"b\\x00c.test\": NUL byte inside", path);
    assert_string_equal(err, want);
    awf_policy_builder_destroy(b);
    unlink(path);
    free(path);
}

static void test_lists_file_missing(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(awf_policy_add_list_file(b, false, "/nonexistent/awf.list", err, sizeof err),
                     -ENOENT);
    assert_string_equal(err, "/nonexistent/awf.list: cannot open: No such file or directory");
    awf_policy_builder_destroy(b);
}

static void test_lists_flag_error_names_flag(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(awf_policy_add_list(b, true, "ok.test,bad;test", NULL, err, sizeof err),
                     AWF_E_POLICY_INVALID);
    assert_string_equal(err,
                        "--block-domains: invalid entry \"bad;test\": forbidden character ';'");
    awf_policy_builder_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_flag_items_trimmed_empty_skipped),
        cmocka_unit_test(test_lists_file_lines_commas_comments),
        cmocka_unit_test(test_lists_file_error_position),
        cmocka_unit_test(test_lists_file_missing),
        cmocka_unit_test(test_lists_flag_error_names_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
