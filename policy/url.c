/* Request URLs as Squid has them, for url_regex ACLs: the string a request is matched by
 * (AnyP::Uri's canonical absolute form, or host:port for CONNECT) and Squid's percent-decoding
 * of it before matching. */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Squid 5 decodes the URL once before url_regex sees it: "%2B" is "+", so AWF's DLP pattern
 * PRIVATE(%20|\+|%2B)KEY matches "PRIVATE%2BKEY" (as "+") but not "PRIVATE%20KEY" (a space).
 * "%00" stays as it is (a NUL would end the string) and "%%" is one "%", not decoded further. */
size_t policy_url_unescape(char *dst, const char *src, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%' && i + 1 < len && src[i + 1] == '%') {
            i++;
        } else if (c == '%' && i + 2 < len && hexval(src[i + 1]) >= 0 && hexval(src[i + 2]) >= 0) {
            int v = hexval(src[i + 1]) << 4 | hexval(src[i + 2]);
            if (v > 0) {
                c = (char)v;
                i += 2;
            }
        }
        dst[o++] = c;
    }
    dst[o] = '\0';
    return o;
}

int awf_policy_request_url(char *buf, size_t cap, const char *scheme, const char *host,
                           size_t host_len, uint16_t port, const char *path, size_t path_len)
{
    struct host h;
    enum host_kind kind = policy_host_parse(host, host_len, &h);
    char ip[INET6_ADDRSTRLEN + 2];
    const char *name = h.name;
    if (kind == HOST_INVALID)
        return AWF_E_BAD_REQUEST;
    if (kind == HOST_IP) {
        char t[INET6_ADDRSTRLEN];
        if (!inet_ntop(h.family, h.ip, t, sizeof t))
            return AWF_E_BAD_REQUEST;
        snprintf(ip, sizeof ip, h.family == AF_INET6 ? "[%s]" : "%s", t);
        name = ip;
    }
    int n;
    if (!scheme) {
        n = snprintf(buf, cap, "%s:%u", name, (unsigned)port);
    } else {
        bool dflt = (strcmp(scheme, "http") == 0 && port == 80) ||
                    (strcmp(scheme, "https") == 0 && port == 443);
        char p[8] = "";
        if (!dflt)
            snprintf(p, sizeof p, ":%u", (unsigned)port);
        if (path_len == 0) {
            path = "/";
            path_len = 1;
        }
        n = snprintf(buf, cap, "%s://%s%s%.*s", scheme, name, p, (int)path_len, path);
    }
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

bool awf_policy_wants_url(const struct awf_policy *p)
{
    return p->squid && p->squid->has_url_regex;
}
