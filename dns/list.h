#ifndef AWF_DNS_LIST_H
#define AWF_DNS_LIST_H

/* Intrusive circular doubly-linked list with a sentinel, private to dns/. A node can be unlinked
 * without knowing which list holds it: that is what lets awf_dns_cancel() work on a request that
 * sits in a lookup's waiters or in a batch being delivered. */

#include <stdbool.h>
#include <stddef.h>

struct dns_link {
    struct dns_link *prev, *next;
};

#define AWF_DNS_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void dns_list_init(struct dns_link *head)
{
    head->prev = head->next = head;
}

static inline bool dns_list_empty(const struct dns_link *head)
{
    return head->next == head;
}

static inline void dns_list_append(struct dns_link *head, struct dns_link *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Leaves n linked to itself, so unlinking twice is harmless. */
static inline void dns_list_unlink(struct dns_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of from to the end of to; from ends empty. */
static inline void dns_list_splice(struct dns_link *to, struct dns_link *from)
{
    if (dns_list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    dns_list_init(from);
}

#endif
