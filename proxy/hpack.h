#ifndef AWF_PROXY_HPACK_H
#define AWF_PROXY_HPACK_H

/* An HPACK decoder (RFC 7541): the static table, Huffman-coded strings and the dynamic table
 * (inserts, evictions, size updates). Used to read :authority and host from an h2c request's
 * header block inside a CONNECT tunnel. Pure: no I/O; the dynamic table is the one allocation,
 * owned by the decoder until proxy_hpack_free(). */

#include <stddef.h>
#include <stdint.h>

struct proxy_hpack_entry {
    char *name; /* owned; name and value in one allocation */
    char *value;
    size_t name_len, value_len;
};

struct proxy_hpack {
    struct proxy_hpack_entry *ents; /* ents[0] is the newest (index 62) */
    size_t n, cap;
    size_t size;     /* RFC 7541 4.1: sum of name + value + 32 */
    size_t max_size; /* the current maximum (size updates change it) */
    size_t limit;    /* the largest maximum a size update may ask for */
};

void proxy_hpack_init(struct proxy_hpack *h, size_t limit);
void proxy_hpack_free(struct proxy_hpack *h);

/* Called once per decoded field; the strings are valid for the call only (not NUL-terminated).
 * A non-zero return stops the decoding and is returned by proxy_hpack_decode(). */
typedef int (*proxy_hpack_field_cb)(void *arg, const char *name, size_t name_len, const char *value,
                                    size_t value_len);

/* Decodes one complete header block p[0..n) (borrowed for the call). Returns 0, the callback's
 * non-zero value, AWF_E_BAD_REQUEST (a malformed block: bad index, bad Huffman padding, EOS, a
 * truncated field, a size update over the limit) or -ENOMEM. */
int proxy_hpack_decode(struct proxy_hpack *h, const uint8_t *p, size_t n, proxy_hpack_field_cb cb,
                       void *arg);

/* Huffman-decodes p[0..n) into out (at least n * 8 / 5 + 1 bytes). Returns the length, or -1. */
long proxy_hpack_huffman(const uint8_t *p, size_t n, char *out);

#endif
