/* The subcommands that read a model: predict, generate, info, eval. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/corpus.h"
#include "paramscope/infer.h"
#include "paramscope/sample.h"
#include "paramscope/stats.h"
#include "repl/common.h"
#include "repl/subcommands.h"

/* Options every model command takes; returns -1 after printing an error. */
typedef struct model_opts {
    const char *model;
    int json;
    long threads;
} model_opts;

/* --heads N, which every model command takes (for GPT-2 folders without a
 * config.json and of an unusual width). */
#define O_HEADS 300
#define HEADS_OPTION {"heads", required_argument, 0, O_HEADS}

static int take_heads(const char *cmd)
{
    long h;
    if (ps_arg_int(cmd, "--heads", optarg, 1, 4096, &h))
        return -1;
    ps_loaded_set_heads((int)h);
    return 0;
}

static int open_model(const char *cmd, const model_opts *o, ps_loaded *l)
{
    ps_error err = {0};
    char path[4096];
    if (ps_resolve_model(o->model, path, sizeof path, &err) ||
        ps_blas_init((int)o->threads, &err) || ps_loaded_open(l, path, &err)) {
        fprintf(stderr, "paramscope %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}

static int bad_option(const char *cmd, int c, char **argv)
{
    if (c == ':')
        fprintf(stderr, "paramscope %s: %s needs a value\n", cmd, argv[optind - 1]);
    else
        fprintf(stderr, "paramscope %s: unknown option '%s' (see paramscope %s --help)\n", cmd,
                argv[optind - 1], cmd);
    return PS_EXIT_USAGE;
}

/* ---- predict ---- */

static const char predict_usage[] =
    "usage: paramscope predict [-m MODEL] [--top K] [--temperature T] [--json] TEXT...\n"
    "\n"
    "Shows the tokens TEXT became (unknown words as [word]?) and the K most likely\n"
    "next tokens as bars with percentages: softmax(logits / T) over the vocabulary.\n"
    "\n"
    "  -m, --model MODEL   model file or GPT-2 folder (default: $PARAMSCOPE_MODEL, else the bundled model)\n"
    "  --heads N           heads of a GPT-2 folder without config.json (768 -> 12, 1024 -> 16, ... otherwise)\n"
    "  --top K             how many tokens to show (default 10)\n"
    "  --temperature T     T > 0 sharpens (< 1) or flattens (> 1); 0 is greedy (default 1)\n"
    "  --threads N         BLIS threads (default: one per core)\n"
    "  --json              print one JSON object: prompt, tokens, ids, temperature, top\n";

int ps_cmd_predict(int argc, char **argv)
{
    enum { O_TOP = 256, O_TEMP, O_JSON, O_THREADS, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"top", required_argument, 0, O_TOP},
        {"temperature", required_argument, 0, O_TEMP}, {"json", no_argument, 0, O_JSON},
        {"threads", required_argument, 0, O_THREADS}, {"help", no_argument, 0, O_HELP}, HEADS_OPTION, {0, 0, 0, 0},
    };
    model_opts o = {0};
    long top = 10;
    double temp = 1.0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case O_TOP:
            if (ps_arg_int("predict", "--top", optarg, 1, 1 << 24, &top)) return PS_EXIT_USAGE;
            break;
        case O_TEMP:
            if (ps_arg_float("predict", "--temperature", optarg, -1e30, 1e30, &temp)) return PS_EXIT_USAGE;
            if (temp < 0) {
                fprintf(stderr, "paramscope predict: --temperature: %g is negative; use 0 for greedy or a positive value\n", temp);
                return PS_EXIT_USAGE;
            }
            break;
        case O_THREADS:
            if (ps_arg_int("predict", "--threads", optarg, 1, 256, &o.threads)) return PS_EXIT_USAGE;
            break;
        case O_JSON: o.json = 1; break;
        case O_HEADS: if (take_heads("predict")) return PS_EXIT_USAGE; break;
        case O_HELP: fputs(predict_usage, stdout); return PS_EXIT_OK;
        default: return bad_option("predict", c, argv);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "paramscope predict: no prompt given (usage: paramscope predict TEXT...)\n");
        return PS_EXIT_USAGE;
    }
    char *text = ps_join_args(argc, argv, optind);
    ps_loaded l;
    if (!text || open_model("predict", &o, &l)) {
        free(text);
        return PS_EXIT_USAGE;
    }
    int V = l.model->cfg.vocab_size;
    if (top > V) {
        fprintf(stderr, "paramscope predict: --top %ld is more than the vocabulary; showing all %d tokens\n", top, V);
        top = V;
    }
    ps_prediction p;
    ps_error err = {0};
    int status = PS_EXIT_OK;
    if (ps_predict(&p, l.model, l.tok, text, (float)temp, (int)top, &err)) {
        fprintf(stderr, "paramscope predict: %s\n", err.msg);
        status = err.code == PS_ERR_NOMEM ? PS_EXIT_FAIL : PS_EXIT_USAGE;
    } else {
        if (o.json) {
            char *js = ps_prediction_json(&p, l.tok, text);
            if (js)
                puts(js);
            free(js);
        } else {
            ps_print_prediction(stdout, &p, l.tok, NULL, ps_utf8_output());
        }
        ps_prediction_free(&p);
    }
    ps_loaded_close(&l);
    free(text);
    return status;
}

/* ---- generate ---- */

static const char generate_usage[] =
    "usage: paramscope generate [-m MODEL] [-n N] [--temperature T] [--top-k K] [--top-p P]\n"
    "                           [--seed S] TEXT...\n"
    "\n"
    "Continues TEXT with N sampled tokens.  The same seed gives the same text.\n"
    "\n"
    "  -m, --model MODEL model file (default: $PARAMSCOPE_MODEL, else the bundled model)\n"
    "  -n N              tokens to generate (default 20)\n"
    "  --temperature T   0 is greedy (default 1)\n"
    "  --top-k K         sample among the K most likely tokens (default 0: all)\n"
    "  --top-p P         sample from the smallest set with probability >= P (default 1: all)\n"
    "  --seed S          random seed (default 42; printed on standard error)\n"
    "  --threads N       BLIS threads (default: one per core)\n";

int ps_cmd_generate(int argc, char **argv)
{
    enum { O_TEMP = 256, O_TOPK, O_TOPP, O_SEED, O_THREADS, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"temperature", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
        {"help", no_argument, 0, O_HELP}, HEADS_OPTION, {0, 0, 0, 0},
    };
    model_opts o = {0};
    long n = 20, topk = 0, seed = 42;
    double temp = 1.0, topp = 1.0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:n:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'n':
            if (ps_arg_int("generate", "-n", optarg, 0, 100000, &n)) return PS_EXIT_USAGE;
            break;
        case O_TEMP:
            if (ps_arg_float("generate", "--temperature", optarg, 0, 1e6, &temp)) return PS_EXIT_USAGE;
            break;
        case O_TOPK:
            if (ps_arg_int("generate", "--top-k", optarg, 0, 1 << 24, &topk)) return PS_EXIT_USAGE;
            break;
        case O_TOPP:
            if (ps_arg_float("generate", "--top-p", optarg, 1e-9, 1, &topp)) return PS_EXIT_USAGE;
            break;
        case O_SEED:
            if (ps_arg_int("generate", "--seed", optarg, 0, 0x7fffffffffffffffL, &seed)) return PS_EXIT_USAGE;
            break;
        case O_THREADS:
            if (ps_arg_int("generate", "--threads", optarg, 1, 256, &o.threads)) return PS_EXIT_USAGE;
            break;
        case O_HEADS: if (take_heads("generate")) return PS_EXIT_USAGE; break;
        case O_HELP: fputs(generate_usage, stdout); return PS_EXIT_OK;
        default: return bad_option("generate", c, argv);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "paramscope generate: no prompt given (usage: paramscope generate TEXT...)\n");
        return PS_EXIT_USAGE;
    }
    char *text = ps_join_args(argc, argv, optind);
    ps_loaded l;
    if (!text || open_model("generate", &o, &l)) {
        free(text);
        return PS_EXIT_USAGE;
    }
    ps_error err = {0};
    ps_tokens toks = {0};
    ps_sampler s = {0};
    int status = PS_EXIT_USAGE;
    int *ctx = NULL;
    int n_ctx = l.model->cfg.n_ctx;
    if (ps_tokenizer_encode(l.tok, text, &toks, &err))
        goto done;
    if (toks.n == 0) {
        ps_error_set(&err, PS_ERR_INVALID, "the prompt has no tokens");
        goto done;
    }
    if (toks.n_unknown == toks.n) {
        ps_error_set(&err, PS_ERR_INVALID, "every token of the prompt is outside the vocabulary");
        goto done;
    }
    status = PS_EXIT_FAIL;
    if (ps_sampler_init(&s, l.model->cfg.vocab_size, (float)temp, (int)topk, (float)topp,
                        (unsigned long long)seed, &err))
        goto done;
    ctx = malloc(sizeof(int) * (size_t)(toks.n + n));
    if (!ctx) {
        ps_error_set(&err, PS_ERR_NOMEM, "out of memory while generating");
        goto done;
    }
    memcpy(ctx, toks.ids, sizeof(int) * (size_t)toks.n);
    int len = toks.n;
    /* Each token from the model's view of the last n_ctx tokens.  The cache
     * makes a step cost one token's forward until the window slides past
     * n_ctx; from then on every step recomputes the window (exact, slow). */
    ps_infer *inf = NULL;
    int rc = n > 0 ? ps_infer_init(&inf, l.model, &err) : PS_OK;
    for (long i = 0; i < n && !rc; i++) {
        int first = len > n_ctx ? len - n_ctx : 0;
        rc = ps_infer_prompt(inf, ctx + first, len - first, &err);
        /* no token from logits that are not numbers: a softmax of NaN
         * picks one at random */
        char at[48], msg[256];
        int V = l.model->cfg.vocab_size;
        int bad = rc ? 0 : ps_logits_check(inf, ps_infer_logits(inf), V, at, sizeof at);
        if (bad) {
            ps_nonfinite_msg(bad, V, at, msg, sizeof msg);
            rc = ps_error_set(&err, PS_ERR_NUMERIC, "after %ld tokens, %s; no token can be sampled", i, msg);
        }
        if (!rc)
            ctx[len++] = ps_sample(&s, ps_infer_logits(inf));
    }
    ps_infer_free(inf);
    if (rc)
        goto done;
    char *out = ps_tokenizer_decode(l.tok, ctx, len);
    if (!out) {
        ps_error_set(&err, PS_ERR_NOMEM, "out of memory while generating");
        goto done;
    }
    ps_put_token(stdout, out);
    putchar('\n');
    free(out);
    fprintf(stderr, "(seed %ld, temperature %g, top-k %ld, top-p %g)\n", seed, temp, topk, topp);
    status = PS_EXIT_OK;
done:
    if (status != PS_EXIT_OK)
        fprintf(stderr, "paramscope generate: %s\n", err.msg);
    free(ctx);
    ps_sampler_free(&s);
    ps_tokens_free(&toks);
    ps_loaded_close(&l);
    free(text);
    return status;
}

/* ---- info ---- */

static const char info_usage[] =
    "usage: paramscope info [-m MODEL] [--json]\n"
    "\n"
    "Shows the model's configuration, every tensor with its shape, count, mean and\n"
    "standard deviation, the total number of parameters, the bytes on disk, and\n"
    "where the model sits on the scale of known models.\n"
    "\n"
    "  -m, --model MODEL  model file or GPT-2 folder (default: $PARAMSCOPE_MODEL, else the bundled model)\n"
    "  --json             print one JSON object\n"
    "  --heads N          heads of a GPT-2 folder without config.json\n";

typedef struct known_model { const char *name; double params; } known_model;

static const known_model known_models[] = {
    {"BERT base", 110e6},
    {"GPT-2 (small)", 124e6},
    {"GPT-2 XL", 1.5e9},
    {"GPT-3", 175e9},
    {"GPT-4 (estimated)", 1e12},
};

static void print_scale(double n)
{
    printf("on the scale of known models:\n");
    for (size_t i = 0; i < sizeof known_models / sizeof known_models[0]; i++) {
        double ratio = known_models[i].params / n;
        printf("  %-18s %8.3g parameters, %10.3g times this model\n", known_models[i].name,
               known_models[i].params, ratio);
    }
}

int ps_cmd_info(int argc, char **argv)
{
    enum { O_JSON = 256, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP}, HEADS_OPTION, {0, 0, 0, 0},
    };
    model_opts o = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case O_JSON: o.json = 1; break;
        case O_HEADS: if (take_heads("info")) return PS_EXIT_USAGE; break;
        case O_HELP: fputs(info_usage, stdout); return PS_EXIT_OK;
        default: return bad_option("info", c, argv);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "paramscope info: unexpected argument '%s'\n", argv[optind]);
        return PS_EXIT_USAGE;
    }
    ps_loaded l;
    if (open_model("info", &o, &l))
        return PS_EXIT_USAGE;
    const ps_model *m = l.model;
    const ps_config *cf = &m->cfg;
    if (o.json) {
        json_t *root = json_object(), *cfg = json_object(), *tensors = json_array(), *meta = json_object();
        json_object_set_new(cfg, "n_layer", json_integer(cf->n_layer));
        json_object_set_new(cfg, "n_head", json_integer(cf->n_head));
        json_object_set_new(cfg, "n_embd", json_integer(cf->n_embd));
        json_object_set_new(cfg, "n_ctx", json_integer(cf->n_ctx));
        json_object_set_new(cfg, "vocab_size", json_integer(cf->vocab_size));
        for (int i = 0; i < m->n_params; i++) {
            const ps_param *p = &m->params[i];
            ps_stats st;
            ps_stats_compute(&st, p->data, p->numel / (size_t)p->shape[1], (size_t)p->shape[1], (size_t)p->shape[1]);
            json_t *t = json_object(), *shape = json_array();
            for (int d = 0; d < p->ndim; d++)
                json_array_append_new(shape, json_integer(p->shape[d]));
            json_object_set_new(t, "name", ps_json_text(p->name));
            json_object_set_new(t, "shape", shape);
            json_object_set_new(t, "count", json_integer((json_int_t)p->numel));
            json_object_set_new(t, "mean", json_real(st.mean));
            json_object_set_new(t, "std", json_real(st.std));
            json_array_append_new(tensors, t);
        }
        for (int i = 0; i < l.meta.n; i++)
            json_object_set_new(meta, l.meta.keys[i], ps_json_text(l.meta.vals[i]));
        json_object_set_new(root, "path", ps_json_text(l.path));
        json_object_set_new(root, "config", cfg);
        json_object_set_new(root, "tokenizer", json_string(ps_tokenizer_kind_name(l.tok)));
        json_object_set_new(root, "params", json_integer((json_int_t)m->n_values));
        json_object_set_new(root, "file_bytes", json_integer(l.file_bytes));
        json_object_set_new(root, "tensors", tensors);
        json_object_set_new(root, "metadata", meta);
        char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        if (s)
            puts(s);
        free(s);
        json_decref(root);
    } else {
        printf("model        %s\n", l.path);
        printf("architecture GPT-2: %d layers, %d heads, n_embd %d, n_ctx %d, vocabulary %d (%s)\n",
               cf->n_layer, cf->n_head, cf->n_embd, cf->n_ctx, cf->vocab_size,
               ps_tokenizer_kind_name(l.tok));
        printf("parameters   %zu\n", m->n_values);
        printf("on disk      %lld bytes (%.2f MB)\n", l.file_bytes, l.file_bytes / 1e6);
        /* metadata is the file's text: control bytes shown escaped */
        for (int i = 0; i < l.meta.n; i++) {
            char kb[128], vb[1024];
            printf("%-12s %s\n", ps_printable(l.meta.keys[i], kb, sizeof kb),
                   ps_printable(l.meta.vals[i], vb, sizeof vb));
        }
        printf("\n%-28s %-12s %10s %12s %12s\n", "tensor", "shape", "count", "mean", "std");
        for (int i = 0; i < m->n_params; i++) {
            const ps_param *p = &m->params[i];
            ps_stats st;
            ps_stats_compute(&st, p->data, p->numel / (size_t)p->shape[1], (size_t)p->shape[1], (size_t)p->shape[1]);
            char shape[32];
            if (p->ndim == 2)
                snprintf(shape, sizeof shape, "[%d, %d]", p->shape[0], p->shape[1]);
            else
                snprintf(shape, sizeof shape, "[%d]", p->shape[0]);
            printf("%-28s %-12s %10zu %12.6f %12.6f\n", p->name, shape, p->numel, st.mean, st.std);
        }
        printf("%-28s %-12s %10zu\n\n", "total", "", m->n_values);
        print_scale((double)m->n_values);
    }
    ps_loaded_close(&l);
    return PS_EXIT_OK;
}

/* ---- eval ---- */

static const char eval_usage[] =
    "usage: paramscope eval [-m MODEL] --data FILE [--json] [--threads N]\n"
    "\n"
    "Mean cross-entropy loss (nats per token) and perplexity of the model on a text\n"
    "file, over consecutive windows of n_ctx tokens.\n"
    "\n"
    "  -m, --model MODEL  model file (default: $PARAMSCOPE_MODEL, else the bundled model)\n"
    "  --data FILE        the text to evaluate on\n"
    "  --json             print one JSON object: model, data, tokens, unknown, loss, perplexity\n"
    "  --threads N        BLIS threads (default: one per core)\n";

int ps_cmd_eval(int argc, char **argv)
{
    enum { O_DATA = 256, O_JSON, O_THREADS, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, O_DATA},
        {"json", no_argument, 0, O_JSON}, {"threads", required_argument, 0, O_THREADS},
        {"help", no_argument, 0, O_HELP}, HEADS_OPTION, {0, 0, 0, 0},
    };
    model_opts o = {0};
    const char *data = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case O_DATA: data = optarg; break;
        case O_JSON: o.json = 1; break;
        case O_THREADS:
            if (ps_arg_int("eval", "--threads", optarg, 1, 256, &o.threads)) return PS_EXIT_USAGE;
            break;
        case O_HEADS: if (take_heads("eval")) return PS_EXIT_USAGE; break;
        case O_HELP: fputs(eval_usage, stdout); return PS_EXIT_OK;
        default: return bad_option("eval", c, argv);
        }
    }
    if (!data || optind < argc) {
        fprintf(stderr, optind < argc ? "paramscope eval: unexpected argument '%s'\n"
                                      : "paramscope eval: --data FILE is required%s\n",
                optind < argc ? argv[optind] : "");
        return PS_EXIT_USAGE;
    }
    ps_loaded l;
    if (open_model("eval", &o, &l))
        return PS_EXIT_USAGE;
    ps_error err = {0};
    ps_corpus *corp = NULL;
    if (ps_corpus_load(&corp, data, l.tok, &err)) {
        fprintf(stderr, "paramscope eval: %s\n", err.msg);
        ps_loaded_close(&l);
        return err.code == PS_ERR_NOMEM ? PS_EXIT_FAIL : PS_EXIT_USAGE;
    }
    if (corp->n < 2) {
        fprintf(stderr, "paramscope eval: %s: needs at least 2 tokens, has %zu\n", data, corp->n);
        ps_corpus_free(corp);
        ps_loaded_close(&l);
        return PS_EXIT_USAGE;
    }
    int T = l.model->cfg.n_ctx, B = 8;
    size_t windows = (corp->n - 1 + (size_t)T - 1) / (size_t)T;
    int *in = malloc(sizeof(int) * (size_t)B * T), *tg = malloc(sizeof(int) * (size_t)B * T);
    double sum = 0;
    size_t counted = 0;
    int status = PS_EXIT_OK;
    for (size_t w = 0; in && tg && w < windows; w += (size_t)B) {
        /* the last window may be shorter: run it on its own */
        int nb = 0, len = T;
        size_t start = w * (size_t)T;
        for (; nb < B && w + (size_t)nb < windows; nb++) {
            size_t s0 = (w + (size_t)nb) * (size_t)T;
            size_t avail = corp->n - 1 - s0;
            if (avail < (size_t)T) {
                if (nb > 0)
                    break;
                len = (int)avail;
            }
        }
        for (int b = 0; b < nb; b++) {
            memcpy(in + (size_t)b * len, corp->ids + start + (size_t)b * T, sizeof(int) * (size_t)len);
            memcpy(tg + (size_t)b * len, corp->ids + start + (size_t)b * T + 1, sizeof(int) * (size_t)len);
        }
        float loss;
        if (ps_model_forward(l.model, in, nb, len, &err) || ps_model_loss(l.model, tg, &loss, &err)) {
            fprintf(stderr, "paramscope eval: %s\n", err.msg);
            status = PS_EXIT_FAIL;
            break;
        }
        if (!isfinite(loss)) {
            char at[48];
            ps_model_find_nonfinite(l.model, at, sizeof at);
            fprintf(stderr, "paramscope eval: %s: the loss is not finite (%g)%s%s; no loss or perplexity to show\n",
                    data, (double)loss, at[0] ? ", the first non-finite value appears in " : "", at);
            status = PS_EXIT_FAIL;
            break;
        }
        sum += (double)loss * nb * len;
        counted += (size_t)nb * len;
        w -= (size_t)B - (size_t)nb;   /* advance by the windows actually used */
    }
    if (!in || !tg) {
        fprintf(stderr, "paramscope eval: out of memory\n");
        status = PS_EXIT_FAIL;
    }
    if (status == PS_EXIT_OK) {
        double mean = sum / (double)counted;
        if (o.json) {
            json_t *j = json_object();
            json_object_set_new(j, "model", ps_json_text(l.path));
            json_object_set_new(j, "data", ps_json_text(data));
            json_object_set_new(j, "tokens", json_integer((json_int_t)counted));
            json_object_set_new(j, "unknown", json_integer((json_int_t)corp->n_unknown));
            json_object_set_new(j, "loss", ps_json_number(mean));
            json_object_set_new(j, "perplexity", ps_json_number(exp(mean)));
            char *js = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
            if (js)
                puts(js);
            free(js);
            json_decref(j);
        } else
            printf("%s on %s: loss %.4f nats/token, perplexity %.2f over %zu predicted tokens (%zu unknown tokens in the data)\n",
                   l.path, data, mean, exp(mean), counted, corp->n_unknown);
    }
    free(in);
    free(tg);
    ps_corpus_free(corp);
    ps_loaded_close(&l);
    return status;
}
