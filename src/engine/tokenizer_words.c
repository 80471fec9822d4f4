/* engine/tokenizer_words: the words tokenizer, and the dispatch on the
 * tokenizer's kind that the GPT-2 BPE tokenizer will join.
 *
 * Lookups go through an open-addressing hash table (linear probing, load at
 * most one half) because encode looks up every piece and vocabularies reach
 * 50k entries; the same table counts tokens when a vocabulary is built.
 *
 * Bytes >= 0x80 count as letters, so a UTF-8 word ("café") stays one piece;
 * only ASCII is lowercased.  A byte that does not start a valid UTF-8 sequence
 * becomes U+FFFD in the piece: every piece is then valid UTF-8, so every
 * vocabulary built from any text can be written as JSON into a model file.
 * ASCII control characters count as white space. */
#include "paramscope/tokenizer.h"
#include "engine/tokenizer_internal.h"       /* gpt2-bpe: tokenizer_bpe.c */

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a table of owned strings: id -> string, string -> id ---- */

typedef struct str_slot {
    uint32_t hash;
    int32_t id;               /* -1: empty */
} str_slot;

typedef struct str_table {
    int n;                    /* strings held; their ids are 0 .. n-1 */
    int cap;
    char **keys;              /* [cap] owned, NUL-terminated */
    size_t *lens;             /* [cap] */
    size_t n_slots;           /* a power of two, at least 2 * n */
    str_slot *slots;          /* [n_slots] */
} str_table;

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u;                 /* FNV-1a ... */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    h ^= h >> 16;                             /* ... then a finaliser, so that */
    h *= 0x85ebca6bu;                         /* the low bits used as the slot */
    h ^= h >> 13;                             /* index depend on every byte */
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static int table_init(str_table *t, int expect)
{
    memset(t, 0, sizeof *t);
    size_t n_slots = 16;
    while (n_slots < 2 * (size_t)(expect > 0 ? expect : 1))
        n_slots *= 2;
    t->slots = malloc(n_slots * sizeof *t->slots);
    if (!t->slots)
        return PS_ERR_NOMEM;
    for (size_t i = 0; i < n_slots; i++)
        t->slots[i].id = -1;
    t->n_slots = n_slots;
    return PS_OK;
}

static void table_free(str_table *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->lens);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* The slot holding (s, len), or the empty slot where it would go. */
static size_t table_slot(const str_table *t, const char *s, size_t len,
                         uint32_t h)
{
    size_t mask = t->n_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const str_slot *sl = &t->slots[i];
        if (sl->id < 0)
            return i;
        if (sl->hash == h && t->lens[sl->id] == len
            && memcmp(t->keys[sl->id], s, len) == 0)
            return i;
    }
}

static int table_find(const str_table *t, const char *s, size_t len)
{
    if (t->n_slots == 0)
        return -1;
    return t->slots[table_slot(t, s, len, hash_bytes(s, len))].id;
}

static int table_grow_slots(str_table *t)
{
    size_t n_slots = t->n_slots * 2;
    str_slot *slots = malloc(n_slots * sizeof *slots);
    if (!slots)
        return PS_ERR_NOMEM;
    for (size_t i = 0; i < n_slots; i++)
        slots[i].id = -1;
    for (size_t i = 0; i < t->n_slots; i++) {
        str_slot sl = t->slots[i];
        if (sl.id < 0)
            continue;
        size_t j = sl.hash & (n_slots - 1);
        while (slots[j].id >= 0)
            j = (j + 1) & (n_slots - 1);
        slots[j] = sl;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    return PS_OK;
}

/* Adds a copy of (s, len) unless present.  *id gets its id.  Returns 1 if it
 * was added, 0 if it was already there, or PS_ERR_NOMEM. */
static int table_add(str_table *t, const char *s, size_t len, int *id)
{
    uint32_t h = hash_bytes(s, len);
    size_t i = table_slot(t, s, len, h);
    if (t->slots[i].id >= 0) {
        *id = t->slots[i].id;
        return 0;
    }
    if (t->n == INT_MAX)
        return PS_ERR_NOMEM;
    if (t->n == t->cap) {
        int cap = t->cap ? (t->cap > INT_MAX / 2 ? INT_MAX : t->cap * 2) : 64;
        char **keys = realloc(t->keys, (size_t)cap * sizeof *keys);
        if (!keys)
            return PS_ERR_NOMEM;
        t->keys = keys;
        size_t *lens = realloc(t->lens, (size_t)cap * sizeof *lens);
        if (!lens)
            return PS_ERR_NOMEM;
        t->lens = lens;
        t->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return PS_ERR_NOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    if (2 * ((size_t)t->n + 1) > t->n_slots) {
        if (table_grow_slots(t) < 0) {
            free(copy);
            return PS_ERR_NOMEM;
        }
        i = table_slot(t, s, len, h);
    }
    t->keys[t->n] = copy;
    t->lens[t->n] = len;
    t->slots[i].hash = h;
    t->slots[i].id = t->n;
    *id = t->n++;
    return 1;
}

/* ---- the splitting rule ---- */

enum char_class { CLASS_SPACE, CLASS_LETTER, CLASS_DIGIT, CLASS_PUNCT };

static enum char_class classify(unsigned char c)
{
    if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return CLASS_LETTER;
    if (c >= '0' && c <= '9')
        return CLASS_DIGIT;
    if (c <= ' ' || c == 0x7f)
        return CLASS_SPACE;
    return CLASS_PUNCT;
}

/* Length of the valid UTF-8 sequence starting at s (n bytes available), or 0
 * if it is not one (a stray continuation byte, an overlong form, a surrogate,
 * a code point above U+10FFFF, or a sequence cut short). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;      /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return 0;
    if (c < 0xe0) {
        need = 2;
    } else if (c < 0xf0) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c < 0xf5) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < need; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    return need;
}

/* A piece handler that can stop the split by returning a negative status. */
typedef int (*piece_fn)(const char *piece, size_t len, void *ctx);

/* The one implementation of the words rule (ps_words_split, encode and build
 * all come here).  Returns 0, the first negative status of fn, or
 * PS_ERR_NOMEM when a very long piece needs a buffer it cannot get. */
static int split_words(const char *text, size_t len, piece_fn fn, void *ctx)
{
    char small[256];
    char *heap = NULL;
    size_t heap_cap = 0;
    int rc = PS_OK;
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    while (i < len && rc == PS_OK) {
        enum char_class cls = classify(s[i]);
        if (cls == CLASS_SPACE) {
            i++;
            continue;
        }
        size_t j = i + 1;
        if (cls == CLASS_DIGIT) {
            while (j < len && classify(s[j]) == CLASS_DIGIT)
                j++;
        } else if (cls == CLASS_LETTER) {
            for (;;) {
                while (j < len && classify(s[j]) == CLASS_LETTER)
                    j++;
                if (j + 1 < len && s[j] == '\''
                    && classify(s[j + 1]) == CLASS_LETTER) {
                    j++;
                    continue;
                }
                break;
            }
        }
        /* Lowercasing keeps the length; repairing UTF-8 may triple it. */
        size_t need = (cls == CLASS_LETTER ? 3 * (j - i) : j - i) + 1;
        char *buf = small;
        if (need > sizeof small) {
            if (need > heap_cap) {
                char *nb = realloc(heap, need);
                if (!nb) {
                    rc = PS_ERR_NOMEM;
                    break;
                }
                heap = nb;
                heap_cap = need;
            }
            buf = heap;
        }
        size_t o = 0;
        for (size_t k = i; k < j;) {
            if (s[k] < 0x80) {
                unsigned char c = s[k++];
                buf[o++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
                continue;
            }
            size_t m = utf8_len(s + k, j - k);
            if (m == 0) {
                buf[o++] = (char)0xef;           /* U+FFFD */
                buf[o++] = (char)0xbf;
                buf[o++] = (char)0xbd;
                k++;
            } else {
                memcpy(buf + o, s + k, m);
                o += m;
                k += m;
            }
        }
        buf[o] = '\0';
        rc = fn(buf, o, ctx);
        i = j;
    }
    free(heap);
    return rc;
}

typedef struct split_public {
    void (*fn)(const char *piece, void *ctx);
    void *ctx;
} split_public;

static int split_public_piece(const char *piece, size_t len, void *ctx)
{
    (void)len;
    split_public *p = ctx;
    p->fn(piece, p->ctx);
    return PS_OK;
}

void ps_words_split(const char *text, size_t len,
                    void (*fn)(const char *piece, void *ctx), void *ctx)
{
    if (!text || !fn)
        return;
    split_public p = { fn, ctx };
    /* Out of memory is only possible for a piece over 255 bytes; the split
     * then stops there, which is all a void function can do. */
    (void)split_words(text, len, split_public_piece, &p);
}

/* ---- the tokenizer object ---- */

/* Encode, decode and the JSON functions dispatch on kind; find, token and
 * vocab_size read vocab, which every kind fills with its token strings.
 * Another kind adds its own members here and its case to each dispatch. */
struct ps_tokenizer {
    ps_tokenizer_kind kind;
    str_table vocab;          /* words: token <-> id; id 0 is "<unk>" */
    ps_bpe *bpe;              /* gpt2-bpe: everything (tokenizer_bpe.c) */
};

/* gpt2-bpe: the object around tables built by tokenizer_bpe_load.c. */
ps_tokenizer *ps_tokenizer_wrap_bpe(ps_bpe *bpe)
{
    ps_tokenizer *tok = calloc(1, sizeof *tok);
    if (tok) {
        tok->kind = PS_TOKENIZER_KIND_GPT2_BPE;
        tok->bpe = bpe;
    }
    return tok;
}

static const char UNK[] = "<unk>";

/* Writes s into buf for a one-line message: quoted, with control bytes and
 * bytes outside valid UTF-8 escaped as \xNN, and
 * long strings cut with "...". */
static const char *quote_token(char *buf, size_t size, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), o = 0;
    buf[o++] = '\'';
    for (size_t k = 0; k < n;) {
        size_t m = utf8_len(p + k, n - k);
        if (o + 9 >= size) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (m == 0 || p[k] < 0x20 || p[k] == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", p[k]);
            k++;
        } else {
            memcpy(buf + o, p + k, m);
            o += m;
            k += m;
        }
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

static int words_from_list(ps_tokenizer **out, const char *const *tokens,
                           int n, ps_error *err)
{
    char q1[80], q2[80];
    ps_tokenizer *tok = NULL;
    int rc;

    if (n < 1 || !tokens)
        return ps_error_set(err, PS_ERR_INVALID,
                            "vocabulary: empty (entry 0 must be '%s')", UNK);
    if (!tokens[0] || strcmp(tokens[0], UNK) != 0)
        return ps_error_set(err, PS_ERR_FORMAT,
                            "vocabulary: entry 0 is %s, expected '%s'",
                            tokens[0] ? quote_token(q1, sizeof q1, tokens[0])
                                      : "missing", UNK);
    tok = calloc(1, sizeof *tok);
    if (!tok)
        return ps_error_set(err, PS_ERR_NOMEM, "vocabulary: out of memory");
    tok->kind = PS_TOKENIZER_KIND_WORDS;
    if (table_init(&tok->vocab, n) < 0) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "vocabulary: out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        const char *t = tokens[i];
        if (!t || !*t) {
            rc = ps_error_set(err, PS_ERR_FORMAT, "vocabulary: entry %d is %s",
                              i, t ? "empty" : "missing");
            goto fail;
        }
        size_t len = strlen(t);
        for (size_t k = 0; k < len;) {
            size_t m = utf8_len((const unsigned char *)t + k, len - k);
            if (m == 0) {
                rc = ps_error_set(err, PS_ERR_FORMAT,
                                  "vocabulary: entry %d %s is not valid UTF-8",
                                  i, quote_token(q1, sizeof q1, t));
                goto fail;
            }
            k += m;
        }
        int id;
        int added = table_add(&tok->vocab, t, len, &id);
        if (added < 0) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "vocabulary: out of memory");
            goto fail;
        }
        if (!added) {
            rc = ps_error_set(err, PS_ERR_FORMAT,
                              "vocabulary: token %s appears twice (entries %d and %d)",
                              quote_token(q2, sizeof q2, t), id, i);
            goto fail;
        }
    }
    *out = tok;
    return PS_OK;

fail:
    ps_tokenizer_free(tok);
    return rc;
}

int ps_tokenizer_from_list(ps_tokenizer **out, const char *const *tokens,
                           int n, ps_error *err)
{
    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "vocabulary: no output pointer");
    *out = NULL;
    return words_from_list(out, tokens, n, err);
}

void ps_tokenizer_free(ps_tokenizer *tok)
{
    if (!tok)
        return;
    table_free(&tok->vocab);
    ps_bpe_free(tok->bpe);                    /* gpt2-bpe */
    free(tok);
}

ps_tokenizer_kind ps_tokenizer_kind_of(const ps_tokenizer *tok)
{
    return tok ? tok->kind : PS_TOKENIZER_KIND_WORDS;
}

const char *ps_tokenizer_kind_name(const ps_tokenizer *tok)
{
    if (!tok)
        return "none";
    switch (tok->kind) {
    case PS_TOKENIZER_KIND_WORDS:    return "words";
    case PS_TOKENIZER_KIND_GPT2_BPE: return "gpt2-bpe";
    }
    return "unknown";
}

int ps_tokenizer_vocab_size(const ps_tokenizer *tok)
{
    if (tok && tok->bpe)                      /* gpt2-bpe */
        return ps_bpe_vocab_size(tok->bpe);
    return tok ? tok->vocab.n : 0;
}

int ps_tokenizer_find(const ps_tokenizer *tok, const char *piece)
{
    if (!tok || !piece)
        return -1;
    if (tok->bpe)                             /* gpt2-bpe */
        return ps_bpe_find(tok->bpe, piece);
    return table_find(&tok->vocab, piece, strlen(piece));
}

const char *ps_tokenizer_token(const ps_tokenizer *tok, int id)
{
    if (tok && tok->bpe)                      /* gpt2-bpe */
        return ps_bpe_token(tok->bpe, id);
    if (!tok || id < 0 || id >= tok->vocab.n)
        return NULL;
    return tok->vocab.keys[id];
}

/* ---- building a vocabulary from text ---- */

typedef struct count_ctx {
    str_table seen;
    size_t *counts;           /* [count_cap], by id in seen */
    int count_cap;
} count_ctx;

static int count_piece(const char *piece, size_t len, void *vctx)
{
    count_ctx *c = vctx;
    int id;
    int added = table_add(&c->seen, piece, len, &id);
    if (added < 0)
        return added;
    if (id >= c->count_cap) {
        int cap = c->seen.cap;
        size_t *counts = realloc(c->counts, (size_t)cap * sizeof *counts);
        if (!counts)
            return PS_ERR_NOMEM;
        memset(counts + c->count_cap, 0,
               (size_t)(cap - c->count_cap) * sizeof *counts);
        c->counts = counts;
        c->count_cap = cap;
    }
    c->counts[id]++;
    return PS_OK;
}

typedef struct counted {
    const char *token;
    size_t count;
} counted;

static int cmp_counted(const void *pa, const void *pb)
{
    const counted *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->token, b->token);        /* unsigned bytes: byte order */
}

int ps_tokenizer_build_words(ps_tokenizer **out, const char *text, size_t len,
                             int min_count, ps_error *err)
{
    count_ctx c = { 0 };
    counted *list = NULL;
    const char **tokens = NULL;
    int n = 0, rc;

    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "vocabulary: no output pointer");
    *out = NULL;
    if (!text && len > 0)
        return ps_error_set(err, PS_ERR_INVALID, "vocabulary: no text");
    if (min_count < 1)
        min_count = 1;
    if (table_init(&c.seen, 1024) < 0)
        goto nomem;
    if (text && split_words(text, len, count_piece, &c) < 0)
        goto nomem;

    list = malloc((size_t)(c.seen.n + 1) * sizeof *list);
    if (!list)
        goto nomem;
    for (int i = 0; i < c.seen.n; i++)
        if (c.counts[i] >= (size_t)min_count)
            list[n++] = (counted){ c.seen.keys[i], c.counts[i] };
    qsort(list, (size_t)n, sizeof *list, cmp_counted);
    if (n == INT_MAX)
        goto nomem;
    tokens = malloc((size_t)(n + 1) * sizeof *tokens);
    if (!tokens)
        goto nomem;
    tokens[0] = UNK;                  /* no piece can be "<unk>": '<' splits */
    for (int i = 0; i < n; i++)
        tokens[i + 1] = list[i].token;
    rc = words_from_list(out, tokens, n + 1, err);
    goto done;

nomem:
    rc = ps_error_set(err, PS_ERR_NOMEM, "vocabulary: out of memory");
done:
    free(tokens);
    free(list);
    free(c.counts);
    table_free(&c.seen);
    return rc;
}

/* ---- JSON ---- */

char *ps_tokenizer_to_json(const ps_tokenizer *tok)
{
    if (!tok || tok->kind != PS_TOKENIZER_KIND_WORDS)
        return NULL;
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (int i = 0; i < tok->vocab.n; i++) {
        json_t *s = json_stringn(tok->vocab.keys[i], tok->vocab.lens[i]);
        if (!s || json_array_append_new(arr, s) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

int ps_tokenizer_from_json(ps_tokenizer **out, const char *json, ps_error *err)
{
    json_error_t jerr;
    const char **tokens = NULL;
    int rc;

    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "vocabulary: no output pointer");
    *out = NULL;
    if (!json)
        return ps_error_set(err, PS_ERR_INVALID, "vocabulary: no JSON text");
    json_t *arr = json_loads(json, 0, &jerr);
    if (!arr)
        return ps_error_set(err, PS_ERR_FORMAT,
                            "vocabulary: invalid JSON at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    if (!json_is_array(arr)) {
        rc = ps_error_set(err, PS_ERR_FORMAT,
                          "vocabulary: JSON is not an array of strings");
        goto done;
    }
    size_t n = json_array_size(arr);
    if (n > INT_MAX) {
        rc = ps_error_set(err, PS_ERR_RANGE, "vocabulary: %zu entries is too many", n);
        goto done;
    }
    tokens = malloc((n ? n : 1) * sizeof *tokens);
    if (!tokens) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "vocabulary: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        if (!json_is_string(s)) {
            rc = ps_error_set(err, PS_ERR_FORMAT,
                              "vocabulary: entry %zu is not a string", i);
            goto done;
        }
        tokens[i] = json_string_value(s);   /* jansson refuses \u0000 */
    }
    rc = words_from_list(out, tokens, (int)n, err);
done:
    free(tokens);
    json_decref(arr);
    return rc;
}

/* ---- encoding and decoding ---- */

void ps_tokens_free(ps_tokens *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++)
        free(t->pieces[i]);
    free(t->ids);
    free(t->pieces);
    free(t->unknown);
    memset(t, 0, sizeof *t);
}

typedef struct encode_ctx {
    const str_table *vocab;
    ps_tokens *out;
    int cap;
} encode_ctx;

static int encode_piece(const char *piece, size_t len, void *vctx)
{
    encode_ctx *e = vctx;
    ps_tokens *t = e->out;
    if (t->n == e->cap) {
        if (e->cap > INT_MAX / 2)
            return PS_ERR_NOMEM;
        int cap = e->cap ? e->cap * 2 : 16;
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
    char *copy = malloc(len + 1);
    if (!copy)
        return PS_ERR_NOMEM;
    memcpy(copy, piece, len + 1);
    int id = table_find(e->vocab, piece, len);
    t->pieces[t->n] = copy;
    t->ids[t->n] = id < 0 ? 0 : id;
    t->unknown[t->n] = id < 0;
    t->n_unknown += id < 0;
    t->n++;
    return PS_OK;
}

int ps_tokenizer_encode(const ps_tokenizer *tok, const char *text,
                        ps_tokens *out, ps_error *err)
{
    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "encode: no output");
    memset(out, 0, sizeof *out);
    if (!tok || !text)
        return ps_error_set(err, PS_ERR_INVALID, "encode: no %s",
                            tok ? "text" : "tokenizer");
    switch (tok->kind) {
    case PS_TOKENIZER_KIND_WORDS: {
        encode_ctx e = { &tok->vocab, out, 0 };
        if (split_words(text, strlen(text), encode_piece, &e) < 0) {
            ps_tokens_free(out);
            return ps_error_set(err, PS_ERR_NOMEM, "encode: out of memory");
        }
        return PS_OK;
    }
    case PS_TOKENIZER_KIND_GPT2_BPE:
        return ps_bpe_encode(tok->bpe, text, strlen(text), out, err);
    }
    return ps_error_set(err, PS_ERR_STATE, "encode: the %s tokenizer is not available",
                        ps_tokenizer_kind_name(tok));
}

static int is_single(const char *t, const char *set)
{
    return t[0] != '\0' && t[1] == '\0' && strchr(set, t[0]) != NULL;
}

char *ps_tokenizer_decode(const ps_tokenizer *tok, const int *ids, int n)
{
    static const char OUT_OF_RANGE[] = "<?>";
    if (tok && tok->bpe)                      /* gpt2-bpe */
        return ps_bpe_decode(tok->bpe, ids, n);
    if (!tok || tok->kind != PS_TOKENIZER_KIND_WORDS || n < 0 || (n > 0 && !ids))
        return NULL;

    /* Two passes over the same rule: measure, then write. */
    char *text = NULL;
    size_t size = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t o = 0;
        const char *prev = NULL;
        for (int i = 0; i < n; i++) {
            const char *t = ps_tokenizer_token(tok, ids[i]);
            if (!t)
                t = OUT_OF_RANGE;
            size_t len = strlen(t);
            int space = prev && !is_single(t, ",.!?;:')") && !is_single(prev, "(");
            if (pass == 1) {
                if (space)
                    text[o] = ' ';
                memcpy(text + o + space, t, len);
            }
            o += (size_t)space + len;
            prev = t;
        }
        if (pass == 0) {
            size = o + 1;
            text = malloc(size);
            if (!text)
                return NULL;
        } else {
            text[o] = '\0';
        }
    }
    return text;
}

int ps_tokenizer_gpt2_text(const ps_tokenizer *tok, char **vocab_json,
                           char **merges, ps_error *err)
{
    if (!vocab_json || !merges)
        return ps_error_set(err, PS_ERR_INVALID, "gpt2 tokenizer: no output pointer");
    *vocab_json = *merges = NULL;
    if (!tok || !tok->bpe)
        return ps_error_set(err, PS_ERR_INVALID, "tokenizer '%s' has no GPT-2 files",
                            tok ? ps_tokenizer_kind_name(tok) : "(null)");
    return ps_bpe_to_text(tok->bpe, vocab_json, merges, err);
}
