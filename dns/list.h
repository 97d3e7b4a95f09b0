#ifndef AWF_DNS_LIST_H
#define AWF_DNS_LIST_H

/* Intrusive circular doubly-linked list with a sentinel, private to dns/. A node can be unlinked
 * without knowing which list holds it: that is what lets awf_dns_cancel() work on a request that
 * sits in a lookup's waiters or in a batch being delivered. */

#include <stdbool.h>
#include <stddef.h>

struct awf_dns_link {
    struct awf_dns_link *prev, *next;
};

#define AWF_DNS_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void awf_dns_list_init(struct awf_dns_link *head)
{
    head->prev = head->next = head;
}

static inline bool awf_dns_list_empty(const struct awf_dns_link *head)
{
    return head->next == head;
}

static inline void awf_dns_list_append(struct awf_dns_link *head, struct awf_dns_link *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Leaves n linked to itself, so unlinking twice is harmless. */
static inline void awf_dns_list_unlink(struct awf_dns_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of from to the end of to; from ends empty. */
static inline void awf_dns_list_splice(struct awf_dns_link *to, struct awf_dns_link *from)
{
    if (awf_dns_list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    awf_dns_list_init(from);
}

#endif
