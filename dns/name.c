#include "dns/name.h"

#include <arpa/inet.h>
#include <string.h>

#include "common/error.h"

int dns_name_normalize(const char *name, char *out)
{
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        name++;
        len -= 2;
    } else if (len > 0 && name[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > AWF_HOST_MAX)
        return AWF_E_DNS_FAIL;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c == 0x7f || c == '\\')
            return AWF_E_DNS_FAIL;
        if (c == '.') {
            if (label == 0)
                return AWF_E_DNS_FAIL;
            label = 0;
        } else if (++label > 63) {
            return AWF_E_DNS_FAIL;
        }
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
    }
    if (label == 0)
        return AWF_E_DNS_FAIL; /* "a..": a second trailing dot left an empty label */
    out[len] = '\0';
    return (int)len;
}

void dns_sa_v4(union dns_sa *out, const struct in_addr *a)
{
    memset(out, 0, sizeof(*out));
    out->in.sin_family = AF_INET;
    out->in.sin_addr = *a;
}

void dns_sa_v6(union dns_sa *out, const struct in6_addr *a, uint32_t scope_id)
{
    memset(out, 0, sizeof(*out));
    out->in6.sin6_family = AF_INET6;
    out->in6.sin6_addr = *a;
    out->in6.sin6_scope_id = scope_id;
}

bool dns_name_literal(const char *key, union dns_sa *out)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strchr(key, ':')) {
        if (inet_pton(AF_INET6, key, &a6) != 1)
            return false;
        dns_sa_v6(out, &a6, 0);
        return true;
    }
    /* inet_aton stops at whitespace; normalized keys have none, so the whole key was read. */
    if (inet_aton(key, &a4) == 0)
        return false;
    dns_sa_v4(out, &a4);
    return true;
}

void dns_sa_store(const union dns_sa *a, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, a, a->sa.sa_family == AF_INET ? sizeof(a->in) : sizeof(a->in6));
}
