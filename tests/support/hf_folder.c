/* A Hugging Face GPT-2 folder for tests (hf_folder.h). */
#include "support/hf_folder.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    return fclose(f) || bad ? -1 : 0;
}

/* GPT-2's printable spelling of byte b, as a code point. */
static unsigned byte_cp(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    if (b <= 32)
        return 256 + b;
    if (b <= 160)
        return 256 + 33 + (b - 127);
    return 256 + 33 + 34;
}

int support_write_bpe_tokenizer(const char *dir, const char *vocab_name, const char *merges_name)
{
    json_t *v = json_object();
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = byte_cp(b);
        char form[4] = {0};
        if (cp < 0x80) {
            form[0] = (char)cp;
        } else {
            form[0] = (char)(0xc0 | (cp >> 6));
            form[1] = (char)(0x80 | (cp & 0x3f));
        }
        json_object_set_new(v, form, json_integer(b));
    }
    json_object_set_new(v, "\xc4\xa0t", json_integer(256));     /* "Ġt" */
    json_object_set_new(v, "he", json_integer(257));
    json_object_set_new(v, "\xc4\xa0the", json_integer(258));
    json_object_set_new(v, "<|endoftext|>", json_integer(259));
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, vocab_name ? vocab_name : "");
    int rc = vocab_name ? json_dump_file(v, path, JSON_COMPACT) : 0;
    json_decref(v);
    if (rc)
        return -1;
    return merges_name ? write_text(dir, merges_name, "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\n") : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const ps_param *const *)a)->name, (*(const ps_param *const *)b)->name);
}

/* The tensors sorted by name, as Hugging Face's writer orders them; the
 * header padded with spaces to a multiple of 8. */
static int write_weights(const char *dir, const ps_model *m, int prefix)
{
    const ps_param **order = malloc((size_t)m->n_params * sizeof *order);
    if (!order)
        return -1;
    for (int i = 0; i < m->n_params; i++)
        order[i] = &m->params[i];
    qsort(order, (size_t)m->n_params, sizeof *order, by_name);
    json_t *root = json_object(), *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", meta);
    size_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = order[i];
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix ? "transformer." : "", p->name);
        json_t *t = json_object(), *shape = json_array();
        for (int d = 0; d < p->ndim; d++)
            json_array_append_new(shape, json_integer(p->shape[d]));
        json_object_set_new(t, "dtype", json_string("F32"));
        json_object_set_new(t, "shape", shape);
        json_object_set_new(t, "data_offsets",
                            json_pack("[I, I]", (json_int_t)off, (json_int_t)(off + 4 * p->numel)));
        json_object_set_new(root, name, t);
        off += 4 * p->numel;
    }
    char *hdr = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = hdr ? fopen(path, "wb") : NULL;
    int bad = !f;
    if (f) {
        uint64_t n = strlen(hdr), padded = (n + 7) & ~(uint64_t)7;
        bad |= fwrite(&padded, 8, 1, f) != 1 || fwrite(hdr, 1, n, f) != n;
        for (uint64_t i = n; i < padded; i++)
            bad |= fputc(' ', f) == EOF;
        for (int i = 0; i < m->n_params; i++)
            bad |= fwrite(order[i]->data, 4, order[i]->numel, f) != order[i]->numel;
        bad |= fclose(f) != 0;
    }
    free(hdr);
    free(order);
    return bad ? -1 : 0;
}

int support_write_hf_folder(const char *dir, const ps_model *m, int prefix)
{
    const ps_config *c = &m->cfg;
    char config[512];
    snprintf(config, sizeof config,
             "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"], "
             "\"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", \"n_ctx\": %d, \"n_embd\": %d, "
             "\"n_head\": %d, \"n_layer\": %d, \"n_positions\": %d, \"vocab_size\": %d}\n",
             c->n_ctx, c->n_embd, c->n_head, c->n_layer, c->n_ctx, c->vocab_size);
    if (write_text(dir, "config.json", config) || write_weights(dir, m, prefix) ||
        support_write_bpe_tokenizer(dir, "vocab.json", "merges.txt"))
        return -1;
    return 0;
}
