/* Client-controlled bytes in log lines: no forged lines, no broken fields, valid JSON; and
 * strip_query. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log/log.h"
#include "log_test_util.h"

/* A strict checker for what audit_jsonl-like formats produce: one flat JSON object of string
 * and integer values, then '\n'. Strings must be valid UTF-8 with only JSON escapes. */
static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (!strchr("0123456789abcdefABCDEF", p[k]) || !p[k])
                        return NULL;
                p += 5;
            } else if (*p && strchr("\"\\/bfnrt", *p)) {
                p++;
            } else {
                return NULL;
            }
            continue;
        }
        if (c >= 0x80) {
            int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
            if (!n || c > 0xf4)
                return NULL;
            for (int k = 1; k < n; k++)
                if (((unsigned char)p[k] & 0xc0) != 0x80)
                    return NULL;
            p += n;
            continue;
        }
        p++;
    }
    return p + 1;
}

static bool json_line_valid(const char *p)
{
    if (*p++ != '{')
        return false;
    for (;;) {
        if (!(p = json_string(p)) || *p++ != ':')
            return false;
        if (*p == '"') {
            if (!(p = json_string(p)))
                return false;
        } else {
            if (*p < '0' || *p > '9')
                return false;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p == '}')
            break;
        if (*p++ != ',')
            return false;
    }
    return strcmp(p, "}\n") == 0;
}

/* The hostile values: quotes, backslashes, CR/LF, NUL-free controls, DEL, invalid UTF-8,
 * a valid multi-byte character, spaces, %, brackets. */
static const char *hostile[] = {
    "a\"b\\c",
    "x\r\n1761074374.646 1.2.3.4:1 forged.test:443 -:- 1.1 CONNECT 200 TCP_TUNNEL:HIER_DIRECT",
    "tab\there\x01\x1f\x7f",
    "bad\xff\xfe utf8 \xc3 \xe2\x82 \xed\xa0\x80 \xc0\xaf",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
    "sp ace [br] %41 \"}{\"",
    "\"},{\"forged\":1",
    /* Characters a reader may split records on (Python's splitlines, JavaScript, editors):
     * NEL (C2 85), other C1 controls, LINE and PARAGRAPH SEPARATOR, and bidi overrides. */
    "ls\xe2\x80\xa8ps\xe2\x80\xa9nel\xc2\x85"
    "c1\xc2\x80\xc2\x9f rlo\xe2\x80\xae lri\xe2\x81\xa6",
    "lone\x85 byte\x8a",
    "",
};

static void test_log_escape_json_stays_valid(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("172.30.0.20", 1);
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        struct test_hdr hdrs[] = {{"Host", hostile[i], 0}, {NULL, NULL, 0}};
        struct awf_log_record r = {
            .client = (struct sockaddr *)&cli,
            .method = hostile[i],
            .url = hostile[i],
            .tag = hostile[i],
            .req_header = test_hdr_lookup,
            .header_ctx = hostile[i][0] ? hdrs : NULL,
        };
        const char *line = test_render("audit_jsonl", &r, i % 2 == 0);
        if (!json_line_valid(line))
            fail_msg("invalid JSON for value %zu: %s", i, line);
        /* A custom JSON format, with an upstream status that is absent, quoted. */
        line = test_render("{\"ua\":\"%{Host}>h\",\"s\":\"%<Hs\",\"t\":\"%{\"%H}tg\"}", &r, false);
        if (!json_line_valid(line))
            fail_msg("invalid JSON for custom format, value %zu: %s", i, line);
    }
}

static void test_log_escape_json_forms(void **state)
{
    (void)state;
    struct awf_log_record r = {.url = "q\"b\\s\n\r\t\x01\x7f\xff caf\xc3\xa9"};
    assert_string_equal(test_render("{\"u\":\"%ru\"}", &r, false),
                        "{\"u\":\"q\\\"b\\\\s\\n\\r\\t\\u0001\\u007F\\u00FF caf\xc3\xa9\"}\n");
}

/* Every hostile value, in every text position of firewall_detailed and squid: exactly one
 * line, and the same number of space-separated fields as a clean line. */
static size_t count_fields(const char *line)
{
    size_t n = 0;
    bool in_quotes = false;
    bool in_field = false;
    for (const char *p = line; *p && *p != '\n'; p++) {
        if (*p == '"' && (p == line || p[-1] != '\\'))
            in_quotes = !in_quotes;
        if (*p == ' ' && !in_quotes) {
            in_field = false;
        } else if (!in_field) {
            in_field = true;
            n++;
        }
    }
    return n;
}

static void test_log_escape_text_no_forged_lines(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("172.30.0.20", 1);
    const char *formats[] = {"firewall_detailed", "squid"};
    for (size_t fi = 0; fi < 2; fi++) {
        struct awf_log_record clean = {
            .client = (struct sockaddr *)&cli, .method = "GET", .url = "u", .user = "x"};
        size_t want = count_fields(test_render(formats[fi], &clean, false));
        for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
            struct test_hdr hdrs[] = {
                {"Host", hostile[i], 0}, {"User-Agent", hostile[i], 0}, {NULL, NULL, 0}};
            struct awf_log_record r = {
                .client = (struct sockaddr *)&cli,
                .method = hostile[i],
                .url = hostile[i],
                .user = hostile[i],
                .mime = hostile[i],
                .req_header = test_hdr_lookup,
                .header_ctx = hdrs,
            };
            const char *line = test_render(formats[fi], &r, false);
            const char *nl = strchr(line, '\n');
            assert_non_null(nl);
            assert_int_equal(nl[1], '\0');
            assert_null(strchr(line, '\r'));
            for (const char *p = line; *p; p++)
                if ((unsigned char)*p < 0x20 && *p != '\n')
                    fail_msg("control byte in %s line for value %zu: %s", formats[fi], i, line);
            if (count_fields(line) != want)
                fail_msg("%s: value %zu changed the field count: %s", formats[fi], i, line);
        }
    }
}

static void test_log_escape_modes(void **state)
{
    (void)state;
    struct test_hdr hdrs[] = {{"UA", "a \"b\"\\c\r\n\t\x01\xc3\xa9", 0}, {NULL, NULL, 0}};
    struct awf_log_record r = {
        .method = "GET",
        .url = "http://h/a b\"c%20\x7f\xc3\xa9",
        .user = "al ice[1]%\\",
        .req_header = test_hdr_lookup,
        .header_ctx = hdrs,
    };
    /* Outside quotes: %XX, existing %XX left alone (as Squid logs it). */
    assert_string_equal(test_render("%ru", &r, false), "http://h/a%20b%22c%20%7F%C3%A9\n");
    /* Between double quotes: quoted-string escapes, `"` as %22 so "[^"]*" still splits fields. */
    assert_string_equal(test_render("\"%{UA}>h\"", &r, false),
                        "\"a %22b%22\\\\c\\r\\n\\t\\x01\xc3\xa9\"\n");
    /* Explicit encodings. */
    assert_string_equal(test_render("%\"{UA}>h", &r, false),
                        "a %22b%22\\\\c\\r\\n\\t\\x01\xc3\xa9\n");
    assert_string_equal(test_render("%[un", &r, false), "al%20ice%5B1%5D%25%5C\n");
    r.user = "q\"";
    assert_string_equal(test_render("%[un", &r, false), "q%22\n");
    r.user = "al ice[1]%\\";
    assert_string_equal(test_render("%#{UA}>h", &r, false), "a%20%22b%22\\c%0D%0A%09%01%C3%A9\n");
    assert_string_equal(test_render("%'{UA}>h", &r, false), "a \"b\"\\c%0D%0A%09%01\xc3\xa9\n");
    /* A header value with an embedded NUL is cut by nothing: its length is honoured. */
    struct test_hdr nul[] = {{"X", "a\0b", 3}, {NULL, NULL, 0}};
    r.header_ctx = nul;
    assert_string_equal(test_render("%{X}>h", &r, false), "a%00b\n");
    /* Widths count the escaped bytes. */
    r.method = "G T";
    assert_string_equal(test_render("[%7rm]", &r, false), "[  G%20T]\n");
}

/* Bytes that would break a record for a reader that splits on Unicode line boundaries, or
 * reorder it on screen: in no text mode do they stay raw, and every line stays valid UTF-8. */
static bool has_line_breaker(const char *line)
{
    const unsigned char *p = (const unsigned char *)line;
    for (; *p; p++) {
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
            return true;
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return true;
        if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae) ||
                             (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)))
            return true;
    }
    return false;
}

static bool utf8_valid(const char *line)
{
    const unsigned char *p = (const unsigned char *)line;
    while (*p) {
        int n = *p < 0x80                  ? 1
                : *p >= 0xc2 && *p <= 0xdf ? 2
                : *p >= 0xe0 && *p <= 0xef ? 3
                : *p >= 0xf0 && *p <= 0xf4 ? 4
                                           : 0;
        if (!n)
            return false;
        for (int k = 1; k < n; k++)
            if ((p[k] & 0xc0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

static void test_log_escape_unicode_separators(void **state)
{
    (void)state;
    const char *formats[] = {"firewall_detailed",   "squid",
                             "audit_jsonl",         "%'{UA}>h %'ru",
                             "%\"{UA}>h %#ru %[un", "\"%{UA}>h\" %ru"};
    for (size_t fi = 0; fi < sizeof(formats) / sizeof(formats[0]); fi++)
        for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
            struct test_hdr hdrs[] = {{"Host", hostile[i], 0},
                                      {"User-Agent", hostile[i], 0},
                                      {"UA", hostile[i], 0},
                                      {NULL, NULL, 0}};
            struct awf_log_record r = {.method = hostile[i],
                                       .url = hostile[i],
                                       .user = hostile[i],
                                       .req_header = test_hdr_lookup,
                                       .header_ctx = hdrs};
            const char *line = test_render(formats[fi], &r, false);
            if (has_line_breaker(line) || !utf8_valid(line))
                fail_msg("format %s, value %zu: raw separator or invalid UTF-8: %s", formats[fi], i,
                         line);
        }
    /* The exact forms: JSON \uXXXX; quoted \xHH per byte; %' and the rest %XX per byte. */
    struct test_hdr hdrs[] = {{"UA",
                               "a\xe2\x80\xa8"
                               "b\xc2\x85"
                               "c\xe2\x80\xa9\xc3\xa9\x85",
                               0},
                              {NULL, NULL, 0}};
    struct awf_log_record r = {.req_header = test_hdr_lookup, .header_ctx = hdrs};
    assert_string_equal(test_render("{\"u\":\"%{UA}>h\"}", &r, false),
                        "{\"u\":\"a\\u2028b\\u0085c\\u2029\xc3\xa9"
                        "\\u0085\"}\n");
    assert_string_equal(test_render("\"%{UA}>h\"", &r, false),
                        "\"a\\xE2\\x80\\xA8b\\xC2\\x85c\\xE2\\x80\\xA9\xc3\xa9"
                        "\\x85\"\n");
    assert_string_equal(test_render("%'{UA}>h", &r, false), "a%E2%80%A8b%C2%85c%E2%80%A9\xc3\xa9"
                                                            "%85\n");
    assert_string_equal(test_render("%{UA}>h", &r, false),
                        "a%E2%80%A8b%C2%85c%E2%80%A9%C3%A9%85\n");
}

static void test_log_escape_strip_query(void **state)
{
    (void)state;
    struct awf_log_record r = {.url = "http://h.test/p?token=secret&x=1"};
    assert_string_equal(test_render("%ru", &r, true), "http://h.test/p?\n");
    assert_string_equal(test_render("%ru", &r, false), "http://h.test/p?token=secret&x=1\n");
    r.url = "http://h.test/p";
    assert_string_equal(test_render("%ru", &r, true), "http://h.test/p\n");
    r.url = "?";
    assert_string_equal(test_render("%ru", &r, true), "?\n");
    r.url = "h.test:443";
    assert_string_equal(test_render("%ru", &r, true), "h.test:443\n");
    r.url = "http://h.test/a?b?c";
    assert_string_equal(test_render("{\"u\":\"%ru\"}", &r, true), "{\"u\":\"http://h.test/a?\"}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_escape_json_stays_valid),
        cmocka_unit_test(test_log_escape_json_forms),
        cmocka_unit_test(test_log_escape_text_no_forged_lines),
        cmocka_unit_test(test_log_escape_modes),
        cmocka_unit_test(test_log_escape_unicode_separators),
        cmocka_unit_test(test_log_escape_strip_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
