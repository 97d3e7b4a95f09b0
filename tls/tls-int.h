#ifndef AWF_TLS_TLS_INT_H
#define AWF_TLS_TLS_INT_H

/* What the files of tls/ share and the tests reach: reading a CA from files (cert.c, called by
 * bump.c's create and reload) and the leaf LRU (cache.c, owned by the bump context). Not part
 * of the module's API: tls/tls.h is. */

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "tls/tls.h"

/* ---- the CA (cert.c) ---- */

/* Reads a CA certificate and its private key (PEM; the key unencrypted) and checks that they
 * belong together and that the certificate may sign (CA:TRUE, keyCertSign when keyUsage is
 * present). Returns 0, or a negative code with err naming the file and why. */
int tls_ca_load(const char *cert_path, const char *key_path, struct awf_tls_ca **out, char *err,
                size_t errlen);

/* Borrowed; valid as long as ca. */
X509 *tls_ca_cert(const struct awf_tls_ca *ca);

/* ---- the leaf cache (cache.c), used by bump.c ---- */

struct tls_cache;

/* An LRU of minted certificates by canonical name, bounded by max_bytes (an estimate of each
 * entry's memory: its DER size times three plus the name and bookkeeping). Guarded by a mutex:
 * every loop shares one. NULL on failure. */
struct tls_cache *tls_cache_create(size_t max_bytes);
void tls_cache_destroy(struct tls_cache *c);
/* The cached certificate for name with a reference for the caller (X509_free it), or NULL. */
X509 *tls_cache_get(struct tls_cache *c, const char *name);
/* Adds cert under name (takes its own reference), evicting the least recently used entries
 * beyond the bound. An entry larger than the whole bound is not kept. Returns 0 or -ENOMEM. */
int tls_cache_put(struct tls_cache *c, const char *name, X509 *cert);

/* Drops every entry (a CA reload: no leaf of the old CA is handed out again). */
void tls_cache_clear(struct tls_cache *c);

struct tls_cache_stats {
    size_t entries, bytes;
    uint64_t hits, misses, evictions;
};
void tls_cache_stats(struct tls_cache *c, struct tls_cache_stats *out);

#endif
