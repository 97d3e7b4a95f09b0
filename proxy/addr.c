/* Whether an address is this host's (loopback or one of its interfaces) or this proxy's own
 * listener: the loop and self checks of resolve.c and intercept.c, and metrics.c's health
 * probes. Calls nothing else in proxy/ (tests/tools: callcycles_proxy). */

#include <netinet/in.h>
#include <string.h>

#include "proxy/conn.h"

static uint16_t port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return 0;
}

/* Same address, ports ignored (IPv4-mapped IPv6 compared as IPv4). */
static bool same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    struct in_addr a4 = {0}, b4 = {0};
    bool a_is4 = false, b_is4 = false;
    if (a->sa_family == AF_INET) {
        a4 = ((const struct sockaddr_in *)(const void *)a)->sin_addr;
        a_is4 = true;
    } else if (IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr)) {
        memcpy(&a4, &((const struct sockaddr_in6 *)(const void *)a)->sin6_addr.s6_addr[12], 4);
        a_is4 = true;
    }
    if (b->sa_family == AF_INET) {
        b4 = ((const struct sockaddr_in *)(const void *)b)->sin_addr;
        b_is4 = true;
    } else if (IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)(const void *)b)->sin6_addr)) {
        memcpy(&b4, &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr.s6_addr[12], 4);
        b_is4 = true;
    }
    if (a_is4 || b_is4)
        return a_is4 && b_is4 && a4.s_addr == b4.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr, 16) == 0;
}

bool proxy_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) ==
               127;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

bool proxy_is_self(const struct awf_proxy *px, const struct sockaddr *sa)
{
    uint16_t port = port_of(sa);
    for (size_t i = 0; i < px->n_listeners; i++) {
        const struct sockaddr *l = (const struct sockaddr *)&px->listeners[i].addr;
        if (port_of(l) != port)
            continue;
        bool any = l->sa_family == AF_INET
                       ? ((const struct sockaddr_in *)(const void *)l)->sin_addr.s_addr ==
                             htonl(INADDR_ANY)
                       : IN6_IS_ADDR_UNSPECIFIED(
                             &((const struct sockaddr_in6 *)(const void *)l)->sin6_addr);
        /* A wildcard listener is reached through any address of this host. */
        if (any ? proxy_is_local(px, sa) : same_ip(l, sa))
            return true;
    }
    return false;
}

bool proxy_is_local(const struct awf_proxy *px, const struct sockaddr *sa)
{
    if (proxy_is_loopback(sa))
        return true;
    for (size_t k = 0; k < px->n_local_addrs; k++)
        if (same_ip((const struct sockaddr *)&px->local_addrs[k], sa))
            return true;
    return false;
}
