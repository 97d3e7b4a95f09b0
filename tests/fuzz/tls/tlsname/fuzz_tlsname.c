/* Fuzz target for the names leaf certificates are minted for (tls/cert.c): any bytes a client
 * can put in an SNI or a CONNECT host go through awf_tls_name_canon(); what it accepts is minted
 * and the leaf must name exactly that canonical name. Checked properties (abort() on failure):
 *   - an accepted name is canonical: canonicalising it again gives itself, same kind;
 *   - it is short enough, lower case, and holds no byte outside [a-z0-9._:-];
 *   - the minted leaf verifies by hostname (DNS) or by address (IP) for that name. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "tls/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct awf_tls_ca *ca;
static EVP_PKEY *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[AWF_HOST_MAX + 1], again[AWF_HOST_MAX + 1], err[256];
    if (!ca) {
        key = awf_tls_key_new(AWF_TLS_KEY_P256);
        if (!key || awf_tls_ca_new(1, "fuzz", &ca, err, sizeof(err)) < 0)
            abort();
    }
    int kind = awf_tls_name_canon((const char *)data, size, out, sizeof(out));
    if (kind < 0)
        return 0;
    size_t n = strlen(out);
    if (n == 0 || n > AWF_HOST_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= '0' && out[i] <= '9') ||
              strchr("._:-", out[i])))
            abort();
    if (awf_tls_name_canon(out, n, again, sizeof(again)) != kind || strcmp(out, again) != 0)
        abort();
    X509 *leaf;
    if (awf_tls_mint(ca, key, out, (enum awf_tls_name)kind, &leaf) < 0)
        abort();
    int ok = kind == AWF_TLS_NAME_DNS
                 ? X509_check_host(leaf, out, n, X509_CHECK_FLAG_NO_WILDCARDS, NULL)
                 : X509_check_ip_asc(leaf, out, 0);
    if (ok != 1)
        abort();
    X509_free(leaf);
    return 0;
}
