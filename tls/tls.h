#ifndef AWF_TLS_TLS_H
#define AWF_TLS_TLS_H

/* Certificates and TLS contexts for ssl-bump: a CA loaded once at start (or made by
 * `awf-proxy ca new`), leaf certificates minted from it per name and kept in a bounded LRU that
 * every event loop shares, and the two SSL_CTXs a bumped connection needs (towards the client
 * with a minted leaf, towards the upstream verified against the system store and an optional
 * extra CA file). Pure OpenSSL: no libuv, no sockets; the proxy drives the SSL objects through
 * memory BIOs (proxy/bump.c). tls/README.md says what is minted and why. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/host.h"

/* What a certificate name is. */
enum awf_tls_name {
    AWF_TLS_NAME_DNS = 1,
    AWF_TLS_NAME_IPV4 = 2,
    AWF_TLS_NAME_IPV6 = 3,
};

/* Checks a name a certificate is minted for (a ClientHello's SNI or a CONNECT host) and writes
 * its canonical form into out (NUL-terminated; outlen at least AWF_HOST_MAX + 1): DNS names
 * lower-cased without a trailing dot (labels of 1-63 letters, digits, '-' and '_', not starting
 * or ending with '-', 253 characters at most); IPv4 dotted quads and IPv6 literals (brackets
 * allowed) as inet_ntop prints them. Returns the kind (> 0), or AWF_E_BAD_REQUEST. */
int awf_tls_name_canon(const char *name, size_t len, char *out, size_t outlen);

/* ---- the CA ---- */

struct awf_tls_ca;

/* A new CA: a P-256 key, CA:TRUE with pathlen 0, keyCertSign and cRLSign, valid from one hour
 * ago (clock skew) for days days. cn NULL: "awf-proxy per-run CA <16 random hex digits>". */
int awf_tls_ca_new(unsigned days, const char *cn, struct awf_tls_ca **out, char *err,
                   size_t errlen);
/* Writes DIR/ca.pem (mode 0644) and DIR/ca-key.pem (created with mode 0600 and refused if it
 * exists: a key is never world-readable, not even for a moment, and never overwritten). */
int awf_tls_ca_write(const struct awf_tls_ca *ca, const char *dir, char *err, size_t errlen);
void awf_tls_ca_free(struct awf_tls_ca *ca);

/* ---- minting ---- */

enum awf_tls_keytype {
    AWF_TLS_KEY_P256,
    AWF_TLS_KEY_RSA2048,
};
/* A new private key of that type; NULL on failure. */
EVP_PKEY *awf_tls_key_new(enum awf_tls_keytype t);

/* Mints a leaf certificate for a canonical name (awf_tls_name_canon) with leaf_key's public key,
 * signed by ca: subjectAltName the name (DNS or IP), CN the name when it fits 64 characters,
 * CA:FALSE, digitalSignature, serverAuth, a 159-bit random serial, valid from one hour ago (never
 * before the CA) until 30 days on (never after the CA). Thread-safe (ca is only read). Returns 0
 * and *out (the caller owns it), or a negative code. */
int awf_tls_mint(const struct awf_tls_ca *ca, EVP_PKEY *leaf_key, const char *canon,
                 enum awf_tls_name kind, X509 **out);

/* ---- the bump context: one per process, shared by every loop ---- */

struct awf_tls_bump;

struct awf_tls_bump_opts {
    const char *ca_cert, *ca_key; /* PEM files, read once by awf_tls_bump_create */
    const char *upstream_ca_file; /* extra CAs trusted for upstreams; NULL: the system's only */
    size_t cache_bytes;           /* the leaf cache's bound; 0: 16 MB */
};

/* Loads the CA (before any privilege drop: the key file may be readable by root only), makes
 * the process's leaf key (P-256, see tls/README.md) and both SSL_CTXs. Returns 0, or a
 * negative code with err naming the file or step. */
int awf_tls_bump_create(const struct awf_tls_bump_opts *o, struct awf_tls_bump **out, char *err,
                        size_t errlen);
void awf_tls_bump_destroy(struct awf_tls_bump *b);
/* A reload (SIGHUP): reads o's CA and extra upstream CA file again (new paths or new contents)
 * for new connections; the leaf cache is flushed so no leaf of the old CA is handed out again;
 * sessions already made keep what they have. The cache bound stays. On failure nothing changes
 * and err names the file and why. Thread-safe against every other call on b (loops keep
 * minting meanwhile). Returns 0 or a negative code. */
int awf_tls_bump_reload(struct awf_tls_bump *b, const struct awf_tls_bump_opts *o, char *err,
                        size_t errlen);

/* A server-side SSL towards the client presenting a leaf for canon (minted on first use,
 * cached after), ALPN http/1.1 only, TLS 1.2 and later. *minted says whether it was minted now.
 * Thread-safe. Returns 0 and *out (the caller owns it), or a negative code. */
int awf_tls_bump_client_ssl(struct awf_tls_bump *b, const char *canon, enum awf_tls_name kind,
                            SSL **out, bool *minted);
/* A client-side SSL towards the upstream: SNI canon (not for addresses), ALPN http/1.1, the
 * chain verified against the system store plus the extra CA file, the name (or address)
 * checked. Thread-safe. Returns 0 and *out (the caller owns it), or a negative code. */
int awf_tls_bump_upstream_ssl(struct awf_tls_bump *b, const char *canon, enum awf_tls_name kind,
                              SSL **out);

#endif
