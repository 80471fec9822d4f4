/* engine/tokenizer_bpe_load: reading and checking GPT-2's vocabulary
 * (encoder.json, token spelling -> id) and merges (vocab.bpe, "a b" by rank)
 * into the tables of tokenizer_bpe.h.  Everything that could make encoding
 * fail later -- an id out of range or repeated, a character outside the byte
 * alphabet, a byte without a token, a merge whose parts or result are not
 * tokens -- is refused here, with the file and the entry or line. */
#include "engine/tokenizer_bpe.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define FILE_MAX (256u << 20)   /* bytes: larger files are refused */

/* ---- the byte alphabet ---- */

/* GPT-2's spelling of byte b: printable Latin-1 bytes (33-126, 161-172,
 * 174-255) stand for themselves; the other 68 bytes, in order, for
 * U+0100 ... U+0143. */
static uint32_t byte_char(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    if (b <= 32)
        return 256 + b;                        /* 0..32    -> 256..288 */
    if (b <= 160)
        return 256 + 33 + (b - 127);           /* 127..160 -> 289..322 */
    return 256 + 33 + 34;                      /* 173      -> 323 */
}

/* The byte that code point cp spells, or -1. */
static int char_byte(uint32_t cp)
{
    if (cp < 256)
        return byte_char(cp) == cp ? (int)cp : -1;
    if (cp <= 288)
        return (int)(cp - 256);
    if (cp <= 322)
        return (int)(cp - 289 + 127);
    return cp == 323 ? 173 : -1;
}

/* ---- helpers ---- */

/* s (len bytes) in quotes for a one-line message: bytes that are control
 * characters or not valid UTF-8 as \xNN, cut with "..." when long. */
static const char *quote(char *buf, size_t size, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    buf[o++] = '\'';
    for (size_t k = 0; k < len;) {
        uint32_t cp;
        size_t m = bpe_utf8_decode(p + k, len - k, &cp);
        if (o + 10 >= size) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (m == 0 || cp < 0x20 || cp == 0x7f) {
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

static int read_file(const char *path, char **data, size_t *len, ps_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path,
                            strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = PS_OK;
    for (;;) {
        if (n == cap) {
            if (cap >= FILE_MAX) {
                rc = ps_error_set(err, PS_ERR_RANGE, "%s: larger than %u MB",
                                  path, FILE_MAX >> 20);
                goto fail;
            }
            cap = cap ? 2 * cap : 1u << 20;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot read: %s", path,
                          strerror(errno));
        goto fail;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return PS_OK;
fail:
    fclose(f);
    free(buf);
    return rc;
}

static int str_map_init(bpe_str_map *m, size_t n)
{
    size_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    m->ids = malloc(slots * sizeof *m->ids);
    if (!m->ids)
        return PS_ERR_NOMEM;
    memset(m->ids, 0xff, slots * sizeof *m->ids);   /* all -1 */
    m->mask = slots - 1;
    return PS_OK;
}

/* ---- the two files ---- */

/* Fills the vocabulary of b from vocab (a JSON object: form -> id). */
static int load_vocab(ps_bpe *b, const char *vocab, size_t vlen,
                      const char *name, ps_error *err)
{
    char q1[96], q2[96];
    json_error_t jerr;
    size_t arena_size = 0, used = 0;
    const char *key;
    json_t *value;
    int rc;

    json_t *obj = json_loadb(vocab, vlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return ps_error_set(err, PS_ERR_FORMAT,
                            "%s: invalid JSON at line %d column %d: %s",
                            name, jerr.line, jerr.column, jerr.text);
    size_t n = json_is_object(obj) ? json_object_size(obj) : 0;
    if (n == 0 || n > INT_MAX / 2) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: %s", name,
                          !json_is_object(obj) ? "not a JSON object of token to id"
                          : n ? "too many tokens" : "no tokens");
        goto done;
    }
    b->n_vocab = (int)n;
    json_object_foreach(obj, key, value)
        arena_size += 2 * (strlen(key) + 1);
    b->form = calloc(n, sizeof *b->form);
    b->form_len = calloc(n, sizeof *b->form_len);
    b->text = calloc(n, sizeof *b->text);
    b->text_len = calloc(n, sizeof *b->text_len);
    b->arena = malloc(arena_size);
    if (!b->form || !b->form_len || !b->text || !b->text_len || !b->arena
        || str_map_init(&b->by_form, n) < 0 || str_map_init(&b->by_text, n) < 0) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }

    json_object_foreach(obj, key, value) {
        size_t len = strlen(key);
        if (!json_is_integer(value)) {
            rc = ps_error_set(err, PS_ERR_FORMAT, "%s: entry %s: id is not an integer",
                              name, quote(q1, sizeof q1, key, len));
            goto done;
        }
        json_int_t id = json_integer_value(value);
        if (id < 0 || id >= (json_int_t)n) {
            rc = ps_error_set(err, PS_ERR_FORMAT,
                              "%s: entry %s: id %lld is outside 0..%zu",
                              name, quote(q1, sizeof q1, key, len),
                              (long long)id, n - 1);
            goto done;
        }
        if (b->form[id]) {
            rc = ps_error_set(err, PS_ERR_FORMAT,
                              "%s: entries %s and %s both have id %lld", name,
                              quote(q1, sizeof q1, b->form[id], b->form_len[id]),
                              quote(q2, sizeof q2, key, len), (long long)id);
            goto done;
        }
        char *form = b->arena + used, *text = form + len + 1;
        memcpy(form, key, len + 1);
        size_t t = 0;
        for (size_t k = 0; k < len;) {
            uint32_t cp = 0;
            size_t m = bpe_utf8_decode((const unsigned char *)key + k, len - k, &cp);
            int byte = m ? char_byte(cp) : -1;  /* jansson gives valid UTF-8 */
            if (byte < 0) {
                rc = ps_error_set(err, PS_ERR_FORMAT,
                                  "%s: entry %s: character U+%04X is not one of "
                                  "the 256 byte characters", name,
                                  quote(q1, sizeof q1, key, len), (unsigned)cp);
                goto done;
            }
            text[t++] = (char)byte;
            k += m;
        }
        text[t] = '\0';
        used += 2 * (len + 1);
        b->form[id] = form;
        b->form_len[id] = (uint32_t)len;
        b->text[id] = text;
        b->text_len[id] = (uint32_t)t;
        /* Distinct forms are distinct byte strings (the alphabet is a
         * bijection), and jansson refused duplicate keys: no clashes. */
        size_t slot = bpe_str_slot(&b->by_form, b->form, b->form_len, form, len);
        b->by_form.ids[slot] = (int32_t)id;
        slot = bpe_str_slot(&b->by_text, b->text, b->text_len, text, t);
        b->by_text.ids[slot] = (int32_t)id;
    }

    for (unsigned byte = 0; byte < 256; byte++) {
        char s[2] = { (char)byte, 0 };
        b->byte_id[byte] = bpe_find_text(b, s, 1);
        if (b->byte_id[byte] < 0) {
            rc = ps_error_set(err, PS_ERR_FORMAT, "%s: no token for byte 0x%02x",
                              name, byte);
            goto done;
        }
    }

    /* Special tokens: "<|...|>", matched in the text before pre-tokenizing. */
    b->special = malloc(n * sizeof *b->special);
    if (!b->special) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    for (int id = 0; id < b->n_vocab; id++) {
        const char *s = b->text[id];
        size_t len = b->text_len[id];
        if (len >= 5 && memcmp(s, "<|", 2) == 0 && memcmp(s + len - 2, "|>", 2) == 0) {
            int k = b->n_special++;            /* insertion sort, longest first */
            while (k > 0 && b->text_len[b->special[k - 1]] < len) {
                b->special[k] = b->special[k - 1];
                k--;
            }
            b->special[k] = id;
        }
    }
    rc = PS_OK;
done:
    json_decref(obj);
    return rc;
}

/* Fills the merges of b from merges ("#version" line, then "a b" by rank). */
static int load_merges(ps_bpe *b, const char *merges, size_t mlen,
                       const char *name, const char *vocab_name, ps_error *err)
{
    char q1[96], q2[96];
    size_t n_lines = 1;
    for (size_t i = 0; i < mlen; i++)
        n_lines += merges[i] == '\n';
    size_t slots = 16;
    while (slots < 2 * n_lines)
        slots *= 2;
    b->pairs = malloc(slots * sizeof *b->pairs);
    if (!b->pairs)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < slots; i++)
        b->pairs[i].rank = -1;
    b->pair_mask = slots - 1;

    char *joined = NULL;
    size_t joined_cap = 0;
    int rc = PS_OK, line_no = 0;
    for (size_t pos = 0; pos < mlen;) {
        const char *line = merges + pos;
        const char *nl = memchr(line, '\n', mlen - pos);
        size_t len = nl ? (size_t)(nl - line) : mlen - pos;
        pos += len + (nl != NULL);
        line_no++;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0 || (line_no == 1 && len >= 8 && memcmp(line, "#version", 8) == 0))
            continue;                         /* blank lines keep no rank */

        const char *part[3];
        size_t part_len[3];
        int n_parts = 0;
        for (size_t k = 0; k < len;) {
            while (k < len && (line[k] == ' ' || line[k] == '\t'))
                k++;
            if (k == len)
                break;
            size_t start = k;
            while (k < len && line[k] != ' ' && line[k] != '\t')
                k++;
            if (n_parts == 3)
                break;
            part[n_parts] = line + start;
            part_len[n_parts++] = k - start;
        }
        if (n_parts != 2) {
            rc = ps_error_set(err, PS_ERR_FORMAT,
                              "%s: line %d: expected two tokens separated "
                              "by a space, got %s", name, line_no,
                              quote(q1, sizeof q1, line, len));
            goto done;
        }
        int32_t id[2];
        for (int k = 0; k < 2; k++) {
            id[k] = bpe_find_form(b, part[k], part_len[k]);
            if (id[k] < 0) {
                rc = ps_error_set(err, PS_ERR_FORMAT, "%s: line %d: %s is not in %s",
                                  name, line_no, quote(q1, sizeof q1, part[k],
                                                       part_len[k]), vocab_name);
                goto done;
            }
        }
        size_t jl = part_len[0] + part_len[1];
        if (jl > joined_cap) {
            char *nj = realloc(joined, jl);
            if (!nj) {
                rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", name);
                goto done;
            }
            joined = nj;
            joined_cap = jl;
        }
        memcpy(joined, part[0], part_len[0]);
        memcpy(joined + part_len[0], part[1], part_len[1]);
        int32_t merged = bpe_find_form(b, joined, jl);
        if (merged < 0) {
            rc = ps_error_set(err, PS_ERR_FORMAT,
                              "%s: line %d: merge %s makes %s, which is not in %s",
                              name, line_no, quote(q1, sizeof q1, line, len),
                              quote(q2, sizeof q2, joined, jl), vocab_name);
            goto done;
        }
        bpe_pair *p = &b->pairs[bpe_pair_slot(b, id[0], id[1])];
        if (p->rank >= 0) {
            rc = ps_error_set(err, PS_ERR_FORMAT,
                              "%s: line %d: merge %s appears twice (ranks %d and %d)",
                              name, line_no, quote(q1, sizeof q1, line, len),
                              p->rank, b->n_merges);
            goto done;
        }
        *p = (bpe_pair){ (uint64_t)(uint32_t)id[0] << 32 | (uint32_t)id[1],
                         b->n_merges++, merged };
    }
done:
    free(joined);
    return rc;
}

static int bpe_build(ps_tokenizer **out, const char *vocab, size_t vlen,
                     const char *vname, const char *merges, size_t mlen,
                     const char *mname, ps_error *err)
{
    int rc;
    ps_bpe *b = calloc(1, sizeof *b);
    if (!b)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", vname);
    if (pthread_mutex_init(&b->cache_lock, NULL) != 0) {
        free(b);
        return ps_error_set(err, PS_ERR_NOMEM, "%s: cannot create a mutex", vname);
    }
    if ((rc = load_vocab(b, vocab, vlen, vname, err)) < 0
        || (rc = load_merges(b, merges, mlen, mname, vname, err)) < 0)
        goto fail;
    b->cache_slots = calloc(BPE_CACHE_SLOTS, sizeof *b->cache_slots);
    b->cache = malloc(BPE_CACHE_SLOTS / 2 * sizeof *b->cache);
    b->cache_keys = malloc(BPE_CACHE_KEY_BYTES);
    b->cache_ids = malloc(BPE_CACHE_IDS * sizeof *b->cache_ids);
    if (!b->cache_slots || !b->cache || !b->cache_keys || !b->cache_ids
        || !(*out = ps_tokenizer_wrap_bpe(b))) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", vname);
        goto fail;
    }
    return PS_OK;
fail:
    ps_bpe_free(b);
    return rc;
}

int ps_tokenizer_load_gpt2(ps_tokenizer **out, const char *vocab_json_path,
                           const char *merges_path, ps_error *err)
{
    char *vocab = NULL, *merges = NULL;
    size_t vlen, mlen;
    int rc;

    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "gpt2 tokenizer: no output pointer");
    *out = NULL;
    if (!vocab_json_path || !merges_path)
        return ps_error_set(err, PS_ERR_INVALID, "gpt2 tokenizer: no %s path",
                            vocab_json_path ? "merges" : "vocabulary");
    if ((rc = read_file(vocab_json_path, &vocab, &vlen, err)) == PS_OK
        && (rc = read_file(merges_path, &merges, &mlen, err)) == PS_OK)
        rc = bpe_build(out, vocab, vlen, vocab_json_path, merges, mlen,
                       merges_path, err);
    free(vocab);
    free(merges);
    return rc;
}

int ps_tokenizer_from_gpt2(ps_tokenizer **out, const char *vocab_json,
                           size_t vocab_len, const char *merges,
                           size_t merges_len, ps_error *err)
{
    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "gpt2 tokenizer: no output pointer");
    *out = NULL;
    if (!vocab_json || (!merges && merges_len > 0))
        return ps_error_set(err, PS_ERR_INVALID, "gpt2 tokenizer: no %s",
                            vocab_json ? "merges" : "vocabulary");
    return bpe_build(out, vocab_json, vocab_len, "vocabulary", merges ? merges : "",
                     merges_len, "merges", err);
}

/* ---- writing the two files back ---- */

/* The texts of vocab.json (ids in order) and merges.txt (by rank) for b,
 * from which bpe_build makes the same tables. */
int ps_bpe_to_text(const ps_bpe *b, char **vocab_json, char **merges,
                   ps_error *err)
{
    *vocab_json = *merges = NULL;
    json_t *obj = json_object();
    int32_t *by_rank = malloc(((size_t)b->n_merges + 1) * sizeof *by_rank);
    size_t len = sizeof "#version: 0.2\n";
    if (!obj || !by_rank)
        goto nomem;
    for (int id = 0; id < b->n_vocab; id++)
        if (json_object_set_new(obj, b->form[id], json_integer(id)) < 0)
            goto nomem;
    for (size_t i = 0; i <= b->pair_mask; i++) {
        const bpe_pair *p = &b->pairs[i];
        if (p->rank < 0)
            continue;
        by_rank[p->rank] = (int32_t)i;
        len += b->form_len[p->key >> 32] + b->form_len[(uint32_t)p->key] + 2;
    }
    char *o = *merges = malloc(len);
    if (!o || !(*vocab_json = json_dumps(obj, JSON_COMPACT)))
        goto nomem;
    o += sprintf(o, "#version: 0.2\n");
    for (int r = 0; r < b->n_merges; r++) {
        const bpe_pair *p = &b->pairs[by_rank[r]];
        uint32_t l = (uint32_t)(p->key >> 32), rt = (uint32_t)p->key;
        memcpy(o, b->form[l], b->form_len[l]);
        o += b->form_len[l];
        *o++ = ' ';
        memcpy(o, b->form[rt], b->form_len[rt]);
        o += b->form_len[rt];
        *o++ = '\n';
    }
    *o = '\0';
    json_decref(obj);
    free(by_rank);
    return PS_OK;
nomem:
    json_decref(obj);
    free(by_rank);
    free(*merges);
    *merges = NULL;
    return ps_error_set(err, PS_ERR_NOMEM, "gpt2 tokenizer: out of memory");
}
