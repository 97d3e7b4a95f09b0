/* Fuzzes the logformat compiler and renderer together.
 *
 * Input: a logformat string, '\n', then up to 8 record values separated by NUL bytes (url,
 * method, Host, User-Agent, user, mime, tag, domain). Checked beyond "no crash, no sanitizer
 * report":
 *   - compile either succeeds or fails with AWF_E_LOGFORMAT and a message;
 *   - render returns the same length whatever the buffer, and cuts like snprintf;
 *   - client values never add a control byte (CR, LF, ...) to a line: the hostile record and a
 *     clean one render with exactly the same control bytes (those from the format itself). */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include "common/error.h"
#include "log/logformat-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NVALUES 8

struct hdrs {
    const char *host, *ua;
    size_t host_len, ua_len;
};

static const char *lookup(void *ctx, const char *name, size_t *len)
{
    struct hdrs *h = ctx;
    if (strcasecmp(name, "Host") == 0 && h->host) {
        *len = h->host_len;
        return h->host;
    }
    if (strcasecmp(name, "User-Agent") == 0 && h->ua) {
        *len = h->ua_len;
        return h->ua;
    }
    return NULL;
}

static size_t count_controls(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            c++;
    return c;
}

static size_t render_checked(const struct awf_log_format *f, const struct awf_log_record *r,
                             bool strip, char **out)
{
    size_t need = log_format_render(f, r, strip, NULL, 0);
    char *buf = malloc(need + 1);
    if (!buf)
        abort();
    if (log_format_render(f, r, strip, buf, need + 1) != need || buf[need] != '\0' || need == 0 ||
        buf[need - 1] != '\n')
        abort();
    if (need > 1) {
        /* Cut one byte short: same length returned, terminated over the last byte. */
        char *cut = malloc(need);
        if (!cut || log_format_render(f, r, strip, cut, need) != need || cut[need - 1] != '\0' ||
            memcmp(cut, buf, need - 1) != 0)
            abort();
        free(cut);
    }
    *out = buf;
    return need;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t flen = nl ? (size_t)(nl - in) : size;
    char *fmt = malloc(flen + 1);
    if (!fmt)
        return 0;
    memcpy(fmt, in, flen);
    fmt[flen] = '\0';

    /* Values: NUL-separated after the newline, copied so each is its own allocation. */
    char *vals[NVALUES] = {0};
    size_t lens[NVALUES] = {0};
    if (nl) {
        const char *p = nl + 1, *end = in + size;
        for (int i = 0; i < NVALUES && p <= end; i++) {
            const char *z = memchr(p, '\0', (size_t)(end - p));
            size_t n = z ? (size_t)(z - p) : (size_t)(end - p);
            vals[i] = malloc(n + 1);
            if (!vals[i])
                abort();
            memcpy(vals[i], p, n);
            vals[i][n] = '\0';
            lens[i] = n;
            p += n + 1;
        }
    }

    struct awf_log_format *f = NULL;
    char err[256];
    int rc = awf_log_format_compile(fmt, "1.2.3", &f, err, sizeof(err));
    if (rc != 0) {
        if (rc != AWF_E_LOGFORMAT || f || !err[0])
            abort();
        goto out;
    }

    struct sockaddr_in6 cli = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};
    inet_pton(AF_INET6, "::ffff:172.30.0.20", &cli.sin6_addr);
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons(443)};
    inet_pton(AF_INET, "140.82.114.22", &srv.sin_addr);
    struct hdrs h = {vals[2], vals[3], lens[2], lens[3]};
    struct awf_log_record r = {
        .start_us = 1761074374000000 - (int64_t)(size * 997),
        .end_us = 1761074374646000,
        .client = (struct sockaddr *)&cli,
        .server = (struct sockaddr *)&srv,
        .url = vals[0],
        .method = vals[1],
        .user = vals[4],
        .mime = vals[5],
        .tag = vals[6],
        .domain = vals[7],
        .http_major = 1,
        .http_minor = 1,
        .status = (int)(size % 600),
        .upstream_status = (int)(flen % 600),
        .bytes_to_client = size,
        .req_header = lookup,
        .rep_header = lookup,
        .header_ctx = &h,
    };
    struct hdrs ch = {"x", "x", 1, 1};
    struct awf_log_record clean = r;
    clean.url = clean.method = clean.user = clean.mime = clean.tag = clean.domain = "x";
    clean.header_ctx = &ch;

    for (int strip = 0; strip < 2; strip++) {
        char *a = NULL, *b = NULL;
        size_t na = render_checked(f, &r, strip, &a);
        size_t nb = render_checked(f, &clean, strip, &b);
        if (count_controls(a, na) != count_controls(b, nb)) {
            fprintf(stderr, "control bytes injected:\n%.*s\nvs\n%.*s\n", (int)na, a, (int)nb, b);
            abort();
        }
        free(a);
        free(b);
    }
    awf_log_format_free(f);
out:
    for (int i = 0; i < NVALUES; i++)
        free(vals[i]);
    free(fmt);
    return 0;
}
