/* Tests of io/model_file: save and load a tiny model bit-identically, F16 and
 * BF16 files, and a table of model files that are well-formed safetensors but
 * wrong as models. */
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
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

#include "paramscope/mapguard.h"
#include "paramscope/model_file.h"
#include "paramscope/safetensors.h"
#include "support/files.h"

/* ---- fixtures ---- */

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static const ps_config tiny_cfg = {
    .n_layer = 2, .n_head = 2, .n_embd = 8, .n_ctx = 16, .vocab_size = 10,
};
static const char *const tiny_vocab[10] = {
    "<unk>", "the", "sky", "is", "blue", ".", "a", "cat", "sat", "don't",
};

typedef struct fixture {
    ps_model *m;
    ps_tokenizer *tok;
    const char *good;         /* path of the saved tiny model */
} fixture;

static fixture fx;

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/ps_mf_XXXXXX", base);
    if (!mkdtemp(tmpdir))
        return -1;
    ps_error err = {0};
    if (ps_model_init(&fx.m, &tiny_cfg, &err) < 0 ||
        ps_tokenizer_from_list(&fx.tok, tiny_vocab, 10, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    ps_model_init_random(fx.m, 1234);
    /* LayerNorm shifts and biases start at 0: give them values too, so that
     * a loader mixing up tensors cannot pass by accident */
    for (size_t i = 0; i < fx.m->n_floats; i++)
        fx.m->w[i] += (float)i * 1e-4f;
    static char good[512];
    snprintf(good, sizeof good, "%s/good.safetensors", tmpdir);
    fx.good = good;
    if (ps_model_save(fx.m, fx.tok, NULL, fx.good, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ps_model_free(fx.m);
    ps_tokenizer_free(fx.tok);
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void assert_msg(const ps_error *err, const char *path, const char *part)
{
    size_t pl = strlen(path);
    if (strncmp(err->msg, path, pl) != 0 || strncmp(err->msg + pl, ": ", 2) != 0)
        fail_msg("message does not start with the path: \"%s\"", err->msg);
    if (!strstr(err->msg, part))
        fail_msg("expected \"%s\" in \"%s\"", part, err->msg);
    assert_null(strchr(err->msg, '\n'));
}

/* ---- ps_meta ---- */

static void test_meta(void **state)
{
    (void)state;
    ps_meta meta = {0};
    assert_null(ps_meta_get(&meta, "a"));
    assert_int_equal(ps_meta_set(&meta, "train.step", "10"), 0);
    assert_int_equal(ps_meta_set(&meta, "train.seed", "7"), 0);
    assert_int_equal(ps_meta_set(&meta, "train.step", "20"), 0);
    assert_int_equal(meta.n, 2);
    assert_string_equal(meta.keys[0], "train.step");
    assert_string_equal(ps_meta_get(&meta, "train.step"), "20");
    assert_string_equal(ps_meta_get(&meta, "train.seed"), "7");
    assert_int_equal(ps_meta_set(&meta, NULL, "x"), PS_ERR_INVALID);
    assert_true(ps_meta_key_reserved("vocab"));
    assert_true(ps_meta_key_reserved("n_ctx"));
    assert_false(ps_meta_key_reserved("train.step"));
    ps_meta_free(&meta);
    assert_int_equal(meta.n, 0);
    assert_null(meta.keys);
    ps_meta_free(NULL);
}

/* ---- round trip ---- */

static void test_save_load_identical(void **state)
{
    (void)state;
    ps_meta meta = {0};
    assert_int_equal(ps_meta_set(&meta, "train.step", "100"), 0);
    assert_int_equal(ps_meta_set(&meta, "train.optimizer", "adamw lr=3e-4"), 0);
    const char *path = tmp_path("rt.safetensors");
    ps_error err = {0};
    assert_int_equal(ps_model_save(fx.m, fx.tok, &meta, path, &err), 0);
    ps_meta_free(&meta);

    ps_model *m = NULL;
    ps_tokenizer *tok = NULL;
    ps_meta back;
    if (ps_model_load(&m, &tok, &back, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_memory_equal(&m->cfg, &fx.m->cfg, sizeof m->cfg);
    assert_int_equal(m->n_floats, fx.m->n_floats);
    assert_memory_equal(m->w, fx.m->w, m->n_floats * sizeof(float));
    assert_int_equal(m->n_params, fx.m->n_params);
    for (int i = 0; i < m->n_params; i++)
        assert_string_equal(m->params[i].name, fx.m->params[i].name);
    assert_int_equal(ps_tokenizer_vocab_size(tok), 10);
    for (int i = 0; i < 10; i++)
        assert_string_equal(ps_tokenizer_token(tok, i), tiny_vocab[i]);
    assert_int_equal(back.n, 2);
    assert_string_equal(ps_meta_get(&back, "train.step"), "100");
    assert_string_equal(ps_meta_get(&back, "train.optimizer"), "adamw lr=3e-4");
    assert_null(ps_meta_get(&back, "n_layer"));
    ps_meta_free(&back);
    ps_model_free(m);
    ps_tokenizer_free(tok);

    /* the file itself: metadata as documented, tensors F32 in table order */
    ps_st_file *f = NULL;
    assert_int_equal(ps_st_open(&f, path, &err), 0);
    assert_string_equal(ps_st_meta(f, "format"), "paramscope");
    assert_string_equal(ps_st_meta(f, "architecture"), "gpt2");
    assert_string_equal(ps_st_meta(f, "n_layer"), "2");
    assert_string_equal(ps_st_meta(f, "n_head"), "2");
    assert_string_equal(ps_st_meta(f, "n_embd"), "8");
    assert_string_equal(ps_st_meta(f, "n_ctx"), "16");
    assert_string_equal(ps_st_meta(f, "vocab_size"), "10");
    assert_string_equal(ps_st_meta(f, "tokenizer"), "words");
    assert_string_equal(ps_st_meta(f, "vocab"),
        "[\"<unk>\",\"the\",\"sky\",\"is\",\"blue\",\".\",\"a\",\"cat\",\"sat\",\"don't\"]");
    assert_int_equal(f->n_tensors, fx.m->n_params);
    for (int i = 0; i < f->n_tensors; i++) {
        assert_string_equal(f->tensors[i].name, fx.m->params[i].name);
        assert_int_equal(f->tensors[i].dtype, PS_DTYPE_F32);
    }
    const ps_st_tensor *qkv = ps_st_find(f, "h.1.attn.c_attn.weight");
    assert_non_null(qkv);
    assert_int_equal(qkv->ndim, 2);
    assert_int_equal(qkv->shape[0], 8);
    assert_int_equal(qkv->shape[1], 24);
    const ps_st_tensor *fc = ps_st_find(f, "h.0.mlp.c_proj.weight");
    assert_int_equal(fc->shape[0], 32);
    assert_int_equal(fc->shape[1], 8);
    assert_int_equal(ps_st_find(f, "ln_f.bias")->ndim, 1);
    ps_st_close(f);
}

static void test_load_without_optional_outputs(void **state)
{
    (void)state;
    ps_model *m = NULL;
    ps_error err = {0};
    assert_int_equal(ps_model_load(&m, NULL, NULL, fx.good, &err), 0);
    assert_memory_equal(m->w, fx.m->w, m->n_floats * sizeof(float));
    ps_model_free(m);
}

static void test_save_rejects(void **state)
{
    (void)state;
    const char *path = tmp_path("rejected.safetensors");
    ps_error err = {0};
    ps_meta meta = {0};
    assert_int_equal(ps_meta_set(&meta, "vocab_size", "3"), 0);
    assert_int_equal(ps_model_save(fx.m, fx.tok, &meta, path, &err), PS_ERR_INVALID);
    assert_msg(&err, path, "metadata key 'vocab_size' is reserved");
    ps_meta_free(&meta);

    ps_tokenizer *small = NULL;
    assert_int_equal(ps_tokenizer_from_list(&small, tiny_vocab, 9, &err), 0);
    assert_int_equal(ps_model_save(fx.m, small, NULL, path, &err), PS_ERR_INVALID);
    assert_msg(&err, path, "tokenizer has 9 tokens but the model's vocab_size is 10");
    ps_tokenizer_free(small);
    assert_int_equal(access(path, F_OK), -1);

    assert_int_equal(ps_model_save(fx.m, fx.tok, NULL, tmp_path("nope/m.safetensors"), &err),
                     PS_ERR_IO);
    assert_msg(&err, tmp_path("nope/m.safetensors"), "cannot write");
}

/* ---- half precision files ---- */

/* Writes the tiny model with hand-chosen dtypes: wpe BF16 (truncated), ln_f.bias
 * `bias_dtype`, everything else F16.  Returns the file's bytes of metadata
 * from the good file. */
static void write_half_model(const char *path, const char *bias_dtype)
{
    ps_st_file *g = NULL;
    ps_error err = {0};
    assert_int_equal(ps_st_open(&g, fx.good, &err), 0);
    json_t *root = json_object(), *meta = json_object();
    for (int i = 0; i < g->n_meta; i++)
        json_object_set_new(meta, g->meta_keys[i], json_string(g->meta_vals[i]));
    json_object_set_new(root, "__metadata__", meta);

    size_t cap = fx.m->n_floats * 4, len = 0;
    unsigned char *data = malloc(cap);
    assert_non_null(data);
    for (int i = 0; i < fx.m->n_params; i++) {
        const ps_param *p = &fx.m->params[i];
        const char *dt = strcmp(p->name, "wpe.weight") == 0 ? "BF16"
                       : strcmp(p->name, "ln_f.bias") == 0 ? bias_dtype : "F16";
        size_t esize = strcmp(dt, "I32") == 0 ? 4 : 2;
        size_t begin = len;
        for (size_t j = 0; j < p->numel; j++) {
            uint32_t bits;
            memcpy(&bits, &p->data[j], 4);
            uint16_t h = strcmp(dt, "BF16") == 0 ? (uint16_t)(bits >> 16)
                                                 : ps_f32_to_f16(p->data[j]);
            if (esize == 4) {
                int32_t v = (int32_t)j;
                memcpy(data + len, &v, 4);
            } else {
                memcpy(data + len, &h, 2);
            }
            len += esize;
        }
        json_t *shape = json_array();
        for (int d = 0; d < p->ndim; d++)
            json_array_append_new(shape, json_integer(p->shape[d]));
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(dt));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[I, I]", (json_int_t)begin, (json_int_t)len));
        json_object_set_new(root, p->name, e);
    }
    char *hdr = json_dumps(root, JSON_COMPACT);
    uint64_t hlen = strlen(hdr);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite(&hlen, 8, 1, fp);
    fwrite(hdr, 1, hlen, fp);
    fwrite(data, 1, len, fp);
    assert_int_equal(fclose(fp), 0);
    free(hdr);
    free(data);
    json_decref(root);
    ps_st_close(g);
}

static void test_half_precision_file(void **state)
{
    (void)state;
    const char *path = tmp_path("half.safetensors");
    write_half_model(path, "F16");
    ps_model *m = NULL;
    ps_tokenizer *tok = NULL;
    ps_error err = {0};
    if (ps_model_load(&m, &tok, NULL, path, &err) != 0)
        fail_msg("%s", err.msg);
    int changed = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = &m->params[i], *q = &fx.m->params[i];
        int bf = strcmp(p->name, "wpe.weight") == 0;
        for (size_t j = 0; j < p->numel; j++) {
            uint32_t bits;
            memcpy(&bits, &q->data[j], 4);
            float want = bf ? ps_bf16_to_f32((uint16_t)(bits >> 16))
                            : ps_f16_to_f32(ps_f32_to_f16(q->data[j]));
            if (memcmp(&p->data[j], &want, 4) != 0)
                fail_msg("%s[%zu]: %a, expected %a", p->name, j,
                         (double)p->data[j], (double)want);
            changed += p->data[j] != q->data[j];
        }
    }
    assert_true(changed > (int)(m->n_floats / 2));   /* rounding did happen */
    ps_model_free(m);
    ps_tokenizer_free(tok);

    write_half_model(path, "I32");
    assert_int_equal(ps_model_load(&m, &tok, NULL, path, &err), PS_ERR_FORMAT);
    assert_null(m);
    assert_msg(&err, path, "tensor 'ln_f.bias' has dtype I32, expected a float type");
}

/* ---- malformed model files ---- */

typedef struct bad_model {
    const char *label;
    const char *drop;                  /* leave this tensor out */
    const char *reshape;               /* give this tensor `shape` */
    int ndim;
    int64_t shape[2];
    const char *extra;                 /* add this tensor, shape [1] */
    const char *key, *val;             /* set metadata key (val NULL: remove) */
    int vocab_n;                       /* > 0: a vocab of this many tokens */
    const char *expect;
} bad_model;

static const bad_model bad_models[] = {
    {"missing parameter", .drop = "h.1.ln_2.bias",
     .expect = "missing tensor 'h.1.ln_2.bias'"},
    {"missing embedding", .drop = "wte.weight", .expect = "missing tensor 'wte.weight'"},
    {"shape contradicts config", .reshape = "h.0.attn.c_attn.weight", .ndim = 2,
     .shape = {8, 20},
     .expect = "tensor 'h.0.attn.c_attn.weight' has shape [8, 20], expected [8, 24] for n_embd 8"},
    {"2-D where 1-D expected", .reshape = "ln_f.weight", .ndim = 2, .shape = {8, 1},
     .expect = "tensor 'ln_f.weight' has shape [8, 1], expected [8] for n_embd 8"},
    {"position table too short", .reshape = "wpe.weight", .ndim = 2, .shape = {15, 8},
     .expect = "tensor 'wpe.weight' has shape [15, 8], expected [16, 8] for n_ctx 16, n_embd 8"},
    {"vocab_size vs wte rows", .key = "vocab_size", .val = "12", .vocab_n = 12,
     .expect = "vocab_size 12 does not match tensor 'wte.weight' with 10 rows"},
    {"vocab list too short", .vocab_n = 9,
     .expect = "vocabulary has 9 tokens but vocab_size is 10"},
    {"vocab list too long", .vocab_n = 11,
     .expect = "vocabulary has 11 tokens but vocab_size is 10"},
    {"vocab not JSON", .key = "vocab", .val = "[\"<unk>\", \"a\"",
     .expect = "vocabulary: invalid JSON"},
    {"vocab missing", .key = "vocab", .val = NULL, .expect = "metadata has no 'vocab'"},
    {"n_head missing", .key = "n_head", .val = NULL, .expect = "metadata has no 'n_head'"},
    {"n_head garbled", .key = "n_head", .val = "abc",
     .expect = "metadata 'n_head' is \"abc\", expected a decimal integer"},
    {"n_embd negative", .key = "n_embd", .val = "-8",
     .expect = "metadata 'n_embd' is \"-8\", expected a decimal integer"},
    {"n_ctx with a suffix", .key = "n_ctx", .val = "16k",
     .expect = "metadata 'n_ctx' is \"16k\", expected a decimal integer"},
    {"n_ctx empty", .key = "n_ctx", .val = "",
     .expect = "metadata 'n_ctx' is \"\", expected a decimal integer"},
    {"n_layer huge", .key = "n_layer", .val = "99999999999",
     .expect = "metadata 'n_layer' is 99999999999, too large"},
    {"n_layer zero", .key = "n_layer", .val = "0", .expect = "n_layer 0"},
    {"n_embd not divisible by n_head", .key = "n_head", .val = "3",
     .expect = "n_embd 8 is not divisible by n_head 3"},
    {"n_layer claims one more block", .key = "n_layer", .val = "3",
     .expect = "missing tensor 'h.2.ln_1.weight'"},
    {"config far larger than the file", .key = "n_embd", .val = "4096",
     .expect = "config (n_layer 2, n_embd 4096, n_ctx 16, vocab_size 10) implies "
               "402874368 parameters, the file's tensors hold only 1968 values"},
    {"format wrong", .key = "format", .val = "pytorch",
     .expect = "metadata 'format' is \"pytorch\", expected \"paramscope\""},
    {"format missing", .key = "format", .val = NULL,
     .expect = "not a paramscope model file: no 'format' in the metadata"},
    {"architecture wrong", .key = "architecture", .val = "llama",
     .expect = "metadata 'architecture' is \"llama\", expected \"gpt2\""},
    {"tokenizer bpe", .key = "tokenizer", .val = "gpt2-bpe",
     .expect = "metadata has no 'bpe_vocab'"},
    {"tokenizer unknown", .key = "tokenizer", .val = "sentencepiece",
     .expect = "metadata 'tokenizer' is \"sentencepiece\", expected \"words\""},
    {"unexpected tensor", .extra = "h.0.attn.bias",
     .expect = "unexpected tensor 'h.0.attn.bias': not a parameter of GPT-2 with n_layer 2"},
    {"tensor of a third block", .extra = "h.2.ln_1.weight",
     .expect = "unexpected tensor 'h.2.ln_1.weight'"},
};

static char *vocab_json(int n)
{
    json_t *arr = json_array();
    json_array_append_new(arr, json_string("<unk>"));
    for (int i = 1; i < n; i++) {
        char w[16];
        snprintf(w, sizeof w, "w%d", i);
        json_array_append_new(arr, json_string(w));
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

/* The good file, changed as c says, written to path with ps_st_write. */
static void write_bad_model(const char *path, const bad_model *c)
{
    ps_st_file *g = NULL;
    ps_error err = {0};
    assert_int_equal(ps_st_open(&g, fx.good, &err), 0);

    const char *keys[32], *vals[32];
    int nm = 0, key_seen = 0;
    char *vocab = c->vocab_n > 0 ? vocab_json(c->vocab_n) : NULL;
    for (int i = 0; i < g->n_meta; i++) {
        const char *k = g->meta_keys[i], *v = g->meta_vals[i];
        if (c->key && strcmp(k, c->key) == 0) {
            key_seen = 1;
            if (!c->val)
                continue;
            v = c->val;
        }
        if (vocab && strcmp(k, "vocab") == 0)
            v = vocab;
        keys[nm] = k;
        vals[nm++] = v;
    }
    assert_true(!c->key || key_seen);

    ps_st_out outs[64];
    int nt = 0;
    float *zeros = calloc(4096, sizeof *zeros);
    assert_non_null(zeros);
    for (int i = 0; i < g->n_tensors; i++) {
        const ps_st_tensor *t = &g->tensors[i];
        if (c->drop && strcmp(t->name, c->drop) == 0)
            continue;
        ps_st_out *o = &outs[nt++];
        o->name = t->name;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        o->data = ps_st_data(g, t);
        if (c->reshape && strcmp(t->name, c->reshape) == 0) {
            o->ndim = c->ndim;
            o->shape[0] = c->shape[0];
            o->shape[1] = c->shape[1];
            o->data = zeros;
        }
    }
    if (c->extra)
        outs[nt++] = (ps_st_out){.name = c->extra, .ndim = 1, .shape = {1}, .data = zeros};
    assert_int_equal(ps_st_write(path, outs, nt, keys, vals, nm, &err), 0);
    free(zeros);
    free(vocab);
    ps_st_close(g);
}

static void test_malformed_models(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_models / sizeof bad_models[0]; i++) {
        const bad_model *c = &bad_models[i];
        char name[64];
        snprintf(name, sizeof name, "bad%02zu.safetensors", i);
        const char *path = tmp_path(name);
        write_bad_model(path, c);

        ps_model *m = (ps_model *)&m;          /* must come back NULL */
        ps_tokenizer *tok = (ps_tokenizer *)&tok;
        ps_meta meta = {.n = 99};              /* overwritten, then emptied */
        ps_error err = {0};
        int rc = ps_model_load(&m, &tok, &meta, path, &err);
        if (rc != PS_ERR_FORMAT)
            fail_msg("case '%s': status %d, expected PS_ERR_FORMAT (%s)", c->label,
                     rc, err.msg);
        assert_int_equal(err.code, PS_ERR_FORMAT);
        assert_null(m);
        assert_null(tok);
        assert_int_equal(meta.n, 0);
        if (!strstr(err.msg, c->expect))
            fail_msg("case '%s': expected \"%s\" in \"%s\"", c->label, c->expect, err.msg);
        assert_msg(&err, path, c->expect);
    }
}

static void test_not_a_model_file(void **state)
{
    (void)state;
    const char *path = tmp_path("garbage.safetensors");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("not a model", fp);
    fclose(fp);
    ps_model *m = NULL;
    ps_error err = {0};
    assert_int_equal(ps_model_load(&m, NULL, NULL, path, &err), PS_ERR_FORMAT);
    assert_msg(&err, path, "header length");
    assert_int_equal(ps_model_load(&m, NULL, NULL, tmp_path("absent.safetensors"), &err),
                     PS_ERR_IO);
    assert_msg(&err, tmp_path("absent.safetensors"), "cannot open: No such file");
    assert_null(m);
}

/* ---- a file changed underneath ---- */

static void copy_file(const char *from, const char *to)
{
    assert_int_equal(support_copy_file(from, to), 0);
}

/* Truncating a loaded model's file changes nothing in the model (a mapped
 * file killed the process with SIGBUS at the next read), and the model does
 * not depend on the file; a mapped file's change is detected. */
static void test_file_changed_underneath(void **state)
{
    (void)state;
    const char *path = tmp_path("changing.safetensors");
    copy_file(fx.good, path);
    ps_model *m = NULL;
    ps_error err = {0};
    assert_int_equal(ps_model_load(&m, NULL, NULL, path, &err), 0);
    assert_int_equal(truncate(path, 0), 0);
    for (size_t i = 0; i < fx.m->n_floats; i++)
        if (memcmp(&m->w[i], &fx.m->w[i], sizeof(float)) != 0)
            fail_msg("value %zu changed with the file", i);
    assert_int_equal(ps_model_file_check(m, &err), PS_OK);
    ps_model_free(m);

    /* a mapped file (as files over PS_ST_COPY_MAX are) rewritten in place */
    copy_file(fx.good, path);
    ps_st_file *f = NULL;
    assert_int_equal(ps_st_open_flags(&f, path, PS_ST_WRITABLE | PS_ST_NO_COPY, &err), 0);
    assert_int_equal(f->copied, 0);
    assert_int_equal(ps_st_check_unchanged(f, &err), PS_OK);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)f->data_start, SEEK_SET), 0);
    assert_int_equal(fputc(0x7f, fp), 0x7f);
    assert_int_equal(fclose(fp), 0);
    struct timespec times[2] = {{0, UTIME_NOW}, {12345, 0}};   /* surely another time */
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(ps_st_check_unchanged(f, &err), PS_ERR_STATE);
    assert_msg(&err, path, "changed on disk since it was opened");
    ps_st_close(f);
}

/* A mapped file truncated by another program: touching its pages past the
 * new end would be SIGBUS; with the guard the page reads as zeros, the
 * process lives on, and the size check says the file changed. */
static void test_truncated_mapping_survives(void **state)
{
    (void)state;
    const char *path = tmp_path("truncated.safetensors");
    copy_file(fx.good, path);
    ps_error err = {0};
    ps_st_file *f = NULL;
    assert_int_equal(ps_mapguard_install(), 0);
    assert_int_equal(ps_st_open_flags(&f, path, PS_ST_NO_COPY, &err), 0);
    assert_int_equal(f->copied, 0);
    unsigned long before = ps_mapguard_mended();
    assert_int_equal(truncate(path, 8), 0);
    volatile const uint8_t *last = f->map + f->size - 1;
    assert_int_equal(*last, 0);                  /* SIGBUS without the guard */
    assert_true(ps_mapguard_mended() > before);
    assert_int_equal(ps_st_check_unchanged(f, &err), PS_ERR_STATE);
    assert_msg(&err, path, "changed on disk since it was opened");
    ps_st_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_save_load_identical),
        cmocka_unit_test(test_load_without_optional_outputs),
        cmocka_unit_test(test_save_rejects),
        cmocka_unit_test(test_half_precision_file),
        cmocka_unit_test(test_malformed_models),
        cmocka_unit_test(test_not_a_model_file),
        cmocka_unit_test(test_file_changed_underneath),
        cmocka_unit_test(test_truncated_mapping_survives),
    };
    return cmocka_run_group_tests_name("model_file", tests, group_setup, group_teardown);
}
