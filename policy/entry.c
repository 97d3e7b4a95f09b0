/* Entries and hosts: the text rules of SPEC §3, shared by every source of entries and by
 * awf_policy_decide(). Pure string work; nothing here allocates. */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* What a '*' may stand for: [a-zA-Z0-9.-] (entries and hosts are lower-cased first). */
static bool star_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool name_char(char c)
{
    return star_char(c) || c == '_';
}

void policy_quote(char *dst, size_t dstlen, const char *s, size_t len)
{
    size_t o = 0;
    if (dstlen < 3) {
        if (dstlen)
            dst[0] = '\0';
        return;
    }
    dst[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        size_t n;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            /* Control bytes, and every non-ASCII byte: a message must not carry invalid UTF-8
             * or a terminal escape (C1 controls are valid UTF-8) from the input to a terminal. */
            n = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", c);
        } else {
            tmp[0] = (char)c;
            n = 1;
        }
        if (o + n + 5 > dstlen) { /* room for '...', the quote and the NUL */
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(dst + o, tmp, n);
        o += n;
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

void policy_errf(char *err, size_t errlen, const char *source, unsigned line, unsigned col,
                 const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    int n;
    if (line)
        n = snprintf(err, errlen, "%s:%u:%u: ", source, line, col);
    else
        n = snprintf(err, errlen, "%s: ", source);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

void policy_ip_fold(int *family, uint8_t ip[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (*family == AF_INET6 && memcmp(ip, mapped, 12) == 0) {
        memmove(ip, ip + 12, 4);
        memset(ip + 4, 0, 12);
        *family = AF_INET;
    }
}

int policy_ip_parse(const char *s, size_t len, int *family, uint8_t ip[16])
{
    char buf[64];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
        if (!memchr(s, ':', len))
            return -1; /* brackets are for IPv6 only */
    }
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(ip, 0, 16);
    if (inet_pton(AF_INET, buf, ip) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, ip) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

/* inet_aton's lenient IPv4 spellings (1.2.3, 0x7f.1, 2130706433) count as raw IPs (SPEC §3).
 * s must be NUL-terminated and already checked to hold only name characters. */
static bool ipv4_aton(const char *s, uint8_t ip[16])
{
    struct in_addr a;
    if (inet_aton(s, &a) == 0)
        return false;
    memset(ip, 0, 16);
    memcpy(ip, &a.s_addr, 4);
    return true;
}

enum host_kind policy_host_parse(const char *s, size_t len, struct host *out)
{
    out->len = 0;
    out->first_odd = INT32_MAX;
    out->name[0] = '\0';
    if (len > 0 && s[0] == '[') {
        if (policy_ip_parse(s, len, &out->family, out->ip) < 0 || out->family != AF_INET6)
            return HOST_INVALID;
        policy_ip_fold(&out->family, out->ip);
        return HOST_IP;
    }
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > AWF_HOST_MAX)
        return HOST_INVALID;
    if (memchr(s, ':', len)) {
        if (policy_ip_parse(s, len, &out->family, out->ip) < 0 || out->family != AF_INET6)
            return HOST_INVALID;
        policy_ip_fold(&out->family, out->ip);
        return HOST_IP;
    }
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = lower(s[i]);
        if (c == '.') {
            if (label == 0)
                return HOST_INVALID; /* leading dot or ".." */
            label = 0;
        } else {
            if (!name_char(c) || ++label > AWF_LABEL_MAX)
                return HOST_INVALID;
            if (!star_char(c) && out->first_odd == INT32_MAX)
                out->first_odd = (int32_t)i;
        }
        out->name[i] = c;
    }
    if (label == 0)
        return HOST_INVALID; /* "name.." lost one dot above, not two */
    out->name[len] = '\0';
    out->len = len;
    /* inet_aton's last part is always a number: skip the call for ordinary names. */
    const char *last = memrchr(out->name, '.', len);
    last = last ? last + 1 : out->name;
    if (*last >= '0' && *last <= '9' && ipv4_aton(out->name, out->ip)) {
        out->family = AF_INET;
        return HOST_IP;
    }
    return HOST_NAME;
}

/* 'c' for a printable byte, else \xNN: never a raw control byte in a message. */
static const char *show_char(char c, char *buf, size_t len)
{
    unsigned char u = (unsigned char)c;
    if (u > 0x20 && u < 0x7f)
        snprintf(buf, len, "'%c'", c);
    else
        snprintf(buf, len, "\\x%02x", u);
    return buf;
}

/* Every rule of SPEC §3, in an order that gives the most telling reason first. */
int policy_entry_parse(const char *s, size_t len, bool block, struct parsed_entry *out, char *why,
                       size_t whylen)
{
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)
    while (len > 0 && is_space(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && is_space(s[len - 1]))
        len--;
    out->text = s;
    out->text_len = len;
    out->scope = AWF_SCOPE_BOTH;
    out->family = 0;
    memset(out->ip, 0, sizeof out->ip);
    if (len == 0)
        FAIL("empty entry");
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\r' || c == '\n')
            FAIL("line break inside");
        if (is_space(c))
            FAIL("whitespace inside");
        if (c == '\0')
            FAIL("NUL byte inside");
        if (c == '"' || c == '\'' || c == '`' || c == ';' || c == '#' || c == '\\')
            FAIL("forbidden character '%c'", c);
    }
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        s += 7;
        len -= 7;
        out->scope = AWF_SCOPE_HTTP;
    } else if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        s += 8;
        len -= 8;
        out->scope = AWF_SCOPE_TLS;
    } else if (len >= 3 && memmem(s, len, "://", 3)) {
        FAIL("unsupported scheme (only http:// and https://)");
    }
    if (block)
        out->scope = AWF_SCOPE_BOTH; /* protocol prefixes on block entries are ignored */
    if (len > 0 && s[len - 1] == '/')
        len--;
    if (len == 0)
        FAIL("empty entry");
    if (memchr(s, '/', len))
        FAIL("a path in a domain entry");

    if (memchr(s, ':', len)) { /* IPv6, bracketed or not; anything else has a port */
        if (policy_ip_parse(s, len, &out->family, out->ip) == 0 && out->family == AF_INET6) {
            policy_ip_fold(&out->family, out->ip);
            goto ip;
        }
        if (s[0] == '[' && !(len >= 2 && s[len - 1] == ']'))
            FAIL("a port in an IPv6 entry");
        if (memchr(s, ':', len) == memrchr(s, ':', len) && s[0] != '[')
            FAIL("a port in a domain entry");
        FAIL("invalid IPv6 address");
    }
    if (s[0] == '[')
        FAIL("brackets around something that is not an IPv6 address");

    if (len == 1 && s[0] == '.')
        FAIL("a lone dot");
    if (memmem(s, len, "..", 2))
        FAIL("empty label (\"..\")");
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len >= 1 && s[0] == '.') {
        /* Squid's ".example.com" means what plain "example.com" means here. */
        s++;
        len--;
    }
    if (len == 0)
        FAIL("empty entry");
    if (memmem(s, len, "..", 2) || s[0] == '.' || s[len - 1] == '.')
        FAIL("empty label (\"..\")");
    if (len > AWF_HOST_MAX)
        FAIL("name longer than %d characters", AWF_HOST_MAX);

    size_t stars = 0, label = 0, star_at = 0;
    bool label_star = false, only_stars = true;
    char bad[8];
    for (size_t i = 0; i < len; i++) {
        char c = lower(s[i]);
        if (c == '*') {
            stars++;
            star_at = i;
            label_star = true;
        } else if (c == '.') {
            label = 0;
            label_star = false;
            out->norm[i] = c;
            continue;
        } else if ((unsigned char)c >= 0x80) {
            FAIL("non-ASCII character (write internationalized names in their xn-- form)");
        } else if (!name_char(c)) {
            FAIL("invalid character %s", show_char(c, bad, sizeof bad));
        } else {
            only_stars = false;
        }
        if (c != '*' && ++label > AWF_LABEL_MAX && !label_star)
            FAIL("label longer than %d characters", AWF_LABEL_MAX);
        out->norm[i] = c;
    }
    out->norm[len] = '\0';
    out->norm_len = len;
    if (only_stars && stars > 0)
        FAIL("only wildcards and dots (would match everything)");
    if (stars > 1)
        FAIL("more than one wildcard");
    if (stars == 1) {
        out->kind = (star_at == 0 && len > 2 && out->norm[1] == '.') ? ENTRY_SUB : ENTRY_WILD;
        return 0;
    }
    if (ipv4_aton(out->norm, out->ip)) {
        out->family = AF_INET;
        goto ip;
    }
    out->kind = ENTRY_NAME;
    return 0;

ip:
    out->kind = ENTRY_IP;
    if (!inet_ntop(out->family, out->ip, out->norm, sizeof out->norm))
        FAIL("invalid address");
    out->norm_len = strlen(out->norm);
    return 0;
#undef FAIL
}
