/* Tests of io/hf_gpt2: GPT-2 checkpoints in Hugging Face's layout, written
 * here from a seed (names with and without "transformer.", with and without
 * lm_head.weight and the attention mask buffers, F32 and F16, with and
 * without config.json) beside a tiny byte-level BPE vocabulary, opened and
 * compared with (a) the same values in a native model -- bit-identical
 * logits -- and (b) a naive forward pass in double.  Then: undo on a mapped
 * model restores the file's bits, saving and reloading as a native file, the
 * REPL's dispatch, and a table of malformed checkpoints. */
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "paramscope/hf_gpt2.h"
#include "support/hf_folder.h"
#include "paramscope/model_file.h"
#include "paramscope/perturb.h"
#include "paramscope/safetensors.h"
#include "repl/common.h"

/* ---- fixtures ---- */

static char tmpdir[256];

static char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/ps_hf_XXXXXX", base);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh empty directory under tmpdir. */
static const char *new_dir(const char *name)
{
    char *d = tmp_path(name);
    assert_int_equal(mkdir(d, 0755), 0);
    return d;
}

static char *join(const char *dir, const char *name)
{
    static char buf[8][640];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* ---- a tiny byte-level BPE vocabulary ---- */

/* Ids 0..255 are the bytes (in GPT-2's spelling), then three merges' results
 * and the end-of-text token: 260 tokens. */
#define TOK_N 260
#define TOK_THE 258
#define TOK_EOT 259

/* vocab_name/merges_name may be NULL to leave that file out. */
static void write_tokenizer(const char *dir, const char *vocab_name,
                            const char *merges_name)
{
    assert_int_equal(support_write_bpe_tokenizer(dir, vocab_name, merges_name), 0);
}

/* ---- random weights in a native model ---- */

static uint64_t rng_state;

static double uniform(void)          /* [-1, 1), splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-52 - 1.0;
}

/* Values large enough to move the logits: LayerNorm gains near 1, biases and
 * weights of a few tenths.  With f16, every value is one a half can hold. */
static ps_model *make_native(const ps_config *cfg, uint64_t seed, int f16)
{
    ps_model *m = NULL;
    ps_error err = {0};
    if (ps_model_init(&m, cfg, &err) < 0)
        fail_msg("%s", err.msg);
    rng_state = seed;
    for (int i = 0; i < m->n_params; i++) {
        ps_param *p = &m->params[i];
        int ln_w = p->kind == PS_PARAM_KIND_NORM && strstr(p->name, ".weight");
        double scale = p->is_bias ? 0.2 : 1.0 / sqrt((double)p->shape[0]);
        if (strcmp(p->name, "wte.weight") == 0 || strcmp(p->name, "wpe.weight") == 0)
            scale = 0.5;
        for (size_t j = 0; j < p->numel; j++) {
            float x = (float)((ln_w ? 1.0 : 0.0) + scale * uniform());
            p->data[j] = f16 ? ps_f16_to_f32(ps_f32_to_f16(x)) : x;
        }
    }
    return m;
}

/* ---- writing a checkpoint in Hugging Face's layout ---- */

typedef struct ckpt {
    int prefix;               /* names carry "transformer." */
    int lm_head;              /* 0: absent, 1: equal to wte, 2: one value differs,
                                 3: one row too many */
    int buffers;              /* 1: attn.bias F32 and attn.masked_bias F32 [],
                                 2: attn.bias as BOOL */
    int f16;                  /* parameters stored as F16 */
    int config;               /* 1: write config.json from the model's sizes */
    const char *config_text;  /* config.json exactly (instead of 1) */
    const char *drop;         /* a parameter left out */
    const char *reshape;      /* a parameter stored with one column more */
    const char *extra;        /* another F32 tensor of 4 values */
    const char *as_i32;       /* a parameter stored as I32 */
    const char *twice;        /* a parameter stored also without the prefix */
    const char *weights;      /* file name; default model.safetensors */
    int openai_names;         /* encoder.json and vocab.bpe */
    int no_vocab, no_merges;
} ckpt;

typedef struct entry {
    char name[96];
    const char *dtype;
    int ndim;
    int64_t shape[4];
    unsigned char *bytes;
    size_t n_bytes;
} entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static void add_entry(entry *e, int *n, const char *name, const char *dtype, int ndim,
                      const int64_t *shape, const float *vals, size_t numel)
{
    entry *x = &e[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->dtype = dtype;
    x->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        x->shape[d] = shape[d];
    size_t es = strcmp(dtype, "F16") == 0 ? 2 : strcmp(dtype, "BOOL") == 0 ? 1 : 4;
    x->n_bytes = numel * es;
    x->bytes = malloc(x->n_bytes ? x->n_bytes : 1);
    assert_non_null(x->bytes);
    for (size_t j = 0; j < numel; j++) {
        float v = vals ? vals[j] : 0.0f;
        if (es == 2) {
            uint16_t h = ps_f32_to_f16(v);
            memcpy(x->bytes + 2 * j, &h, 2);
        } else if (es == 1) {
            x->bytes[j] = v != 0.0f;
        } else if (strcmp(dtype, "I32") == 0) {
            int32_t k = (int32_t)j;
            memcpy(x->bytes + 4 * j, &k, 4);
        } else {
            memcpy(x->bytes + 4 * j, &v, 4);
        }
    }
}

/* Writes entries sorted by name (as Hugging Face's writer does), the header
 * padded with spaces to a multiple of 8. */
static void write_safetensors(const char *path, entry *e, int n)
{
    qsort(e, (size_t)n, sizeof *e, entry_cmp);
    json_t *root = json_object(), *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", meta);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < e[i].ndim; d++)
            json_array_append_new(shape, json_integer(e[i].shape[d]));
        json_t *t = json_object();
        json_object_set_new(t, "dtype", json_string(e[i].dtype));
        json_object_set_new(t, "shape", shape);
        json_object_set_new(t, "data_offsets", json_pack("[I, I]", (json_int_t)off,
                                                         (json_int_t)(off + e[i].n_bytes)));
        json_object_set_new(root, e[i].name, t);
        off += e[i].n_bytes;
    }
    char *hdr = json_dumps(root, JSON_COMPACT);
    uint64_t hlen = strlen(hdr), padded = (hlen + 7) & ~(uint64_t)7;
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite(&padded, 8, 1, fp);
    fwrite(hdr, 1, hlen, fp);
    for (uint64_t i = hlen; i < padded; i++)
        fputc(' ', fp);
    for (int i = 0; i < n; i++) {
        fwrite(e[i].bytes, 1, e[i].n_bytes, fp);
        free(e[i].bytes);
    }
    assert_int_equal(fclose(fp), 0);
    free(hdr);
    json_decref(root);
}

static void write_ckpt(const char *dir, const ckpt *c, const ps_model *m)
{
    const ps_config *cfg = &m->cfg;
    const char *pre = c->prefix ? "transformer." : "";
    const char *dt = c->f16 ? "F16" : "F32";
    int cap = m->n_params + 2 * cfg->n_layer + 8, n = 0;
    entry *e = calloc((size_t)cap, sizeof *e);
    assert_non_null(e);
    char name[128];
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = &m->params[i];
        if (c->drop && strcmp(c->drop, p->name) == 0)
            continue;
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        snprintf(name, sizeof name, "%s%s", pre, p->name);
        if (c->reshape && strcmp(c->reshape, p->name) == 0) {
            float *more = calloc(p->numel + (size_t)shape[0], sizeof *more);
            assert_non_null(more);
            shape[p->ndim - 1]++;
            add_entry(e, &n, name, dt, p->ndim, shape, more,
                      (size_t)shape[0] * (size_t)(p->ndim == 2 ? shape[1] : 1));
            free(more);
            continue;
        }
        const char *d = c->as_i32 && strcmp(c->as_i32, p->name) == 0 ? "I32" : dt;
        add_entry(e, &n, name, d, p->ndim, shape, p->data, p->numel);
        if (c->twice && strcmp(c->twice, p->name) == 0)
            add_entry(e, &n, p->name, d, p->ndim, shape, p->data, p->numel);
    }
    for (int l = 0; c->buffers && l < cfg->n_layer; l++) {
        int64_t T = cfg->n_ctx, shape[4] = {1, 1, T, T};
        float *mask = malloc((size_t)(T * T) * sizeof *mask);
        assert_non_null(mask);
        for (int64_t i = 0; i < T * T; i++)
            mask[i] = i % T <= i / T;
        snprintf(name, sizeof name, "%sh.%d.attn.bias", pre, l);
        add_entry(e, &n, name, c->buffers == 2 ? "BOOL" : "F32", 4, shape, mask,
                  (size_t)(T * T));
        free(mask);
        float big = -1e4f;
        snprintf(name, sizeof name, "%sh.%d.attn.masked_bias", pre, l);
        add_entry(e, &n, name, "F32", 0, shape, &big, 1);
    }
    if (c->lm_head) {
        const ps_param *w = &m->params[0];
        int64_t shape[2] = {w->shape[0] + (c->lm_head == 3), w->shape[1]};
        size_t numel = (size_t)shape[0] * (size_t)shape[1];
        float *h = calloc(numel, sizeof *h);
        assert_non_null(h);
        memcpy(h, w->data, w->numel * sizeof *h);
        if (c->lm_head == 2)
            h[3 * w->shape[1] + 5] += 0.25f;
        add_entry(e, &n, "lm_head.weight", dt, 2, shape, h, numel);
        free(h);
    }
    if (c->extra) {
        float four[4] = {1, 2, 3, 4};
        int64_t shape[1] = {4};
        add_entry(e, &n, c->extra, "F32", 1, shape, four, 4);
    }
    write_safetensors(join(dir, c->weights ? c->weights : "model.safetensors"), e, n);
    free(e);

    if (c->config_text) {
        write_text(join(dir, "config.json"), c->config_text);
    } else if (c->config) {
        char text[512];
        snprintf(text, sizeof text, "{\"activation_function\": \"gelu_new\", "
                 "\"architectures\": [\"GPT2LMHeadModel\"], \"layer_norm_epsilon\": "
                 "1e-05, \"model_type\": \"gpt2\", \"n_ctx\": %d, \"n_embd\": %d, "
                 "\"n_head\": %d, \"n_layer\": %d, \"n_positions\": %d, "
                 "\"vocab_size\": %d}\n", cfg->n_ctx, cfg->n_embd, cfg->n_head,
                 cfg->n_layer, cfg->n_ctx, cfg->vocab_size);
        write_text(join(dir, "config.json"), text);
    }
    write_tokenizer(dir, c->no_vocab ? NULL : c->openai_names ? "encoder.json" : "vocab.json",
                    c->no_merges ? NULL : c->openai_names ? "vocab.bpe" : "merges.txt");
}

/* ---- a naive forward pass in double ---- */

static void layer_norm(double *out, const double *x, const float *w, const float *b,
                       int C)
{
    double mean = 0, var = 0;
    for (int i = 0; i < C; i++)
        mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= C;
    double rstd = 1.0 / sqrt(var + 1e-5);
    for (int i = 0; i < C; i++)
        out[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

/* out[n_out] = x[n_in] W[n_in, n_out] + b */
static void linear(double *out, const double *x, const float *W, const float *b,
                   int n_in, int n_out)
{
    for (int o = 0; o < n_out; o++) {
        double s = b[o];
        for (int i = 0; i < n_in; i++)
            s += x[i] * W[(size_t)i * n_out + o];
        out[o] = s;
    }
}

/* logits [T, V] of the native model m's values, in double */
static double *reference_logits(const ps_model *m, const int *ids, int T)
{
    const ps_config *c = &m->cfg;
    int C = c->n_embd, V = c->vocab_size, NH = c->n_head, hd = C / NH;
    double *x = calloc((size_t)T * C, sizeof *x), *ln = malloc((size_t)C * sizeof *ln);
    double *qkv = malloc((size_t)T * 3 * C * sizeof *qkv);
    double *y = malloc((size_t)C * sizeof *y), *o = malloc((size_t)C * sizeof *o);
    double *h = malloc((size_t)4 * C * sizeof *h), *att = malloc((size_t)T * sizeof *att);
    double *logits = malloc((size_t)T * V * sizeof *logits);
    assert_true(x && ln && qkv && y && o && h && att && logits);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++)
            x[t * C + i] = (double)m->wte[(size_t)ids[t] * C + i] +
                           (double)m->wpe[(size_t)t * C + i];
    for (int l = 0; l < c->n_layer; l++) {
        const ps_block *b = &m->blocks[l];
        for (int t = 0; t < T; t++) {
            layer_norm(ln, x + t * C, b->ln1_w, b->ln1_b, C);
            linear(qkv + (size_t)t * 3 * C, ln, b->qkv_w, b->qkv_b, C, 3 * C);
        }
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < NH; hh++) {
                const double *q = qkv + (size_t)t * 3 * C + hh * hd;
                double mx = -INFINITY, sum = 0;
                for (int s = 0; s <= t; s++) {
                    const double *k = qkv + (size_t)s * 3 * C + C + hh * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += q[i] * k[i];
                    att[s] = d / sqrt((double)hd);
                    mx = fmax(mx, att[s]);
                }
                for (int s = 0; s <= t; s++)
                    sum += att[s] = exp(att[s] - mx);
                for (int i = 0; i < hd; i++) {
                    double acc = 0;
                    for (int s = 0; s <= t; s++)
                        acc += att[s] / sum * qkv[(size_t)s * 3 * C + 2 * C + hh * hd + i];
                    y[hh * hd + i] = acc;
                }
            }
            linear(o, y, b->proj_w, b->proj_b, C, C);
            for (int i = 0; i < C; i++)
                x[t * C + i] += o[i];
        }
        for (int t = 0; t < T; t++) {
            layer_norm(ln, x + t * C, b->ln2_w, b->ln2_b, C);
            linear(h, ln, b->fc_w, b->fc_b, C, 4 * C);
            for (int i = 0; i < 4 * C; i++)
                h[i] = 0.5 * h[i] * (1.0 + tanh(sqrt(2.0 / M_PI) *
                                                (h[i] + 0.044715 * h[i] * h[i] * h[i])));
            linear(o, h, b->fcproj_w, b->fcproj_b, 4 * C, C);
            for (int i = 0; i < C; i++)
                x[t * C + i] += o[i];
        }
    }
    for (int t = 0; t < T; t++) {
        layer_norm(ln, x + t * C, m->lnf_w, m->lnf_b, C);
        for (int v = 0; v < V; v++) {
            double s = 0;
            for (int i = 0; i < C; i++)
                s += ln[i] * m->wte[(size_t)v * C + i];
            logits[(size_t)t * V + v] = s;
        }
    }
    free(x); free(ln); free(qkv); free(y); free(o); free(h); free(att);
    return logits;
}

/* ---- checks ---- */

static const int ids[] = {TOK_THE, 72, 101, 32, TOK_EOT, 5};
#define N_IDS ((int)(sizeof ids / sizeof ids[0]))

static void forward(ps_model *m, int T)
{
    ps_error err = {0};
    if (ps_model_reserve(m, 1, T, &err) < 0 || ps_model_forward(m, ids, 1, T, &err) < 0)
        fail_msg("forward: %s", err.msg);
}

/* got's logits are bit-identical to want's and within 1e-4 (relative) of the
 * double reference computed from want's values. */
static void check_logits(ps_model *got, ps_model *want, int T)
{
    int V = want->cfg.vocab_size;
    forward(got, T);
    forward(want, T);
    for (int t = 0; t < T; t++)
        assert_memory_equal(ps_model_logits(got, 0, t), ps_model_logits(want, 0, t),
                            (size_t)V * sizeof(float));
    double *ref = reference_logits(want, ids, T);
    double spread = 0;
    for (int t = 0; t < T; t++) {
        const float *l = ps_model_logits(got, 0, t);
        for (int v = 0; v < V; v++) {
            double r = ref[(size_t)t * V + v];
            spread = fmax(spread, fabs(r));
            if (fabs(l[v] - r) > 1e-4 * fmax(1.0, fabs(r)))
                fail_msg("logit [%d, %d]: %.9g, reference %.9g", t, v, (double)l[v], r);
        }
    }
    /* logits of a few units: a model whose values did not reach the output
     * (all zeros, all equal) would not get here */
    assert_true(spread > 0.5);
    free(ref);
}

static ps_model *load_ok(const char *path, const ps_hf_options *opt, ps_hf_info *info,
                         ps_tokenizer **tok)
{
    ps_model *m = NULL;
    ps_error err = {0};
    if (ps_hf_gpt2_load(&m, tok, info, path, opt, &err) != 0)
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static const ps_config small_cfg = {
    .n_layer = 2, .n_head = 4, .n_embd = 32, .n_ctx = 16, .vocab_size = TOK_N,
};

/* ---- the layouts ---- */

static void test_f32_layouts(void **state)
{
    (void)state;
    ps_model *want = make_native(&small_cfg, 11, 0);
    for (int k = 0; k < 16; k++) {
        ckpt c = {.prefix = k & 1, .lm_head = (k >> 1) & 1, .buffers = (k >> 2) & 1,
                  .config = (k >> 3) & 1};
        char name[32];
        snprintf(name, sizeof name, "f32_%d", k);
        const char *dir = new_dir(name);
        write_ckpt(dir, &c, want);
        ps_hf_options opt = {.heads = c.config ? 0 : 4};
        ps_hf_info info;
        ps_model *m = load_ok(dir, &opt, &info, NULL);
        assert_memory_equal(&m->cfg, &small_cfg, sizeof small_cfg);
        assert_int_equal(info.mapped, 1);
        assert_int_equal(m->w_borrowed, 1);
        assert_int_equal(info.prefixed, c.prefix);
        assert_int_equal(info.has_lm_head, c.lm_head);
        assert_int_equal(info.dtype, PS_DTYPE_F32);
        assert_int_equal(info.config != NULL, c.config);
        assert_string_equal(info.weights, join(dir, "model.safetensors"));
        struct stat st;
        assert_int_equal(stat(info.weights, &st), 0);
        assert_int_equal(info.weights_bytes, (long long)st.st_size);
        /* the arena is the data area: with buffers or a head in the file,
         * it holds more floats than the parameters */
        assert_int_equal(m->n_values, ps_config_param_count(&small_cfg));
        if (c.buffers || c.lm_head)
            assert_true(m->n_floats > m->n_values);
        for (int i = 0; i < m->n_params; i++)
            assert_memory_equal(m->params[i].data, want->params[i].data,
                                want->params[i].numel * sizeof(float));
        check_logits(m, want, N_IDS);
        ps_hf_info_free(&info);
        ps_model_free(m);
    }
    ps_model_free(want);
}

static void test_f16_converted(void **state)
{
    (void)state;
    ps_model *want = make_native(&small_cfg, 12, 1);
    ckpt c = {.prefix = 1, .buffers = 1, .f16 = 1, .config = 1, .lm_head = 1};
    const char *dir = new_dir("f16");
    write_ckpt(dir, &c, want);
    ps_hf_info info;
    ps_model *m = load_ok(dir, NULL, &info, NULL);
    assert_int_equal(info.mapped, 0);
    assert_int_equal(m->w_borrowed, 0);
    assert_int_equal(info.dtype, PS_DTYPE_F16);
    assert_int_equal(m->n_floats, ps_config_param_count(&small_cfg));
    check_logits(m, want, N_IDS);
    ps_hf_info_free(&info);
    ps_model_free(m);
    ps_model_free(want);
}

/* A BOOL mask of 7 x 7 bytes puts the F32 tensors after it at offsets that
 * are not multiples of 4: the values are copied instead, same logits. */
static void test_misaligned_copied(void **state)
{
    (void)state;
    ps_config cfg = small_cfg;
    cfg.n_ctx = 7;
    ps_model *want = make_native(&cfg, 13, 0);
    ckpt c = {.buffers = 2, .config = 1};
    const char *dir = new_dir("bool_mask");
    write_ckpt(dir, &c, want);
    ps_hf_info info;
    ps_model *m = load_ok(dir, NULL, &info, NULL);
    assert_int_equal(info.mapped, 0);
    assert_int_equal(m->cfg.n_ctx, 7);
    check_logits(m, want, N_IDS);
    ps_hf_info_free(&info);
    ps_model_free(m);
    ps_model_free(want);
}

/* GPT-2 small's width without config.json: 12 heads. */
static void test_width_768_heads(void **state)
{
    (void)state;
    ps_config cfg = {.n_layer = 1, .n_head = 12, .n_embd = 768, .n_ctx = 6,
                     .vocab_size = TOK_N};
    ps_model *want = make_native(&cfg, 14, 0);
    ckpt c = {.prefix = 1};
    const char *dir = new_dir("w768");
    write_ckpt(dir, &c, want);
    ps_hf_info info;
    ps_model *m = load_ok(dir, NULL, &info, NULL);
    assert_int_equal(m->cfg.n_head, 12);
    assert_null(info.config);
    check_logits(m, want, N_IDS);
    ps_hf_info_free(&info);
    ps_model_free(m);

    /* the option wins over the width */
    ps_hf_options opt = {.heads = 8};
    m = load_ok(dir, &opt, NULL, NULL);
    assert_int_equal(m->cfg.n_head, 8);
    ps_model_free(m);
    ps_model_free(want);
}

/* A config.json that is a folder or a FIFO is named as such (it was taken
 * for a missing config.json, and a FIFO would have blocked when read). */
static void test_config_not_a_file(void **state)
{
    (void)state;
    ps_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 8, .n_ctx = 6,
                     .vocab_size = TOK_N};
    ps_model *want = make_native(&cfg, 3, 0);
    ckpt c = {0};
    for (int kind = 0; kind < 2; kind++) {
        const char *dir = new_dir(kind ? "cfg-fifo" : "cfg-dir");
        write_ckpt(dir, &c, want);
        char cfgp[512];
        snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
        assert_int_equal(kind ? mkfifo(cfgp, 0600) : mkdir(cfgp, 0755), 0);
        ps_model *m = NULL;
        ps_tokenizer *tok = NULL;
        ps_hf_info info = {0};
        ps_hf_options opt = {0};
        ps_error err = {0};
        assert_int_equal(ps_hf_gpt2_load(&m, &tok, &info, dir, &opt, &err), PS_ERR_IO);
        assert_null(m);
        char want_msg[600];
        snprintf(want_msg, sizeof want_msg, "%s: %s", cfgp,
                 kind ? "is a FIFO, not a regular file" : "is a directory, not a file");
        assert_string_equal(err.msg, want_msg);
    }
    ps_model_free(want);
}

/* OpenAI's file names, and the weights file named directly. */
static void test_file_path_and_names(void **state)
{
    (void)state;
    ps_model *want = make_native(&small_cfg, 15, 0);
    ckpt c = {.config = 1, .openai_names = 1, .weights = "gpt2-tiny.safetensors"};
    const char *dir = new_dir("openai");
    write_ckpt(dir, &c, want);
    ps_hf_info info;
    ps_tokenizer *tok = NULL;
    ps_model *m = load_ok(join(dir, "gpt2-tiny.safetensors"), NULL, &info, &tok);
    assert_string_equal(info.vocab, join(dir, "encoder.json"));
    assert_string_equal(info.merges, join(dir, "vocab.bpe"));
    assert_int_equal(ps_tokenizer_kind_of(tok), PS_TOKENIZER_KIND_GPT2_BPE);
    assert_int_equal(ps_tokenizer_vocab_size(tok), TOK_N);
    ps_tokens t = {0};
    ps_error err = {0};
    assert_int_equal(ps_tokenizer_encode(tok, " the<|endoftext|>", &t, &err), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.ids[0], TOK_THE);
    assert_int_equal(t.ids[1], TOK_EOT);
    ps_tokens_free(&t);
    check_logits(m, want, 3);
    ps_tokenizer_free(tok);
    ps_hf_info_free(&info);
    ps_model_free(m);

    /* the directory alone has no model.safetensors */
    assert_int_equal(ps_hf_gpt2_load(&m, NULL, NULL, dir, NULL, &err), PS_ERR_IO);
    assert_non_null(strstr(err.msg, "no model.safetensors"));
    assert_null(m);
    ps_model_free(want);
}

/* ---- editing a mapped model ---- */

/* The bytes of tensor name as the file holds them now (a fresh read). */
static float *file_values(const char *path, const char *name, size_t *n)
{
    ps_st_file *f = NULL;
    ps_error err = {0};
    if (ps_st_open(&f, path, &err) < 0)
        fail_msg("%s", err.msg);
    const ps_st_tensor *t = ps_st_find(f, name);
    assert_non_null(t);
    float *v = malloc((size_t)t->numel * sizeof *v);
    assert_non_null(v);
    memcpy(v, ps_st_data(f, t), (size_t)t->numel * sizeof *v);
    *n = (size_t)t->numel;
    ps_st_close(f);
    return v;
}

static void test_undo_restores_file_bits(void **state)
{
    (void)state;
    ps_model *want = make_native(&small_cfg, 16, 0);
    ckpt c = {.prefix = 1, .buffers = 1, .config = 1};
    const char *dir = new_dir("edit");
    write_ckpt(dir, &c, want);
    const char *path = join(dir, "model.safetensors");
    const char *fname = "transformer.h.1.attn.c_attn.weight";
    size_t n;
    float *orig = file_values(path, fname, &n);

    ps_model *m = load_ok(dir, NULL, NULL, NULL);
    ps_param *p = ps_model_find(m, "h.1.attn.c_attn.weight");
    assert_int_equal(p->numel, n);
    assert_memory_equal(p->data, orig, n * sizeof(float));

    ps_perturb *j = NULL;
    ps_error err = {0};
    assert_int_equal(ps_perturb_init(&j, m, &err), 0);
    ps_region r = ps_region_element(p, 3, 7);
    assert_int_equal(ps_perturb_set(j, &r, 1, 123.0f, NULL, &err), 0);
    assert_true(p->data[3 * p->shape[1] + 7] == 123.0f);
    ps_region whole = ps_region_whole(p);
    assert_int_equal(ps_perturb_scale(j, &whole, 1, 0.5f, NULL, &err), 0);
    assert_true(p->data[3 * p->shape[1] + 7] == 61.5f);

    /* the file never changes: the mapping is private */
    float *now = file_values(path, fname, &n);
    assert_memory_equal(now, orig, n * sizeof(float));
    free(now);

    assert_int_equal(ps_perturb_undo(j, &err), 0);
    assert_int_equal(ps_perturb_undo(j, &err), 0);
    assert_memory_equal(p->data, orig, n * sizeof(float));

    assert_int_equal(ps_perturb_redo(j, &err), 0);
    assert_int_equal(ps_perturb_redo(j, &err), 0);
    assert_int_equal(ps_perturb_reset_all(j, NULL, &err), 0);
    assert_memory_equal(p->data, orig, n * sizeof(float));
    check_logits(m, want, N_IDS);

    ps_perturb_free(j);
    ps_model_free(m);
    free(orig);
    ps_model_free(want);
}

/* ---- saving as a native file ---- */

static void check_same_tokenizer(const ps_tokenizer *a, const ps_tokenizer *b)
{
    assert_int_equal(ps_tokenizer_kind_of(b), PS_TOKENIZER_KIND_GPT2_BPE);
    assert_int_equal(ps_tokenizer_vocab_size(a), ps_tokenizer_vocab_size(b));
    for (int i = 0; i < ps_tokenizer_vocab_size(a); i++)
        assert_string_equal(ps_tokenizer_token(a, i), ps_tokenizer_token(b, i));
    const char *text = "the he then<|endoftext|> ttthe";
    ps_tokens ta = {0}, tb = {0};
    ps_error err = {0};
    assert_int_equal(ps_tokenizer_encode(a, text, &ta, &err), 0);
    assert_int_equal(ps_tokenizer_encode(b, text, &tb, &err), 0);
    assert_int_equal(ta.n, tb.n);
    assert_memory_equal(ta.ids, tb.ids, (size_t)ta.n * sizeof(int));
    ps_tokens_free(&ta);
    ps_tokens_free(&tb);
}

static void test_save_and_reload(void **state)
{
    (void)state;
    for (int f16 = 0; f16 < 2; f16++) {
        ps_model *want = make_native(&small_cfg, 17 + (uint64_t)f16, f16);
        ckpt c = {.prefix = 1, .buffers = 1, .lm_head = 1, .f16 = f16};
        const char *dir = new_dir(f16 ? "save16" : "save32");
        write_ckpt(dir, &c, want);
        ps_hf_options opt = {.heads = 4};
        ps_tokenizer *tok = NULL;
        ps_model *m = load_ok(dir, &opt, NULL, &tok);

        const char *out = join(dir, "saved.safetensors");
        ps_meta meta = {0};
        ps_error err = {0};
        assert_int_equal(ps_meta_set(&meta, "train.step", "7"), 0);
        int rc = ps_model_save(m, tok, &meta, out, &err);
        if (rc != 0)
            fail_msg("%s", err.msg);
        ps_meta_free(&meta);

        ps_st_file *f = NULL;
        assert_int_equal(ps_st_open(&f, out, &err), 0);
        assert_string_equal(ps_st_meta(f, "tokenizer"), "gpt2-bpe");
        assert_non_null(ps_st_meta(f, "bpe_vocab"));
        assert_non_null(ps_st_meta(f, "bpe_merges"));
        assert_null(ps_st_meta(f, "vocab"));
        assert_int_equal(f->n_tensors, m->n_params);   /* no buffers, no head */
        ps_st_close(f);

        ps_model *back = NULL;
        ps_tokenizer *tok2 = NULL;
        ps_meta meta2 = {0};
        if (ps_model_load(&back, &tok2, &meta2, out, &err) != 0)
            fail_msg("%s", err.msg);
        assert_memory_equal(&back->cfg, &m->cfg, sizeof m->cfg);
        assert_int_equal(back->w_borrowed, 1);     /* F32 file: mapped */
        for (int i = 0; i < m->n_params; i++)
            assert_memory_equal(back->params[i].data, m->params[i].data,
                                m->params[i].numel * sizeof(float));
        assert_int_equal(meta2.n, 1);
        assert_string_equal(ps_meta_get(&meta2, "train.step"), "7");
        check_same_tokenizer(tok, tok2);
        check_logits(back, want, N_IDS);

        /* saving over the very file a model is mapped from: the model keeps
         * its values, the new file holds them with the edit */
        ps_param *bias = ps_model_find(back, "ln_f.bias");
        bias->data[2] = -3.5f;
        if (ps_model_save(back, tok2, &meta2, out, &err) != 0)
            fail_msg("%s", err.msg);
        assert_true(bias->data[2] == -3.5f);
        ps_model *again = NULL;
        if (ps_model_load(&again, NULL, NULL, out, &err) != 0)
            fail_msg("%s", err.msg);
        for (int i = 0; i < m->n_params; i++)
            assert_memory_equal(again->params[i].data, back->params[i].data,
                                m->params[i].numel * sizeof(float));
        ps_model_free(again);
        bias->data[2] = ps_model_find(m, "ln_f.bias")->data[2];

        /* and through the REPL's door: a paramscope file beside vocab.json
         * is opened as what it is */
        assert_int_equal(ps_hf_gpt2_probe(out), 0);
        ps_loaded l;
        assert_int_equal(ps_loaded_open(&l, out, &err), 0);
        assert_int_equal(ps_tokenizer_kind_of(l.tok), PS_TOKENIZER_KIND_GPT2_BPE);
        assert_string_equal(ps_meta_get(&l.meta, "train.step"), "7");
        ps_loaded_close(&l);

        ps_meta_free(&meta2);
        ps_tokenizer_free(tok2);
        ps_model_free(back);
        ps_tokenizer_free(tok);
        ps_model_free(m);
        ps_model_free(want);
    }
}

/* ---- the REPL's door ---- */

static void test_loaded_open(void **state)
{
    (void)state;
    ps_model *want = make_native(&small_cfg, 18, 0);
    ckpt c = {.prefix = 1, .config = 1, .buffers = 1};
    const char *dir = new_dir("loaded");
    write_ckpt(dir, &c, want);
    const char *file = join(dir, "model.safetensors");
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(ps_hf_gpt2_probe(dir), 1);
    assert_int_equal(ps_hf_gpt2_probe(file), 1);
    assert_int_equal(ps_hf_gpt2_probe(join(dir, "vocab.json")), 0);   /* not safetensors */
    assert_int_equal(ps_hf_gpt2_probe(join(dir, "nothing")), 0);

    const char *paths[2] = {dir, file};
    for (int i = 0; i < 2; i++) {
        ps_loaded l;
        ps_error err = {0};
        if (ps_loaded_open(&l, paths[i], &err) != 0)
            fail_msg("%s", err.msg);
        assert_string_equal(l.path, paths[i]);
        assert_int_equal(l.file_bytes, (long long)st.st_size);
        assert_int_equal(ps_tokenizer_kind_of(l.tok), PS_TOKENIZER_KIND_GPT2_BPE);
        assert_int_equal(l.meta.n, 0);
        check_logits(l.model, want, 4);

        ps_prediction pred;
        assert_int_equal(ps_predict(&pred, l.model, l.tok, " the", 1.0f, 3, &err), 0);
        assert_int_equal(pred.tokens.n, 1);
        assert_int_equal(pred.tokens.ids[0], TOK_THE);
        ps_prediction_free(&pred);
        ps_loaded_close(&l);
    }
    ps_model_free(want);
}

/* ---- malformed checkpoints ---- */

typedef struct bad_case {
    const char *label;
    ckpt c;
    int vocab_rows;           /* wte rows when not TOK_N */
    int heads;                /* the option */
    int no_weights;           /* remove model.safetensors after writing */
    int pickle;               /* ... and leave a pytorch_model.bin */
    int garbage;              /* model.safetensors is not safetensors */
    int code;
    const char *expect;       /* in the message, after the file or folder */
    const char *where;        /* the file the message starts with: "dir",
                                 "weights", "config", "vocab" */
} bad_case;

static const bad_case bad_cases[] = {
    {"no weights", {.config = 1}, .no_weights = 1, .code = PS_ERR_IO,
     .expect = "no model.safetensors", .where = "dir"},
    {"only a pickle", {.config = 1}, .no_weights = 1, .pickle = 1, .code = PS_ERR_IO,
     .expect = "no model.safetensors (only pytorch_model.bin", .where = "dir"},
    {"not safetensors", {.config = 1}, .garbage = 1, .code = PS_ERR_FORMAT,
     .expect = "header length", .where = "weights"},
    {"no vocab", {.config = 1, .no_vocab = 1}, .code = PS_ERR_IO,
     .expect = "no vocab.json (or encoder.json)", .where = "dir"},
    {"no merges", {.config = 1, .no_merges = 1}, .code = PS_ERR_IO,
     .expect = "no merges.txt (or vocab.bpe)", .where = "dir"},
    {"missing block tensor", {.config = 1, .prefix = 1, .drop = "h.1.mlp.c_fc.bias"},
     .code = PS_ERR_FORMAT, .expect = "missing tensor 'transformer.h.1.mlp.c_fc.bias'",
     .where = "weights"},
    {"missing wpe", {.config = 1, .drop = "wpe.weight"}, .code = PS_ERR_FORMAT,
     .expect = "missing tensor 'wpe.weight'", .where = "weights"},
    {"missing ln_f", {.config = 1, .drop = "ln_f.bias"}, .code = PS_ERR_FORMAT,
     .expect = "missing tensor 'ln_f.bias'", .where = "weights"},
    {"wrong shape", {.config = 1, .reshape = "h.0.attn.c_attn.weight"},
     .code = PS_ERR_FORMAT, .where = "weights",
     .expect = "tensor 'h.0.attn.c_attn.weight' has shape [32, 97], expected [32, 96] "
               "for n_embd 32"},
    {"wrong bias length", {.config = 1, .prefix = 1, .reshape = "h.1.ln_2.bias"},
     .code = PS_ERR_FORMAT, .where = "weights",
     .expect = "tensor 'transformer.h.1.ln_2.bias' has shape [33], expected [32]"},
    {"untied head", {.config = 1, .lm_head = 2}, .code = PS_ERR_FORMAT,
     .where = "weights",
     .expect = "tensor 'lm_head.weight' differs from 'wte.weight' (first at [3, 5]"},
    {"head of another shape", {.config = 1, .lm_head = 3}, .code = PS_ERR_FORMAT,
     .where = "weights",
     .expect = "tensor 'lm_head.weight' has shape [261, 32], expected [260, 32]"},
    {"unknown width, no config", {0}, .code = PS_ERR_FORMAT, .where = "dir",
     .expect = "n_embd 32 is not a width of GPT-2's releases"},
    {"config width", {.config_text = "{\"n_embd\": 64, \"n_head\": 4}"},
     .code = PS_ERR_FORMAT, .where = "config",
     .expect = "n_embd is 64 but the checkpoint has 32 (wte.weight's columns)"},
    {"config layers", {.config_text = "{\"n_layer\": 3, \"n_head\": 4}"},
     .code = PS_ERR_FORMAT, .where = "config",
     .expect = "n_layer is 3 but the checkpoint has 2 (its last block is h.1)"},
    {"config positions", {.config_text = "{\"n_positions\": 1024, \"n_head\": 4}"},
     .code = PS_ERR_FORMAT, .where = "config",
     .expect = "n_positions is 1024 but the checkpoint has 16"},
    {"config vocab", {.config_text = "{\"vocab_size\": 50257, \"n_head\": 4}"},
     .code = PS_ERR_FORMAT, .where = "config",
     .expect = "vocab_size is 50257 but the checkpoint has 260"},
    {"config heads", {.config_text = "{\"n_head\": 5}"}, .code = PS_ERR_FORMAT,
     .where = "config", .expect = "n_head 5 does not divide n_embd 32"},
    {"config not JSON", {.config_text = "{\"n_head\": 4,"}, .code = PS_ERR_FORMAT,
     .where = "config", .expect = "not valid JSON"},
    {"config string size", {.config_text = "{\"n_head\": \"4\"}"},
     .code = PS_ERR_FORMAT, .where = "config",
     .expect = "'n_head' must be a positive integer"},
    {"config other model", {.config_text = "{\"model_type\": \"gpt_neo\", \"n_head\": 4}"},
     .code = PS_ERR_FORMAT, .where = "config",
     .expect = "model_type is \"gpt_neo\", expected \"gpt2\""},
    {"config activation", {.config_text = "{\"activation_function\": \"relu\", "
                                          "\"n_head\": 4}"},
     .code = PS_ERR_FORMAT, .where = "config", .expect = "activation_function is \"relu\""},
    {"heads contradict config", {.config = 1}, .heads = 8, .code = PS_ERR_INVALID,
     .where = "heads", .expect = "contradicts"},
    {"heads do not divide", {0}, .heads = 5, .code = PS_ERR_INVALID, .where = "heads",
     .expect = "n_head 5 does not divide n_embd 32"},
    {"vocabulary size", {.config = 1}, .vocab_rows = 261, .code = PS_ERR_FORMAT,
     .where = "vocab", .expect = "260 tokens, but 'wte.weight' in "},
    {"unexpected tensor", {.config = 1, .extra = "score.weight"}, .code = PS_ERR_FORMAT,
     .where = "weights",
     .expect = "unexpected tensor 'score.weight': not a parameter of a GPT-2"},
    {"unexpected block tensor", {.config = 1, .extra = "h.0.attn.rotary"},
     .code = PS_ERR_FORMAT, .where = "weights", .expect = "unexpected tensor 'h.0.attn.rotary'"},
    {"integer parameter", {.config = 1, .as_i32 = "h.0.ln_1.bias"}, .code = PS_ERR_FORMAT,
     .where = "weights", .expect = "tensor 'h.0.ln_1.bias' has dtype I32, expected a float"},
    {"stored twice", {.config = 1, .prefix = 1, .twice = "ln_f.weight"},
     .code = PS_ERR_FORMAT, .where = "weights", .expect = "'ln_f.weight' is stored twice"},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const bad_case *b = &bad_cases[k];
        ps_config cfg = small_cfg;
        if (b->vocab_rows)
            cfg.vocab_size = b->vocab_rows;
        ps_model *native = make_native(&cfg, 100 + k, 0);
        char name[32];
        snprintf(name, sizeof name, "bad_%zu", k);
        const char *dir = new_dir(name);
        write_ckpt(dir, &b->c, native);
        ps_model_free(native);
        const char *weights = join(dir, "model.safetensors");
        if (b->no_weights)
            assert_int_equal(remove(weights), 0);
        if (b->pickle)
            write_text(join(dir, "pytorch_model.bin"), "PK");
        if (b->garbage)
            write_text(weights, "\xff\xff\xff\xff\xff\xff\xff\x7f not a header");

        ps_hf_options opt = {.heads = b->heads};
        ps_model *m = (ps_model *)1;
        ps_tokenizer *tok = (ps_tokenizer *)1;
        ps_hf_info info = {.mapped = 7};
        ps_error err = {0};
        int rc = ps_hf_gpt2_load(&m, &tok, &info, dir, &opt, &err);
        if (rc != b->code)
            fail_msg("case '%s': status %d, expected %d (%s)", b->label, rc, b->code,
                     err.msg);
        assert_null(m);
        assert_null(tok);
        assert_int_equal(info.mapped, 0);
        assert_null(info.weights);
        if (!strstr(err.msg, b->expect))
            fail_msg("case '%s': expected \"%s\" in \"%s\"", b->label, b->expect,
                     err.msg);
        const char *start = strcmp(b->where, "dir") == 0 ? dir
                          : strcmp(b->where, "weights") == 0 ? weights
                          : strcmp(b->where, "config") == 0 ? join(dir, "config.json")
                          : strcmp(b->where, "vocab") == 0 ? join(dir, "vocab.json")
                          : "heads";
        if (strncmp(err.msg, start, strlen(start)) != 0)
            fail_msg("case '%s': message should start with \"%s\": \"%s\"", b->label,
                     start, err.msg);
        assert_null(strchr(err.msg, '\n'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_layouts),
        cmocka_unit_test(test_f16_converted),
        cmocka_unit_test(test_misaligned_copied),
        cmocka_unit_test(test_width_768_heads),
        cmocka_unit_test(test_config_not_a_file),
        cmocka_unit_test(test_file_path_and_names),
        cmocka_unit_test(test_undo_restores_file_bits),
        cmocka_unit_test(test_save_and_reload),
        cmocka_unit_test(test_loaded_open),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
