/* awf_policy_build(): turns the builder's entries into the read-only lookup structures of
 * match.c. Every name an entry is keyed by becomes one node of an open-addressing hash table
 * (keyed by the label-aligned suffix it stands for); wildcards hang off the node of the
 * label-aligned part of their suffix, so a lookup only ever visits its own host's suffixes. */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over the bytes from last to first, so match.c can hash every suffix of a host in one
 * right-to-left pass. Keys come from the policy, never from the network, so an attacker picking
 * hosts cannot lengthen a probe chain. */
uint64_t policy_rhash(const char *s, size_t len)
{
    uint64_t h = FNV_BASIS;
    while (len-- > 0) {
        h ^= (uint8_t)s[len];
        h *= FNV_PRIME;
    }
    return h;
}

static size_t slot_of(uint64_t h, size_t mask)
{
    return (size_t)(h ^ (h >> 29) ^ (h >> 47)) & mask;
}

const struct node *policy_node_find(const struct awf_policy *p, uint64_t hash, const char *key,
                                    size_t len)
{
    for (size_t i = slot_of(hash, p->table_mask);; i = (i + 1) & p->table_mask) {
        uint32_t v = p->table[i];
        if (v == 0)
            return NULL;
        const struct node *n = &p->nodes[v - 1];
        if (n->hash == hash && n->len == len && memcmp(n->key, key, len) == 0)
            return n;
    }
}

static struct node *node_get(struct awf_policy *p, const char *key, size_t len)
{
    uint64_t h = policy_rhash(key, len);
    size_t i = slot_of(h, p->table_mask);
    for (;; i = (i + 1) & p->table_mask) {
        uint32_t v = p->table[i];
        if (v == 0)
            break;
        struct node *n = &p->nodes[v - 1];
        if (n->hash == h && n->len == len && memcmp(n->key, key, len) == 0)
            return n;
    }
    struct node *n = &p->nodes[p->n_nodes++];
    *n = (struct node){.hash = h, .key = key, .len = (uint32_t)len};
    n->self[0] = n->self[1] = n->sub[0] = n->sub[1] = n->bself = n->bsub = -1;
    p->table[i] = (uint32_t)p->n_nodes;
    return n;
}

static void set_slots(int32_t *slots, int32_t *bslot, const struct awf_policy_entry *e, int32_t idx)
{
    if (e->block) {
        if (*bslot < 0)
            *bslot = idx;
        return;
    }
    /* The first entry in source order wins a slot, so `explain` names the first rule. */
    if ((e->scope & AWF_SCOPE_HTTP) && slots[0] < 0)
        slots[0] = idx;
    if ((e->scope & AWF_SCOPE_TLS) && slots[1] < 0)
        slots[1] = idx;
}

/* Which node a wildcard hangs off: the label-aligned tail of its suffix ("api-*.example.com"
 * under "example.com"), else the first label of its prefix ("github.*" under "github"), else
 * none (dotless patterns such as "foo*" are checked on every lookup). */
static struct node *wild_node(struct awf_policy *p, const struct wild *w, bool *prefix)
{
    const char *sfx = w->pat + w->plen + 1;
    const char *dot = memchr(sfx, '.', w->slen);
    *prefix = false;
    if (dot && (size_t)(dot + 1 - sfx) < w->slen)
        return node_get(p, dot + 1, w->slen - (size_t)(dot + 1 - sfx));
    dot = memchr(w->pat, '.', w->plen);
    if (dot && dot > w->pat) {
        *prefix = true;
        return node_get(p, w->pat, (size_t)(dot - w->pat));
    }
    return NULL;
}

static int ip_cmp(const void *a, const void *b)
{
    const struct ipent *x = a, *y = b;
    if (x->family != y->family)
        return x->family - y->family;
    int c = memcmp(x->ip, y->ip, 16);
    return c ? c : (x->entry > y->entry) - (x->entry < y->entry);
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                          : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static bool sa_any(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET
               ? ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY)
               : IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* Whether a TCP listener at a could receive connections meant for one at b: same port, same
 * family ([::] is bound IPv6-only), and the same address or either one the wildcard. */
static bool overlaps(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || sa_port(a) == 0 || sa_port(a) != sa_port(b))
        return false;
    if (sa_any(a) || sa_any(b))
        return true;
    return a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
                                         ((const struct sockaddr_in *)b)->sin_addr.s_addr
                                   : memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                                            &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* The admin listener answers anyone who reaches it: an agent must never be able to, so it may
 * not share an address with a listener agents are sent to (proxy or DNS forwarder). */
static int check_admin(const struct awf_policy_builder *b, char *err, size_t errlen)
{
    const struct awf_settings *s = &b->s;
    const char *at = b->admin_at[0] ? b->admin_at : "policy";
    if (!s->admin.text)
        return 0;
    for (size_t i = 0; i < s->n_listen; i++)
        if (overlaps(&s->admin.addr, &s->listen[i].addr)) {
            policy_errf(err, errlen, at, 0, 0,
                        "admin address %s overlaps the proxy listener %s: the admin listener "
                        "must not be reachable where agents connect",
                        s->admin.text, s->listen[i].text);
            return AWF_E_POLICY_INVALID;
        }
    for (size_t i = 0; i < s->dns.forwarder.n_listen; i++)
        if (overlaps(&s->admin.addr, &s->dns.forwarder.listen[i].addr)) {
            policy_errf(err, errlen, at, 0, 0,
                        "admin address %s overlaps the DNS forwarder listener %s", s->admin.text,
                        s->dns.forwarder.listen[i].text);
            return AWF_E_POLICY_INVALID;
        }
    return 0;
}

static int check_settings(const struct awf_policy_builder *b, char *err, size_t errlen)
{
    const struct awf_settings *s = &b->s;
    if (check_admin(b, err, errlen) != 0)
        return AWF_E_POLICY_INVALID;
    if (s->dns.min_ttl_s > s->dns.max_ttl_s) {
        /* Found only once every source is merged: named where min_ttl was given, and where
         * max_ttl was when that was elsewhere. */
        const char *at = b->min_ttl_at[0] ? b->min_ttl_at : b->max_ttl_at;
        bool both = b->min_ttl_at[0] && b->max_ttl_at[0];
        policy_errf(err, errlen, at[0] ? at : "policy", 0, 0,
                    "dns.min_ttl (%us) is above dns.max_ttl (%us%s%s)", s->dns.min_ttl_s,
                    s->dns.max_ttl_s, both ? ", given at " : "", both ? b->max_ttl_at : "");
        return AWF_E_POLICY_INVALID;
    }
    for (size_t i = 0; i < s->n_listen; i++)
        for (size_t j = 0; j < i; j++)
            if (memcmp(&s->listen[i].addr, &s->listen[j].addr, sizeof s->listen[i].addr) == 0 &&
                ((const struct sockaddr_in *)&s->listen[i].addr)->sin_port != 0) {
                policy_errf(err, errlen, "policy", 0, 0, "listen address %s given twice",
                            s->listen[i].text);
                return AWF_E_POLICY_INVALID;
            }
    const struct awf_dns_forwarder_settings *f = &s->dns.forwarder;
    for (size_t i = 0; i < f->n_listen; i++)
        for (size_t j = 0; j < i; j++)
            if (memcmp(&f->listen[i].addr, &f->listen[j].addr, sizeof f->listen[i].addr) == 0 &&
                ((const struct sockaddr_in *)&f->listen[i].addr)->sin_port != 0) {
                policy_errf(err, errlen, "policy", 0, 0,
                            "dns.forwarder.listen address %s given twice", f->listen[i].text);
                return AWF_E_POLICY_INVALID;
            }
    return 0;
}

static size_t arena_put(char *arena, size_t at, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(arena + at, s, n);
    return at + n;
}

static int compile(struct awf_policy *p, const struct awf_policy_builder *b)
{
    /* One arena for every string: sources first, then each entry's text and normalized form. */
    size_t size = 0;
    for (size_t i = 0; i < b->n_sources; i++)
        size += strlen(b->sources[i]) + 1;
    for (size_t i = 0; i < b->n_entries; i++)
        size += strlen(b->entries[i].text) + strlen(b->entries[i].norm) + 2;
    size_t tsize = 16;
    while (tsize < 2 * b->n_entries + 16)
        tsize *= 2;
    p->arena = malloc(size + 1);
    p->entries = calloc(b->n_entries + 1, sizeof *p->entries);
    p->nodes = calloc(b->n_entries + 1, sizeof *p->nodes);
    p->table = calloc(tsize, sizeof *p->table);
    p->wilds = calloc(b->n_entries + 1, sizeof *p->wilds);
    p->wlist = calloc(b->n_entries + 1, sizeof *p->wlist);
    p->loose = calloc(b->n_entries + 1, sizeof *p->loose);
    p->ips = calloc(b->n_entries + 1, sizeof *p->ips);
    if (!p->arena || !p->entries || !p->nodes || !p->table || !p->wilds || !p->wlist || !p->loose ||
        !p->ips)
        return -ENOMEM;
    p->table_mask = tsize - 1;

    size_t at = 0;
    const char **src = calloc(b->n_sources + 1, sizeof *src);
    size_t *order = calloc(b->n_entries + 1, sizeof *order); /* policy index -> builder index */
    if (!src || !order) {
        free(src);
        free(order);
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->n_sources; i++) {
        src[i] = p->arena + at;
        at = arena_put(p->arena, at, b->sources[i]);
    }
    /* Allow entries first, then block entries, each in source order. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < b->n_entries; i++) {
            const struct bentry *be = &b->entries[i];
            if (be->block != (pass == 1))
                continue;
            order[p->n_entries] = i;
            struct awf_policy_entry *e = &p->entries[p->n_entries++];
            e->text = p->arena + at;
            at = arena_put(p->arena, at, be->text);
            e->normalized = p->arena + at;
            at = arena_put(p->arena, at, be->norm);
            e->scope = be->scope;
            e->block = be->block;
            e->origin = be->origin;
            for (size_t s = 0; s < b->n_sources; s++)
                if (be->origin.source == b->sources[s])
                    e->origin.source = src[s];
            if (!e->block)
                p->n_allow++;
        }
    free(src);

    /* Index every entry. Wildcards are counted per node first and placed in a second pass so
     * each bucket is one contiguous run of wlist. */
    for (size_t i = 0; i < p->n_entries; i++) {
        const struct awf_policy_entry *e = &p->entries[i];
        const struct bentry *be = &b->entries[order[i]];
        const char *norm = e->normalized;
        size_t len = strlen(norm);
        struct node *n;
        switch (be->kind) {
        case ENTRY_NAME:
            n = node_get(p, norm, len);
            set_slots(n->self, &n->bself, e, (int32_t)i);
            break;
        case ENTRY_SUB:
            n = node_get(p, norm + 2, len - 2);
            set_slots(n->sub, &n->bsub, e, (int32_t)i);
            break;
        case ENTRY_WILD: {
            struct wild *w = &p->wilds[p->n_wilds++];
            const char *star = strchr(norm, '*');
            bool prefix;
            *w = (struct wild){.pat = norm,
                               .plen = (uint16_t)(star - norm),
                               .slen = (uint16_t)(len - (size_t)(star - norm) - 1),
                               .entry = (int32_t)i};
            if ((n = wild_node(p, w, &prefix)) != NULL)
                *(prefix ? &n->pfx_n : &n->sfx_n) += 1;
            else
                p->loose[p->n_loose++] = (uint32_t)(p->n_wilds - 1);
            break;
        }
        case ENTRY_IP: {
            struct ipent *ip = &p->ips[p->n_ips++];
            ip->family = be->family;
            memcpy(ip->ip, be->ip, 16);
            ip->entry = (int32_t)i;
            break;
        }
        }
    }
    free(order);
    uint32_t next = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        struct node *n = &p->nodes[i];
        n->sfx_first = next;
        next += n->sfx_n;
        n->pfx_first = next;
        next += n->pfx_n;
        n->sfx_n = n->pfx_n = 0; /* recounted while placing */
    }
    for (size_t i = 0; i < p->n_wilds; i++) {
        bool prefix;
        struct node *n = wild_node(p, &p->wilds[i], &prefix);
        if (n && prefix)
            p->wlist[n->pfx_first + n->pfx_n++] = (uint32_t)i;
        else if (n)
            p->wlist[n->sfx_first + n->sfx_n++] = (uint32_t)i;
    }
    if (p->n_ips > 1)
        qsort(p->ips, p->n_ips, sizeof *p->ips, ip_cmp);

    memset(p->portmap, 0, sizeof p->portmap);
    p->portmap[80 / 8] |= 1u << (80 % 8);
    p->portmap[443 / 8] |= 1u << (443 % 8);
    for (size_t i = 0; i < p->settings.n_ports; i++)
        for (uint32_t port = p->settings.ports[i].lo; port <= p->settings.ports[i].hi; port++)
            p->portmap[port / 8] |= (uint8_t)(1u << (port % 8));
    return 0;
}

static void policy_free(struct awf_policy *p)
{
    policy_squid_unref(p->squid);
    policy_settings_free(&p->settings);
    free(p->arena);
    free(p->entries);
    free(p->nodes);
    free(p->table);
    free(p->wilds);
    free(p->wlist);
    free(p->loose);
    free(p->ips);
    free(p);
}

struct awf_policy *awf_policy_build(struct awf_policy_builder *b, char *err, size_t errlen)
{
    if (check_settings(b, err, errlen) < 0)
        return NULL;
    if (b->squid && b->n_entries > 0) {
        policy_errf(err, errlen, b->entries[0].origin.source, b->entries[0].origin.line,
                    b->entries[0].origin.col,
                    "allow/block entries cannot be combined with a squid.conf (its http_access "
                    "rules decide)");
        return NULL;
    }
    const struct awf_bump_settings *bs = &b->s.ssl_bump;
    if (bs->enabled && (!bs->ca_cert || !bs->ca_key)) {
        policy_errf(err, errlen, "ssl_bump", 0, 0,
                    "needs a CA: ssl_bump.ca_cert and ssl_bump.ca_key (--ca-cert, --ca-key; "
                    "awf-proxy ca new makes one)");
        return NULL;
    }
    if (bs->n_splice && !bs->enabled) {
        policy_errf(err, errlen, "ssl_bump.splice", 0, 0,
                    "needs ssl-bump (ssl_bump.enabled, --ssl-bump): without it every tunnel is "
                    "spliced already");
        return NULL;
    }
    if (bs->n_allow_urls && !bs->enabled) {
        policy_errf(err, errlen, "allow_urls", 0, 0,
                    "needs ssl-bump (ssl_bump.enabled, --ssl-bump): without it no HTTPS "
                    "path is visible");
        return NULL;
    }
    struct awf_policy *p = calloc(1, sizeof *p);
    if (!p) {
        policy_errf(err, errlen, "policy", 0, 0, "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    if (b->squid)
        p->squid = policy_squid_ref(b->squid);
    if (policy_settings_copy(&p->settings, &b->s) < 0 || compile(p, b) < 0) {
        policy_errf(err, errlen, "policy", 0, 0, "out of memory");
        policy_free(p);
        return NULL;
    }
    return p;
}

struct awf_policy *awf_policy_ref(struct awf_policy *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void awf_policy_unref(struct awf_policy *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        policy_free(p);
}

const struct awf_settings *awf_policy_settings(const struct awf_policy *p)
{
    return &p->settings;
}

size_t awf_policy_entries(const struct awf_policy *p, const struct awf_policy_entry **out)
{
    if (out)
        *out = p->entries;
    return p->n_entries;
}
