/* Running a tool: stdin fed, stdout and stderr collected, exit status returned, no shell, no
 * SIGPIPE when the tool does not read its input. Uses coreutils only, no iptables. */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static void test_netfilter_exec_roundtrip(void **state)
{
    (void)state;
    /* more than a pipe holds, so feeding and reading have to interleave */
    size_t n = 1 << 20;
    char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    const char *argv[] = {"cat", NULL};
    struct awf_nf_text out = {0}, err = {0};
    assert_int_equal(netfilter_exec(argv, in, n, &out, &err), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.p, in, n);
    assert_int_equal(err.len, 0);
    awf_netfilter_text_free(&out);
    free(in);
}

static void test_netfilter_exec_status_and_stderr(void **state)
{
    (void)state;
    const char *argv[] = {"ls", "/nonexistent-awf-netfilter-test", NULL};
    struct awf_nf_text err = {0};
    int rc = netfilter_exec(argv, NULL, 0, NULL, &err);
    assert_true(rc > 0);
    assert_true(err.len > 0);
    awf_netfilter_text_free(&err);
    /* arguments are not a shell line: the ; is passed as-is */
    const char *echo[] = {"echo", "a;", "b", NULL};
    struct awf_nf_text out = {0};
    assert_int_equal(netfilter_exec(echo, NULL, 0, &out, NULL), 0);
    assert_string_equal(out.p, "a; b\n");
    awf_netfilter_text_free(&out);
}

static void test_netfilter_exec_missing_tool(void **state)
{
    (void)state;
    const char *argv[] = {"awf-no-such-tool-here", NULL};
    struct awf_nf_text err = {0};
    assert_int_equal(netfilter_exec(argv, "x\n", 2, NULL, &err), 127);
    assert_non_null(strstr(err.p, "awf-no-such-tool-here"));
    awf_netfilter_text_free(&err);
}

static void test_netfilter_exec_unread_stdin(void **state)
{
    (void)state;
    /* `true` exits without reading: writing to it must fail quietly, not kill us */
    size_t n = 1 << 20;
    char *in = calloc(1, n);
    assert_non_null(in);
    const char *argv[] = {"true", NULL};
    assert_int_equal(netfilter_exec(argv, in, n, NULL, NULL), 0);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netfilter_exec_roundtrip),
        cmocka_unit_test(test_netfilter_exec_status_and_stderr),
        cmocka_unit_test(test_netfilter_exec_missing_tool),
        cmocka_unit_test(test_netfilter_exec_unread_stdin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
