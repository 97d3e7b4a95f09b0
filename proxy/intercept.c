/* Where intercepted traffic was headed (SPEC §2). An iptables REDIRECT or DNAT in the proxy's own
 * network namespace leaves the original destination in conntrack, where SO_ORIGINAL_DST
 * (IPv4) and IP6T_SO_ORIGINAL_DST (IPv6) read it back. A DNAT in another namespace (AWF's agent
 * container) leaves nothing here: then a listener's intercept_port, else the Host header's port,
 * else 80 (HTTP) / 443 (TLS) stand for it.
 *
 * Only the port is taken from it: the address dialled is always the name's own, resolved by the
 * proxy, so a client cannot pick the server by picking the IP it connects to. The address is
 * logged as %la:%lp, as Squid does for intercepted connections. */

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy/conn.h"

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, which do not compile
 * alongside the libc headers under strict C17. Both are 80. */
#define AWF_SO_ORIGINAL_DST      80
#define AWF_IP6T_SO_ORIGINAL_DST 80

bool proxy_intercept_is_nat(const struct sockaddr *orig, const struct sockaddr *local)
{
    if (orig->sa_family != local->sa_family)
        return orig->sa_family == AF_INET || orig->sa_family == AF_INET6;
    if (orig->sa_family == AF_INET) {
        const struct sockaddr_in *o = (const void *)orig, *l = (const void *)local;
        return o->sin_port != l->sin_port || o->sin_addr.s_addr != l->sin_addr.s_addr;
    }
    if (orig->sa_family == AF_INET6) {
        const struct sockaddr_in6 *o = (const void *)orig, *l = (const void *)local;
        return o->sin6_port != l->sin6_port ||
               memcmp(&o->sin6_addr, &l->sin6_addr, sizeof(o->sin6_addr)) != 0;
    }
    return false;
}

uint16_t proxy_intercept_choose_port(const struct sockaddr *orig, uint16_t listener_port,
                                     uint16_t fallback)
{
    if (orig && orig->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)orig)->sin_port);
    if (orig && orig->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)orig)->sin6_port);
    return listener_port ? listener_port : fallback;
}

/* Asks conntrack once per connection; a connection that was not NAT'd here (no entry, or one
 * whose original destination is the listener itself) has no original destination. */
static void lookup(struct proxy_conn *c)
{
    uv_os_fd_t fd;
    struct sockaddr_storage ss; /* what the kernel writes; kept as the compact form */
    socklen_t len = sizeof(ss);
    int rc = -1;
    if (c->flags & AWF_CF_ORIG_LOOKED)
        return;
    c->flags |= AWF_CF_ORIG_LOOKED;
    if (uv_fileno((uv_handle_t *)&c->client, &fd) < 0)
        return;
    memset(&ss, 0, sizeof(ss));
    if (c->local.sa.sa_family == AF_INET)
        rc = getsockopt(fd, SOL_IP, AWF_SO_ORIGINAL_DST, &ss, &len);
    else if (c->local.sa.sa_family == AF_INET6)
        rc = getsockopt(fd, SOL_IPV6, AWF_IP6T_SO_ORIGINAL_DST, &ss, &len);
    if (rc < 0) /* ENOENT: not tracked; ENOPROTOOPT: no conntrack in this kernel */
        return;
    /* The IPv4 call fills a sockaddr_in without always setting the family on old kernels. */
    if (c->local.sa.sa_family == AF_INET)
        ss.ss_family = AF_INET;
    if (!proxy_intercept_is_nat((struct sockaddr *)&ss, &c->local.sa))
        return;
    awf_sockaddr_copy(&c->orig_dst, (struct sockaddr *)&ss);
    c->flags |= AWF_CF_HAS_ORIG_DST;
}

uint16_t proxy_conn_intercept_port(struct proxy_conn *c, uint16_t fallback)
{
    lookup(c);
    return proxy_intercept_choose_port((c->flags & AWF_CF_HAS_ORIG_DST) ? &c->orig_dst.sa : NULL,
                                       c->listener ? c->listener->intercept_port : 0, fallback);
}

bool proxy_intercept_is_loop(struct proxy_conn *c)
{
    lookup(c);
    /* Cheap tests first: remote clients and DNAT elsewhere never scan the connections. */
    return (c->flags & AWF_CF_HAS_ORIG_DST) && proxy_is_local(c->px, &c->peer.sa) &&
           proxy_upstream_is_ours(c->px, &c->peer);
}
