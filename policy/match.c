/* The allow/block list matcher (policies from YAML and flags), reached through decide.c: the
 * hot path. One right-to-left pass over the host hashes each of its label-aligned suffixes; each
 * suffix costs one hash probe plus the wildcards bucketed under it. Nothing is allocated and
 * nothing written but the caller's verdict. */

#include "policy/policy_int.h"

#include <stdlib.h>
#include <string.h>

/* What a lookup found: the first block entry, the first allow entry for this traffic, and the
 * first allow entry for the other protocol only (for wrong_scope). */
struct found {
    const struct awf_policy_entry *blk, *ok, *other;
};

static void take(const struct awf_policy *p, int32_t idx, unsigned traffic, struct found *f)
{
    const struct awf_policy_entry *e = &p->entries[idx];
    if (e->block) {
        if (!f->blk)
            f->blk = e;
    } else if ((unsigned)e->scope & traffic) {
        if (!f->ok)
            f->ok = e;
    } else if (!f->other) {
        f->other = e;
    }
}

static void take_slots(const struct awf_policy *p, const int32_t *slots, int32_t bslot, int t,
                       unsigned traffic, struct found *f)
{
    if (bslot >= 0)
        take(p, bslot, traffic, f);
    if (slots[t] >= 0)
        take(p, slots[t], traffic, f);
    else if (slots[!t] >= 0)
        take(p, slots[!t], traffic, f);
}

/* prefix*suffix against the whole host; the part '*' stands for must be [a-z0-9.-]. Linear in
 * the host's length, no backtracking (one star). */
static bool wild_match(const struct wild *w, const char *h, size_t n)
{
    if (n < (size_t)w->plen + w->slen || memcmp(h, w->pat, w->plen) != 0 ||
        memcmp(h + n - w->slen, w->pat + w->plen + 1, w->slen) != 0)
        return false;
    for (size_t i = w->plen; i < n - w->slen; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static void take_wilds(const struct awf_policy *p, uint32_t first, uint32_t count,
                       const uint32_t *list, const struct host *h, unsigned traffic,
                       struct found *f)
{
    for (uint32_t i = 0; i < count; i++) {
        const struct wild *w = &p->wilds[list[first + i]];
        if (wild_match(w, h->name, h->len))
            take(p, w->entry, traffic, f);
    }
}

static void match_name(const struct awf_policy *p, const struct host *h, unsigned traffic,
                       struct found *f)
{
    uint32_t offs[AWF_HOST_MAX / 2 + 2];
    uint64_t hashes[AWF_HOST_MAX / 2 + 2];
    size_t n = 0;
    uint64_t hh = FNV_BASIS;
    for (size_t i = h->len; i-- > 0;) {
        hh ^= (uint8_t)h->name[i];
        hh *= FNV_PRIME;
        if (i == 0 || h->name[i - 1] == '.') {
            offs[n] = (uint32_t)i;
            hashes[n++] = hh;
        }
    }
    int t = traffic == AWF_TRAFFIC_HTTP ? 0 : 1;
    /* Longest suffix first, so the most specific entry is the one reported. */
    while (n-- > 0 && !f->blk) {
        size_t off = offs[n];
        const struct node *nd = policy_node_find(p, hashes[n], h->name + off, h->len - off);
        if (!nd)
            continue;
        take_slots(p, nd->self, nd->bself, t, traffic, f);
        /* "*.x" covers what '*' may stand for: no '_' (or other odd char) before ".x". */
        if (off > 0 && h->first_odd >= (int32_t)off)
            take_slots(p, nd->sub, nd->bsub, t, traffic, f);
        take_wilds(p, nd->sfx_first, nd->sfx_n, p->wlist, h, traffic, f);
    }
    const char *dot = memchr(h->name, '.', h->len);
    if (dot && !f->blk) {
        size_t fl = (size_t)(dot - h->name);
        const struct node *nd = policy_node_find(p, policy_rhash(h->name, fl), h->name, fl);
        if (nd)
            take_wilds(p, nd->pfx_first, nd->pfx_n, p->wlist, h, traffic, f);
    }
    if (!f->blk)
        take_wilds(p, 0, (uint32_t)p->n_loose, p->loose, h, traffic, f);
}

static int ipent_key_cmp(const void *key, const void *elem)
{
    const struct host *h = key;
    const struct ipent *e = elem;
    if (h->family != e->family)
        return h->family - e->family;
    return memcmp(h->ip, e->ip, 16);
}

static void match_ip(const struct awf_policy *p, const struct host *h, unsigned traffic,
                     struct found *f)
{
    const struct ipent *hit =
        p->n_ips ? bsearch(h, p->ips, p->n_ips, sizeof *p->ips, ipent_key_cmp) : NULL;
    if (!hit)
        return;
    while (hit > p->ips && ipent_key_cmp(h, hit - 1) == 0)
        hit--;
    for (; hit < p->ips + p->n_ips && ipent_key_cmp(h, hit) == 0; hit++)
        take(p, hit->entry, traffic, f);
}

/* Order of reasons: invalid_host, blocked, port, empty_allow, then the allow list's answer. A
 * block match is reported even on a bad port so `explain` shows the rule that matters most. */
void policy_match_decide(const struct awf_policy *p, const char *host, size_t host_len,
                         uint16_t port, enum awf_traffic traffic, struct awf_verdict *out)
{
    struct host h;
    struct found f = {0};
    out->allow = false;
    out->need_addrs = false;
    out->entry = NULL;
    out->rule = NULL;
    enum host_kind kind = policy_host_parse(host, host_len, &h);
    if (kind == HOST_INVALID) {
        out->reason = AWF_REASON_INVALID_HOST;
        return;
    }
    if (kind == HOST_IP)
        match_ip(p, &h, (unsigned)traffic, &f);
    else
        match_name(p, &h, (unsigned)traffic, &f);
    if (f.blk) {
        out->reason = AWF_REASON_BLOCKED;
        out->entry = f.blk;
    } else if (!(p->portmap[port / 8] & (1u << (port % 8)))) {
        out->reason = AWF_REASON_PORT;
    } else if (p->n_allow == 0) {
        out->reason = AWF_REASON_EMPTY_ALLOW;
    } else if (f.ok) {
        out->allow = true;
        out->reason = kind == HOST_IP ? AWF_REASON_ALLOWED_IP : AWF_REASON_ALLOWED;
        out->entry = f.ok;
    } else if (f.other) {
        out->reason = AWF_REASON_WRONG_SCOPE;
        out->entry = f.other;
    } else {
        out->reason = kind == HOST_IP ? AWF_REASON_RAW_IP : AWF_REASON_NOT_ALLOWED;
    }
}
