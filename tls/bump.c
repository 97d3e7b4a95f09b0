/* The process's bump context: the CA, one leaf key, the leaf cache and the two SSL_CTXs.
 *
 * One P-256 leaf key for every minted certificate: a mint is then one ECDSA signature by the CA
 * (tens of microseconds) instead of a key generation plus a signature, and every handshake signs
 * with P-256, ~20x cheaper than RSA-2048 (bench/cert_bench.c has the figures). The key lives in
 * this process's memory next to the CA key that can sign anything anyway, so one key per leaf
 * would protect nothing more. */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/error.h"
#include "tls/tls-int.h"

struct awf_tls_bump {
    /* ca and client are replaced by a reload: read under the read lock, swapped under the
     * write lock (a mint holds the read lock through its cache put, so no leaf of an old CA
     * lands in the cache after the flush). */
    pthread_rwlock_t lock;
    struct awf_tls_ca *ca;
    EVP_PKEY *leaf_key;
    struct tls_cache *cache;
    SSL_CTX *server; /* towards clients */
    SSL_CTX *client; /* towards upstreams */
};

static const unsigned char alpn_http11[] = "\x08http/1.1";

/* Only HTTP/1.1 is spoken inside bumped TLS: a client offering h2 and http/1.1 gets http/1.1; one
 * offering no ALPN, or none we speak, continues without (it will speak HTTP/1.1 or fail). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, alpn_http11, sizeof(alpn_http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

void awf_tls_bump_destroy(struct awf_tls_bump *b)
{
    if (!b)
        return;
    SSL_CTX_free(b->server);
    SSL_CTX_free(b->client);
    tls_cache_destroy(b->cache);
    EVP_PKEY_free(b->leaf_key);
    awf_tls_ca_free(b->ca);
    pthread_rwlock_destroy(&b->lock);
    free(b);
}

/* The context towards upstreams: the system store plus o's extra CA file, the peer verified,
 * ALPN http/1.1. Returns NULL and *out, or what failed (*out may then need freeing). */
static const char *upstream_ctx(const struct awf_tls_bump_opts *o, SSL_CTX **out)
{
    static __thread char what[600];
    SSL_CTX *x = *out = SSL_CTX_new(TLS_client_method());
    if (!x || SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_default_verify_paths(x) != 1)
        return "making the upstream TLS context";
    if (o->upstream_ca_file && SSL_CTX_load_verify_locations(x, o->upstream_ca_file, NULL) != 1) {
        snprintf(what, sizeof(what), "%s: cannot load CA certificates", o->upstream_ca_file);
        return what;
    }
    SSL_CTX_set_verify(x, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(x, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(x, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_alpn_protos(x, alpn_http11, sizeof(alpn_http11) - 1) != 0)
        return "setting ALPN";
    return NULL;
}

/* "what: OpenSSL's first queued reason" into err (the queue cleared); AWF_E_USAGE. */
static int say(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char r[256] = "";
    if (e)
        ERR_error_string_n(e, r, sizeof(r));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", r);
    return AWF_E_USAGE;
}

static int fail(struct awf_tls_bump *b, char *err, size_t errlen, const char *what)
{
    awf_tls_bump_destroy(b);
    return say(err, errlen, what);
}

int awf_tls_bump_create(const struct awf_tls_bump_opts *o, struct awf_tls_bump **out, char *err,
                        size_t errlen)
{
    struct awf_tls_bump *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    /* Writer first: loops minting back to back must not starve a reload (glibc's default
     * lets overlapping readers keep the lock for ever). */
    pthread_rwlockattr_t la;
    pthread_rwlockattr_init(&la);
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int lrc = pthread_rwlock_init(&b->lock, &la);
    pthread_rwlockattr_destroy(&la);
    if (lrc != 0) {
        free(b);
        return -ENOMEM;
    }
    int rc = tls_ca_load(o->ca_cert, o->ca_key, &b->ca, err, errlen);
    if (rc < 0) {
        pthread_rwlock_destroy(&b->lock);
        free(b);
        return rc;
    }
    b->leaf_key = awf_tls_key_new(AWF_TLS_KEY_P256);
    if (!b->leaf_key)
        return fail(b, err, errlen, "making the leaf key");
    b->cache = tls_cache_create(o->cache_bytes ? o->cache_bytes : 16u << 20);
    if (!b->cache)
        return fail(b, err, errlen, "out of memory");

    b->server = SSL_CTX_new(TLS_server_method());
    if (!b->server || SSL_CTX_set_min_proto_version(b->server, TLS1_2_VERSION) != 1)
        return fail(b, err, errlen, "making the client-side TLS context");
    SSL_CTX_set_alpn_select_cb(b->server, alpn_select, NULL);
    /* Compression off (CRIME), renegotiation refused, the server's cipher preference. */
    SSL_CTX_set_options(b->server, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                       SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* An idle session (keep-alive client, pooled upstream) holds no record buffers: ~34 KB
     * each otherwise, which hundreds of pooled upstreams turn into megabytes. */
    SSL_CTX_set_mode(b->server, SSL_MODE_RELEASE_BUFFERS);

    const char *what = upstream_ctx(o, &b->client);
    if (what)
        return fail(b, err, errlen, what);
    *out = b;
    return 0;
}

int awf_tls_bump_reload(struct awf_tls_bump *b, const struct awf_tls_bump_opts *o, char *err,
                        size_t errlen)
{
    struct awf_tls_ca *ca;
    SSL_CTX *client = NULL;
    int rc = tls_ca_load(o->ca_cert, o->ca_key, &ca, err, errlen);
    if (rc < 0)
        return rc;
    const char *what = upstream_ctx(o, &client);
    if (what) {
        rc = say(err, errlen, what);
        SSL_CTX_free(client);
        awf_tls_ca_free(ca);
        return rc;
    }
    pthread_rwlock_wrlock(&b->lock);
    struct awf_tls_ca *old_ca = b->ca;
    SSL_CTX *old_client = b->client;
    b->ca = ca;
    b->client = client;
    tls_cache_clear(b->cache);
    pthread_rwlock_unlock(&b->lock);
    awf_tls_ca_free(old_ca);
    SSL_CTX_free(old_client); /* upstream sessions made from it hold their own reference */
    return 0;
}

int awf_tls_bump_client_ssl(struct awf_tls_bump *b, const char *canon, enum awf_tls_name kind,
                            SSL **out, bool *minted)
{
    *minted = false;
    pthread_rwlock_rdlock(&b->lock);
    X509 *leaf = tls_cache_get(b->cache, canon);
    if (!leaf) {
        int rc = awf_tls_mint(b->ca, b->leaf_key, canon, kind, &leaf);
        if (rc == 0)
            rc = tls_cache_put(b->cache, canon, leaf);
        if (rc < 0) {
            pthread_rwlock_unlock(&b->lock);
            X509_free(leaf);
            return rc;
        }
        *minted = true;
    }
    pthread_rwlock_unlock(&b->lock);
    SSL *ssl = SSL_new(b->server);
    int ok =
        ssl && SSL_use_certificate(ssl, leaf) == 1 && SSL_use_PrivateKey(ssl, b->leaf_key) == 1;
    X509_free(leaf);
    if (!ok) {
        ERR_clear_error();
        SSL_free(ssl);
        return -ENOMEM;
    }
    SSL_set_accept_state(ssl);
    *out = ssl;
    return 0;
}

int awf_tls_bump_upstream_ssl(struct awf_tls_bump *b, const char *canon, enum awf_tls_name kind,
                              SSL **out)
{
    pthread_rwlock_rdlock(&b->lock);
    SSL *ssl = SSL_new(b->client); /* takes its own reference to the context */
    pthread_rwlock_unlock(&b->lock);
    if (!ssl)
        return -ENOMEM;
    int ok;
    if (kind == AWF_TLS_NAME_DNS)
        ok = SSL_set_tlsext_host_name(ssl, canon) == 1 && SSL_set1_host(ssl, canon) == 1;
    else /* no SNI for an address (RFC 6066 3); the certificate must name it as an IP SAN */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), canon) == 1;
    if (!ok) {
        ERR_clear_error();
        SSL_free(ssl);
        return -ENOMEM;
    }
    SSL_set_connect_state(ssl);
    *out = ssl;
    return 0;
}
