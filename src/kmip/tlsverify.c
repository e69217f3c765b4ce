/*
 * tlsverify.c - the cache of verified peer chains (see tlsverify.h).
 *
 * Sets of VC_WAYS entries (fewer when the capacity is smaller), chosen by
 * the key's first bytes; within a set, a new chain takes a free entry, else
 * the least recently used one. An entry: the SHA-256 that names the
 * verification's inputs, the verified chain (the objects, up-referenced),
 * and the window in which it may be reused.
 *
 * The key covers, in order and with lengths, a version label, our side,
 * the verification flags, depth, security level, host flags, every
 * expected host name, the e-mail and IP address, then the SHA-256 of each
 * certificate the peer sent, leaf first. Anything left out
 * of the key is fixed for the context's lifetime (trust store, purpose);
 * anything that depends on the clock is in the window.
 */
#include "kmip/tlsverify.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

/* Entries per set: a few peers whose keys share a set do not evict each
 * other, and a lookup compares at most this many keys. */
#define VC_WAYS 4

struct vc_entry {
    unsigned char key[32];
    bool used;
    uint64_t last_used; /* vc->tick when last stored or hit */
    time_t not_before;  /* the latest notBefore in the chain */
    time_t expires;     /* the earliest notAfter, capped by max_age */
    STACK_OF(X509) * chain;
};

struct tls_vcache {
    pthread_mutex_t lock;
    size_t nslots;   /* the capacity, a power of two: nsets * ways */
    size_t ways;     /* entries per set: VC_WAYS, or the capacity if smaller */
    size_t set_mask; /* nsets - 1 */
    uint64_t tick;   /* counts lookups and stores, for LRU */
    unsigned max_age;
    EVP_MD *sha256; /* fetched once: no method lookup per handshake */
    uint64_t hits, misses;
    struct vc_entry *slots;
};

static int vc_index = -1;
static pthread_once_t vc_once = PTHREAD_ONCE_INIT;

static void vc_free(struct tls_vcache *vc)
{
    if (vc == NULL)
        return;
    if (vc->slots != NULL) {
        for (size_t i = 0; i < vc->nslots; i++)
            sk_X509_pop_free(vc->slots[i].chain, X509_free);
        free(vc->slots);
    }
    EVP_MD_free(vc->sha256);
    pthread_mutex_destroy(&vc->lock);
    free(vc);
}

/* CRYPTO_EX_free: the SSL_CTX is being freed. */
static void vc_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    vc_free(ptr);
}

static void vc_init_index(void)
{
    vc_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, vc_ex_free);
}

static bool vc_asn1_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    *out = timegm(&tm);
    return *out != (time_t)-1;
}

/* Adds a length-prefixed field to the key (absent fields as length 0, so
 * that no two different inputs hash alike). */
static bool vc_field(EVP_MD_CTX *md, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    return EVP_DigestUpdate(md, &len, sizeof(len)) == 1 &&
           (n == 0 || EVP_DigestUpdate(md, p, n) == 1);
}

static bool vc_text(EVP_MD_CTX *md, const char *s)
{
    return vc_field(md, s, s != NULL ? strlen(s) : 0);
}

/* The key of this verification, or false when it must not be cached. */
static bool vc_key(struct tls_vcache *vc, X509_STORE_CTX *xs, unsigned char key[32])
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(xs);
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    unsigned long flags = X509_VERIFY_PARAM_get_flags(param);
    EVP_MD_CTX *md = NULL;
    char *ip = NULL;
    bool ok = false;

    if (leaf == NULL || ssl == NULL ||
        (flags & (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL | X509_V_FLAG_USE_CHECK_TIME)))
        return false;
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, vc->sha256, NULL) != 1)
        goto out;
    int32_t ints[5] = {1 /* key layout version */, SSL_is_server(ssl),
                       X509_VERIFY_PARAM_get_depth(param), X509_VERIFY_PARAM_get_auth_level(param),
                       (int32_t)X509_VERIFY_PARAM_get_hostflags(param)};
    uint64_t fl = flags;
    if (!vc_field(md, ints, sizeof(ints)) || !vc_field(md, &fl, sizeof(fl)))
        goto out;
    for (int i = 0;; i++) {
        const char *host = X509_VERIFY_PARAM_get0_host(param, i);
        if (host == NULL)
            break;
        if (!vc_text(md, host))
            goto out;
    }
    ip = X509_VERIFY_PARAM_get1_ip_asc(param);
    /* An empty field ends the host names (a host name is never empty). */
    if (!vc_field(md, "", 0) || !vc_text(md, X509_VERIFY_PARAM_get0_email(param)) ||
        !vc_text(md, ip))
        goto out;
    int n = sent != NULL ? sk_X509_num(sent) : 0;
    for (int i = -1; i < n; i++) {
        X509 *c = i < 0 ? leaf : sk_X509_value(sent, i);
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        if (c == NULL || X509_digest(c, vc->sha256, d, &dlen) != 1 || !vc_field(md, d, dlen))
            goto out;
    }
    unsigned klen = 0;
    ok = EVP_DigestFinal_ex(md, key, &klen) == 1 && klen == 32;
out:
    OPENSSL_free(ip);
    EVP_MD_CTX_free(md);
    return ok;
}

/* The validity window of a verified chain: from its latest notBefore to
 * its earliest notAfter, cut at now + max_age. */
static bool vc_window(const struct tls_vcache *vc, STACK_OF(X509) * chain, time_t now,
                      time_t *not_before, time_t *expires)
{
    *not_before = 0;
    *expires = now + (time_t)vc->max_age;
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        time_t nb, na;
        if (!vc_asn1_time(X509_get0_notBefore(c), &nb) || !vc_asn1_time(X509_get0_notAfter(c), &na))
            return false;
        if (nb > *not_before)
            *not_before = nb;
        if (na < *expires)
            *expires = na;
    }
    return *not_before <= now && now < *expires;
}

/* A copy of the cached chain for this connection, with the certificate the
 * peer actually sent in front (the same bytes as the cached leaf). */
static STACK_OF(X509) * vc_chain_for(STACK_OF(X509) * cached, X509 *leaf)
{
    STACK_OF(X509) *chain = X509_chain_up_ref(cached);
    if (chain == NULL)
        return NULL;
    if (sk_X509_num(chain) < 1 || !X509_up_ref(leaf)) {
        sk_X509_pop_free(chain, X509_free);
        return NULL;
    }
    X509_free(sk_X509_value(chain, 0));
    (void)sk_X509_set(chain, 0, leaf);
    return chain;
}

/* The first entry of key's set. */
static struct vc_entry *vc_set(struct tls_vcache *vc, const unsigned char key[32])
{
    size_t set = (key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16) & vc->set_mask;
    return &vc->slots[set * vc->ways];
}

/* key's entry in its set, or NULL. Under vc->lock. */
static struct vc_entry *vc_find(struct tls_vcache *vc, const unsigned char key[32])
{
    struct vc_entry *set = vc_set(vc, key);
    for (size_t i = 0; i < vc->ways; i++)
        if (set[i].used && memcmp(set[i].key, key, 32) == 0)
            return &set[i];
    return NULL;
}

/* Where a chain for key goes: its own entry, a free one, or the least
 * recently used one of the set. Under vc->lock. */
static struct vc_entry *vc_victim(struct tls_vcache *vc, const unsigned char key[32])
{
    struct vc_entry *e = vc_find(vc, key);
    if (e != NULL)
        return e;
    struct vc_entry *set = vc_set(vc, key);
    e = &set[0];
    for (size_t i = 0; i < vc->ways; i++) {
        if (!set[i].used)
            return &set[i];
        if (set[i].last_used < e->last_used)
            e = &set[i];
    }
    return e;
}

/* SSL_CTX_set_cert_verify_callback: in place of X509_verify_cert. */
static int vc_verify(X509_STORE_CTX *xs, void *arg)
{
    struct tls_vcache *vc = arg;
    unsigned char key[32];
    time_t now = time(NULL);
    bool cacheable = vc_key(vc, xs, key);

    if (cacheable) {
        STACK_OF(X509) *chain = NULL;
        pthread_mutex_lock(&vc->lock);
        struct vc_entry *e = vc_find(vc, key);
        if (e != NULL && e->not_before <= now && now < e->expires)
            chain = vc_chain_for(e->chain, X509_STORE_CTX_get0_cert(xs));
        if (chain != NULL) {
            vc->hits++;
            e->last_used = ++vc->tick;
        } else
            vc->misses++;
        pthread_mutex_unlock(&vc->lock);
        if (chain != NULL) {
            X509_STORE_CTX_set0_verified_chain(xs, chain);
            X509_STORE_CTX_set_error(xs, X509_V_OK);
            return 1;
        }
    } else {
        pthread_mutex_lock(&vc->lock);
        vc->misses++;
        pthread_mutex_unlock(&vc->lock);
    }

    int ok = X509_verify_cert(xs);
    if (ok != 1 || !cacheable || X509_STORE_CTX_get_error(xs) != X509_V_OK)
        return ok < 0 ? 0 : ok;

    STACK_OF(X509) *verified = X509_STORE_CTX_get0_chain(xs);
    time_t not_before, expires;
    if (verified == NULL || !vc_window(vc, verified, now, &not_before, &expires))
        return ok;
    STACK_OF(X509) *copy = X509_chain_up_ref(verified);
    if (copy == NULL)
        return ok;
    pthread_mutex_lock(&vc->lock);
    struct vc_entry *e = vc_victim(vc, key);
    STACK_OF(X509) *old = e->chain;
    memcpy(e->key, key, sizeof(key));
    e->used = true;
    e->last_used = ++vc->tick;
    e->not_before = not_before;
    e->expires = expires;
    e->chain = copy;
    pthread_mutex_unlock(&vc->lock);
    sk_X509_pop_free(old, X509_free);
    return ok;
}

RESULT tls_vcache_attach(SSL_CTX *ctx, size_t capacity, unsigned max_age_s)
{
    struct tls_vcache *vc;
    size_t cap = 1;

    ENSURE(capacity >= 1 && capacity <= TLS_VCACHE_MAX_CAPACITY, ERR_INVALID_ARG);
    ENSURE(max_age_s >= 1 && max_age_s <= TLS_VCACHE_MAX_AGE_MAX, ERR_INVALID_ARG);
    (void)pthread_once(&vc_once, vc_init_index);
    ENSURE(vc_index >= 0, ERR_CRYPTO);
    ENSURE(SSL_CTX_get_verify_callback(ctx) == NULL, ERR_INVALID_ARG);
    ENSURE(SSL_CTX_get_ex_data(ctx, vc_index) == NULL, ERR_INVALID_ARG);
    while (cap < capacity)
        cap <<= 1;
    vc = calloc(1, sizeof(*vc));
    ENSURE(vc != NULL, ERR_NOMEM);
    if (pthread_mutex_init(&vc->lock, NULL) != 0) {
        free(vc);
        BAIL(ERR_NOMEM);
    }
    vc->nslots = cap;
    vc->ways = cap < VC_WAYS ? cap : VC_WAYS;
    vc->set_mask = cap / vc->ways - 1;
    vc->max_age = max_age_s;
    vc->slots = calloc(cap, sizeof(*vc->slots));
    vc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (vc->slots == NULL || vc->sha256 == NULL || SSL_CTX_set_ex_data(ctx, vc_index, vc) != 1) {
        bool nomem = vc->slots == NULL;
        vc_free(vc);
        BAIL(nomem ? ERR_NOMEM : ERR_CRYPTO);
    }
    SSL_CTX_set_cert_verify_callback(ctx, vc_verify, vc);
    return OK_RESULT;
}

void tls_vcache_stats(const SSL_CTX *ctx, uint64_t *hits, uint64_t *misses)
{
    struct tls_vcache *vc = vc_index >= 0 ? SSL_CTX_get_ex_data(ctx, vc_index) : NULL;

    *hits = *misses = 0;
    if (vc == NULL)
        return;
    pthread_mutex_lock(&vc->lock);
    *hits = vc->hits;
    *misses = vc->misses;
    pthread_mutex_unlock(&vc->lock);
}
