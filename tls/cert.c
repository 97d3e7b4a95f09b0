/* Names, the CA and minting leaf certificates. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "common/error.h"
#include "tls/tls-int.h"

struct awf_tls_ca {
    X509 *cert;
    EVP_PKEY *key;
};

/* ---- names ---- */

static bool ldh(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

int awf_tls_name_canon(const char *name, size_t len, char *out, size_t outlen)
{
    char buf[AWF_HOST_MAX + 2]; /* the name, a trailing dot, NUL */
    if (!name || len == 0 || len > AWF_HOST_MAX + 1 || outlen < AWF_HOST_MAX + 1)
        return AWF_E_BAD_REQUEST;
    if (memchr(name, '\0', len))
        return AWF_E_BAD_REQUEST;
    memcpy(buf, name, len);
    buf[len] = '\0';
    /* IP literals: IPv6 with or without brackets, IPv4 only as a dotted quad (the spellings
     * inet_aton also takes, 0x7f.1 and friends, are not names anyone puts in a certificate). */
    const char *ip = buf;
    size_t iplen = len;
    if (len >= 2 && buf[0] == '[' && buf[len - 1] == ']') {
        buf[len - 1] = '\0';
        ip = buf + 1;
        iplen = len - 2;
    }
    unsigned char a[16];
    if (memchr(ip, ':', iplen)) {
        if (inet_pton(AF_INET6, ip, a) != 1 || !inet_ntop(AF_INET6, a, out, (socklen_t)outlen))
            return AWF_E_BAD_REQUEST;
        return AWF_TLS_NAME_IPV6;
    }
    if (ip != buf)
        return AWF_E_BAD_REQUEST; /* brackets around anything but IPv6 */
    if (inet_pton(AF_INET, buf, a) == 1) {
        if (!inet_ntop(AF_INET, a, out, (socklen_t)outlen))
            return AWF_E_BAD_REQUEST;
        return AWF_TLS_NAME_IPV4;
    }
    if (buf[len - 1] == '.')
        len--;
    if (len == 0 || len > AWF_HOST_MAX)
        return AWF_E_BAD_REQUEST;
    size_t label = 0;
    bool all_digits = true; /* the last label: a name ending in a number looks like an address */
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch == '.') {
            if (label == 0 || out[i - 1] == '-')
                return AWF_E_BAD_REQUEST;
            label = 0;
            all_digits = true;
            out[i] = ch;
            continue;
        }
        if (!ldh(ch) || (label == 0 && ch == '-') || ++label > 63)
            return AWF_E_BAD_REQUEST;
        if (ch < '0' || ch > '9')
            all_digits = false;
        out[i] = ch;
    }
    if (label == 0 || out[len - 1] == '-' || all_digits)
        return AWF_E_BAD_REQUEST;
    out[len] = '\0';
    return AWF_TLS_NAME_DNS;
}

/* ---- keys ---- */

EVP_PKEY *awf_tls_key_new(enum awf_tls_keytype t)
{
    if (t == AWF_TLS_KEY_RSA2048)
        return EVP_RSA_gen(2048);
    return EVP_EC_gen("P-256");
}

/* SHA-256 for RSA and ECDSA keys; keys that hash internally (Ed25519) take no digest. */
static const EVP_MD *sign_md(EVP_PKEY *key)
{
    int id = EVP_PKEY_get_base_id(key);
    return (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
}

/* ---- the CA ---- */

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char r[256] = "";
    if (e)
        ERR_error_string_n(e, r, sizeof(r));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", r);
}

void awf_tls_ca_free(struct awf_tls_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca);
}

X509 *tls_ca_cert(const struct awf_tls_ca *ca)
{
    return ca->cert;
}

int tls_ca_load(const char *cert_path, const char *key_path, struct awf_tls_ca **out, char *err,
                size_t errlen)
{
    struct awf_tls_ca *ca = calloc(1, sizeof(*ca));
    if (!ca)
        return -ENOMEM;
    FILE *f = fopen(cert_path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", cert_path, strerror(e));
        free(ca);
        return -e;
    }
    ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    char what[512];
    if (!ca->cert) {
        snprintf(what, sizeof(what), "%s: not a PEM certificate", cert_path);
        ssl_err(err, errlen, what);
        awf_tls_ca_free(ca);
        return AWF_E_USAGE;
    }
    f = fopen(key_path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", key_path, strerror(e));
        awf_tls_ca_free(ca);
        return -e;
    }
    ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!ca->key) {
        snprintf(what, sizeof(what), "%s: not an unencrypted PEM private key", key_path);
        ssl_err(err, errlen, what);
        awf_tls_ca_free(ca);
        return AWF_E_USAGE;
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: the key does not belong to the certificate %s", key_path,
                 cert_path);
        awf_tls_ca_free(ca);
        return AWF_E_USAGE;
    }
    if (X509_check_ca(ca->cert) == 0) {
        snprintf(err, errlen, "%s: not a CA certificate (needs basicConstraints CA:TRUE)",
                 cert_path);
        awf_tls_ca_free(ca);
        return AWF_E_USAGE;
    }
    *out = ca;
    return 0;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int random_serial(X509 *cert)
{
    unsigned char b[20];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return -1;
    b[0] &= 0x7f; /* positive, at most 20 octets (RFC 5280 4.1.2.2) */
    b[0] |= 0x40; /* and never so short that it loses leading zero octets */
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

int awf_tls_ca_new(unsigned days, const char *cn, struct awf_tls_ca **out, char *err, size_t errlen)
{
    char name[96];
    if (!cn) {
        unsigned char r[8];
        if (RAND_bytes(r, sizeof(r)) != 1) {
            ssl_err(err, errlen, "random bytes");
            return -EIO;
        }
        int n = snprintf(name, sizeof(name), "awf-proxy per-run CA ");
        for (size_t i = 0; i < sizeof(r); i++)
            n += snprintf(name + n, sizeof(name) - (size_t)n, "%02x", r[i]);
        cn = name;
    }
    struct awf_tls_ca *ca = calloc(1, sizeof(*ca));
    if (!ca)
        return -ENOMEM;
    ca->key = awf_tls_key_new(AWF_TLS_KEY_P256);
    ca->cert = X509_new();
    X509_NAME *subj = ca->cert ? X509_get_subject_name(ca->cert) : NULL;
    if (!ca->key || !subj || X509_set_version(ca->cert, 2) != 1 || random_serial(ca->cert) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(ca->cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(ca->cert), (long)days * 86400) ||
        X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8, (const unsigned char *)"awf-proxy", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(ca->cert, subj) != 1 || X509_set_pubkey(ca->cert, ca->key) != 1 ||
        add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") < 0 ||
        X509_sign(ca->cert, ca->key, EVP_sha256()) == 0) {
        ssl_err(err, errlen, "making the CA");
        awf_tls_ca_free(ca);
        return -EIO;
    }
    *out = ca;
    return 0;
}

/* Writes with O_EXCL and the final mode from the start: no moment in which the file exists with
 * wider permissions, and an existing key is never replaced. */
static int write_pem(const char *dir, const char *file, mode_t mode, const struct awf_tls_ca *ca,
                     bool key, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    if (fchmod(fd, mode) < 0) { /* the umask may have narrowed it; never widened */
        int e = errno;
        close(fd);
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    int ok = key ? PEM_write_PrivateKey(f, ca->key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_X509(f, ca->cert);
    if (fclose(f) != 0 || ok != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: write failed", path);
        return -EIO;
    }
    return 0;
}

int awf_tls_ca_write(const struct awf_tls_ca *ca, const char *dir, char *err, size_t errlen)
{
    int rc = write_pem(dir, "ca-key.pem", 0600, ca, true, err, errlen);
    if (rc == 0 && (rc = write_pem(dir, "ca.pem", 0644, ca, false, err, errlen)) < 0) {
        char path[4096]; /* a key without its certificate is of no use to anyone */
        snprintf(path, sizeof(path), "%s/ca-key.pem", dir);
        unlink(path);
    }
    return rc;
}

/* ---- minting ---- */

/* now + offset_s, clamped into [lo, hi]: a leaf is never valid outside its CA's validity. */
static int set_time_within(ASN1_TIME *dst, long offset_s, const ASN1_TIME *lo, const ASN1_TIME *hi)
{
    if (!X509_gmtime_adj(dst, offset_s))
        return -1;
    if (ASN1_TIME_compare(dst, lo) < 0 && !ASN1_STRING_copy(dst, lo))
        return -1;
    if (ASN1_TIME_compare(dst, hi) > 0 && !ASN1_STRING_copy(dst, hi))
        return -1;
    return 0;
}

int awf_tls_mint(const struct awf_tls_ca *ca, EVP_PKEY *leaf_key, const char *canon,
                 enum awf_tls_name kind, X509 **out)
{
    char san[AWF_HOST_MAX + 8];
    snprintf(san, sizeof(san), "%s:%s", kind == AWF_TLS_NAME_DNS ? "DNS" : "IP", canon);
    X509 *cert = X509_new();
    if (!cert)
        return -ENOMEM;
    const ASN1_TIME *ca_nb = X509_get0_notBefore(ca->cert), *ca_na = X509_get0_notAfter(ca->cert);
    X509_NAME *subj = X509_get_subject_name(cert);
    int rc = -EIO;
    if (X509_set_version(cert, 2) != 1 || random_serial(cert) < 0 ||
        set_time_within(X509_getm_notBefore(cert), -3600, ca_nb, ca_na) < 0 ||
        set_time_within(X509_getm_notAfter(cert), 30L * 86400, ca_nb, ca_na) < 0 ||
        X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) != 1 ||
        X509_set_pubkey(cert, leaf_key) != 1)
        goto out;
    /* CN is at most 64 characters (RFC 5280 ub-common-name); clients use the SAN anyway. */
    if (strlen(canon) <= 64 &&
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)canon, -1, -1,
                                   0) != 1)
        goto out;
    if (add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(cert, ca->cert, NID_key_usage,
                EVP_PKEY_get_base_id(leaf_key) == EVP_PKEY_RSA
                    ? "critical,digitalSignature,keyEncipherment"
                    : "critical,digitalSignature") < 0 ||
        add_ext(cert, ca->cert, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(cert, ca->cert, NID_subject_alt_name, san) < 0 ||
        add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid") < 0)
        goto out;
    if (X509_sign(cert, ca->key, sign_md(ca->key)) == 0)
        goto out;
    *out = cert;
    return 0;
out:
    ERR_clear_error();
    X509_free(cert);
    return rc;
}
