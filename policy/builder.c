/* The builder: collects entries and settings from every source, each checked as it arrives so
 * an error names where it came from. */

#include "policy/policy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct awf_policy_builder *awf_policy_builder_create(void)
{
    struct awf_policy_builder *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    if (policy_settings_defaults(&b->s) < 0) {
        free(b);
        return NULL;
    }
    b->listen_default = true;
    b->logs_default = true;
    return b;
}

void awf_policy_builder_destroy(struct awf_policy_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_entries; i++) {
        free(b->entries[i].text);
        free(b->entries[i].norm);
    }
    free(b->entries);
    for (size_t i = 0; i < b->n_sources; i++)
        free(b->sources[i]);
    free(b->sources);
    policy_settings_free(&b->s);
    policy_squid_unref(b->squid);
    free(b);
}

void policy_builder_at(struct awf_policy_builder *b, const char *source, unsigned line,
                       unsigned col)
{
    if (line == 0)
        snprintf(b->at, sizeof b->at, "%s", source);
    else if (col == 0)
        snprintf(b->at, sizeof b->at, "%s:%u", source, line);
    else
        snprintf(b->at, sizeof b->at, "%s:%u:%u", source, line, col);
}

/* Interns a source name; the pointer stays valid until the builder is destroyed. */
static const char *builder_source(struct awf_policy_builder *b, const char *name)
{
    for (size_t i = 0; i < b->n_sources; i++)
        if (strcmp(b->sources[i], name) == 0)
            return b->sources[i];
    if (b->n_sources == b->cap_sources) {
        size_t cap = b->cap_sources ? b->cap_sources * 2 : 8;
        char **g = realloc(b->sources, cap * sizeof *g);
        if (!g)
            return NULL;
        b->sources = g;
        b->cap_sources = cap;
    }
    char *d = strdup(name);
    if (d)
        b->sources[b->n_sources++] = d;
    return d;
}

int policy_builder_add_entry(struct awf_policy_builder *b, bool block, const char *s, size_t len,
                             const char *source, unsigned line, unsigned col, char *err,
                             size_t errlen)
{
    struct parsed_entry pe;
    char why[160];
    if (policy_entry_parse(s, len, block, &pe, why, sizeof why) < 0) {
        char q[160];
        policy_quote(q, sizeof q, pe.text, pe.text_len);
        policy_errf(err, errlen, source, line, col, "invalid entry %s: %s", q, why);
        return AWF_E_POLICY_INVALID;
    }
    const char *src = builder_source(b, source);
    if (!src)
        return -ENOMEM;
    if (b->n_entries == b->cap_entries) {
        size_t cap = b->cap_entries ? b->cap_entries * 2 : 16;
        struct bentry *g = realloc(b->entries, cap * sizeof *g);
        if (!g)
            return -ENOMEM;
        b->entries = g;
        b->cap_entries = cap;
    }
    struct bentry e = {
        .text = strndup(pe.text, pe.text_len),
        .norm = strndup(pe.norm, pe.norm_len),
        .kind = pe.kind,
        .scope = pe.scope,
        .block = block,
        .family = pe.family,
        .origin = {src, line, col},
    };
    memcpy(e.ip, pe.ip, sizeof e.ip);
    if (!e.text || !e.norm) {
        free(e.text);
        free(e.norm);
        return -ENOMEM;
    }
    b->entries[b->n_entries++] = e;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Adds the comma-separated items of one line (flag value or list-file line). Items are trimmed
 * and empty items skipped, as AWF does; whitespace inside an item is an error. */
static int add_items(struct awf_policy_builder *b, bool block, const char *s, size_t len,
                     const char *source, unsigned line, char *err, size_t errlen)
{
    size_t i = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        size_t a = start, z = i;
        while (a < z && is_blank(s[a]))
            a++;
        while (z > a && is_blank(s[z - 1]))
            z--;
        if (z > a) {
            int rc = policy_builder_add_entry(b, block, s + a, z - a, source, line,
                                              line ? (unsigned)a + 1 : 0, err, errlen);
            if (rc < 0)
                return rc;
        }
        i++;
    }
    return 0;
}

int awf_policy_add_list(struct awf_policy_builder *b, bool block, const char *list,
                        const char *origin, char *err, size_t errlen)
{
    if (!origin)
        origin = block ? "--block-domains" : "--allow-domains";
    return add_items(b, block, list, strlen(list), origin, 0, err, errlen);
}

/* Non-blocking open: a FIFO that nobody writes to must be an error, not a wait in open(2) for
 * a writer (`check` would hang, and a reload runs on the event loop). A pipe that has a writer
 * (`--policy <(gen)`, /dev/stdin) is read to its end, waiting for the writer as before; a FIFO
 * that gives nothing (no writer) is refused, naming it. */
int policy_read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        policy_errf(err, errlen, path, 0, 0, "cannot open: %s", strerror(e));
        return -e;
    }
    struct stat st;
    bool fifo = fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
    if (!fifo) /* a tty or a device reads as it always did */
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -ENOMEM;
    while (!rc) {
        if (len + 1 >= cap) {
            /* 64 MiB is far beyond any sane policy; refuse rather than exhaust memory. */
            char *g = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!g) {
                rc = cap < (64u << 20) ? -ENOMEM : -EFBIG;
                break;
            }
            buf = g;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EAGAIN) { /* a writer is there, nothing written yet */
            poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, -1);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) /* read(2)'s reason: EISDIR for a directory */
            rc = -errno;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!rc && fifo && len == 0) {
        free(buf);
        policy_errf(err, errlen, path, 0, 0,
                    "cannot read: a FIFO with nothing written to it (no writer)");
        return -ENXIO;
    }
    if (rc) {
        free(buf);
        policy_errf(err, errlen, path, 0, 0, "cannot read: %s", strerror(-rc));
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

int awf_policy_add_list_file(struct awf_policy_builder *b, bool block, const char *path, char *err,
                             size_t errlen)
{
    char *buf;
    size_t len;
    int rc = policy_read_file(path, &buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    unsigned line = 1;
    for (size_t i = 0; i < len && rc == 0; line++) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *hash = memchr(buf + i, '#', end - i);
        size_t stop = hash ? (size_t)(hash - buf) : end;
        rc = add_items(b, block, buf + i, stop - i, path, line, err, errlen);
        i = end + 1;
    }
    free(buf);
    return rc;
}

int awf_policy_set(struct awf_policy_builder *b, const char *key, const char *value,
                   const char *origin, char *err, size_t errlen)
{
    char where[96];
    if (!origin) {
        snprintf(where, sizeof where, "--set %s", key);
        origin = where;
    }
    /* `check` prints every value as YAML that must load back. */
    if (!policy_yaml_printable(value)) {
        policy_errf(err, errlen, origin, 0, 0, "control byte or invalid UTF-8 in the value");
        return AWF_E_POLICY_INVALID;
    }
    const struct skey *k = policy_key_find(key, strlen(key));
    if (!k) {
        policy_errf(err, errlen, origin, 0, 0, "unknown setting \"%s\"", key);
        return AWF_E_USAGE;
    }
    if (k->kind == K_SECTION) {
        policy_errf(err, errlen, origin, 0, 0, "\"%s\" is a section: set one of its keys", key);
        return AWF_E_USAGE;
    }
    if (k->kind == K_ALLOW || k->kind == K_BLOCK)
        return add_items(b, k->kind == K_BLOCK, value, strlen(value), origin, 0, err, errlen);

    if (k->kind == K_LISTEN && !b->listen_by_set)
        b->listen_by_set = b->listen_default = true;
    if (k->kind == K_LOGS && !b->logs_by_set)
        b->logs_by_set = b->logs_default = true;

    char why[AWF_POLICY_ERRLEN];
    size_t len = strlen(value);
    int rc;
    policy_builder_at(b, origin, 0, 0);
    /* Lists arrive comma-separated, except log outputs whose formats hold commas. */
    if (policy_key_is_list(k) && k->kind != K_LOGS) {
        if (k->kind == K_DNS_SERVERS)
            policy_clear_dns_servers(&b->s);
        for (size_t i = 0; i <= len; i++) {
            size_t start = i;
            while (i < len && value[i] != ',')
                i++;
            size_t a = start, z = i;
            /* Ports are taken as written: SPEC §3 allows no spaces in them, and a flag must
             * not accept what the same value in a file is rejected for. */
            bool ports = k->kind == K_PORTS || k->kind == K_OPAQUE_PORTS;
            while (!ports && a < z && is_blank(value[a]))
                a++;
            while (!ports && z > a && is_blank(value[z - 1]))
                z--;
            if (z == a && (!ports || len == 0))
                continue;
            if ((rc = policy_set_item(b, k, value + a, z - a, why, sizeof why)) < 0) {
                policy_errf(err, errlen, origin, 0, 0, "%s", why);
                return rc;
            }
        }
        return 0;
    }
    if ((rc = policy_set_item(b, k, value, len, why, sizeof why)) < 0)
        policy_errf(err, errlen, origin, 0, 0, "%s", why);
    return rc;
}
