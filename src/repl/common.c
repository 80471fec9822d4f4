/* Finding the bundled files, opening models, and the prediction every front
 * end shows. */
#include "repl/common.h"

#include <errno.h>
#include <langinfo.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "paramscope/hf_gpt2.h"
#include "paramscope/infer.h"
#include "paramscope/sample.h"
#include "ps_config.h"

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int ps_find_data_file(const char *name, char *buf, size_t size)
{
    const char *env = getenv("PARAMSCOPE_DATA");
    const char *dirs[3] = {env && *env ? env : NULL, PS_DATADIR, PS_SOURCE_ROOT "/models"};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i])
            continue;
        snprintf(buf, size, "%s/%s", dirs[i], name);
        if (is_file(buf))
            return 0;
    }
    return -1;
}

int ps_resolve_model(const char *explicit_path, char *buf, size_t size, ps_error *err)
{
    const char *env = getenv("PARAMSCOPE_MODEL");
    if (explicit_path && *explicit_path)
        snprintf(buf, size, "%s", explicit_path);
    else if (env && *env)
        snprintf(buf, size, "%s", env);
    else if (ps_find_data_file(PS_BUNDLED_MODEL, buf, size) != 0)
        return ps_error_set(err, PS_ERR_NOT_FOUND,
                            "no model given and the bundled model %s was not found "
                            "(looked in $PARAMSCOPE_DATA, %s and %s/models)",
                            PS_BUNDLED_MODEL, PS_DATADIR, PS_SOURCE_ROOT);
    return PS_OK;
}

/* A directory, or a safetensors file that is not paramscope's own and has
 * GPT-2's tokenizer files beside it, is a Hugging Face checkpoint. */
static int default_heads;

void ps_loaded_set_heads(int heads)
{
    default_heads = heads;
}

int ps_loaded_open(ps_loaded *out, const char *path, ps_error *err)
{
    memset(out, 0, sizeof *out);
    ps_hf_info info = {0};
    ps_hf_options opt = {.heads = default_heads};
    int hf = ps_hf_gpt2_probe(path);
    int rc = hf ? ps_hf_gpt2_load(&out->model, &out->tok, &info, path, &opt, err)
                : ps_model_load(&out->model, &out->tok, &out->meta, path, err);
    if (rc)
        return rc;
    out->path = strdup(path);
    struct stat st;
    out->file_bytes = hf ? info.weights_bytes
                         : stat(path, &st) == 0 ? (long long)st.st_size : -1;
    ps_hf_info_free(&info);
    if (!out->path) {
        ps_loaded_close(out);
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", path);
    }
    return PS_OK;
}

void ps_loaded_close(ps_loaded *l)
{
    if (!l)
        return;
    ps_model_free(l->model);
    ps_tokenizer_free(l->tok);
    ps_meta_free(&l->meta);
    free(l->path);
    memset(l, 0, sizeof *l);
}

/* ---- predictions ---- */

int ps_logits_check(ps_infer *inf, const float *logits, int V, char *at, size_t at_size)
{
    int bad = 0;
    for (int i = 0; i < V; i++)
        bad += !isfinite(logits[i]);
    if (at_size)
        at[0] = '\0';
    if (bad && !ps_infer_find_nonfinite(inf, at, at_size))
        snprintf(at, at_size, "the LM head");
    return bad;
}

void ps_nonfinite_msg(int n_bad, int V, const char *at, char *msg, size_t size)
{
    snprintf(msg, size, "the logits are not finite: %d of %d are NaN or infinite, the first "
             "non-finite value appears in %s", n_bad, V, at && at[0] ? at : "an unknown place");
}

void ps_prediction_nonfinite_msg(const ps_prediction *p, char *msg, size_t size)
{
    ps_nonfinite_msg(p->n_nonfinite, p->vocab, p->nonfinite_at, msg, size);
}

int ps_predict(ps_prediction *out, ps_model *m, const ps_tokenizer *tok,
               const char *text, float temperature, int k, ps_error *err)
{
    memset(out, 0, sizeof *out);
    if (!(temperature >= 0.0f))
        return ps_error_set(err, PS_ERR_RANGE, "temperature %g: must be 0 (greedy) or more",
                            (double)temperature);
    int rc = ps_tokenizer_encode(tok, text, &out->tokens, err);
    if (rc)
        return rc;
    if (out->tokens.n == 0) {
        ps_prediction_free(out);
        return ps_error_set(err, PS_ERR_INVALID, "the prompt has no tokens");
    }
    if (out->tokens.n_unknown == out->tokens.n) {
        char list[256] = "";
        for (int i = 0; i < out->tokens.n && strlen(list) < 200; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", i ? " " : "", out->tokens.pieces[i]);
        }
        ps_error_set(err, PS_ERR_INVALID, "every token of the prompt is outside the vocabulary: %s%s",
                     list, strlen(list) >= 200 ? " ..." : "");
        ps_prediction_free(out);
        return PS_ERR_INVALID;
    }
    int V = m->cfg.vocab_size;
    out->first = out->tokens.n > m->cfg.n_ctx ? out->tokens.n - m->cfg.n_ctx : 0;
    out->n_used = out->tokens.n - out->first;
    out->temperature = temperature;
    out->vocab = V;
    out->k = k < 1 ? 1 : (k > V ? V : k);
    out->top = malloc(sizeof(int) * (size_t)out->k);
    out->top_prob = malloc(sizeof(float) * (size_t)out->k);
    out->top_logit = malloc(sizeof(float) * (size_t)out->k);
    out->probs = malloc(sizeof(float) * (size_t)V);
    int *scratch = malloc(sizeof(int) * (size_t)V);
    if (!out->top || !out->top_prob || !out->top_logit || !out->probs || !scratch) {
        free(scratch);
        ps_prediction_free(out);
        return ps_error_set(err, PS_ERR_NOMEM, "prediction: out of memory");
    }
    /* One inference state kept across calls (and models: it follows m by
     * pointer, configuration and m->version, see infer.h), so that a prompt
     * extending the last one, as the explorer predicts on every keystroke,
     * runs only its new tokens.  The lock keeps two threads out of it; the
     * logits it owns are read before unlocking. */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static ps_infer *cache;
    pthread_mutex_lock(&lock);
    rc = ps_infer_attach(&cache, m, err);
    if (!rc)
        rc = ps_infer_prompt(cache, out->tokens.ids + out->first, out->n_used, err);
    if (!rc) {
        const float *logits = ps_infer_logits(cache);
        out->n_nonfinite = ps_logits_check(cache, logits, V, out->nonfinite_at,
                                           sizeof out->nonfinite_at);
        ps_probs(out->probs, logits, V, temperature);
        /* Rank by logit: the order is the same at every temperature and ties
         * are broken the same way, also at temperature 0. */
        ps_topk(logits, V, out->k, out->top, scratch);
        for (int i = 0; i < out->k; i++) {
            out->top_prob[i] = out->probs[out->top[i]];
            out->top_logit[i] = logits[out->top[i]];
        }
    }
    pthread_mutex_unlock(&lock);
    free(scratch);
    if (rc) {
        ps_prediction_free(out);
        return rc;
    }
    out->entropy = ps_entropy(out->probs, V);
    return PS_OK;
}

void ps_prediction_free(ps_prediction *p)
{
    if (!p)
        return;
    ps_tokens_free(&p->tokens);
    free(p->top);
    free(p->top_prob);
    free(p->top_logit);
    free(p->probs);
    memset(p, 0, sizeof *p);
}

int ps_utf8_output(void)
{
    const char *force = getenv("PARAMSCOPE_ASCII");
    if (force && *force && strcmp(force, "0"))
        return 0;
    const char *cs = nl_langinfo(CODESET);
    return cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
}

void ps_render_bar(char *buf, size_t size, double frac, int width, int utf8)
{
    static const char *const eighths[8] = {"", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589"};
    size_t len = strlen(buf);
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    int cells8 = (int)(frac * width * 8 + 0.5);
    for (int i = 0; i < cells8 / 8 && len + 4 < size; i++) {
        const char *s = utf8 ? "\u2588" : "#";
        memcpy(buf + len, s, strlen(s) + 1);
        len += strlen(s);
    }
    if (cells8 % 8 && len + 4 < size) {
        const char *s = utf8 ? eighths[cells8 % 8] : (cells8 % 8 >= 4 ? "+" : "");
        memcpy(buf + len, s, strlen(s) + 1);
    }
}

const char *ps_number_read(const char *text, double *v)
{
    char *end;
    errno = 0;
    double d = strtod(text, &end);
    if (end == text || *end)
        return "is not a number";
    if (isnan(d))
        return "is NaN, not a number";
    if (errno == ERANGE && isinf(d))
        return "is above the range of numbers (beyond about 1.8e308)";
    if (errno == ERANGE && d == 0.0)
        return "is below the range of numbers (nearer 0 than about 2.2e-308; type 0 for zero)";
    *v = d;
    return NULL;
}

char *ps_join_args(int argc, char **argv, int from)
{
    size_t n = 1;
    for (int i = from; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = from; i < argc; i++) {
        if (i > from)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

#define PS_SHOWN_TOKEN_MAX 1024

/* A token escaped for a column of text (cut at PS_SHOWN_TOKEN_MAX). */
static const char *shown_token(const char *t, char buf[PS_SHOWN_TOKEN_MAX])
{
    ps_escape(t ? t : "?", t ? strlen(t) : 1, 0, buf, PS_SHOWN_TOKEN_MAX);
    return buf;
}

void ps_put_token(FILE *out, const char *s)
{
    char buf[PS_SHOWN_TOKEN_MAX];
    if (!s)
        s = "<?>";
    size_t n = strlen(s);
    if (ps_escape(s, n, 0, buf, sizeof buf) < sizeof buf) {
        fputs(buf, out);
        return;
    }
    for (size_t i = 0; i < n; i++) {    /* a long token: byte by byte */
        ps_escape(s + i, 1, 0, buf, sizeof buf);
        fputs(buf, out);
    }
}

void ps_print_prediction(FILE *out, const ps_prediction *p, const ps_tokenizer *tok,
                         const float *baseline, int utf8)
{
    fputs("tokens:", out);
    for (int i = 0; i < p->tokens.n; i++) {
        fputs(p->tokens.unknown[i] ? " [" : " ", out);
        ps_put_token(out, p->tokens.pieces[i]);
        if (p->tokens.unknown[i])
            fputs("]?", out);
    }
    fputc('\n', out);
    if (p->tokens.n_unknown)
        fprintf(out, "  (%d unknown token%s, read as <unk>)\n", p->tokens.n_unknown,
                p->tokens.n_unknown == 1 ? "" : "s");
    if (p->first)
        fprintf(out, "  (the prompt is longer than the model's context: only its last %d tokens are used)\n",
                p->n_used);
    if (p->n_nonfinite) {
        /* no bar and no token: a softmax of NaN picks an arbitrary one */
        char msg[256];
        ps_prediction_nonfinite_msg(p, msg, sizeof msg);
        fprintf(out, "no prediction: %s\n", msg);
        return;
    }
    int wtok = 4;
    char shown_tok[PS_SHOWN_TOKEN_MAX];
    for (int i = 0; i < p->k; i++) {
        int w = (int)strlen(shown_token(ps_tokenizer_token(tok, p->top[i]), shown_tok));
        wtok = w > wtok ? w : wtok;
    }
    wtok = wtok > 20 ? 20 : wtok;
    fprintf(out, "next token, temperature %g, entropy %.2f nats:\n", (double)p->temperature, p->entropy);
    double top = p->k ? p->top_prob[0] : 1.0;
    for (int i = 0; i < p->k; i++) {
        char bar[256] = "";
        ps_render_bar(bar, sizeof bar, top > 0 ? p->top_prob[i] / top : 0, 30, utf8);
        /* pad by display cells, not bytes */
        int cells = (int)(p->top_prob[i] / (top > 0 ? top : 1) * 30 * 8 + 0.5);
        int shown = cells / 8 + (cells % 8 && (utf8 || cells % 8 >= 4) ? 1 : 0);
        fprintf(out, "  %-*s %s%*s %6.2f%%", wtok, shown_token(ps_tokenizer_token(tok, p->top[i]), shown_tok), bar,
                31 - shown, "", 100.0 * p->top_prob[i]);
        if (baseline) {
            double d = 100.0 * (p->top_prob[i] - baseline[p->top[i]]);
            if (d >= 0.005)
                fprintf(out, "  +%.2f", d);
            else if (d <= -0.005)
                fprintf(out, "  -%.2f", -d);
            else
                fputs("   =", out);
        }
        fputc('\n', out);
    }
}

#include <jansson.h>

/* Text as JSON: a string when it is valid UTF-8, else its bytes. */
json_t *ps_json_text(const char *t)
{
    if (!t)
        return json_null();
    size_t n = strlen(t);
    if (ps_utf8_valid(t, n))
        return json_stringn(t, n);
    json_t *o = json_object(), *bytes = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(bytes, json_integer((unsigned char)t[i]));
    json_object_set_new(o, "bytes", bytes);
    return o;
}

json_t *ps_json_number(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

char *ps_prediction_json(const ps_prediction *p, const ps_tokenizer *tok, const char *prompt)
{
    json_t *o = json_object(), *toks = json_array(), *ids = json_array(), *unk = json_array(), *top = json_array();
    for (int i = 0; i < p->tokens.n; i++) {
        json_array_append_new(toks, ps_json_text(p->tokens.pieces[i]));
        json_array_append_new(ids, json_integer(p->tokens.ids[i]));
        json_array_append_new(unk, json_boolean(p->tokens.unknown[i]));
    }
    int ok = !p->n_nonfinite;
    for (int i = 0; i < p->k; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "id", json_integer(p->top[i]));
        json_object_set_new(e, "token", ps_json_text(ps_tokenizer_token(tok, p->top[i])));
        /* with a non-finite logit anywhere the probabilities mean nothing */
        json_object_set_new(e, "prob", ok ? ps_json_number(p->top_prob[i]) : json_null());
        json_object_set_new(e, "logit", ps_json_number(p->top_logit[i]));
        json_object_set_new(e, "finite", json_boolean(ok && isfinite(p->top_logit[i])));
        json_array_append_new(top, e);
    }
    json_object_set_new(o, "prompt", ps_json_text(prompt));
    json_object_set_new(o, "tokens", toks);
    json_object_set_new(o, "ids", ids);
    json_object_set_new(o, "unknown", unk);
    json_object_set_new(o, "truncated", json_integer(p->first));
    json_object_set_new(o, "temperature", json_real(p->temperature));
    json_object_set_new(o, "finite", json_boolean(ok));
    json_object_set_new(o, "nonfinite_logits", json_integer(p->n_nonfinite));
    json_object_set_new(o, "nonfinite_at", ok ? json_null() : json_string(p->nonfinite_at));
    json_object_set_new(o, "entropy", ok ? ps_json_number(p->entropy) : json_null());
    json_object_set_new(o, "top", top);
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    return s;
}

/* ---- numbers for people ---- */

const char *ps_fmt_count(size_t n, char *buf, size_t size)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

const char *ps_fmt_human(double n, char *buf, size_t size)
{
    static const char *const unit[] = {"", "K", "M", "B", "T"};
    int u = 0;
    while (n >= 999.5 && u < 4) {
        n /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f", n);
    else
        snprintf(buf, size, n < 9.95 ? "%.1f%s" : "%.0f%s", n, unit[u]);
    return buf;
}

/* Decimal units, as `info` and the file sizes people compare with (ls -h
 * --si, disk vendors) use: one convention everywhere. */
const char *ps_fmt_bytes(double b, char *buf, size_t size)
{
    static const char *const unit[] = {"bytes", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000.0 && u < 4) {
        b /= 1000.0;
        u++;
    }
    snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", b, unit[u]);
    return buf;
}

