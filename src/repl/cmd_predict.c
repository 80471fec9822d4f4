/* Commands about predictions: predict, baseline, generate, set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/infer.h"
#include "paramscope/sample.h"
#include "repl/command.h"

static int cmd_predict(ps_session *s, int argc, char **argv, ps_out *out)
{
    const char *text = argc ? argv[0] : s->prompt;
    if (!text)
        return ps_fail(out, PS_ERR_INVALID, "usage: predict TEXT (no earlier prompt to repeat)");
    ps_prediction p;
    int rc = ps_predict(&p, s->lm.model, s->lm.tok, text, s->set.temperature, s->set.top, &out->err);
    if (rc)
        return rc;
    if (text != s->prompt) {
        /* text may be s->prompt itself (a bare `predict`): replace it only
         * when it is new, so that text stays valid below */
        char *keep = strdup(text);
        if (keep) {
            free(s->prompt);
            s->prompt = keep;
            text = keep;
        }
    }
    int same = s->baseline && s->baseline_prompt && !strcmp(s->baseline_prompt, text);
    ps_print_prediction(out->f, &p, s->lm.tok, same ? s->baseline : NULL, out->utf8);
    if (s->baseline && !same) {
        fputs("(the baseline is for \"", out->f);
        ps_put_token(out->f, s->baseline_prompt);
        fputs("\"; run `baseline` to compare with this prompt)\n", out->f);
    }
    ps_prediction_free(&p);
    return PS_OK;
}

static int cmd_baseline(ps_session *s, int argc, char **argv, ps_out *out)
{
    const char *text = argc ? argv[0] : s->prompt;
    if (!text)
        return ps_fail(out, PS_ERR_STATE, "no prompt yet: run `predict TEXT` first, or `baseline TEXT`");
    ps_prediction p;
    int rc = ps_predict(&p, s->lm.model, s->lm.tok, text, s->set.temperature, 1, &out->err);
    if (rc)
        return rc;
    if (p.n_nonfinite) {
        char msg[256];
        ps_prediction_nonfinite_msg(&p, msg, sizeof msg);
        ps_prediction_free(&p);
        return ps_fail(out, PS_ERR_NUMERIC, "baseline: %s; nothing to compare with", msg);
    }
    char *prompt = strdup(text);
    if (!prompt) {
        ps_prediction_free(&p);
        return ps_fail(out, PS_ERR_NOMEM, "out of memory");
    }
    free(s->baseline);
    free(s->baseline_prompt);
    s->baseline = p.probs;       /* keep the whole distribution */
    p.probs = NULL;
    s->baseline_prompt = prompt;
    if (!s->prompt || strcmp(s->prompt, text)) {
        free(s->prompt);
        s->prompt = strdup(prompt);
    }
    fputs("baseline: the predictions for \"", out->f);
    ps_put_token(out->f, prompt);
    fputs("\" as they are now; `predict` shows changes against them\n", out->f);
    ps_prediction_free(&p);
    return PS_OK;
}

static int cmd_generate(ps_session *s, int argc, char **argv, ps_out *out)
{
    char *end;
    const char *arg = argc ? argv[0] : "";
    long n = strtol(arg, &end, 10);
    if (end == arg || (*end && *end != ' ' && *end != '\t') || n < 0 || n > 100000)
        return ps_fail(out, PS_ERR_INVALID, "usage: generate N [TEXT] (N: tokens to add, 0 to 100000)");
    if (*end == ' ' || *end == '\t')
        end++;                            /* one blank; the text as typed */
    const char *text = *end ? end : s->prompt;
    if (!text)
        return ps_fail(out, PS_ERR_INVALID, "generate: no text given and no earlier prompt");
    ps_tokens toks = {0};
    ps_sampler sm = {0};
    int rc = ps_tokenizer_encode(s->lm.tok, text, &toks, &out->err);
    if (rc)
        return rc;
    if (toks.n == 0) {
        ps_tokens_free(&toks);
        return ps_fail(out, PS_ERR_INVALID, "the prompt has no tokens");
    }
    int *ctx = malloc(sizeof(int) * (size_t)(toks.n + n));
    rc = ctx ? ps_sampler_init(&sm, s->lm.model->cfg.vocab_size, s->set.temperature, s->set.top_k,
                               s->set.top_p, s->set.seed, &out->err)
             : ps_fail(out, PS_ERR_NOMEM, "out of memory");
    if (rc)
        goto done;
    memcpy(ctx, toks.ids, sizeof(int) * (size_t)toks.n);
    int len = toks.n, n_ctx = s->lm.model->cfg.n_ctx;
    /* Each token from the model's view of the last n_ctx tokens; the cache
     * runs one token per step until the window slides (see infer.h). */
    ps_infer *inf = NULL;
    rc = n > 0 ? ps_infer_init(&inf, s->lm.model, &out->err) : PS_OK;
    for (long i = 0; i < n && !rc && !s->interrupt; i++) {
        int first = len > n_ctx ? len - n_ctx : 0;
        rc = ps_infer_prompt(inf, ctx + first, len - first, &out->err);
        char at[48], msg[256];
        int V = s->lm.model->cfg.vocab_size, bad = 0;
        if (!rc && (bad = ps_logits_check(inf, ps_infer_logits(inf), V, at, sizeof at))) {
            ps_nonfinite_msg(bad, V, at, msg, sizeof msg);
            rc = ps_fail(out, PS_ERR_NUMERIC, "generate: after %ld token%s, %s; no token can be sampled",
                         i, i == 1 ? "" : "s", msg);
        }
        if (!rc)
            ctx[len++] = ps_sample(&sm, ps_infer_logits(inf));
    }
    ps_infer_free(inf);
    if (rc)
        goto done;
    char *txt = ps_tokenizer_decode(s->lm.tok, ctx, len);
    if (!txt) {
        rc = ps_fail(out, PS_ERR_NOMEM, "out of memory");
        goto done;
    }
    ps_put_token(out->f, txt);
    fprintf(out->f, "\n(seed %llu, temperature %g, top-k %d, top-p %g%s)\n",
            (unsigned long long)s->set.seed, (double)s->set.temperature, s->set.top_k,
            (double)s->set.top_p, s->interrupt ? "; interrupted" : "");
    free(txt);
done:
    free(ctx);
    ps_sampler_free(&sm);
    ps_tokens_free(&toks);
    return rc;
}

/* ---- settings ---- */

static void print_settings(const ps_session *s, FILE *f)
{
    fprintf(f, "temperature  %g\t(0 is greedy)\n", (double)s->set.temperature);
    fprintf(f, "top-k        %d\t(0: off)\n", s->set.top_k);
    fprintf(f, "top-p        %g\t(1: off)\n", (double)s->set.top_p);
    fprintf(f, "seed         %llu\n", (unsigned long long)s->set.seed);
    fprintf(f, "threads      %d\t(BLIS kernels: %s)\n", s->set.threads, ps_blas_arch());
    fprintf(f, "top          %d\t(bars shown by predict)\n", s->set.top);
}

static int cmd_set(ps_session *s, int argc, char **argv, ps_out *out)
{
    if (argc == 0) {
        print_settings(s, out->f);
        return PS_OK;
    }
    if (argc != 2)
        return ps_fail(out, PS_ERR_INVALID, "usage: set [NAME VALUE]");
    const char *name = argv[0], *val = argv[1];
    double d;
    long l;
    if (!strcmp(name, "temperature")) {
        if (ps_parse_double(val, "temperature", &d, out))
            return out->err.code;
        if (d < 0 || d > 1000)
            return ps_fail(out, PS_ERR_RANGE, "temperature: %g is not in [0, 1000] (0 is greedy)", d);
        s->set.temperature = (float)d;
    } else if (!strcmp(name, "top-k")) {
        if (ps_parse_long(val, "top-k", 0, s->lm.model->cfg.vocab_size, &l, out))
            return out->err.code;
        s->set.top_k = (int)l;
    } else if (!strcmp(name, "top-p")) {
        if (ps_parse_double(val, "top-p", &d, out))
            return out->err.code;
        if (!(d > 0 && d <= 1))
            return ps_fail(out, PS_ERR_RANGE, "top-p: %g is not in (0, 1]", d);
        s->set.top_p = (float)d;
    } else if (!strcmp(name, "seed")) {
        if (ps_parse_long(val, "seed", 0, 0x7fffffffffffffffL, &l, out))
            return out->err.code;
        s->set.seed = (uint64_t)l;
        ps_rng_seed(&s->rng, s->set.seed);
    } else if (!strcmp(name, "threads")) {
        if (ps_parse_long(val, "threads", 1, 256, &l, out) || ps_blas_set_threads((int)l, &out->err))
            return out->err.code;
        s->set.threads = (int)l;
    } else if (!strcmp(name, "top")) {
        if (ps_parse_long(val, "top", 1, s->lm.model->cfg.vocab_size, &l, out))
            return out->err.code;
        s->set.top = (int)l;
    } else {
        return ps_fail(out, PS_ERR_NOT_FOUND,
                       "no setting '%s' (temperature, top-k, top-p, seed, threads, top; training settings: `train set`)",
                       name);
    }
    fprintf(out->f, "%s = %s\n", name, val);
    return PS_OK;
}

const ps_command ps_cmds_predict[] = {
    {"predict", "TEXT", "the next-token probabilities of TEXT, as bars",
     "Runs the model on TEXT and shows the tokens it became (unknown words as\n"
     "[word]?), then the `top` most likely next tokens with their probability,\n"
     "softmax(logits / temperature).  After `baseline`, each bar also shows its\n"
     "change in percentage points, signed: + up, - down, = unchanged.  Without\n"
     "TEXT, repeats the last prompt.  TEXT is everything after the one space\n"
     "that follows `predict`, spaces included (\"Hello world \" ends in a space\n"
     "token with GPT-2).  Control bytes in tokens print escaped (\\r, \\x1b).\n"
     "When a logit is NaN or infinite there is no bar: the output says so and\n"
     "names where the forward first had a non-finite value (embeddings, block\n"
     "i's attention or MLP, ln_f or the LM head); generate and eval refuse.\n",
     "Predictions", PS_COMPLETE_NONE, 0, 1, PS_CMD_RAW, cmd_predict},
    {"baseline", "[TEXT]", "keep these predictions to compare changes with",
     "Keeps the whole next-token distribution of the last prompt (or TEXT) as it\n"
     "is now.  Later `predict`s of the same prompt show how each bar moved.\n",
     "Predictions", PS_COMPLETE_NONE, 0, 1, PS_CMD_RAW, cmd_baseline},
    {"generate", "N [TEXT]", "sample N tokens after TEXT (or the last prompt)",
     "Adds N tokens one at a time, each drawn from the model's prediction with\n"
     "the current temperature, top-k, top-p and seed.  The same seed gives the\n"
     "same text.\n",
     "Predictions", PS_COMPLETE_NONE, 1, 1, PS_CMD_RAW, cmd_generate},
    {"set", "[NAME VALUE]", "show or change temperature, top-k, top-p, seed, ...",
     "Without arguments, lists every setting with its value.\n"
     "  temperature  0 is greedy; below 1 sharpens, above 1 flattens (default 1)\n"
     "  top-k        sample among the K most likely tokens, 0 for all (default 0)\n"
     "  top-p        sample from the smallest set with probability >= P (default 1)\n"
     "  seed         seed of sampling and of `noise` (default 42)\n"
     "  threads      BLIS threads for the matrix products\n"
     "  top          how many bars `predict` shows (default 10)\n",
     "Predictions", PS_COMPLETE_SETTING, 0, 2, 0, cmd_set},
    {0},
};
