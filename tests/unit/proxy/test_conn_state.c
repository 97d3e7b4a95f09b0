/* The connection state transition table and the flags printer (proxy/state.c). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/conn.h"

static void test_conn_state_normal_paths(void **state)
{
    (void)state;
    /* HTTP forward, keep-alive, then a CONNECT on the same connection. */
    const enum proxy_conn_state http[] = {
        AWF_CS_SNIFF, AWF_CS_HEAD,      AWF_CS_RESOLVING,  AWF_CS_CONNECTING, AWF_CS_FORWARD,
        AWF_CS_HEAD,  AWF_CS_RESOLVING, AWF_CS_CONNECTING, AWF_CS_TUNNEL,     AWF_CS_CLOSING};
    for (size_t i = 0; i + 1 < sizeof(http) / sizeof(http[0]); i++)
        assert_true(proxy_conn_transition_ok(http[i], http[i + 1]));
}

static void test_conn_state_every_state_can_close(void **state)
{
    (void)state;
    for (int s = 0; s < AWF_CS_CLOSING; s++)
        assert_true(proxy_conn_transition_ok((enum proxy_conn_state)s, AWF_CS_CLOSING));
}

static void test_conn_state_closing_is_final(void **state)
{
    (void)state;
    for (int s = 0; s < AWF_CS_COUNT; s++)
        assert_false(proxy_conn_transition_ok(AWF_CS_CLOSING, (enum proxy_conn_state)s));
}

static void test_conn_state_answers_before_tunnel_only(void **state)
{
    (void)state;
    /* Our own answer (FLUSH) is possible until bytes flow as a tunnel. */
    assert_true(proxy_conn_transition_ok(AWF_CS_SNIFF, AWF_CS_FLUSH));
    assert_true(proxy_conn_transition_ok(AWF_CS_HEAD, AWF_CS_FLUSH));
    assert_true(proxy_conn_transition_ok(AWF_CS_RESOLVING, AWF_CS_FLUSH));
    assert_true(proxy_conn_transition_ok(AWF_CS_CONNECTING, AWF_CS_FLUSH));
    assert_true(proxy_conn_transition_ok(AWF_CS_FORWARD, AWF_CS_FLUSH));
    assert_false(proxy_conn_transition_ok(AWF_CS_TUNNEL, AWF_CS_FLUSH));
    assert_false(proxy_conn_transition_ok(AWF_CS_FLUSH, AWF_CS_HEAD));
}

static void test_conn_state_forbidden(void **state)
{
    (void)state;
    assert_false(proxy_conn_transition_ok(AWF_CS_HEAD, AWF_CS_FORWARD));     /* no decision */
    assert_false(proxy_conn_transition_ok(AWF_CS_RESOLVING, AWF_CS_TUNNEL)); /* not dialled */
    assert_false(proxy_conn_transition_ok(AWF_CS_TUNNEL, AWF_CS_HEAD));      /* tunnels end */
    assert_false(proxy_conn_transition_ok(AWF_CS_HEAD, AWF_CS_HEAD));
    assert_false(proxy_conn_transition_ok(AWF_CS_SNIFF, AWF_CS_RESOLVING));
    assert_false(proxy_conn_transition_ok(AWF_CS_COUNT, AWF_CS_HEAD));
    assert_false(proxy_conn_transition_ok(AWF_CS_HEAD, AWF_CS_COUNT));
}

static void test_conn_state_retry_paths(void **state)
{
    (void)state;
    assert_true(proxy_conn_transition_ok(AWF_CS_CONNECTING, AWF_CS_CONNECTING)); /* next address */
    assert_true(proxy_conn_transition_ok(AWF_CS_FORWARD, AWF_CS_CONNECTING));    /* stale pooled */
    assert_true(proxy_conn_transition_ok(AWF_CS_FORWARD, AWF_CS_TUNNEL));        /* 101 */
}

/* Through a parent proxy a tunnel waits for the parent's answer to our CONNECT: then it goes on
 * as a direct one would (peek, tunnel, ssl-bump's upstream handshake), or is answered; a timeout
 * dials the parent's next address. Nothing is forwarded from there. */
static void test_conn_state_parent_wait(void **state)
{
    (void)state;
    assert_true(proxy_conn_transition_ok(AWF_CS_CONNECTING, AWF_CS_PARENT_WAIT));
    assert_true(proxy_conn_transition_ok(AWF_CS_PARENT_WAIT, AWF_CS_PEEK));
    assert_true(proxy_conn_transition_ok(AWF_CS_PARENT_WAIT, AWF_CS_TUNNEL));
    assert_true(proxy_conn_transition_ok(AWF_CS_PARENT_WAIT, AWF_CS_BUMP_UP));
    assert_true(proxy_conn_transition_ok(AWF_CS_PARENT_WAIT, AWF_CS_CONNECTING));
    assert_true(proxy_conn_transition_ok(AWF_CS_PARENT_WAIT, AWF_CS_FLUSH));
    assert_false(proxy_conn_transition_ok(AWF_CS_PARENT_WAIT, AWF_CS_FORWARD));
    assert_false(proxy_conn_transition_ok(AWF_CS_RESOLVING, AWF_CS_PARENT_WAIT));
    assert_string_equal(proxy_conn_state_name(AWF_CS_PARENT_WAIT), "parent-wait");
}

static void test_conn_state_peek(void **state)
{
    (void)state;
    /* Intercepted TLS: the ClientHello names the target, then it is resolved. */
    assert_true(proxy_conn_transition_ok(AWF_CS_SNIFF, AWF_CS_PEEK));
    assert_true(proxy_conn_transition_ok(AWF_CS_PEEK, AWF_CS_RESOLVING));
    /* CONNECT: dialled, answered 200, ClientHello checked, then bytes flow. */
    assert_true(proxy_conn_transition_ok(AWF_CS_CONNECTING, AWF_CS_PEEK));
    assert_true(proxy_conn_transition_ok(AWF_CS_PEEK, AWF_CS_TUNNEL));
    assert_false(proxy_conn_transition_ok(AWF_CS_PEEK, AWF_CS_FORWARD));
    assert_false(proxy_conn_transition_ok(AWF_CS_RESOLVING, AWF_CS_PEEK));
    assert_false(proxy_conn_transition_ok(AWF_CS_FORWARD, AWF_CS_PEEK));
}

static void test_conn_state_bump(void **state)
{
    (void)state;
    /* ssl-bump: CONNECT answered 200 and peeked before dialling; the client's handshake; the
     * requests inside; each upstream's handshake before forwarding. */
    assert_true(proxy_conn_transition_ok(AWF_CS_HEAD, AWF_CS_PEEK));
    assert_true(proxy_conn_transition_ok(AWF_CS_PEEK, AWF_CS_BUMP_CLIENT));
    assert_true(proxy_conn_transition_ok(AWF_CS_BUMP_CLIENT, AWF_CS_HEAD));
    assert_true(proxy_conn_transition_ok(AWF_CS_CONNECTING, AWF_CS_BUMP_UP));
    assert_true(proxy_conn_transition_ok(AWF_CS_BUMP_UP, AWF_CS_FORWARD));
    assert_true(proxy_conn_transition_ok(AWF_CS_BUMP_UP, AWF_CS_FLUSH));
    /* Nothing is forwarded before both handshakes. */
    assert_false(proxy_conn_transition_ok(AWF_CS_BUMP_CLIENT, AWF_CS_FORWARD));
    assert_false(proxy_conn_transition_ok(AWF_CS_BUMP_CLIENT, AWF_CS_TUNNEL));
    assert_false(proxy_conn_transition_ok(AWF_CS_BUMP_UP, AWF_CS_TUNNEL));
    assert_false(proxy_conn_transition_ok(AWF_CS_SNIFF, AWF_CS_BUMP_CLIENT));
    assert_string_equal(proxy_conn_state_name(AWF_CS_BUMP_UP), "bump-upstream");
}

static void test_conn_state_names(void **state)
{
    (void)state;
    assert_string_equal(proxy_conn_state_name(AWF_CS_TUNNEL), "tunnel");
    assert_string_equal(proxy_conn_state_name(AWF_CS_COUNT), "?");
    for (int s = 0; s < AWF_CS_COUNT; s++)
        assert_non_null(proxy_conn_state_name((enum proxy_conn_state)s));
}

/* A connection in FLUSH (its last bytes queued) is closed after request_headers at most, even
 * while a trickle keeps it active; read_idle alone allowed 30 minutes, again and again. */
static void test_conn_deadline_flush_is_capped(void **state)
{
    (void)state;
    static struct awf_settings set;
    static struct proxy_conn c;
    set.timeouts.read_idle_ms = 30 * 60 * 1000;
    set.timeouts.request_headers_ms = 120 * 1000;
    set.timeouts.lifetime_ms = 8ull * 3600 * 1000;
    c.set = &set;
    c.state = AWF_CS_FLUSH;
    c.born = 1000;
    c.state_since = 5000;
    c.last_active = 5000;
    assert_int_equal(proxy_conn_deadline(&c), 5000 + 120 * 1000);
    c.last_active = 100000; /* activity does not push it further */
    assert_int_equal(proxy_conn_deadline(&c), 5000 + 120 * 1000);
    set.timeouts.read_idle_ms = 1000; /* an idle client goes sooner */
    assert_int_equal(proxy_conn_deadline(&c), 100000 + 1000);
    c.flags = AWF_CF_CLIENT_SHUT_DONE; /* FIN sent: a short linger for the client's */
    assert_int_equal(proxy_conn_deadline(&c), 5000 + 2000);
    /* The lifetime bounds every state. */
    c.flags = 0;
    c.state = AWF_CS_TUNNEL;
    set.timeouts.read_idle_ms = 30 * 60 * 1000;
    set.timeouts.lifetime_ms = 10;
    assert_int_equal(proxy_conn_deadline(&c), 1000 + 10);
}

static void test_conn_flags_str(void **state)
{
    (void)state;
    char out[700];
    assert_string_equal(proxy_conn_flags_str(0, out, sizeof(out)), "");
    assert_string_equal(proxy_conn_flags_str(AWF_CF_TXN | AWF_CF_CONNECT, out, sizeof(out)),
                        "TXN|CONNECT");
    /* Past bit 31, where the 32-bit word ended, and a bit without a name. */
    assert_string_equal(
        proxy_conn_flags_str(AWF_CF_SPLICE_DUE | AWF_CF_DECIDE_ADDRS, out, sizeof(out)),
        "DECIDE_ADDRS|SPLICE_DUE");
    assert_string_equal(proxy_conn_flags_str(UINT64_C(1) << 63, out, sizeof(out)),
                        "0x8000000000000000");
    /* Every flag has its own bit and a name. */
    uint64_t all = 0;
    for (int b = 0; b < AWF_CFB_COUNT; b++) {
        uint64_t f = UINT64_C(1) << b;
        assert_false(all & f);
        all |= f;
        assert_true(strlen(proxy_conn_flags_str(f, out, sizeof(out))) > 0);
        assert_null(strchr(out, '|'));
        assert_null(strstr(out, "0x"));
    }
    /* Cut to fit, still a string. */
    assert_true(strlen(proxy_conn_flags_str(all, out, 20)) < 20);
}

/* A transition the table forbids stops the process, saying the states and the flags. */
static void test_conn_state_bad_transition_aborts_with_flags(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static struct proxy_conn c;
        dup2(fds[1], 2);
        c.state = AWF_CS_TUNNEL;
        c.flags = AWF_CF_TXN | AWF_CF_CONNECT | AWF_CF_VIA_PARENT;
        proxy_conn_set_state(&c, AWF_CS_HEAD);
        _exit(0);
    }
    close(fds[1]);
    char buf[2048];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof(buf) - 1 && (k = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    assert_non_null(strstr(buf, "tunnel -> head, flags TXN|CONNECT|VIA_PARENT"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conn_state_normal_paths),
        cmocka_unit_test(test_conn_state_every_state_can_close),
        cmocka_unit_test(test_conn_state_closing_is_final),
        cmocka_unit_test(test_conn_state_answers_before_tunnel_only),
        cmocka_unit_test(test_conn_state_forbidden),
        cmocka_unit_test(test_conn_state_retry_paths),
        cmocka_unit_test(test_conn_state_parent_wait),
        cmocka_unit_test(test_conn_state_peek),
        cmocka_unit_test(test_conn_state_bump),
        cmocka_unit_test(test_conn_state_names),
        cmocka_unit_test(test_conn_deadline_flush_is_capped),
        cmocka_unit_test(test_conn_flags_str),
        cmocka_unit_test(test_conn_state_bad_transition_aborts_with_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
