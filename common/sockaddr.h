#ifndef AWF_COMMON_SOCKADDR_H
#define AWF_COMMON_SOCKADDR_H

/* An IPv4 or IPv6 socket address in 28 bytes, where sockaddr_storage takes 128: connections and
 * upstreams keep several each, thousands at a time. Socket calls get &a.sa and sizeof(a), which
 * holds either family; nothing else fits. */

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

union awf_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Copies an AF_INET or AF_INET6 address (from a sockaddr_storage, say); any other family
 * leaves out zeroed (AF_UNSPEC). */
static inline void awf_sockaddr_copy(union awf_sockaddr *out, const struct sockaddr *sa)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET)
        memcpy(&out->in, sa, sizeof(out->in));
    else if (sa->sa_family == AF_INET6)
        memcpy(&out->in6, sa, sizeof(out->in6));
}

/* The port in host order; 0 for other families. */
static inline uint16_t awf_sockaddr_port(const union awf_sockaddr *a)
{
    if (a->sa.sa_family == AF_INET)
        return ntohs(a->in.sin_port);
    if (a->sa.sa_family == AF_INET6)
        return ntohs(a->in6.sin6_port);
    return 0;
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the AF_INET address it stands for, port
 * kept; any other address unchanged. The same connection is seen mapped from an IPv6 socket and
 * plain from an IPv4 one. */
static inline void awf_sockaddr_unmap(union awf_sockaddr *a)
{
    if (a->sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
        return;
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = a->in6.sin6_port};
    memcpy(&v4.sin_addr, &a->in6.sin6_addr.s6_addr[12], 4);
    memset(a, 0, sizeof(*a));
    a->in = v4;
}

#endif
