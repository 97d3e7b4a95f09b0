#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"

static void test_error_own_codes_have_names(void **state)
{
    (void)state;
    assert_string_equal(awf_err_name(AWF_E_DENIED), "AWF_E_DENIED");
    assert_string_equal(awf_strerror(AWF_E_DNS_FAIL), "name does not resolve");
}

static void test_error_errno_passes_through(void **state)
{
    (void)state;
    assert_string_equal(awf_err_name(-ECONNREFUSED), "ECONNREFUSED");
    assert_string_equal(awf_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
    assert_string_equal(awf_err_name(0), "OK");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_own_codes_have_names),
        cmocka_unit_test(test_error_errno_passes_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
