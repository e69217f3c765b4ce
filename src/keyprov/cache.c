/*
 * cache.c - the KEK cache: every KEK this process has fetched or derived,
 * for the life of the process (or until the key is destroyed), so that an
 * outage of a key server does not stop operations whose keys are cached.
 *
 * KEKs live in slabs of secret memory, KEYPROV_CACHE_SLAB_KEKS to a slab:
 * each secret allocation costs three locked pages, and a host may hold a
 * KEK per VM. The index (provider, key ID, state, slot) is ordinary memory:
 * it holds no secret. A freed slot is wiped at once.
 *
 * One rwlock: lookups and uses of a KEK share it, insertions and evictions
 * take it alone, so a KEK is never wiped while someone wraps with it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "keyprov/keyprov_internal.h"

#define KEYPROV_CACHE_SLAB_KEKS 128 /* 4 KiB of KEKs per slab */

struct keyprov_cache_entry {
    char provider[KEYPROV_NAME_MAX];
    char key_id[KEYPROV_KEY_ID_MAX];
    uint32_t state;
    uint8_t *kek; /* a slot in a slab */
};

struct keyprov_cache {
    pthread_rwlock_t lock;
    struct keyprov_cache_entry *entries;
    size_t count, cap;
    uint8_t **slabs; /* secret memory, KEYPROV_CACHE_SLAB_KEKS * KEYPROV_KEK_LEN each */
    size_t slab_count;
    uint8_t **free_slots; /* slots not in use */
    size_t free_count, free_cap;
};

vs_result keyprov_cache_new(struct keyprov_cache **out)
{
    struct keyprov_cache *c = calloc(1, sizeof(*c));

    *out = NULL;
    ENSURE(c != NULL, ERR_NOMEM);
    if (pthread_rwlock_init(&c->lock, NULL) != 0) {
        free(c);
        BAIL(ERR_NOMEM);
    }
    *out = c;
    return OK_RESULT;
}

void keyprov_cache_free(struct keyprov_cache **cp)
{
    struct keyprov_cache *c;

    if (cp == NULL || *cp == NULL)
        return;
    c = *cp;
    for (size_t i = 0; i < c->slab_count; i++) {
        void *p = c->slabs[i];
        secret_free(&p); /* wipes every KEK in it */
    }
    free(c->slabs);
    free(c->entries);
    free(c->free_slots);
    pthread_rwlock_destroy(&c->lock);
    free(c);
    *cp = NULL;
}

/* Index of the entry, or count if there is none. Under the lock. */
static size_t keyprov_cache_find(const struct keyprov_cache *c, const char *provider,
                                 const char *key_id)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->entries[i].key_id, key_id) == 0 &&
            strcmp(c->entries[i].provider, provider) == 0)
            return i;
    return c->count;
}

static RESULT keyprov_cache_grow(void **array, size_t *cap, size_t elem, size_t need)
{
    size_t n;
    void *p;

    if (need <= *cap)
        return OK_RESULT;
    n = *cap ? *cap * 2 : 16;
    while (n < need)
        ENSURE_MUL(n, 2, &n);
    p = reallocarray(*array, n, elem);
    ENSURE(p != NULL, ERR_NOMEM);
    *array = p;
    *cap = n;
    return OK_RESULT;
}

/* A free KEK slot; adds a slab when there is none. Under the write lock. */
static RESULT keyprov_cache_take_slot(struct keyprov_cache *c, uint8_t **out)
{
    if (c->free_count == 0) {
        void *slab = NULL;
        uint8_t **slabs;
        size_t free_cap = c->free_cap;
        size_t need;

        /* Room for every slot of every slab, so that evicting never needs
         * memory. */
        ENSURE_MUL(c->slab_count + 1, (size_t)KEYPROV_CACHE_SLAB_KEKS, &need);
        GUARD(keyprov_cache_grow((void **)&c->free_slots, &free_cap, sizeof(*c->free_slots), need));
        c->free_cap = free_cap;
        slabs = reallocarray(c->slabs, c->slab_count + 1, sizeof(*slabs));
        ENSURE(slabs != NULL, ERR_NOMEM);
        c->slabs = slabs;
        GUARD(secret_alloc(KEYPROV_CACHE_SLAB_KEKS * KEYPROV_KEK_LEN, &slab));
        c->slabs[c->slab_count++] = slab;
        for (size_t i = KEYPROV_CACHE_SLAB_KEKS; i > 0; i--)
            c->free_slots[c->free_count++] = (uint8_t *)slab + (i - 1) * KEYPROV_KEK_LEN;
    }
    *out = c->free_slots[--c->free_count];
    return OK_RESULT;
}

vs_result keyprov_cache_put(struct keyprov_cache *c, const char *provider, const char *key_id,
                            const uint8_t kek[KEYPROV_KEK_LEN], uint32_t state)
{
    vs_result rc = OK_RESULT;
    struct keyprov_cache_entry *e;
    size_t i;

    ENSURE(strlen(provider) < KEYPROV_NAME_MAX && strlen(key_id) < KEYPROV_KEY_ID_MAX,
           ERR_INVALID_ARG);
    pthread_rwlock_wrlock(&c->lock);
    i = keyprov_cache_find(c, provider, key_id);
    if (i == c->count) {
        uint8_t *slot = NULL;
        size_t cap = c->cap;
        /* Room in the index first, so that a failure cannot lose a slot. */
        GUARD_OUT(
            keyprov_cache_grow((void **)&c->entries, &cap, sizeof(*c->entries), c->count + 1));
        c->cap = cap;
        GUARD_OUT(keyprov_cache_take_slot(c, &slot));
        e = &c->entries[c->count++];
        memset(e, 0, sizeof(*e));
        snprintf(e->provider, sizeof(e->provider), "%s", provider);
        snprintf(e->key_id, sizeof(e->key_id), "%s", key_id);
        e->kek = slot;
    }
    e = &c->entries[i];
    memcpy(e->kek, kek, KEYPROV_KEK_LEN);
    e->state = state;
out:
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

void keyprov_cache_evict(struct keyprov_cache *c, const char *provider, const char *key_id)
{
    size_t i;

    pthread_rwlock_wrlock(&c->lock);
    i = keyprov_cache_find(c, provider, key_id);
    if (i < c->count) {
        secret_wipe(c->entries[i].kek, KEYPROV_KEK_LEN);
        /* free_slots has room: it was sized for every slot of every slab. */
        c->free_slots[c->free_count++] = c->entries[i].kek;
        c->entries[i] = c->entries[--c->count];
    }
    pthread_rwlock_unlock(&c->lock);
}

void keyprov_cache_evict_provider(struct keyprov_cache *c, const char *provider)
{
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < c->count;) {
        if (strcmp(c->entries[i].provider, provider) != 0) {
            i++;
            continue;
        }
        secret_wipe(c->entries[i].kek, KEYPROV_KEK_LEN);
        c->free_slots[c->free_count++] = c->entries[i].kek;
        c->entries[i] = c->entries[--c->count]; /* looked at next */
    }
    pthread_rwlock_unlock(&c->lock);
}

bool keyprov_cache_has(struct keyprov_cache *c, const char *provider, const char *key_id)
{
    bool found;

    pthread_rwlock_rdlock(&c->lock);
    found = keyprov_cache_find(c, provider, key_id) < c->count;
    pthread_rwlock_unlock(&c->lock);
    return found;
}

vs_result keyprov_cache_use(struct keyprov_cache *c, const char *provider, const char *key_id,
                            keyprov_cache_fn fn, void *arg)
{
    vs_result rc;
    size_t i;

    pthread_rwlock_rdlock(&c->lock);
    i = keyprov_cache_find(c, provider, key_id);
    if (i == c->count)
        rc = RAISE(ERR_NOT_FOUND);
    else
        rc = fn(arg, c->entries[i].kek, c->entries[i].state);
    pthread_rwlock_unlock(&c->lock);
    return rc;
}
