/* awf_policy_opaque_allowed(): which CONNECT tunnels may carry bytes the proxy cannot read
 * (neither TLS, nor HTTP/1.x, nor h2c); policy_host_listed(), also for ssl_bump.splice. The
 * lists are short and asked once per such tunnel, so entries are kept as written and parsed on
 * each call rather than compiled. */

#include "policy/policy_int.h"

#include <string.h>

static bool odd_free(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* One entry against a normalized host, with the allow list's meaning (SPEC §3). */
static bool entry_matches(const struct parsed_entry *e, const struct host *h, enum host_kind k)
{
    const char *n = h->name;
    size_t len = h->len, el = e->norm_len;
    switch (e->kind) {
    case ENTRY_IP:
        return k == HOST_IP && h->family == e->family &&
               memcmp(h->ip, e->ip, e->family == AF_INET ? 4 : 16) == 0;
    case ENTRY_NAME:
        return k == HOST_NAME && len >= el && memcmp(n + len - el, e->norm, el) == 0 &&
               (len == el || n[len - el - 1] == '.');
    case ENTRY_SUB: /* "*.x": proper subdomains of x */
        return k == HOST_NAME && len > el - 1 &&
               memcmp(n + len - (el - 1), e->norm + 1, el - 1) == 0 && odd_free(n, len - (el - 1));
    case ENTRY_WILD: {
        const char *star = memchr(e->norm, '*', el);
        size_t pl = (size_t)(star - e->norm), sl = el - pl - 1;
        return k == HOST_NAME && len >= pl + sl && memcmp(n, e->norm, pl) == 0 &&
               memcmp(n + len - sl, star + 1, sl) == 0 && odd_free(n + pl, len - pl - sl);
    }
    }
    return false;
}

bool awf_policy_opaque_allowed(const struct awf_policy *p, const char *host, size_t host_len,
                               uint16_t port)
{
    const struct awf_tunnel_settings *t = &p->settings.tunnels;
    for (size_t i = 0; i < t->n_opaque_ports; i++)
        if (port >= t->opaque_ports[i].lo && port <= t->opaque_ports[i].hi)
            return true;
    return policy_host_listed(t->opaque_hosts, t->n_opaque_hosts, host, host_len);
}

bool policy_host_listed(char *const *list, size_t n, const char *host, size_t host_len)
{
    if (!n)
        return false;
    struct host h;
    enum host_kind k = policy_host_parse(host, host_len, &h);
    if (k == HOST_INVALID)
        return false;
    for (size_t i = 0; i < n; i++) {
        struct parsed_entry e;
        char why[8];
        memset(&e, 0, sizeof e);
        if (policy_entry_parse(list[i], strlen(list[i]), false, &e, why, sizeof why) == 0 &&
            entry_matches(&e, &h, k))
            return true;
    }
    return false;
}
