/* engine/tokenizer_bpe: GPT-2's byte-level BPE -- pre-tokenizing, merging,
 * encoding and decoding.  The tables come from tokenizer_bpe_load.c.
 *
 * Pre-tokenizing follows GPT-2's pattern by hand (see encode_segment); the
 * letter and number classes are a generated table of Unicode ranges
 * (tokenizer_bpe_classes.h).  A byte that does not start valid UTF-8 is one
 * character of class "other", so every byte string can be encoded.
 *
 * Merging uses a heap of (rank, position) over a linked list of symbols, so a
 * pre-token of n bytes costs O(n log n) even when it is a megabyte of one
 * punctuation run.  GPT-2's encoder merges every occurrence of the best pair,
 * left to right, before it looks for the next best; the heap pops the
 * occurrences of one rank in position order, and pairs made during that pass
 * wait in a side list until the pass ends, so the result is the same.
 *
 * A cache maps short pre-tokens to their ids.  Encoding is logically const,
 * so the cache has its own mutex: threads may share one tokenizer. */
#include "engine/tokenizer_bpe.h"

#include <limits.h>
#include <stdlib.h>

#include "engine/tokenizer_bpe_classes.h"

static const char OUT_OF_RANGE[] = "<?>";

/* ---- character classes of GPT-2's pattern ---- */

enum ch_class { CH_SPACE, CH_LETTER, CH_NUMBER, CH_OTHER };

static enum ch_class class_of_cp(uint32_t cp)
{
    switch (cp) {                              /* \s: Unicode's White_Space */
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20:
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202f: case 0x205f: case 0x3000:
        return CH_SPACE;
    }
    if (cp >= 0x2000 && cp <= 0x200a)
        return CH_SPACE;
    size_t lo = 0, hi = sizeof uc_ranges / sizeof uc_ranges[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < uc_ranges[mid].lo)
            hi = mid;
        else if (cp > uc_ranges[mid].hi)
            lo = mid + 1;
        else
            return uc_ranges[mid].cls == 'L' ? CH_LETTER : CH_NUMBER;
    }
    return CH_OTHER;
}

/* The class of the character at s[i] (i < n) and its length in *len.  A byte
 * that does not start valid UTF-8 is a character of its own, of class
 * "other", so that every byte string can be split and encoded. */
static enum ch_class class_at(const unsigned char *s, size_t n, size_t i,
                              size_t *len)
{
    unsigned c = s[i];
    if (c < 0x80) {
        *len = 1;
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            return CH_LETTER;
        if (c >= '0' && c <= '9')
            return CH_NUMBER;
        return c == ' ' || (c >= 0x09 && c <= 0x0d) ? CH_SPACE : CH_OTHER;
    }
    uint32_t cp;
    *len = bpe_utf8_decode(s + i, n - i, &cp);
    if (*len == 0) {
        *len = 1;
        return CH_OTHER;
    }
    return class_of_cp(cp);
}

/* ---- merging one pre-token ---- */

typedef struct heap_item {
    int32_t rank, pos;        /* ordered by rank, then position */
    int32_t left, right;      /* the pair's ids when it was pushed */
} heap_item;

typedef struct work {
    size_t cap;               /* symbols the arrays below can hold */
    int32_t *sym;             /* [cap] token ids; -1: merged into its left */
    int32_t *prev, *next;     /* [cap] the list of live symbols; -1 ends it */
    heap_item *heap;          /* [3 * cap] */
    heap_item *pend;          /* [2 * cap] pairs made in the current pass */
    size_t n_heap, n_pend;
} work;

static int item_less(const heap_item *a, const heap_item *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(work *w, heap_item it)
{
    size_t i = w->n_heap++;
    while (i > 0 && item_less(&it, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = it;
}

static heap_item heap_pop(work *w)
{
    heap_item top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && item_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!item_less(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

static int work_reserve(work *w, size_t n)
{
    if (n <= w->cap)
        return PS_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n)
        cap *= 2;
    free(w->sym);
    free(w->heap);
    w->sym = malloc(3 * cap * sizeof *w->sym);
    w->heap = malloc(5 * cap * sizeof *w->heap);
    if (!w->sym || !w->heap) {
        w->cap = 0;
        return PS_ERR_NOMEM;
    }
    w->prev = w->sym + cap;
    w->next = w->prev + cap;
    w->pend = w->heap + 3 * cap;
    w->cap = cap;
    return PS_OK;
}

static void push_pair(const ps_bpe *b, work *w, heap_item *to, size_t *n,
                      int32_t pos)
{
    int32_t right = w->next[pos];
    if (right < 0)
        return;
    const bpe_pair *p = bpe_find_pair(b, w->sym[pos], w->sym[right]);
    if (p)
        to[(*n)++] = (heap_item){ p->rank, pos, w->sym[pos], w->sym[right] };
}

/* Merges the n bytes of s; their ids are left in w->sym, and *n_ids counts
 * them (the live symbols, packed to the front). */
static int merge_bytes(const ps_bpe *b, work *w, const unsigned char *s,
                       size_t n, size_t *n_ids)
{
    if (work_reserve(w, n) < 0)
        return PS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = b->byte_id[s[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->n_heap = w->n_pend = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(b, w, w->heap, &w->n_heap, (int32_t)i);
    for (size_t i = w->n_heap / 2; i-- > 0;) {   /* heapify */
        heap_item it = w->heap[i];
        size_t k = i;
        for (;;) {
            size_t c = 2 * k + 1;
            if (c >= w->n_heap)
                break;
            if (c + 1 < w->n_heap && item_less(&w->heap[c + 1], &w->heap[c]))
                c++;
            if (!item_less(&w->heap[c], &it))
                break;
            w->heap[k] = w->heap[c];
            k = c;
        }
        w->heap[k] = it;
    }

    int32_t pass = -1;
    for (;;) {
        if (w->n_pend > 0 && (w->n_heap == 0 || w->heap[0].rank != pass)) {
            for (size_t k = 0; k < w->n_pend; k++)
                heap_push(w, w->pend[k]);
            w->n_pend = 0;
        }
        if (w->n_heap == 0)
            break;
        heap_item it = heap_pop(w);
        int32_t pos = it.pos, right = w->next[pos];
        if (w->sym[pos] != it.left || right < 0 || w->sym[right] != it.right)
            continue;                          /* stale: a neighbour merged */
        pass = it.rank;
        w->sym[pos] = bpe_find_pair(b, it.left, it.right)->merged;
        w->sym[right] = -1;
        w->next[pos] = w->next[right];
        if (w->next[right] >= 0)
            w->prev[w->next[right]] = pos;
        if (w->prev[pos] >= 0)
            push_pair(b, w, w->pend, &w->n_pend, w->prev[pos]);
        push_pair(b, w, w->pend, &w->n_pend, pos);
    }

    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = w->next[i])
        w->sym[k++] = w->sym[i];
    *n_ids = k;
    return PS_OK;
}

/* ---- the cache ---- */

/* The slot of (s, n) in the cache, or the empty slot where it would go.
 * Call with the lock held. */
static uint32_t cache_slot(const ps_bpe *b, const unsigned char *s, size_t n,
                           uint32_t h)
{
    const uint32_t mask = BPE_CACHE_SLOTS - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t e = b->cache_slots[i];
        if (e == 0)
            return i;
        const bpe_cache_entry *c = &b->cache[e - 1];
        if (c->hash == h && c->key_len == n
            && memcmp(b->cache_keys + c->key_off, s, n) == 0)
            return i;
    }
}

/* Copies the cached ids of (s, n) into w->sym; 1 if found, else 0. */
static int cache_get(ps_bpe *b, work *w, const unsigned char *s, size_t n,
                     uint32_t h, size_t *n_ids)
{
    pthread_mutex_lock(&b->cache_lock);
    uint32_t e = b->cache_slots[cache_slot(b, s, n, h)];
    if (e > 0) {
        const bpe_cache_entry *c = &b->cache[e - 1];
        memcpy(w->sym, b->cache_ids + c->ids_off, c->n_ids * sizeof *w->sym);
        *n_ids = c->n_ids;
    }
    pthread_mutex_unlock(&b->cache_lock);
    return e > 0;
}

/* Remembers (s, n) -> w->sym[0 .. n_ids-1]; when full, forgets everything
 * first (simple, and a text's common words come back at once). */
static void cache_put(ps_bpe *b, const work *w, const unsigned char *s,
                      size_t n, uint32_t h, size_t n_ids)
{
    pthread_mutex_lock(&b->cache_lock);
    if (b->n_cache == BPE_CACHE_SLOTS / 2
        || b->cache_key_used + n > BPE_CACHE_KEY_BYTES
        || b->cache_ids_used + n_ids > BPE_CACHE_IDS) {
        memset(b->cache_slots, 0, BPE_CACHE_SLOTS * sizeof *b->cache_slots);
        b->n_cache = b->cache_key_used = b->cache_ids_used = 0;
    }
    uint32_t i = cache_slot(b, s, n, h);
    if (b->cache_slots[i] == 0) {              /* else another thread was first */
        b->cache[b->n_cache] = (bpe_cache_entry){
            h, b->cache_key_used, b->cache_ids_used, (uint16_t)n, (uint16_t)n_ids };
        memcpy(b->cache_keys + b->cache_key_used, s, n);
        memcpy(b->cache_ids + b->cache_ids_used, w->sym, n_ids * sizeof *w->sym);
        b->cache_key_used += (uint32_t)n;
        b->cache_ids_used += (uint32_t)n_ids;
        b->cache_slots[i] = ++b->n_cache;
    }
    pthread_mutex_unlock(&b->cache_lock);
}

/* ---- encoding ---- */

typedef struct encoder {
    ps_bpe *bpe;              /* only the cache is written */
    ps_tokens *out;
    int cap;                  /* of out's arrays */
    work w;
} encoder;

static int emit(encoder *e, int32_t id)
{
    ps_tokens *t = e->out;
    if (t->n == e->cap) {
        if (e->cap > INT_MAX / 2)
            return PS_ERR_RANGE;
        int cap = e->cap ? 2 * e->cap : 64;
        int *ids = realloc(t->ids, (size_t)cap * sizeof *ids);
        if (!ids)
            return PS_ERR_NOMEM;
        t->ids = ids;
        char **pieces = realloc(t->pieces, (size_t)cap * sizeof *pieces);
        if (!pieces)
            return PS_ERR_NOMEM;
        t->pieces = pieces;
        unsigned char *unknown = realloc(t->unknown, (size_t)cap);
        if (!unknown)
            return PS_ERR_NOMEM;
        t->unknown = unknown;
        e->cap = cap;
    }
    size_t len = e->bpe->text_len[id];
    char *piece = malloc(len + 1);
    if (!piece)
        return PS_ERR_NOMEM;
    memcpy(piece, e->bpe->text[id], len + 1);
    t->ids[t->n] = id;
    t->pieces[t->n] = piece;
    t->unknown[t->n] = 0;
    t->n++;
    return PS_OK;
}

static int encode_pretoken(encoder *e, const unsigned char *s, size_t n)
{
    size_t n_ids;
    int cacheable = n <= BPE_CACHE_MAX_KEY, rc;
    uint32_t h = cacheable ? bpe_hash(s, n) : 0;
    if (work_reserve(&e->w, n) < 0)
        return PS_ERR_NOMEM;
    if (!cacheable || !cache_get(e->bpe, &e->w, s, n, h, &n_ids)) {
        if ((rc = merge_bytes(e->bpe, &e->w, s, n, &n_ids)) < 0)
            return rc;
        if (cacheable)
            cache_put(e->bpe, &e->w, s, n, h, n_ids);
    }
    for (size_t k = 0; k < n_ids; k++)
        if ((rc = emit(e, e->w.sym[k])) < 0)
            return rc;
    return PS_OK;
}

/* The length of the contraction at s[i] ('s 't 're 've 'm 'll 'd, lower
 * case only, as in GPT-2), or 0. */
static size_t contraction(const unsigned char *s, size_t n, size_t i)
{
    if (s[i] != '\'' || i + 1 >= n)
        return 0;
    unsigned c = s[i + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd')
        return 2;
    if (i + 2 < n && ((c == 'r' && s[i + 2] == 'e') || (c == 'v' && s[i + 2] == 'e')
                      || (c == 'l' && s[i + 2] == 'l')))
        return 3;
    return 0;
}

/* Splits s by GPT-2's pattern, whose alternatives are tried at each position
 * in this order, and encodes each piece:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The optional space is U+0020 only.  "\s+(?!\S)" takes a run of white
 * space but, when something follows, gives its last character back, so that
 * " word" keeps its space; the last "\s+" catches what that leaves: a single
 * white-space character before a non-space one. */
static int encode_segment(encoder *e, const unsigned char *s, size_t n)
{
    size_t i = 0, len;
    while (i < n) {
        size_t end = i + contraction(s, n, i);
        enum ch_class cls = class_at(s, n, i, &len);
        if (end > i) {
            /* a contraction */
        } else if (cls != CH_SPACE || (s[i] == ' ' && i + 1 < n
                                       && class_at(s, n, i + 1, &len) != CH_SPACE)) {
            end = s[i] == ' ' ? i + 1 : i;        /* the optional space */
            cls = class_at(s, n, end, &len);
            while (end < n && class_at(s, n, end, &len) == cls)
                end += len;
        } else {                                  /* a run of white space */
            size_t last = i;
            while (end < n && class_at(s, n, end, &len) == CH_SPACE) {
                last = end;
                end += len;
            }
            if (end < n && last > i)              /* leave the last one to */
                end = last;                       /* go with what follows */
        }
        int rc = encode_pretoken(e, s + i, end - i);
        if (rc < 0)
            return rc;
        i = end;
    }
    return PS_OK;
}

/* The first special token in s[from .. n), as its start (n when none). */
static size_t find_special(const ps_bpe *b, const unsigned char *s, size_t n,
                           size_t from, int32_t *id)
{
    if (b->n_special == 0)
        return n;
    for (size_t i = from; i + 1 < n;) {
        const unsigned char *p = memchr(s + i, '<', n - i - 1);
        if (!p)
            break;
        i = (size_t)(p - s);
        if (s[i + 1] == '|') {
            for (int k = 0; k < b->n_special; k++) {
                int32_t sp = b->special[k];
                if (b->text_len[sp] <= n - i
                    && memcmp(s + i, b->text[sp], b->text_len[sp]) == 0) {
                    *id = sp;
                    return i;
                }
            }
        }
        i++;
    }
    return n;
}

int ps_bpe_encode(const ps_bpe *bpe, const char *text, size_t len,
                  ps_tokens *out, ps_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > INT_MAX)
        return ps_error_set(err, PS_ERR_RANGE,
                            "encode: %zu bytes of text is too much at once", len);
    encoder e = { (ps_bpe *)bpe, out, 0, { 0 } };   /* the cache is mutable */
    const unsigned char *s = (const unsigned char *)text;
    int rc = PS_OK;
    for (size_t pos = 0; pos < len && rc == PS_OK;) {
        int32_t sp = -1;
        size_t at = find_special(bpe, s, len, pos, &sp);
        rc = encode_segment(&e, s + pos, at - pos);
        if (rc == PS_OK && at < len) {
            rc = emit(&e, sp);
            at += bpe->text_len[sp];
        }
        pos = at;
    }
    free(e.w.sym);
    free(e.w.heap);
    if (rc < 0) {
        ps_tokens_free(out);
        return ps_error_set(err, rc, rc == PS_ERR_RANGE
                            ? "encode: more tokens than an int can count"
                            : "encode: out of memory");
    }
    return PS_OK;
}

/* ---- decoding ---- */

char *ps_bpe_decode(const ps_bpe *bpe, const int *ids, int n)
{
    if (!bpe || n < 0 || (n > 0 && !ids))
        return NULL;
    size_t size = 1;
    for (int i = 0; i < n; i++)
        size += ids[i] >= 0 && ids[i] < bpe->n_vocab ? bpe->text_len[ids[i]]
                                                     : sizeof OUT_OF_RANGE - 1;
    char *text = malloc(size), *o = text;
    if (!text)
        return NULL;
    for (int i = 0; i < n; i++) {
        int ok = ids[i] >= 0 && ids[i] < bpe->n_vocab;
        size_t len = ok ? bpe->text_len[ids[i]] : sizeof OUT_OF_RANGE - 1;
        memcpy(o, ok ? bpe->text[ids[i]] : OUT_OF_RANGE, len);
        o += len;
    }
    *o = '\0';
    return text;
}

/* ---- lookups and freeing ---- */

void ps_bpe_free(ps_bpe *bpe)
{
    if (!bpe)
        return;
    free(bpe->form);
    free(bpe->form_len);
    free(bpe->text);
    free(bpe->text_len);
    free(bpe->arena);
    free(bpe->by_form.ids);
    free(bpe->by_text.ids);
    free(bpe->pairs);
    free(bpe->special);
    pthread_mutex_destroy(&bpe->cache_lock);
    free(bpe->cache_slots);
    free(bpe->cache);
    free(bpe->cache_keys);
    free(bpe->cache_ids);
    free(bpe);
}

int ps_bpe_vocab_size(const ps_bpe *bpe)
{
    return bpe ? bpe->n_vocab : 0;
}

/* By the vocabulary's spelling first ("Ġthe"), then by the bytes (" the"). */
int ps_bpe_find(const ps_bpe *bpe, const char *piece)
{
    if (!bpe || !piece)
        return -1;
    size_t len = strlen(piece);
    int id = bpe_find_form(bpe, piece, len);
    return id >= 0 ? id : bpe_find_text(bpe, piece, len);
}

const char *ps_bpe_token(const ps_bpe *bpe, int id)
{
    if (!bpe || id < 0 || id >= bpe->n_vocab)
        return NULL;
    return bpe->text[id];
}
