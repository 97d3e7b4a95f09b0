/* A request head's checks and target (proxy/target.c), each outcome from a real head read by
 * the connection's request parser as proxy/parse.c sets it up. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/conn.h"

/* The connection is zeroed but for its head: the parser's head callbacks use nothing else. */
static struct proxy_conn *parsed(const char *head)
{
    struct proxy_conn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    proxy_http_head_init(&c->head, 64 * 1024, 100);
    proxy_conn_req_parser_init(c);
    size_t used;
    assert_int_equal(proxy_http_read_head(&c->rd, &c->req, head, strlen(head), false, &used),
                     HPE_PAUSED);
    return c;
}

static void done(struct proxy_conn *c)
{
    proxy_http_head_free(&c->head);
    free(c);
}

/* proxy_http_request_check() of the head. */
static enum proxy_http_verdict check(const char *head)
{
    struct proxy_conn *c = parsed(head);
    enum proxy_http_verdict v = proxy_http_request_check(&c->req, &c->head);
    done(c);
    return v;
}

/* proxy_http_request_target() of a head that passes the check; *t's host and path are copied
 * to host and path (NUL-terminated, 300 bytes each). */
static enum proxy_http_verdict target(const char *head, char *host, unsigned *port, char *path)
{
    struct proxy_conn *c = parsed(head);
    assert_int_equal(proxy_http_request_check(&c->req, &c->head), AWF_HTTP_OK);
    struct proxy_target t;
    enum proxy_http_verdict v = proxy_http_request_target(&c->req, &c->head, &t);
    if (v != AWF_HTTP_BAD) {
        assert_true(t.host.len < 300 && t.path.len < 300);
        if (t.host.len)
            memcpy(host, t.host.p, t.host.len);
        host[t.host.len] = '\0';
        if (t.path.len) /* CONNECT's is empty */
            memcpy(path, t.path.p, t.path.len);
        path[t.path.len] = '\0';
        *port = t.port;
    }
    done(c);
    return v;
}

static void test_target_check_outcomes(void **state)
{
    (void)state;
    assert_int_equal(check("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
                     AWF_HTTP_OK);
    assert_int_equal(check("GET http://a.example/ HTTP/2.0\r\n\r\n"), AWF_HTTP_VERSION_2);
    assert_int_equal(check("GET http://a.example/\r\nHost: a.example\r\n\r\n"),
                     AWF_HTTP_NO_VERSION);
    /* Framing llhttp leaves to us: a Transfer-Encoding not ending in chunked, or on 1.0. */
    assert_int_equal(check("POST http://a.example/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
                     AWF_HTTP_BAD);
    assert_int_equal(check("POST http://a.example/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     AWF_HTTP_BAD);
    assert_int_equal(check("POST http://a.example/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     AWF_HTTP_OK);
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n"),
                     AWF_HTTP_BAD);
}

static void test_target_forms_ok(void **state)
{
    (void)state;
    char host[300], path[300];
    unsigned port = 0;
    /* Absolute form; a Host field naming the same host, spelt otherwise, is fine. */
    assert_int_equal(target("GET http://a.example:8080/p?q#f HTTP/1.1\r\nHost: A.EXAMPLE.\r\n\r\n",
                            host, &port, path),
                     AWF_HTTP_OK);
    assert_string_equal(host, "a.example");
    assert_int_equal(port, 8080);
    assert_string_equal(path, "/p?q");
    /* Origin form: the Host field names the target, the URL is the path. */
    assert_int_equal(
        target("GET /x#frag HTTP/1.1\r\nHost: b.example:81\r\n\r\n", host, &port, path),
        AWF_HTTP_OK);
    assert_string_equal(host, "b.example");
    assert_int_equal(port, 81);
    assert_string_equal(path, "/x");
    assert_int_equal(target("GET / HTTP/1.0\r\nHost: b.example\r\n\r\n", host, &port, path),
                     AWF_HTTP_OK);
    assert_int_equal(port, 80);
    /* CONNECT: the authority, with its port. */
    assert_int_equal(target("CONNECT c.example:443 HTTP/1.1\r\n\r\n", host, &port, path),
                     AWF_HTTP_OK);
    assert_string_equal(host, "c.example");
    assert_int_equal(port, 443);
}

static void test_target_bad(void **state)
{
    (void)state;
    char host[300], path[300];
    unsigned port = 0;
    assert_int_equal(target("CONNECT c.example HTTP/1.1\r\n\r\n", host, &port, path),
                     AWF_HTTP_BAD); /* no port */
    assert_int_equal(target("GET / HTTP/1.1\r\n\r\n", host, &port, path), AWF_HTTP_BAD);
    assert_int_equal(target("GET / HTTP/1.1\r\nHost: [cafe]\r\n\r\n", host, &port, path),
                     AWF_HTTP_BAD);
    assert_int_equal(target("GET ftp://a.example/ HTTP/1.1\r\n\r\n", host, &port, path),
                     AWF_HTTP_BAD);
}

static void test_target_bad_host(void **state)
{
    (void)state;
    char host[300], path[300], head[600], name[300];
    unsigned port = 0;
    memset(name, 'a', AWF_HOST_MAX + 2); /* one more than a name and its trailing dot */
    name[AWF_HOST_MAX + 2] = '\0';
    snprintf(head, sizeof(head), "GET http://%s/ HTTP/1.1\r\n\r\n", name);
    assert_int_equal(target(head, host, &port, path), AWF_HTTP_BAD_HOST);
    snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", name);
    assert_int_equal(target(head, host, &port, path), AWF_HTTP_BAD_HOST);
    snprintf(head, sizeof(head), "CONNECT %s:443 HTTP/1.1\r\n\r\n", name);
    assert_int_equal(target(head, host, &port, path), AWF_HTTP_BAD_HOST);
    name[AWF_HOST_MAX + 1] = '\0'; /* as long as a name can be with its dot */
    snprintf(head, sizeof(head), "GET http://%s/ HTTP/1.1\r\n\r\n", name);
    assert_int_equal(target(head, host, &port, path), AWF_HTTP_OK);
    /* An absolute-form request whose Host field is no host[:port]. */
    assert_int_equal(
        target("GET http://a.example/ HTTP/1.1\r\nHost: [cafe]\r\n\r\n", host, &port, path),
        AWF_HTTP_BAD_HOST);
    assert_string_equal(host, "a.example"); /* the target was read */
}

static void test_target_other_host(void **state)
{
    (void)state;
    char host[300], path[300];
    unsigned port = 0;
    assert_int_equal(
        target("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", host, &port, path),
        AWF_HTTP_OTHER_HOST);
    assert_string_equal(host, "a.example");
    /* The port does not matter, only the host. */
    assert_int_equal(
        target("GET http://a.example/ HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", host, &port, path),
        AWF_HTTP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_check_outcomes),
        cmocka_unit_test(test_target_forms_ok),
        cmocka_unit_test(test_target_bad),
        cmocka_unit_test(test_target_bad_host),
        cmocka_unit_test(test_target_other_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
