/* engine/tokenizer_bpe.h: what the two halves of the GPT-2 BPE tokenizer
 * share -- the tables that tokenizer_bpe_load.c builds and tokenizer_bpe.c
 * reads, and the small lookups both need.  Internal to those two files.
 *
 * Every token stands for a byte string.  The vocabulary file spells those
 * bytes through an alphabet of 256 printable characters (a space is "Ġ"), so
 * each token is kept twice: that spelling ("form": reading encoder.json and
 * vocab.bpe, finding tokens by name) and the bytes ("text": encoding,
 * decoding, display).  Merges are a map from a pair of token ids to (rank,
 * merged id): once loading has checked that every merge's parts and result
 * are tokens, encoding never compares a string again. */
#ifndef PARAMSCOPE_ENGINE_TOKENIZER_BPE_H
#define PARAMSCOPE_ENGINE_TOKENIZER_BPE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/tokenizer_internal.h"

#define BPE_CACHE_SLOTS     (1u << 16)  /* a power of two; at most half used */
#define BPE_CACHE_MAX_KEY   64          /* longer pre-tokens are not cached */
#define BPE_CACHE_KEY_BYTES (1u << 20)
#define BPE_CACHE_IDS       (1u << 18)

/* Ids keyed by strings that live in the tokenizer's arrays (keys[id], lens[id]). */
typedef struct bpe_str_map {
    size_t mask;              /* slots - 1 */
    int32_t *ids;             /* [mask + 1] -1: empty */
} bpe_str_map;

typedef struct bpe_pair {
    uint64_t key;             /* left id << 32 | right id */
    int32_t rank;             /* -1: empty slot */
    int32_t merged;           /* the id of left + right */
} bpe_pair;

typedef struct bpe_cache_entry {
    uint32_t hash, key_off, ids_off;
    uint16_t key_len, n_ids;
} bpe_cache_entry;

struct ps_bpe {
    int n_vocab;
    char **form;              /* [n_vocab] the vocabulary's spelling: "Ġthe" */
    uint32_t *form_len;       /* [n_vocab] */
    char **text;              /* [n_vocab] the bytes, NUL-terminated: " the" */
    uint32_t *text_len;       /* [n_vocab] */
    char *arena;              /* every form and text */
    bpe_str_map by_form, by_text;
    bpe_pair *pairs;          /* [pair_mask + 1] open addressing */
    size_t pair_mask;
    int n_merges;
    int32_t byte_id[256];     /* the token of each single byte */
    int n_special;
    int32_t *special;         /* [n_special] "<|...|>" tokens, longest first */

    /* pre-token -> ids; written during (logically const) encoding */
    pthread_mutex_t cache_lock;
    uint32_t *cache_slots;    /* [BPE_CACHE_SLOTS] entry index + 1; 0: empty */
    bpe_cache_entry *cache;   /* [BPE_CACHE_SLOTS / 2] */
    uint32_t n_cache, cache_key_used, cache_ids_used;
    unsigned char *cache_keys;  /* [BPE_CACHE_KEY_BYTES] */
    int32_t *cache_ids;       /* [BPE_CACHE_IDS] */
};

/* Decodes one valid UTF-8 sequence at s (n > 0 bytes available) into *cp and
 * returns its length, or returns 0 if s does not start one (a stray
 * continuation byte, an overlong form, a surrogate, a code point above
 * U+10FFFF, a cut sequence): the rules of Python's UTF-8 decoder. */
static inline size_t bpe_utf8_decode(const unsigned char *s, size_t n,
                                     uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;            /* range of the second byte */
    if (c < 0xc2 || c > 0xf4)
        return 0;
    if (c < 0xe0) {
        need = 2;
        *cp = c & 0x1f;
    } else if (c < 0xf0) {
        need = 3;
        *cp = c & 0x0f;
        lo = c == 0xe0 ? 0xa0 : lo;
        hi = c == 0xed ? 0x9f : hi;
    } else {
        need = 4;
        *cp = c & 0x07;
        lo = c == 0xf0 ? 0x90 : lo;
        hi = c == 0xf4 ? 0x8f : hi;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 1; k < need; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[k] & 0x3f);
    }
    return need;
}

static inline uint32_t bpe_hash(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint32_t h = 2166136261u;                 /* FNV-1a, then a mixer so */
    for (size_t i = 0; i < len; i++) {        /* that the low bits used as */
        h ^= s[i];                            /* the slot depend on all */
        h *= 16777619u;
    }
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

/* The slot of (s, len) in m, or the empty slot where it would go. */
static inline size_t bpe_str_slot(const bpe_str_map *m, char *const *keys,
                                  const uint32_t *lens, const char *s,
                                  size_t len)
{
    for (size_t i = bpe_hash(s, len) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->ids[i];
        if (id < 0 || (lens[id] == len && memcmp(keys[id], s, len) == 0))
            return i;
    }
}

/* The id whose form (or text) is (s, len), or -1. */
static inline int bpe_find_form(const ps_bpe *b, const char *s, size_t len)
{
    return b->by_form.ids[bpe_str_slot(&b->by_form, b->form, b->form_len, s, len)];
}

static inline int bpe_find_text(const ps_bpe *b, const char *s, size_t len)
{
    return b->by_text.ids[bpe_str_slot(&b->by_text, b->text, b->text_len, s, len)];
}

/* The slot of the pair (left, right), or the empty slot where it would go. */
static inline size_t bpe_pair_slot(const ps_bpe *b, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15u) >> 32) & b->pair_mask;
    while (b->pairs[i].rank >= 0 && b->pairs[i].key != key)
        i = (i + 1) & b->pair_mask;
    return i;
}

/* The merge of (left, right), or NULL if they do not merge. */
static inline const bpe_pair *bpe_find_pair(const ps_bpe *b, int32_t left,
                                            int32_t right)
{
    const bpe_pair *p = &b->pairs[bpe_pair_slot(b, left, right)];
    return p->rank >= 0 ? p : NULL;
}

#endif
