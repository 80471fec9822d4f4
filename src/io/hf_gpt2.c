/* GPT-2 checkpoints in Hugging Face's layout.
 *
 * The order of the work is the order of the trust: the files are found, the
 * safetensors header is validated (ps_st_map_private), every tensor name is
 * classified, the sizes are derived from the tensors and reconciled with
 * config.json, every parameter's shape and dtype is checked, and only then is
 * anything of the model's size allocated or touched.
 *
 * F32 checkpoints are not copied: the model's arena is the file's data area
 * and parameter i starts at its tensor's byte offset / 4.  The causal-mask
 * buffers (and lm_head.weight) stay in the arena as holes nobody reads. */
#include "paramscope/hf_gpt2.h"

#include "paramscope/fileio.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PREFIX "transformer."
#define PREFIX_LEN (sizeof PREFIX - 1)
#define CONFIG_MAX (1u << 20)          /* bytes: config.json is a few hundred */
#define LAYER_INDEX_MAX 100000         /* larger "h.N." is not a layer index */

/* The block's parameters in the order of the model's table (model.c). */
static const char *const block_suffix[] = {
    "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
};
#define N_BLOCK ((int)(sizeof block_suffix / sizeof block_suffix[0]))

/* GPT-2's releases: width -> heads (gpt2, medium, large, xl). */
static const int known_heads[][2] = {{768, 12}, {1024, 16}, {1280, 20}, {1600, 25}};

/* ---- small helpers ---- */

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p)
        snprintf(p, a + b + 2, "%s%s%s", dir,
                 a && dir[a - 1] == '/' ? "" : "/", name);
    return p;
}

static int is_kind(const char *path, mode_t kind)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}
#define is_dir(p) is_kind(p, S_IFDIR)
#define is_file(p) is_kind(p, S_IFREG)

/* dir/name is a folder, FIFO, ...: said so, not taken for absent. */
static int refuse_odd(const char *dir, const char *name, ps_error *err)
{
    char *p = join_path(dir, name);
    int rc = p ? ps_file_regular_or_absent(p, err)
               : ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while looking for its files", dir);
    free(p);
    return rc;
}

/* dir/first if it is a file, else dir/second if that is, else NULL with
 * *nomem telling why. */
static char *find_either(const char *dir, const char *first, const char *second,
                         int *nomem)
{
    const char *names[2] = {first, second};
    for (int i = 0; i < 2; i++) {
        char *p = join_path(dir, names[i]);
        if (!p) {
            *nomem = 1;
            return NULL;
        }
        if (is_file(p))
            return p;
        free(p);
    }
    return NULL;
}

void ps_hf_info_free(ps_hf_info *info)
{
    if (!info)
        return;
    free(info->weights);
    free(info->vocab);
    free(info->merges);
    free(info->config);
    memset(info, 0, sizeof *info);
}

/* ---- finding the files ---- */

typedef struct hf_files {
    char *dir, *weights, *vocab, *merges, *config;
} hf_files;

static void files_free(hf_files *fs)
{
    free(fs->dir);
    free(fs->weights);
    free(fs->vocab);
    free(fs->merges);
    free(fs->config);
}

static int find_files(hf_files *fs, const char *path, ps_error *err)
{
    int nomem = 0;
    memset(fs, 0, sizeof *fs);
    if (is_dir(path)) {
        if (!(fs->dir = strdup(path)) ||
            !(fs->weights = join_path(path, "model.safetensors")))
            goto nomem;
        if (!is_file(fs->weights)) {
            char *bin = join_path(path, "pytorch_model.bin");
            int has_bin = bin && is_file(bin);
            free(bin);
            return ps_error_set(err, PS_ERR_IO, "%s: no model.safetensors%s", path,
                                has_bin ? " (only pytorch_model.bin, a pickle that "
                                "paramscope does not read: convert it to safetensors)"
                                : "");
        }
    } else {
        struct stat st;
        if (stat(path, &st) != 0)
            return ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path,
                                strerror(errno));
        if (!(fs->dir = ps_file_dir(path)) || !(fs->weights = strdup(path)))
            goto nomem;
    }
    static const char *const names[5] = {"vocab.json", "encoder.json", "merges.txt", "vocab.bpe",
                                         "config.json"};
    for (int i = 0, rc; i < 5; i++)
        if ((rc = refuse_odd(fs->dir, names[i], err)) < 0)
            return rc;
    fs->vocab = find_either(fs->dir, "vocab.json", "encoder.json", &nomem);
    if (nomem)
        goto nomem;
    if (!fs->vocab)
        return ps_error_set(err, PS_ERR_IO, "%s: no vocab.json (or encoder.json): "
                            "GPT-2's tokenizer files belong beside the weights",
                            fs->dir);
    fs->merges = find_either(fs->dir, "merges.txt", "vocab.bpe", &nomem);
    if (nomem)
        goto nomem;
    if (!fs->merges)
        return ps_error_set(err, PS_ERR_IO, "%s: no merges.txt (or vocab.bpe): "
                            "GPT-2's tokenizer files belong beside the weights",
                            fs->dir);
    if (!(fs->config = join_path(fs->dir, "config.json")))
        goto nomem;
    if (!is_file(fs->config)) {
        free(fs->config);
        fs->config = NULL;
    }
    return 0;
nomem:
    return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while looking for its files", path);
}

int ps_hf_gpt2_probe(const char *path)
{
    if (!path)
        return 0;
    if (is_dir(path))
        return 1;
    if (!is_file(path))
        return 0;
    char *dir = ps_file_dir(path);
    int nomem = 0, hf = 0;
    char *vocab = dir ? find_either(dir, "vocab.json", "encoder.json", &nomem) : NULL;
    if (vocab) {
        ps_st_file *f = NULL;
        if (ps_st_open_flags(&f, path, PS_ST_NO_COPY, NULL) == 0) {   /* the header only */
            const char *format = ps_st_meta(f, "format");
            hf = !format || strcmp(format, "paramscope") != 0;
        }
        ps_st_close(f);
    }
    free(vocab);
    free(dir);
    return hf;
}

/* ---- the tensors ---- */

/* What the file holds, by the model's table index. */
typedef struct hf_tensors {
    const ps_st_tensor *wte, *wpe, *lnf_w, *lnf_b, *lm_head;
    const ps_st_tensor **block;   /* [n_layer * N_BLOCK] or NULL before sizing */
    int max_layer;                /* highest "h.N." seen, -1 when none */
    int prefixed;                 /* some name had "transformer." */
} hf_tensors;

/* Parses "N." at s into *layer and returns what follows, or NULL. */
static const char *parse_layer(const char *s, int *layer)
{
    long v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > LAYER_INDEX_MAX)
            return NULL;
    }
    if (p == s || *p != '.' || (p - s > 1 && *s == '0'))
        return NULL;
    *layer = (int)v;
    return p + 1;
}

static int block_index(const char *suffix)
{
    for (int i = 0; i < N_BLOCK; i++)
        if (strcmp(suffix, block_suffix[i]) == 0)
            return i;
    return -1;
}

static int fail_unexpected(const ps_st_file *f, const char *name, ps_error *err)
{
    char nb[96];
    return ps_error_set(err, PS_ERR_FORMAT, "%s: unexpected tensor '%s': not a "
                        "parameter of a GPT-2 language model", f->path,
                        ps_printable(name, nb, sizeof nb));
}

static int fail_twice(const ps_st_file *f, const char *name, ps_error *err)
{
    char nb[96];
    return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' is stored twice "
                        "(with and without the '" PREFIX "' prefix)", f->path,
                        ps_printable(name, nb, sizeof nb));
}

/* First pass: the layer count and the tensors outside the blocks. */
static int classify(const ps_st_file *f, hf_tensors *ht, ps_error *err)
{
    memset(ht, 0, sizeof *ht);
    ht->max_layer = -1;
    for (int i = 0; i < f->n_tensors; i++) {
        const ps_st_tensor *t = &f->tensors[i];
        const char *name = t->name;
        if (strncmp(name, PREFIX, PREFIX_LEN) == 0) {
            name += PREFIX_LEN;
            ht->prefixed = 1;
        }
        const ps_st_tensor **slot = NULL;
        if (strcmp(name, "wte.weight") == 0)
            slot = &ht->wte;
        else if (strcmp(name, "wpe.weight") == 0)
            slot = &ht->wpe;
        else if (strcmp(name, "ln_f.weight") == 0)
            slot = &ht->lnf_w;
        else if (strcmp(name, "ln_f.bias") == 0)
            slot = &ht->lnf_b;
        else if (strcmp(name, "lm_head.weight") == 0)
            slot = &ht->lm_head;
        if (slot) {
            if (*slot)
                return fail_twice(f, name, err);
            *slot = t;
            continue;
        }
        int layer;
        const char *rest = strncmp(name, "h.", 2) == 0 ? parse_layer(name + 2, &layer)
                                                       : NULL;
        if (!rest)
            return fail_unexpected(f, t->name, err);
        if (strcmp(rest, "attn.bias") == 0 || strcmp(rest, "attn.masked_bias") == 0)
            continue;         /* the causal mask, a buffer rather than a parameter */
        if (block_index(rest) < 0)
            return fail_unexpected(f, t->name, err);
        if (layer > ht->max_layer)
            ht->max_layer = layer;
    }
    return 0;
}

/* Second pass, once n_layer is known: each block parameter in its slot. */
static int place_blocks(const ps_st_file *f, hf_tensors *ht, int n_layer, ps_error *err)
{
    ht->block = calloc((size_t)n_layer * N_BLOCK, sizeof *ht->block);
    if (!ht->block)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while loading it", f->path);
    for (int i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, PREFIX, PREFIX_LEN) == 0)
            name += PREFIX_LEN;
        int layer, k;
        const char *rest = strncmp(name, "h.", 2) == 0 ? parse_layer(name + 2, &layer)
                                                       : NULL;
        if (!rest || (k = block_index(rest)) < 0 || layer >= n_layer)
            continue;
        const ps_st_tensor **slot = &ht->block[(size_t)layer * N_BLOCK + (size_t)k];
        if (*slot)
            return fail_twice(f, name, err);
        *slot = &f->tensors[i];
    }
    return 0;
}

/* The model's parameter i: its name, shape and tensor (NULL when missing). */
static const ps_st_tensor *param_spec(const hf_tensors *ht, const ps_config *c, int i,
                                      char *name, int64_t shape[2], int *ndim)
{
    int C = c->n_embd, L = c->n_layer;
    static const int block_d0[N_BLOCK] = {1, 1, 1, 3, 1, 1, 1, 1, 1, 4, 4, 1};
    static const int block_d1[N_BLOCK] = {0, 0, 3, 0, 1, 0, 0, 0, 4, 0, 1, 0};
    const ps_st_tensor *t;
    *ndim = 1;
    shape[1] = 1;
    if (i < 2) {
        snprintf(name, PS_NAME_MAX, "%s", i == 0 ? "wte.weight" : "wpe.weight");
        *ndim = 2;
        shape[0] = i == 0 ? c->vocab_size : c->n_ctx;
        shape[1] = C;
        return i == 0 ? ht->wte : ht->wpe;
    }
    if (i >= 2 + L * N_BLOCK) {
        int last = i - 2 - L * N_BLOCK;
        snprintf(name, PS_NAME_MAX, "%s", last == 0 ? "ln_f.weight" : "ln_f.bias");
        shape[0] = C;
        return last == 0 ? ht->lnf_w : ht->lnf_b;
    }
    int l = (i - 2) / N_BLOCK, k = (i - 2) % N_BLOCK;
    snprintf(name, PS_NAME_MAX, "h.%d.%s", l, block_suffix[k]);
    /* ln weights and biases are [C]; matrices [d0 C, d1 C]; biases [d0 C] */
    shape[0] = (int64_t)block_d0[k] * C;
    if (block_d1[k]) {
        *ndim = 2;
        shape[1] = (int64_t)block_d1[k] * C;
    }
    t = ht->block[(size_t)l * N_BLOCK + (size_t)k];
    return t;
}

static int n_params_of(const ps_config *c)
{
    return 4 + c->n_layer * N_BLOCK;
}

static int is_float_dtype(ps_dtype d)
{
    return d == PS_DTYPE_F32 || d == PS_DTYPE_F16 || d == PS_DTYPE_BF16 ||
           d == PS_DTYPE_F64;
}

/* Every parameter present, with its shape and a float dtype. */
static int check_params(const ps_st_file *f, const hf_tensors *ht, const ps_config *c,
                        ps_error *err)
{
    char name[PS_NAME_MAX], got[160], want[64];
    int64_t shape[2];
    int ndim;
    for (int i = 0; i < n_params_of(c); i++) {
        const ps_st_tensor *t = param_spec(ht, c, i, name, shape, &ndim);
        if (!t)
            return ps_error_set(err, PS_ERR_FORMAT, "%s: missing tensor '%s%s'",
                                f->path, ht->prefixed ? PREFIX : "", name);
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++)
            same = t->shape[d] == shape[d];
        if (!same) {
            char why[96];
            if (i == 1)
                snprintf(why, sizeof why, "n_ctx %d, n_embd %d", c->n_ctx, c->n_embd);
            else
                snprintf(why, sizeof why, "n_embd %d", c->n_embd);
            return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' has shape %s, "
                                "expected %s for %s", f->path, t->name,
                                ps_st_shape_str(t->shape, t->ndim, got, sizeof got),
                                ps_st_shape_str(shape, ndim, want, sizeof want), why);
        }
        if (!is_float_dtype(t->dtype))
            return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' has dtype %s, "
                                "expected a float type (F32, F16, BF16, F64)",
                                f->path, t->name, ps_dtype_name(t->dtype));
    }
    return 0;
}

/* Element i of a float tensor, as float32. */
static float elem(const ps_st_file *f, const ps_st_tensor *t, size_t i)
{
    const uint8_t *p = (const uint8_t *)ps_st_data(f, t) + i * ps_dtype_size(t->dtype);
    uint16_t h;
    float x;
    double d;
    switch (t->dtype) {
    case PS_DTYPE_F16: memcpy(&h, p, 2); return ps_f16_to_f32(h);
    case PS_DTYPE_BF16: memcpy(&h, p, 2); return ps_bf16_to_f32(h);
    case PS_DTYPE_F64: memcpy(&d, p, 8); return (float)d;
    default: memcpy(&x, p, 4); return x;
    }
}

/* paramscope ties the output head to wte: a stored head must be wte. */
static int check_lm_head(const ps_st_file *f, const hf_tensors *ht, ps_error *err)
{
    const ps_st_tensor *h = ht->lm_head, *w = ht->wte;
    char got[160], want[64];
    if (!h)
        return 0;
    if (h->ndim != w->ndim || h->shape[0] != w->shape[0] || h->shape[1] != w->shape[1])
        return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' has shape %s, "
                            "expected %s, the shape of '%s' (paramscope ties the "
                            "output head to the token embedding)", f->path, h->name,
                            ps_st_shape_str(h->shape, h->ndim, got, sizeof got),
                            ps_st_shape_str(w->shape, w->ndim, want, sizeof want), w->name);
    if (!is_float_dtype(h->dtype))
        return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' has dtype %s, "
                            "expected a float type", f->path, h->name,
                            ps_dtype_name(h->dtype));
    if (h->dtype == w->dtype &&
        memcmp(ps_st_data(f, h), ps_st_data(f, w), (size_t)(h->end - h->begin)) == 0)
        return 0;
    for (size_t i = 0; i < (size_t)h->numel; i++) {
        float a = elem(f, h, i), b = elem(f, w, i);
        if (memcmp(&a, &b, sizeof a) != 0) {
            size_t cols = (size_t)w->shape[1];
            return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' differs from "
                                "'%s' (first at [%zu, %zu]: %.9g vs %.9g): an untied "
                                "output head, which paramscope's GPT-2 (head tied "
                                "to the token embedding) cannot hold", f->path,
                                h->name, w->name, i / cols, i % cols, (double)a,
                                (double)b);
        }
    }
    return 0;
}

/* ---- config.json ---- */

typedef struct hf_json_cfg {
    int n_layer, n_head, n_embd, n_ctx, vocab_size;   /* 0: not given */
} hf_json_cfg;

static int json_size(const char *path, json_t *root, const char *key, int *out,
                     ps_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > INT_MAX)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: '%s' must be a positive "
                            "integer", path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

/* Refuses the settings that would make paramscope's forward pass differ. */
static int check_variant(const char *path, json_t *root, ps_error *err)
{
    char vb[64];
    json_t *v = json_object_get(root, "model_type");
    if (json_is_string(v) && strcmp(json_string_value(v), "gpt2") != 0)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: model_type is \"%s\", expected "
                            "\"gpt2\"", path, ps_printable(json_string_value(v), vb, sizeof vb));
    v = json_object_get(root, "activation_function");
    if (json_is_string(v)) {
        const char *a = json_string_value(v);
        if (strcmp(a, "gelu_new") != 0 && strcmp(a, "gelu_pytorch_tanh") != 0 &&
            strcmp(a, "gelu_fast") != 0)
            return ps_error_set(err, PS_ERR_FORMAT, "%s: activation_function is "
                                "\"%s\"; paramscope's GPT-2 uses GELU's tanh "
                                "approximation (\"gelu_new\")", path,
                                ps_printable(a, vb, sizeof vb));
    }
    v = json_object_get(root, "layer_norm_epsilon");
    if (json_is_number(v) && fabs(json_number_value(v) - 1e-5) > 1e-9)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: layer_norm_epsilon is %g; "
                            "paramscope's GPT-2 uses 1e-05", path,
                            json_number_value(v));
    if (json_is_false(json_object_get(root, "scale_attn_weights")) ||
        json_is_true(json_object_get(root, "scale_attn_by_inverse_layer_idx")))
        return ps_error_set(err, PS_ERR_FORMAT, "%s: attention scaling other than "
                            "1/sqrt(head size) (scale_attn_weights, "
                            "scale_attn_by_inverse_layer_idx) is not GPT-2's", path);
    return 0;
}

static int read_config_json(const char *path, hf_json_cfg *jc, ps_error *err)
{
    memset(jc, 0, sizeof *jc);
    char *text = NULL;
    size_t len = 0;
    int rc = ps_file_read_all(path, CONFIG_MAX, "a config", &text, &len, err);
    if (rc < 0)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root)
        return json_error_code(&je) == json_error_out_of_memory
                   ? ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while parsing it", path)
                   : ps_error_set(err, PS_ERR_FORMAT, "%s: not valid JSON: %s (line %d)",
                                  path, je.text, je.line);
    if (!json_is_object(root))
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: not a JSON object", path);
    if (!rc)
        rc = check_variant(path, root, err);
    if (!rc && !(rc = json_size(path, root, "n_layer", &jc->n_layer, err)) &&
        !(rc = json_size(path, root, "n_head", &jc->n_head, err)) &&
        !(rc = json_size(path, root, "n_embd", &jc->n_embd, err)) &&
        !(rc = json_size(path, root, "vocab_size", &jc->vocab_size, err))) {
        /* n_positions is the table's size; old configs only have n_ctx */
        rc = json_size(path, root, "n_positions", &jc->n_ctx, err);
        if (!rc && !jc->n_ctx)
            rc = json_size(path, root, "n_ctx", &jc->n_ctx, err);
    }
    json_decref(root);
    return rc;
}

/* ---- the sizes ---- */

static int agree(const char *cfg_path, const char *key, int given, int found,
                 const char *where, ps_error *err)
{
    if (!given || given == found)
        return 0;
    return ps_error_set(err, PS_ERR_FORMAT, "%s: %s is %d but the checkpoint has %d "
                        "(%s)", cfg_path, key, given, found, where);
}

static int derive_config(const ps_st_file *f, const hf_tensors *ht,
                         const hf_files *fs, const ps_hf_options *opt,
                         ps_config *c, ps_error *err)
{
    char got[160];
    for (int i = 0; i < 2; i++) {
        const ps_st_tensor *t = i ? ht->wpe : ht->wte;
        if (!t)
            return ps_error_set(err, PS_ERR_FORMAT, "%s: missing tensor '%s%s'",
                                f->path, ht->prefixed ? PREFIX : "",
                                i ? "wpe.weight" : "wte.weight");
        if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1 ||
            t->shape[0] > INT_MAX || t->shape[1] > INT_MAX)
            return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' has shape %s, "
                                "expected [%s, n_embd]", f->path, t->name,
                                ps_st_shape_str(t->shape, t->ndim, got, sizeof got),
                                i ? "n_ctx" : "vocab_size");
    }
    if (ht->max_layer < 0)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: no transformer blocks (no "
                            "tensor 'h.0.ln_1.weight' or the like)", f->path);
    c->vocab_size = (int)ht->wte->shape[0];
    c->n_embd = (int)ht->wte->shape[1];
    c->n_ctx = (int)ht->wpe->shape[0];
    c->n_layer = ht->max_layer + 1;
    c->n_head = 0;

    int rc;
    hf_json_cfg jc = {0};
    if (fs->config) {
        char where[128];
        snprintf(where, sizeof where, "its last block is h.%d", ht->max_layer);
        if ((rc = read_config_json(fs->config, &jc, err)) < 0 ||
            (rc = agree(fs->config, "n_embd", jc.n_embd, c->n_embd,
                        "wte.weight's columns", err)) < 0 ||
            (rc = agree(fs->config, "vocab_size", jc.vocab_size, c->vocab_size,
                        "wte.weight's rows", err)) < 0 ||
            (rc = agree(fs->config, "n_positions", jc.n_ctx, c->n_ctx,
                        "wpe.weight's rows", err)) < 0 ||
            (rc = agree(fs->config, "n_layer", jc.n_layer, c->n_layer, where, err)) < 0)
            return rc;
        c->n_head = jc.n_head;
    }
    int heads = opt ? opt->heads : 0;
    if (heads < 0)
        return ps_error_set(err, PS_ERR_INVALID, "heads %d: must be positive", heads);
    if (heads && jc.n_head && heads != jc.n_head)
        return ps_error_set(err, PS_ERR_INVALID, "heads %d contradicts %s, which "
                            "says n_head %d", heads, fs->config, jc.n_head);
    if (heads)
        c->n_head = heads;
    for (size_t i = 0; !c->n_head && i < sizeof known_heads / sizeof known_heads[0]; i++)
        if (known_heads[i][0] == c->n_embd)
            c->n_head = known_heads[i][1];
    if (!c->n_head)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: n_embd %d is not a width of "
                            "GPT-2's releases (768, 1024, 1280, 1600) and there is "
                            "no config.json: give the number of heads", fs->dir,
                            c->n_embd);
    if (c->n_embd % c->n_head != 0)
        return ps_error_set(err, heads ? PS_ERR_INVALID : PS_ERR_FORMAT,
                            "%s: n_head %d does not divide n_embd %d",
                            heads ? "heads" : fs->config, c->n_head, c->n_embd);
    if ((rc = ps_config_check(c, err)) < 0) {
        if (err)
            err->code = PS_ERR_FORMAT;
        ps_error_prefix(err, "%s", f->path);
        return PS_ERR_FORMAT;
    }
    return 0;
}

/* ---- building the model ---- */

/* The table built here and model.c's must name the same parameters in the
 * same order; a mismatch is a bug, caught before a value is read. */
static int check_table(const ps_model *m, const hf_tensors *ht, ps_error *err)
{
    char name[PS_NAME_MAX];
    int64_t shape[2];
    int ndim;
    if (m->n_params != n_params_of(&m->cfg))
        return ps_error_set(err, PS_ERR_STATE, "hf_gpt2: the model has %d parameters, "
                            "expected %d", m->n_params, n_params_of(&m->cfg));
    for (int i = 0; i < m->n_params; i++) {
        param_spec(ht, &m->cfg, i, name, shape, &ndim);
        if (strcmp(name, m->params[i].name) != 0)
            return ps_error_set(err, PS_ERR_STATE, "hf_gpt2: parameter %d is '%s' in "
                                "the model, '%s' here", i, m->params[i].name, name);
    }
    return 0;
}

/* F32 at 4-byte aligned places: the arena can be the mapping itself. */
static int can_map(const ps_st_file *f, const hf_tensors *ht, const ps_config *c)
{
    char name[PS_NAME_MAX];
    int64_t shape[2];
    int ndim;
    if (!f->map_rw || f->data_start % sizeof(float) != 0)
        return 0;
    for (int i = 0; i < n_params_of(c); i++) {
        const ps_st_tensor *t = param_spec(ht, c, i, name, shape, &ndim);
        if (t->dtype != PS_DTYPE_F32 || t->begin % sizeof(float) != 0)
            return 0;
    }
    return 1;
}

/* On success the model owns f (closed by ps_model_free); on failure the
 * caller still does. */
static int build_mapped(ps_model **out, ps_st_file *f, const hf_tensors *ht,
                        const ps_config *c, ps_error *err)
{
    int n = n_params_of(c), rc;
    char name[PS_NAME_MAX];
    int64_t shape[2];
    int ndim;
    size_t *offsets = malloc((size_t)n * sizeof *offsets);
    if (!offsets)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while loading it", f->path);
    for (int i = 0; i < n; i++)
        offsets[i] = (size_t)(param_spec(ht, c, i, name, shape, &ndim)->begin /
                              sizeof(float));
    float *arena = (float *)(void *)(f->map_rw + f->data_start);
    size_t n_floats = (f->size - f->data_start) / sizeof(float);
    rc = ps_model_init_mapped(out, c, arena, n_floats, offsets, NULL, NULL, err);
    free(offsets);
    if (rc < 0) {
        ps_error_prefix(err, "%s", f->path);
        return rc;
    }
    if ((rc = check_table(*out, ht, err)) < 0) {
        ps_model_free(*out);
        *out = NULL;
        return rc;
    }
    (*out)->w_release = ps_st_release;     /* from here the model owns f */
    (*out)->w_release_ctx = f;
    return 0;
}

static int build_copied(ps_model **out, const ps_st_file *f, const hf_tensors *ht,
                        const ps_config *c, ps_error *err)
{
    char name[PS_NAME_MAX];
    int64_t shape[2];
    int ndim, rc;
    if ((rc = ps_model_init(out, c, err)) < 0) {
        ps_error_prefix(err, "%s", f->path);
        return rc;
    }
    if ((rc = check_table(*out, ht, err)) < 0) {
        ps_model_free(*out);
        *out = NULL;
        return rc;
    }
    for (int i = 0; i < (*out)->n_params; i++) {
        const ps_st_tensor *t = param_spec(ht, c, i, name, shape, &ndim);
        if ((rc = ps_st_read_f32(f, t, (*out)->params[i].data, err)) < 0) {
            ps_model_free(*out);
            *out = NULL;
            return rc;
        }
    }
    return 0;
}

/* ---- loading ---- */

int ps_hf_gpt2_load(ps_model **model, ps_tokenizer **tok, ps_hf_info *info,
                    const char *path, const ps_hf_options *opt, ps_error *err)
{
    *model = NULL;
    if (tok)
        *tok = NULL;
    if (info)
        memset(info, 0, sizeof *info);
    if (!path)
        return ps_error_set(err, PS_ERR_INVALID, "hf_gpt2: no path");

    hf_files fs;
    hf_tensors ht = {0};
    ps_st_file *f = NULL;
    ps_model *m = NULL;
    ps_tokenizer *t = NULL;
    ps_config cfg;
    int rc, mapped = 0;
    if ((rc = find_files(&fs, path, err)) < 0 ||
        (rc = ps_st_map_private(&f, fs.weights, err)) < 0 ||
        (rc = classify(f, &ht, err)) < 0 ||
        (rc = derive_config(f, &ht, &fs, opt, &cfg, err)) < 0 ||
        (rc = place_blocks(f, &ht, cfg.n_layer, err)) < 0 ||
        (rc = check_params(f, &ht, &cfg, err)) < 0 ||
        (rc = check_lm_head(f, &ht, err)) < 0 ||
        (rc = ps_tokenizer_load_gpt2(&t, fs.vocab, fs.merges, err)) < 0)
        goto fail;
    int nv = ps_tokenizer_vocab_size(t);
    if (nv != cfg.vocab_size) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: %d tokens, but '%s' in %s has %d "
                          "rows", fs.vocab, nv, ht.wte->name, fs.weights,
                          cfg.vocab_size);
        goto fail;
    }

    if (info) {
        info->weights_bytes = (long long)f->size;
        info->dtype = ht.wte->dtype;
        info->has_lm_head = ht.lm_head != NULL;
        info->prefixed = ht.prefixed;
    }
    if (can_map(f, &ht, &cfg)) {
        if ((rc = build_mapped(&m, f, &ht, &cfg, err)) < 0)
            goto fail;
        mapped = 1;
        f = NULL;             /* the model owns it now */
    } else if ((rc = build_copied(&m, f, &ht, &cfg, err)) < 0) {
        goto fail;
    }

    if (info) {
        info->mapped = mapped;
        info->weights = fs.weights;
        info->vocab = fs.vocab;
        info->merges = fs.merges;
        info->config = fs.config;
        fs.weights = fs.vocab = fs.merges = fs.config = NULL;
    }
    ps_st_close(f);
    free(ht.block);
    files_free(&fs);
    *model = m;
    if (tok)
        *tok = t;
    else
        ps_tokenizer_free(t);
    return 0;
fail:
    ps_model_free(m);     /* closes f when it was mapped */
    ps_st_close(f);
    ps_tokenizer_free(t);
    free(ht.block);
    files_free(&fs);
    if (info)
        memset(info, 0, sizeof *info);
    return rc;
}
