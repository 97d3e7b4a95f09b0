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

/* The hand-over to the kernel relay (splice.c): a tunnel or a large body switches at once, or
 * waits for writes in flight (WAIT, relaying as before), then is due (DUE) and switches
 * (SPLICED), or waits again, or stays on libuv. Spliced, a body goes back to FORWARD when it
 * ends, a tunnel back to TUNNEL only when it found no pipe. */
static void test_conn_state_splice_handover(void **state)
{
    (void)state;
    const enum proxy_conn_state fam[2][4] = {
        {AWF_CS_TUNNEL, AWF_CS_TUNNEL_SPLICE_WAIT, AWF_CS_TUNNEL_SPLICE_DUE, AWF_CS_TUNNEL_SPLICED},
        {AWF_CS_FORWARD, AWF_CS_BODY_SPLICE_WAIT, AWF_CS_BODY_SPLICE_DUE, AWF_CS_BODY_SPLICED}};
    /* Edges within a family, by index in fam[f]: 0 its first state, 1 WAIT, 2 DUE, 3 SPLICED.
     * No shortcuts: waiting goes through DUE, which only the switch leaves. */
    static const struct {
        int from, to;
        bool ok;
    } edges[] = {
        {0, 1, true},
        {0, 3, true},
        {1, 2, true},
        {2, 3, true},
        {2, 1, true} /* -EAGAIN: writes again */,
        {2, 0, true} /* the relay is not to be had */,
        {3, 0, true},
        {0, 2, false},
        {1, 3, false},
        {1, 0, false},
        {3, 1, false},
        {3, 2, false},
    };
    for (int f = 0; f < 2; f++) {
        for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
            assert_int_equal(proxy_conn_transition_ok(fam[f][edges[i].from], fam[f][edges[i].to]),
                             edges[i].ok);
        /* Neither DUE nor SPLICED answers or ends a transaction; the families do not mix. */
        for (int k = 2; k < 4; k++) {
            assert_false(proxy_conn_transition_ok(fam[f][k], AWF_CS_HEAD));
            assert_false(proxy_conn_transition_ok(fam[f][k], AWF_CS_FLUSH));
        }
        for (int k = 1; k < 4; k++) {
            assert_false(proxy_conn_transition_ok(fam[!f][0], fam[f][k]));
            assert_false(proxy_conn_transition_ok(fam[f][k], fam[!f][k]));
        }
    }
    /* A tunnel that waits still ends only by closing. */
    assert_false(proxy_conn_transition_ok(AWF_CS_TUNNEL_SPLICE_WAIT, AWF_CS_FLUSH));
    /* A body that waits relays as FORWARD does: its response ends, keep-alive or not. */
    assert_true(proxy_conn_transition_ok(AWF_CS_BODY_SPLICE_WAIT, AWF_CS_HEAD));
    assert_true(proxy_conn_transition_ok(AWF_CS_BODY_SPLICE_WAIT, AWF_CS_FLUSH));
    assert_string_equal(proxy_conn_state_name(AWF_CS_TUNNEL_SPLICE_DUE), "tunnel-splice-due");
    assert_string_equal(proxy_conn_state_name(AWF_CS_BODY_SPLICED), "body-spliced");
}

/* The rows of the hand-over: WAIT relays as its family's first state does; DUE reads neither
 * side (no write may start before the switch), is due at once and its timeout is the switch;
 * SPLICED reads nothing through libuv (poll handles own the sockets) and times out as the
 * family does. */
static void test_conn_state_splice_rows(void **state)
{
    (void)state;
    const struct proxy_phase *ph = proxy_conn_phases;
    const enum proxy_conn_state fam[2][4] = {
        {AWF_CS_TUNNEL, AWF_CS_TUNNEL_SPLICE_WAIT, AWF_CS_TUNNEL_SPLICE_DUE, AWF_CS_TUNNEL_SPLICED},
        {AWF_CS_FORWARD, AWF_CS_BODY_SPLICE_WAIT, AWF_CS_BODY_SPLICE_DUE, AWF_CS_BODY_SPLICED}};
    void (*const switch_of[2])(struct proxy_conn *) = {proxy_tunnel_splice_due,
                                                       proxy_forward_splice_due};
    const unsigned sides = AWF_RD_CLIENT | AWF_RD_UP;
    static struct awf_settings set;
    static struct proxy_conn c;
    set.timeouts.read_idle_ms = 30 * 60 * 1000;
    set.timeouts.lifetime_ms = 8ull * 3600 * 1000;
    c.set = &set;
    c.born = 1000;
    c.state_since = 7000;
    c.last_active = 6000;
    for (int f = 0; f < 2; f++) {
        const struct proxy_phase *first = &ph[fam[f][0]], *wait = &ph[fam[f][1]],
                                 *due = &ph[fam[f][2]], *spliced = &ph[fam[f][3]];
        assert_ptr_equal(wait->client_data, first->client_data);
        assert_ptr_equal(wait->client_eof, first->client_eof);
        assert_ptr_equal(wait->up_data, first->up_data);
        assert_ptr_equal(wait->up_eof, first->up_eof);
        assert_ptr_equal(wait->timeout, first->timeout);
        assert_int_equal(wait->reads, first->reads);
        assert_int_equal(wait->deadline, first->deadline);
        assert_int_equal(due->reads & sides, 0);
        assert_int_equal(spliced->reads & sides, 0);
        assert_int_equal(due->deadline, AWF_DL_NOW);
        assert_ptr_equal(due->timeout, switch_of[f]);
        assert_int_equal(spliced->deadline, first->deadline);
        assert_ptr_equal(spliced->timeout, first->timeout);
        for (int k = 2; k < 4; k++) {
            assert_ptr_equal(ph[fam[f][k]].client_data, first->client_data);
            assert_ptr_equal(ph[fam[f][k]].up_eof, first->up_eof);
        }
        c.state = fam[f][2];
        assert_int_equal(proxy_conn_deadline(&c), 7000); /* due from the moment it was entered */
        c.state = fam[f][1];
        assert_int_equal(proxy_conn_deadline(&c), 6000 + 30 * 60 * 1000); /* read_idle */
    }
    /* Only the DUE states are due at once. */
    for (int s = 0; s < AWF_CS_COUNT; s++)
        if (s != AWF_CS_TUNNEL_SPLICE_DUE && s != AWF_CS_BODY_SPLICE_DUE)
            assert_int_not_equal(ph[s].deadline, AWF_DL_NOW);
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
        proxy_conn_flags_str(AWF_CF_VIA_PARENT | AWF_CF_DECIDE_ADDRS, out, sizeof(out)),
        "DECIDE_ADDRS|VIA_PARENT");
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
        cmocka_unit_test(test_conn_state_splice_handover),
        cmocka_unit_test(test_conn_state_splice_rows),
        cmocka_unit_test(test_conn_state_names),
        cmocka_unit_test(test_conn_deadline_flush_is_capped),
        cmocka_unit_test(test_conn_flags_str),
        cmocka_unit_test(test_conn_state_bad_transition_aborts_with_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
