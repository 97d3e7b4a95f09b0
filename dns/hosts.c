#include "dns/hosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/error.h"
#include "dns/list.h"
#include "dns/name.h"

#define HOSTS_MAX_BYTES (64u << 20)

struct host_entry {
    struct dns_node node; /* key = name */
    size_t n4, n6;
    union dns_sa v4[AWF_DNS_MAX_ADDRS];
    union dns_sa v6[AWF_DNS_MAX_ADDRS];
    char name[];
};

int dns_hosts_init(struct dns_hosts *h)
{
    return dns_table_init(&h->names, 64);
}

static bool same_addr(const union dns_sa *a, const union dns_sa *b)
{
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr)) == 0 &&
           a->in6.sin6_scope_id == b->in6.sin6_scope_id;
}

static int add_name(struct dns_hosts *h, const char *name, size_t len, const union dns_sa *addr)
{
    char raw[AWF_HOST_MAX + 2], key[AWF_HOST_MAX + 1];
    if (len > AWF_HOST_MAX + 1)
        return 0; /* not a name anyone can ask for: skip, as glibc would never match it */
    memcpy(raw, name, len);
    raw[len] = '\0';
    if (dns_name_normalize(raw, key) < 0)
        return 0;

    struct host_entry *e = NULL;
    struct dns_node *n = dns_table_find(&h->names, key);
    if (n) {
        e = AWF_DNS_CONTAINER_OF(n, struct host_entry, node);
    } else {
        size_t klen = strlen(key);
        e = calloc(1, sizeof(*e) + klen + 1); /* owned by the table until hosts_free */
        if (!e)
            return -ENOMEM;
        memcpy(e->name, key, klen + 1);
        e->node.key = e->name;
        dns_table_insert(&h->names, &e->node);
        h->n_names++;
    }
    union dns_sa *list = addr->sa.sa_family == AF_INET ? e->v4 : e->v6;
    size_t *cnt = addr->sa.sa_family == AF_INET ? &e->n4 : &e->n6;
    for (size_t i = 0; i < *cnt; i++)
        if (same_addr(&list[i], addr))
            return 0;
    if (*cnt < AWF_DNS_MAX_ADDRS) {
        list[(*cnt)++] = *addr;
        h->n_addrs++;
    }
    return 0;
}

/* "fe80::1%eth0": the scope goes to sin6_scope_id; an unknown interface skips the line. */
static bool parse_addr(const char *tok, size_t len, union dns_sa *out)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, tok, len);
    buf[len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        dns_sa_v4(out, &a4);
        return true;
    }
    uint32_t scope = 0;
    char *pct = strchr(buf, '%');
    if (pct) {
        *pct = '\0';
        scope = if_nametoindex(pct + 1);
        if (scope == 0)
            return false;
    }
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return false;
    dns_sa_v6(out, &a6, scope);
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int dns_hosts_parse(struct dns_hosts *h, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *hash = memchr(p, '#', (size_t)(eol - p));
        const char *lend = hash ? hash : eol;

        union dns_sa addr;
        bool have_addr = false, bad = false;
        const char *q = p;
        while (q < lend && !bad) {
            while (q < lend && is_space(*q))
                q++;
            const char *tok = q;
            while (q < lend && !is_space(*q))
                q++;
            if (q == tok)
                break;
            if (!have_addr) {
                have_addr = parse_addr(tok, (size_t)(q - tok), &addr);
                bad = !have_addr;
            } else {
                int rc = add_name(h, tok, (size_t)(q - tok), &addr);
                if (rc < 0)
                    return rc;
            }
        }
        p = eol + 1;
    }
    return 0;
}

/* The whole file into *buf (malloc'd, the caller frees). Returns 0, 1 for a missing file (no
 * buffer), or -errno; AWF_E_NOT_FILE for a FIFO, socket or device. O_NONBLOCK: a FIFO must be
 * refused, not wait in open(2) for a writer (this runs on the event loop at a reload). */
static int read_file(const char *path, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 1 : -errno;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) < 0)
        err = -errno;
    else if (S_ISDIR(st.st_mode))
        err = -EISDIR;
    else if (!S_ISREG(st.st_mode))
        err = AWF_E_NOT_FILE;
    else if ((uintmax_t)st.st_size > HOSTS_MAX_BYTES)
        err = -EFBIG;
    if (err < 0) {
        close(fd);
        return err;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = malloc(cap);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    /* Stops when full: a file that grew between fstat and read is parsed as far as it fits. */
    while (n < cap) {
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = -errno;
            free(b);
            close(fd);
            return err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;
}

int dns_hosts_load(struct dns_hosts *h, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    rc = dns_hosts_parse(h, buf, len);
    free(buf);
    return rc;
}

int dns_hosts_find(const struct dns_hosts *h, const char *key, struct awf_dns_addrs *out)
{
    struct dns_node *n = dns_table_find(&h->names, key);
    if (!n)
        return AWF_E_DNS_FAIL;
    const struct host_entry *e = AWF_DNS_CONTAINER_OF(n, struct host_entry, node);
    out->n = 0;
    out->from_hosts = true;
    for (size_t i = 0; i < e->n4 && out->n < AWF_DNS_MAX_ADDRS; i++)
        dns_sa_store(&e->v4[i], &out->addr[out->n++]);
    for (size_t i = 0; i < e->n6 && out->n < AWF_DNS_MAX_ADDRS; i++)
        dns_sa_store(&e->v6[i], &out->addr[out->n++]);
    return 0;
}

void dns_hosts_free(struct dns_hosts *h)
{
    if (!h->names.buckets)
        return;
    for (size_t i = 0; i <= h->names.mask; i++) {
        struct dns_node *n = h->names.buckets[i];
        while (n) {
            struct dns_node *next = n->next;
            free(AWF_DNS_CONTAINER_OF(n, struct host_entry, node));
            n = next;
        }
    }
    dns_table_free(&h->names);
}

int awf_dns_hosts_check(const char *path)
{
    struct awf_dns_hosts_file *h = NULL;
    int rc = awf_dns_hosts_open(path, &h, NULL);
    awf_dns_hosts_release(h);
    return rc;
}

int awf_dns_hosts_open(const char *path, struct awf_dns_hosts_file **out,
                       struct awf_dns_hosts_info *info)
{
    struct awf_dns_hosts_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof(*info));
    struct awf_dns_hosts_file *h = calloc(1, sizeof(*h)); /* freed with its last reference */
    if (!h || dns_hosts_init(&h->table) < 0) {
        free(h);
        return -ENOMEM;
    }
    atomic_init(&h->refs, 1);
    char *buf = NULL;
    size_t len = 0;
    int rc = path && path[0] ? read_file(path, &buf, &len) : 1;
    info->missing = path && path[0] && rc == 1;
    if (rc == 0) {
        /* The hash lets an operator match what was applied with `sha256sum FILE`. */
        unsigned char md[32];
        unsigned int mdlen = 0;
        if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) == 1)
            for (unsigned i = 0; i < mdlen && i < 32; i++)
                snprintf(info->sha256 + 2 * i, 3, "%02x", md[i]);
        info->bytes = len;
        rc = dns_hosts_parse(&h->table, buf, len);
        free(buf);
    }
    if (rc < 0) {
        awf_dns_hosts_release(h);
        return rc;
    }
    info->names = h->table.n_names;
    info->addrs = h->table.n_addrs;
    *out = h;
    return 0;
}

struct awf_dns_hosts_file *awf_dns_hosts_ref(struct awf_dns_hosts_file *h)
{
    atomic_fetch_add(&h->refs, 1);
    return h;
}

void awf_dns_hosts_release(struct awf_dns_hosts_file *h)
{
    if (h && atomic_fetch_sub(&h->refs, 1) == 1) {
        dns_hosts_free(&h->table);
        free(h);
    }
}
