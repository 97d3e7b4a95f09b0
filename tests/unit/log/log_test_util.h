#ifndef AWF_TESTS_UNIT_LOG_LOG_TEST_UTIL_H
#define AWF_TESTS_UNIT_LOG_LOG_TEST_UTIL_H

/* Helpers shared by the log unit tests: addresses, a header table for the record's lookup
 * callbacks, and render-to-string. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log/logformat-int.h"

struct test_hdr {
    const char *name;
    const char *value;
    size_t len; /* 0: strlen(value) */
};

/* A NULL-name-terminated table of headers. */
static inline const char *test_hdr_lookup(void *ctx, const char *name, size_t *len)
{
    for (const struct test_hdr *h = ctx; h && h->name; h++) {
        if (strcasecmp(h->name, name) == 0) {
            *len = h->len ? h->len : strlen(h->value);
            return h->value;
        }
    }
    return NULL;
}

static inline struct sockaddr_storage test_addr(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
    } else {
        abort();
    }
    return ss;
}

/* Microseconds for "sec.msec" written as two integers, plus extra us below the ms. */
static inline int64_t test_us(int64_t sec, int64_t msec, int64_t extra_us)
{
    return sec * 1000000 + msec * 1000 + extra_us;
}

/* Compiles fmt (must succeed), renders r into a static buffer, frees the format. */
static inline const char *test_render(const char *fmt, const struct awf_log_record *r,
                                      bool strip_query)
{
    static char buf[8192];
    struct awf_log_format *f = NULL;
    static char err[256];
    if (awf_log_format_compile(fmt, "9.8.7", &f, err, sizeof(err)) != 0)
        return err;
    size_t n = log_format_render(f, r, strip_query, buf, sizeof(buf));
    awf_log_format_free(f);
    if (n >= sizeof(buf))
        return "<cut>";
    return buf;
}

#endif
