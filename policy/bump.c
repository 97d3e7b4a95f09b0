/* ssl-bump settings and URL patterns (allow_urls).
 *
 * A pattern is a whole URL, anchored at both ends: "https://github.com/myorg/" then a star. A star
 * is the only special character: in the authority it matches any run of characters but '/' (so a
 * pattern "https://" star ".github.com/x" cannot match "https://evil.test/.github.com/x"), in the
 * path any run at all, query included. Everything else is literal, '.' and '?' too. Scheme and
 * authority are compared case-insensitively, the path as written. A URL with a dot segment
 * ("/a/../b", also percent-encoded) or an encoded '/' or '\' never matches: servers normalize those
 * and a pattern's prefix would no longer mean what it says. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_int.h"

static char lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

int policy_url_pattern(const char *v, size_t len, char **out, char *why, size_t whylen)
{
    size_t skip;
    if (len >= 8 && strncasecmp(v, "https://", 8) == 0)
        skip = 8;
    else if (len >= 7 && strncasecmp(v, "http://", 7) == 0)
        skip = 7;
    else {
        snprintf(why, whylen, "a URL pattern starts with https:// (or http://)");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '\'' || ch == '\\' || ch == '#' ||
            ch == '`') {
            snprintf(why, whylen, "invalid character in a URL pattern at offset %zu", i);
            return -1;
        }
    }
    const char *auth = v + skip, *end = v + len;
    const char *slash = memchr(auth, '/', (size_t)(end - auth));
    size_t alen = (size_t)((slash ? slash : end) - auth);
    if (alen == 0 || memchr(auth, '@', alen)) {
        snprintf(why, whylen, "a URL pattern needs a host (and no user@)");
        return -1;
    }
    /* The scheme's default port is not part of URLs as the proxy writes them. */
    const char *dflt = skip == 8 ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (alen > dl && memcmp(auth + alen - dl, dflt, dl) == 0)
        alen -= dl;
    size_t plen = slash ? (size_t)(end - slash) : 1;
    char *p = malloc(skip + alen + plen + 1); /* owned by the settings */
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < skip + alen; i++)
        p[i] = lower(v[i]);
    memcpy(p + skip + alen, slash ? slash : "/", plen);
    p[skip + alen + plen] = '\0';
    *out = p;
    return 0;
}

/* '*' matches any run of s's characters other than stop (0: any); the classic backtrack to the
 * last star, linear in practice and never exponential. */
static bool glob(const char *p, size_t pn, const char *s, size_t sn, char stop, bool fold)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn && (fold ? lower(p[pi]) == lower(s[si]) : p[pi] == s[si])) {
            pi++;
            si++;
        } else if (star != (size_t)-1 && s[mark] != stop) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

/* Splits "scheme://authority/path..." after the authority; false if not that shape. */
static bool split(const char *u, size_t n, size_t *path_at)
{
    const char *sep = n >= 3 ? memchr(u, ':', n) : NULL;
    if (!sep || (size_t)(sep - u) + 3 > n || sep[1] != '/' || sep[2] != '/')
        return false;
    const char *a = sep + 3;
    const char *slash = memchr(a, '/', (size_t)(u + n - a));
    *path_at = slash ? (size_t)(slash - u) : n;
    return true;
}

/* Whether a normalized pattern (policy_url_pattern) matches a URL. */
static bool url_match(const char *pattern, const char *url, size_t len)
{
    size_t pp, up;
    size_t pn = strlen(pattern);
    if (!split(pattern, pn, &pp) || !split(url, len, &up))
        return false;
    return glob(pattern, pp, url, up, '/', true) &&
           glob(pattern + pp, pn - pp, url + up, len - up, 0, false);
}

/* Dot segments and encoded separators, which a server would normalize away after we matched. */
static bool unsafe_path(const char *path, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = path[i];
        if (ch == '?')
            return false; /* the query is opaque */
        if (ch == '\\')
            return true;
        if (ch == '%' && i + 2 < n) {
            char a = path[i + 1], b = lower(path[i + 2]);
            if ((a == '2' && (b == 'e' || b == 'f')) || (a == '5' && b == 'c'))
                return true;
        }
        if (ch == '.' && i > 0 && path[i - 1] == '/') {
            size_t j = i + 1;
            if (j < n && path[j] == '.')
                j++;
            if (j == n || path[j] == '/' || path[j] == '?')
                return true;
        }
    }
    return false;
}

bool awf_policy_url_allowed(const struct awf_policy *p, const char *url, size_t len,
                            const char **rule)
{
    const struct awf_bump_settings *b = &p->settings.ssl_bump;
    if (b->n_allow_urls == 0)
        return true;
    size_t at;
    if (!split(url, len, &at) || unsafe_path(url + at, len - at))
        return false;
    for (size_t i = 0; i < b->n_allow_urls; i++) {
        if (url_match(b->allow_urls[i], url, len)) {
            if (rule)
                *rule = b->allow_urls[i];
            return true;
        }
    }
    return false;
}

static int dup_opt(char **d, const char *s)
{
    *d = NULL;
    return s && !(*d = strdup(s)) ? -ENOMEM : 0;
}

/* A copy of n strings into *d (owned by the settings); on failure *dn says how many to free. */
static int dup_list(char ***d, size_t *dn, char *const *s, size_t n)
{
    *d = NULL;
    *dn = 0;
    if (!n)
        return 0;
    if (!(*d = calloc(n, sizeof(char *))))
        return -ENOMEM;
    for (; *dn < n; (*dn)++)
        if (dup_opt(&(*d)[*dn], s[*dn]) < 0)
            return -ENOMEM;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int policy_bump_copy(struct awf_bump_settings *d, const struct awf_bump_settings *s)
{
    *d = *s;
    d->allow_urls = d->splice = NULL;
    d->n_allow_urls = d->n_splice = 0;
    d->ca_cert = d->ca_key = d->upstream_ca_file = NULL;
    if (dup_opt(&d->ca_cert, s->ca_cert) < 0 || dup_opt(&d->ca_key, s->ca_key) < 0 ||
        dup_opt(&d->upstream_ca_file, s->upstream_ca_file) < 0 ||
        dup_list(&d->allow_urls, &d->n_allow_urls, s->allow_urls, s->n_allow_urls) < 0 ||
        dup_list(&d->splice, &d->n_splice, s->splice, s->n_splice) < 0)
        goto fail;
    return 0;
fail:
    policy_bump_free(d);
    return -ENOMEM;
}

void policy_bump_free(struct awf_bump_settings *s)
{
    free_list(s->allow_urls, s->n_allow_urls);
    free_list(s->splice, s->n_splice);
    free(s->ca_cert);
    free(s->ca_key);
    free(s->upstream_ca_file);
    s->allow_urls = s->splice = NULL;
    s->n_allow_urls = s->n_splice = 0;
    s->ca_cert = s->ca_key = s->upstream_ca_file = NULL;
}
