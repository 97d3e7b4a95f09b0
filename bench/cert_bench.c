/* Leaf certificate costs for ssl-bump (prints a markdown table): awf-cert-bench [N]
 *
 * What a bumped connection pays for its certificate, per leaf key type: generating a key, a mint
 * (building and signing a leaf with the CA: what a first visit of a name costs when one leaf key
 * is shared), a mint with a fresh key per leaf, and the signature the server makes in every
 * handshake with that key. The CA is P-256 either way (what `awf-proxy ca new` makes). */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/evp.h>

#include "tls/tls.h"

/* CPU time, not wall time: on a shared machine the figure stays what one operation costs. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sign_once(EVP_PKEY *k)
{
    unsigned char msg[64] = {0}, sig[512];
    size_t n = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestSign(m, sig, &n, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(m);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    if (n < 1)
        n = 1;
    char err[256];
    struct awf_tls_ca *ca;
    if (awf_tls_ca_new(1, "bench", &ca, err, sizeof(err)) < 0) {
        fprintf(stderr, "awf-cert-bench: %s\n", err);
        return 1;
    }
    printf("| leaf key | key generation, µs | mint, shared key, µs | mint with a new key, µs | "
           "handshake signature, µs |\n|---|---:|---:|---:|---:|\n");
    static const struct {
        enum awf_tls_keytype t;
        const char *name;
    } kinds[] = {{AWF_TLS_KEY_P256, "ECDSA P-256"}, {AWF_TLS_KEY_RSA2048, "RSA-2048"}};
    for (size_t k = 0; k < 2; k++) {
        int m = kinds[k].t == AWF_TLS_KEY_RSA2048 ? (n / 10 > 0 ? n / 10 : 1) : n;
        double t0 = now_s();
        for (int i = 0; i < m; i++)
            EVP_PKEY_free(awf_tls_key_new(kinds[k].t));
        double gen = (now_s() - t0) / m;
        EVP_PKEY *key = awf_tls_key_new(kinds[k].t);
        char name[64];
        t0 = now_s();
        for (int i = 0; i < n; i++) {
            X509 *x;
            snprintf(name, sizeof(name), "host%d.bench.test", i);
            if (awf_tls_mint(ca, key, name, AWF_TLS_NAME_DNS, &x) < 0)
                return 1;
            X509_free(x);
        }
        double mint = (now_s() - t0) / n;
        t0 = now_s();
        for (int i = 0; i < n; i++)
            if (sign_once(key) < 0)
                return 1;
        double sig = (now_s() - t0) / n;
        printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", kinds[k].name, gen * 1e6, mint * 1e6,
               (gen + mint) * 1e6, sig * 1e6);
        EVP_PKEY_free(key);
    }
    awf_tls_ca_free(ca);
    return 0;
}
