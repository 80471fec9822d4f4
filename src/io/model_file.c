/* The native model file on top of safetensors.c: metadata <-> config and
 * tokenizer, tensors <-> the model's parameter table.
 *
 * Loading checks everything it can from the header before it allocates the
 * model, and reads no tensor data until every parameter has been found with
 * the right shape and dtype, so a bad file costs almost nothing. */
#include "paramscope/model_file.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/safetensors.h"

/* The keys the format sets itself.  A file carries the first eight and the
 * vocabulary keys of its tokenizer kind: "vocab" (words) or "bpe_vocab" and
 * "bpe_merges" (gpt2-bpe). */
static const char *const reserved_keys[] = {
    "format", "architecture", "n_layer", "n_head", "n_embd", "n_ctx",
    "vocab_size", "tokenizer", "vocab", "bpe_vocab", "bpe_merges",
};
#define N_RESERVED ((int)(sizeof reserved_keys / sizeof reserved_keys[0]))
#define N_CORE 8              /* format .. tokenizer */

/* ---- ps_meta ---- */

const char *ps_meta_get(const ps_meta *meta, const char *key)
{
    if (!meta || !key)
        return NULL;
    for (int i = 0; i < meta->n; i++)
        if (strcmp(meta->keys[i], key) == 0)
            return meta->vals[i];
    return NULL;
}

int ps_meta_set(ps_meta *meta, const char *key, const char *val)
{
    if (!meta || !key || !val)
        return PS_ERR_INVALID;
    char *v = strdup(val);
    if (!v)
        return PS_ERR_NOMEM;
    for (int i = 0; i < meta->n; i++) {
        if (strcmp(meta->keys[i], key) == 0) {
            free(meta->vals[i]);
            meta->vals[i] = v;
            return 0;
        }
    }
    char *k = strdup(key);
    char **keys = realloc(meta->keys, (size_t)(meta->n + 1) * sizeof *keys);
    if (keys)
        meta->keys = keys;
    char **vals = realloc(meta->vals, (size_t)(meta->n + 1) * sizeof *vals);
    if (vals)
        meta->vals = vals;
    if (!k || !keys || !vals) {
        free(k);
        free(v);
        return PS_ERR_NOMEM;
    }
    meta->keys[meta->n] = k;
    meta->vals[meta->n] = v;
    meta->n++;
    return 0;
}

void ps_meta_free(ps_meta *meta)
{
    if (!meta)
        return;
    for (int i = 0; i < meta->n; i++) {
        free(meta->keys[i]);
        free(meta->vals[i]);
    }
    free(meta->keys);
    free(meta->vals);
    memset(meta, 0, sizeof *meta);
}

int ps_meta_key_reserved(const char *key)
{
    for (int i = 0; i < N_RESERVED; i++)
        if (strcmp(key, reserved_keys[i]) == 0)
            return 1;
    return 0;
}

/* ---- loading: metadata ---- */

/* The metadata value for key, which must equal want. */
static int expect_value(const ps_st_file *f, const char *key, const char *want,
                        ps_error *err)
{
    const char *v = ps_st_meta(f, key);
    char vb[64];
    if (!v)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: not a paramscope model file: "
                            "no '%s' in the metadata", f->path, key);
    if (strcmp(v, want) != 0)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata '%s' is \"%s\", "
                            "expected \"%s\"", f->path, key, ps_printable(v, vb, sizeof vb),
                            want);
    return 0;
}

/* A size from the metadata: decimal digits only, fitting an int.  The range
 * proper is ps_config_check's business. */
static int parse_size(const ps_st_file *f, const char *key, int *out, ps_error *err)
{
    const char *v = ps_st_meta(f, key);
    char vb[64];
    if (!v)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata has no '%s'",
                            f->path, key);
    long long x = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9'; i++) {
        x = x * 10 + (v[i] - '0');
        if (x > INT_MAX)
            return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata '%s' is %s, "
                                "too large", f->path, key, ps_printable(v, vb, sizeof vb));
    }
    if (i == 0 || v[i] != '\0')
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata '%s' is \"%s\", "
                            "expected a decimal integer", f->path, key,
                            ps_printable(v, vb, sizeof vb));
    *out = (int)x;
    return 0;
}

static int read_config(const ps_st_file *f, ps_config *cfg, ps_error *err)
{
    int rc;
    if ((rc = expect_value(f, "format", "paramscope", err)) < 0 ||
        (rc = expect_value(f, "architecture", "gpt2", err)) < 0 ||
        (rc = parse_size(f, "n_layer", &cfg->n_layer, err)) < 0 ||
        (rc = parse_size(f, "n_head", &cfg->n_head, err)) < 0 ||
        (rc = parse_size(f, "n_embd", &cfg->n_embd, err)) < 0 ||
        (rc = parse_size(f, "n_ctx", &cfg->n_ctx, err)) < 0 ||
        (rc = parse_size(f, "vocab_size", &cfg->vocab_size, err)) < 0)
        return rc;
    if (ps_config_check(cfg, err) < 0) {
        /* a bad config in a file is a bad file */
        if (err)
            err->code = PS_ERR_FORMAT;
        ps_error_prefix(err, "%s", f->path);
        return PS_ERR_FORMAT;
    }
    /* A distinct message for the commonest inconsistency: the embedding
     * table and vocab_size disagree (the full shape check comes later). */
    const ps_st_tensor *wte = ps_st_find(f, "wte.weight");
    if (wte && wte->ndim == 2 && wte->shape[1] == cfg->n_embd &&
        wte->shape[0] != cfg->vocab_size)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: vocab_size %d does not match "
                            "tensor 'wte.weight' with %lld rows", f->path,
                            cfg->vocab_size, (long long)wte->shape[0]);
    return 0;
}

static int read_tokenizer(const ps_st_file *f, const ps_config *cfg,
                          ps_tokenizer **out, ps_error *err)
{
    const char *kind = ps_st_meta(f, "tokenizer");
    char vb[64];
    if (!kind)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata has no 'tokenizer'",
                            f->path);
    int bpe = strcmp(kind, "gpt2-bpe") == 0;
    if (!bpe && strcmp(kind, "words") != 0)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata 'tokenizer' is "
                            "\"%s\", expected \"words\" or \"gpt2-bpe\"", f->path,
                            ps_printable(kind, vb, sizeof vb));
    const char *vocab = ps_st_meta(f, bpe ? "bpe_vocab" : "vocab");
    const char *merges = bpe ? ps_st_meta(f, "bpe_merges") : NULL;
    if (!vocab || (bpe && !merges))
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata has no '%s'", f->path,
                            !bpe ? "vocab" : !vocab ? "bpe_vocab" : "bpe_merges");
    int rc = bpe ? ps_tokenizer_from_gpt2(out, vocab, strlen(vocab), merges,
                                          strlen(merges), err)
                 : ps_tokenizer_from_json(out, vocab, err);
    if (rc < 0) {
        if (rc != PS_ERR_NOMEM && err)
            err->code = rc = PS_ERR_FORMAT;
        ps_error_prefix(err, "%s", f->path);
        return rc;
    }
    int n = ps_tokenizer_vocab_size(*out);
    if (n != cfg->vocab_size) {
        ps_tokenizer_free(*out);
        *out = NULL;
        return ps_error_set(err, PS_ERR_FORMAT, "%s: vocabulary has %d tokens but "
                            "vocab_size is %d", f->path, n, cfg->vocab_size);
    }
    return 0;
}

static int copy_meta(const ps_st_file *f, ps_meta *meta, ps_error *err)
{
    for (int i = 0; i < f->n_meta; i++) {
        if (ps_meta_key_reserved(f->meta_keys[i]))
            continue;
        if (ps_meta_set(meta, f->meta_keys[i], f->meta_vals[i]) < 0)
            return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while reading its metadata",
                                f->path);
    }
    return 0;
}

/* ---- loading: tensors ---- */

/* Which sizes of the config decide p's shape, for messages. */
static const char *shape_reason(const ps_param *p, const ps_config *c,
                                char *buf, size_t cap)
{
    if (strcmp(p->name, "wte.weight") == 0)
        snprintf(buf, cap, "vocab_size %d, n_embd %d", c->vocab_size, c->n_embd);
    else if (strcmp(p->name, "wpe.weight") == 0)
        snprintf(buf, cap, "n_ctx %d, n_embd %d", c->n_ctx, c->n_embd);
    else
        snprintf(buf, cap, "n_embd %d", c->n_embd);
    return buf;
}

static int check_param(const ps_st_file *f, const ps_model *m, const ps_param *p,
                       ps_error *err)
{
    const ps_st_tensor *t = ps_st_find(f, p->name);
    if (!t)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: missing tensor '%s'",
                            f->path, p->name);
    int64_t want[2] = {p->shape[0], p->shape[1]};
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++)
        same = t->shape[d] == want[d];
    if (!same) {
        char got[160], exp[64], why[96];
        return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' has shape %s, "
                            "expected %s for %s", f->path, p->name,
                            ps_st_shape_str(t->shape, t->ndim, got, sizeof got),
                            ps_st_shape_str(want, p->ndim, exp, sizeof exp),
                            shape_reason(p, &m->cfg, why, sizeof why));
    }
    switch (t->dtype) {
    case PS_DTYPE_F32:
    case PS_DTYPE_F16:
    case PS_DTYPE_BF16:
    case PS_DTYPE_F64:
        return 0;
    default:
        return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' has dtype %s, "
                            "expected a float type (F32, F16, BF16, F64)",
                            f->path, p->name, ps_dtype_name(t->dtype));
    }
}

/* Every parameter present with its shape; no other tensors. */
static int check_tensors(const ps_st_file *f, ps_model *m, ps_error *err)
{
    int rc;
    for (int i = 0; i < m->n_params; i++)
        if ((rc = check_param(f, m, &m->params[i], err)) < 0)
            return rc;
    /* names are unique on both sides, so equal counts mean equal sets */
    if (f->n_tensors == m->n_params)
        return 0;
    for (int i = 0; i < f->n_tensors; i++) {
        if (!ps_model_find(m, f->tensors[i].name)) {
            char nb[96];
            return ps_error_set(err, PS_ERR_FORMAT, "%s: unexpected tensor '%s': "
                                "not a parameter of GPT-2 with n_layer %d",
                                f->path, ps_printable(f->tensors[i].name, nb, sizeof nb),
                                m->cfg.n_layer);
        }
    }
    return 0;
}

/* A config asking for many more parameters than the file holds would make us
 * allocate for nothing (or for an OOM kill).  Slack: a file missing a few
 * parameters still gets the precise message from check_tensors. */
static int check_plausible_size(const ps_st_file *f, const ps_config *c, ps_error *err)
{
    uint64_t held = 0;
    for (int i = 0; i < f->n_tensors; i++)
        held += f->tensors[i].numel;
    uint64_t need = ps_config_param_count(c);
    if (need > 2 * held + (1u << 22))
        return ps_error_set(err, PS_ERR_FORMAT, "%s: config (n_layer %d, n_embd %d, "
                            "n_ctx %d, vocab_size %d) implies %llu parameters, "
                            "the file's tensors hold only %llu values", f->path,
                            c->n_layer, c->n_embd, c->n_ctx, c->vocab_size,
                            (unsigned long long)need, (unsigned long long)held);
    return 0;
}

/* ---- loading: the arena ---- */

/* Every parameter F32 at a 4-byte aligned place: the model's arena can be
 * the file's data area itself (what ps_st_write produces). */
static int mappable(const ps_st_file *f, const ps_model *tbl)
{
    if (!f->map_rw || f->data_start % sizeof(float) != 0)
        return 0;
    for (int i = 0; i < tbl->n_params; i++) {
        const ps_st_tensor *t = ps_st_find(f, tbl->params[i].name);
        if (t->dtype != PS_DTYPE_F32 || t->begin % sizeof(float) != 0)
            return 0;
    }
    return 1;
}

int ps_model_file_check(const ps_model *m, ps_error *err)
{
    if (!m || m->w_release != ps_st_release)
        return PS_OK;
    return ps_st_check_unchanged(m->w_release_ctx, err);
}

/* A model over f's private mapping; on success the model owns f. */
static int build_mapped(ps_model **out, ps_st_file *f, const ps_model *tbl,
                        ps_error *err)
{
    size_t *offsets = malloc((size_t)tbl->n_params * sizeof *offsets);
    if (!offsets)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while loading it", f->path);
    for (int i = 0; i < tbl->n_params; i++)
        offsets[i] = (size_t)(ps_st_find(f, tbl->params[i].name)->begin /
                              sizeof(float));
    float *arena = (float *)(void *)(f->map_rw + f->data_start);
    size_t n_floats = (f->size - f->data_start) / sizeof(float);
    int rc = ps_model_init_mapped(out, &tbl->cfg, arena, n_floats, offsets,
                                  ps_st_release, f, err);
    free(offsets);
    if (rc < 0)
        ps_error_prefix(err, "%s", f->path);
    return rc;
}

int ps_model_load(ps_model **model, ps_tokenizer **tok, ps_meta *meta,
                  const char *path, ps_error *err)
{
    *model = NULL;
    if (tok)
        *tok = NULL;
    if (meta)
        memset(meta, 0, sizeof *meta);

    ps_st_file *f = NULL;
    ps_model *m = NULL, *tbl = NULL;
    ps_tokenizer *t = NULL;
    ps_config cfg;
    int rc;
    if ((rc = ps_st_map_private(&f, path, err)) < 0 ||
        (rc = read_config(f, &cfg, err)) < 0 ||
        (rc = read_tokenizer(f, &cfg, &t, err)) < 0 ||
        (rc = check_plausible_size(f, &cfg, err)) < 0)
        goto fail;
    /* The table alone first: a model borrowing the mapping, never read, so
     * that a file is checked before anything of its size is allocated. */
    if ((rc = ps_model_init_borrowed(&tbl, &cfg, (float *)(void *)f->map_rw, NULL,
                                     NULL, err)) < 0) {
        ps_error_prefix(err, "%s", path);
        goto fail;
    }
    if ((rc = check_tensors(f, tbl, err)) < 0)
        goto fail;
    if (meta && (rc = copy_meta(f, meta, err)) < 0)
        goto fail;
    if (mappable(f, tbl)) {
        if ((rc = build_mapped(&m, f, tbl, err)) < 0)
            goto fail;
        f = NULL;             /* the model owns it now */
    } else {
        if ((rc = ps_model_init(&m, &cfg, err)) < 0) {
            ps_error_prefix(err, "%s", path);
            goto fail;
        }
        for (int i = 0; i < m->n_params; i++) {
            ps_param *p = &m->params[i];
            if ((rc = ps_st_read_f32(f, ps_st_find(f, p->name), p->data, err)) < 0)
                goto fail;
        }
    }
    ps_model_free(tbl);
    tbl = NULL;

    ps_st_close(f);
    *model = m;
    if (tok)
        *tok = t;
    else
        ps_tokenizer_free(t);
    return 0;
fail:
    if (meta)
        ps_meta_free(meta);
    ps_model_free(tbl);
    ps_model_free(m);
    ps_tokenizer_free(t);
    ps_st_close(f);
    return rc;
}

/* ---- saving ---- */

/* The tokenizer's metadata: kind and one or two values (malloc'd). */
static int tokenizer_meta(const ps_tokenizer *tok, const char *path,
                          const char **kind, char **v1, char **v2, ps_error *err)
{
    *v1 = *v2 = NULL;
    *kind = ps_tokenizer_kind_name(tok);    /* "words", "gpt2-bpe" */
    switch (ps_tokenizer_kind_of(tok)) {
    case PS_TOKENIZER_KIND_WORDS:
        if (!(*v1 = ps_tokenizer_to_json(tok)))
            return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while saving it", path);
        return 0;
    case PS_TOKENIZER_KIND_GPT2_BPE:
        if (ps_tokenizer_gpt2_text(tok, v1, v2, err) < 0) {
            ps_error_prefix(err, "%s", path);
            return err ? err->code : PS_ERR_NOMEM;
        }
        return 0;
    }
    return ps_error_set(err, PS_ERR_INVALID, "%s: cannot save a '%s' tokenizer",
                        path, ps_tokenizer_kind_name(tok));
}

static int save(const ps_model *m, const ps_tokenizer *tok, const ps_meta *meta,
                const char *path, int flags, ps_error *err)
{
    if (!m || !tok || !path)
        return ps_error_set(err, PS_ERR_INVALID, "%s: save: no model or tokenizer",
                            path ? path : "(null)");
    int nv = ps_tokenizer_vocab_size(tok);
    if (nv != m->cfg.vocab_size)
        return ps_error_set(err, PS_ERR_INVALID, "%s: tokenizer has %d tokens but "
                            "the model's vocab_size is %d", path, nv,
                            m->cfg.vocab_size);
    int n_extra = meta ? meta->n : 0;
    for (int i = 0; i < n_extra; i++)
        if (ps_meta_key_reserved(meta->keys[i]))
            return ps_error_set(err, PS_ERR_INVALID, "%s: metadata key '%s' is "
                                "reserved", path, meta->keys[i]);

    char sizes[5][16];
    int vals_int[5] = {m->cfg.n_layer, m->cfg.n_head, m->cfg.n_embd, m->cfg.n_ctx,
                       m->cfg.vocab_size};
    for (int i = 0; i < 5; i++)
        snprintf(sizes[i], sizeof sizes[i], "%d", vals_int[i]);

    const char *kind = NULL;
    char *v1 = NULL, *v2 = NULL;
    int rc = tokenizer_meta(tok, path, &kind, &v1, &v2, err);
    if (rc < 0)
        return rc;
    rc = PS_ERR_NOMEM;
    int n_meta = N_CORE + 2 + n_extra;
    const char **keys = malloc((size_t)n_meta * sizeof *keys);
    const char **vals = malloc((size_t)n_meta * sizeof *vals);
    ps_st_out *outs = calloc((size_t)m->n_params + 1, sizeof *outs);
    if (!keys || !vals || !outs) {
        ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while saving it", path);
        goto done;
    }
    /* values in the order of reserved_keys */
    const char *core[N_CORE] = {"paramscope", "gpt2", sizes[0], sizes[1],
                                sizes[2], sizes[3], sizes[4], kind};
    n_meta = 0;
    for (int i = 0; i < N_CORE; i++) {
        keys[n_meta] = reserved_keys[i];
        vals[n_meta++] = core[i];
    }
    if (v2) {
        keys[n_meta] = "bpe_vocab";
        vals[n_meta++] = v1;
        keys[n_meta] = "bpe_merges";
        vals[n_meta++] = v2;
    } else {
        keys[n_meta] = "vocab";
        vals[n_meta++] = v1;
    }
    for (int i = 0; i < n_extra; i++) {
        keys[n_meta] = meta->keys[i];
        vals[n_meta++] = meta->vals[i];
    }
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = &m->params[i];
        outs[i].name = p->name;
        outs[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++)
            outs[i].shape[d] = p->shape[d];
        outs[i].data = p->data;
    }
    rc = ps_st_write_ex(path, outs, m->n_params, keys, vals, n_meta, flags, err);
done:
    free(outs);
    free(vals);
    free(keys);
    free(v1);
    free(v2);
    return rc;
}

int ps_model_save(const ps_model *m, const ps_tokenizer *tok, const ps_meta *meta,
                  const char *path, ps_error *err)
{
    return save(m, tok, meta, path, 0, err);
}

int ps_model_check_savable(const ps_model *m, const ps_tokenizer *tok, const ps_meta *meta,
                           const char *path, ps_error *err)
{
    return save(m, tok, meta, path, PS_ST_DRY_RUN, err);
}
