/* Commands that change parameters: ADDR = VALUE, scale, add, noise, zero,
 * prune, quantize, ablate; and the journal's undo, redo, reset, diff and
 * history.
 *
 * Every change goes through the session's journal (perturb.h), which keeps
 * the exact bits it overwrote, so that undo and reset give back the file's
 * values bit for bit.  A handler parses and checks all its arguments before
 * the journal touches anything, and the journal itself changes nothing when
 * it fails, so a failed command leaves the model as it was.  Each entry is
 * named after what the person typed ("scale h.0.attn.q[3] 0"), which is what
 * `undo` and `history` show. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/sample.h"
#include "repl/addr.h"
#include "repl/command.h"

#define GROUP "Changing parameters"
#define DIFF_TOP_MAX 5

/* ---- helpers ---- */

/* An address and the journal's regions for it. */
typedef struct target {
    addr_view v;
    ps_region reg[ADDR_MAX_REGIONS];
    int n;
    size_t numel;
} target;

static int parse_target(ps_session *s, const char *text, target *t, ps_out *out)
{
    int rc = addr_parse(s->lm.model, s->lm.tok, text, &t->v, &out->err);
    if (rc)
        return rc;
    t->n = t->v.n_regions;
    for (int i = 0; i < t->n; i++) {
        const addr_region *r = &t->v.regions[i];
        t->reg[i] = ps_region_block(r->param, r->row0, r->rows, r->col0, r->cols);
    }
    t->numel = addr_view_numel(&t->v);
    return PS_OK;
}

/* "h.0.attn.q[3] (64 values in h.0.attn.c_attn.weight)": the name, how many
 * values and, for a named view, the tensors they live in; a single number is
 * just its name. */
static void describe(const target *t, char *buf, size_t size)
{
    char n[32];
    size_t len = (size_t)snprintf(buf, size, "%s", t->v.name);
    if (t->v.ndim == 0 || len >= size)
        return;
    len += (size_t)snprintf(buf + len, size - len, " (%s value%s",
                            ps_fmt_count(t->numel, n, sizeof n), t->numel == 1 ? "" : "s");
    if (t->v.base != ADDR_BASE_TENSOR) {
        for (int i = 0; i < t->n && len < size; i++) {
            int seen = 0;
            for (int k = 0; k < i; k++)
                seen |= t->reg[k].param == t->reg[i].param;
            if (!seen)
                len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : " in ",
                                        t->reg[i].param->name);
        }
    }
    if (len < size)
        snprintf(buf + len, size - len, ")");
}

/* A number for a float parameter.  Parameters are kept finite (the journal
 * refuses an edit that would make a value NaN or infinite, see perturb.h),
 * so inf is refused here, with the same words as NaN, and finite doubles
 * beyond float32 rather than turned into infinity. */
static int parse_float(const char *text, const char *what, float *v, ps_out *out)
{
    double d = 0;
    if (ps_parse_double(text, what, &d, out))
        return out->err.code;
    if (isinf(d))
        return ps_fail(out, PS_ERR_RANGE, "%s: '%s' is infinite; parameters are kept finite "
                       "(NaN and infinities are refused)", what, text);
    if (!isfinite((float)d))
        return ps_fail(out, PS_ERR_RANGE, "%s: %s is beyond float32's range (about +-3.4e38)",
                       what, text);
    *v = (float)d;
    return PS_OK;
}

/* Applies e and prints nothing; on success the caller reports. */
static int apply(ps_session *s, const target *t, ps_edit *e, const char *label,
                 ps_perturb_result *res, ps_out *out)
{
    e->label = label;
    e->keep_finite = 1;       /* NaN and inf are refused, also as results */
    return ps_perturb_edit(s->journal, t->reg, t->n, e, res, &out->err);
}

/* The tail every edit's line ends with: a warning when nothing changed, and
 * the journal's cap dropping old entries. */
static void finish_line(FILE *f, const ps_perturb_result *res)
{
    if (res->n_changed == 0)
        fputs(" (no value changed)", f);
    fputc('\n', f);
    if (res->n_dropped > 0)
        fprintf(f, "(the journal is full: its %d oldest edit%s can no longer be undone)\n",
                res->n_dropped, res->n_dropped == 1 ? "" : "s");
}

/* ---- set, scale, add, noise, zero ---- */

static int cmd_assign(ps_session *s, int argc, char **argv, ps_out *out)
{
    const char *value = argc >= 3 && !strcmp(argv[1], "=") ? argv[2] : argv[argc - 1];
    target t;
    float x = 0;
    int rc = parse_target(s, argv[0], &t, out);
    if (rc || (rc = parse_float(value, "VALUE", &x, out)))
        return rc;
    float old = *addr_region_at(&t.v.regions[0], 0, 0);
    char label[PS_PERTURB_NAME_MAX], what[ADDR_NAME_MAX + 256];
    snprintf(label, sizeof label, "%s = %g", t.v.name, (double)x);
    ps_edit e = {.op = PS_PERTURB_OP_SET, .value = x};
    ps_perturb_result res;
    if ((rc = apply(s, &t, &e, label, &res, out)))
        return rc;
    describe(&t, what, sizeof what);
    if (t.v.ndim == 0)
        fprintf(out->f, "set %s to %.9g (was %.9g)", what, (double)x, (double)old);
    else
        fprintf(out->f, "set %s to %.9g", what, (double)x);
    finish_line(out->f, &res);
    return PS_OK;
}

/* scale and add: one number applied to every value. */
static int edit_by(ps_session *s, char **argv, ps_out *out, ps_perturb_op op)
{
    int scale = op == PS_PERTURB_OP_SCALE;
    target t;
    float x = 0;
    int rc = parse_target(s, argv[0], &t, out);
    if (rc || (rc = parse_float(argv[1], scale ? "scale: FACTOR" : "add: VALUE", &x, out)))
        return rc;
    char label[PS_PERTURB_NAME_MAX], what[ADDR_NAME_MAX + 256];
    snprintf(label, sizeof label, "%s %s %g", scale ? "scale" : "add", t.v.name, (double)x);
    ps_edit e = {.op = op, .value = x};
    ps_perturb_result res;
    if ((rc = apply(s, &t, &e, label, &res, out)))
        return rc;
    describe(&t, what, sizeof what);
    if (scale)
        fprintf(out->f, "scaled %s by %g", what, (double)x);
    else
        fprintf(out->f, "added %g to %s", (double)x, what);
    finish_line(out->f, &res);
    return PS_OK;
}

static int cmd_scale(ps_session *s, int argc, char **argv, ps_out *out)
{
    return edit_by(s, argv, out, PS_PERTURB_OP_SCALE);
}

static int cmd_add(ps_session *s, int argc, char **argv, ps_out *out)
{
    return edit_by(s, argv, out, PS_PERTURB_OP_ADD);
}

/* The seed comes from the session's generator unless given; the generator
 * moves on only when the edit succeeds. */
static int cmd_noise(ps_session *s, int argc, char **argv, ps_out *out)
{
    target t;
    float sigma = 0;
    int rc = parse_target(s, argv[0], &t, out);
    if (rc || (rc = parse_float(argv[1], "noise: SIGMA", &sigma, out)))
        return rc;
    if (!(sigma >= 0.0f) || !isfinite(sigma))
        return ps_fail(out, PS_ERR_RANGE, "noise: SIGMA %s must be a finite number >= 0", argv[1]);
    ps_rng rng = s->rng;
    uint64_t seed;
    if (argc > 2) {
        long l;
        if (ps_parse_long(argv[2], "noise: SEED", 0, 0x7fffffffffffffffL, &l, out))
            return out->err.code;
        seed = (uint64_t)l;
    } else {
        seed = ps_rng_u64(&rng) % 1000000;   /* short enough to read and retype */
    }
    char label[PS_PERTURB_NAME_MAX], what[ADDR_NAME_MAX + 256];
    snprintf(label, sizeof label, "noise %s %g seed %llu", t.v.name, (double)sigma,
             (unsigned long long)seed);
    ps_edit e = {.op = PS_PERTURB_OP_NOISE, .value = sigma, .seed = seed};
    ps_perturb_result res;
    if ((rc = apply(s, &t, &e, label, &res, out)))
        return rc;
    s->rng = rng;
    describe(&t, what, sizeof what);
    fprintf(out->f, "added noise (sigma %g, seed %llu) to %s", (double)sigma,
            (unsigned long long)seed, what);
    finish_line(out->f, &res);
    return PS_OK;
}

static int cmd_zero(ps_session *s, int argc, char **argv, ps_out *out)
{
    target t;
    int rc = parse_target(s, argv[0], &t, out);
    if (rc)
        return rc;
    char label[PS_PERTURB_NAME_MAX], what[ADDR_NAME_MAX + 256];
    snprintf(label, sizeof label, "zero %s", t.v.name);
    ps_edit e = {.op = PS_PERTURB_OP_ZERO};
    ps_perturb_result res;
    if ((rc = apply(s, &t, &e, label, &res, out)))
        return rc;
    describe(&t, what, sizeof what);
    fprintf(out->f, "zeroed %s", what);
    finish_line(out->f, &res);
    return PS_OK;
}

/* ---- prune, quantize ---- */

static int cmd_prune(ps_session *s, int argc, char **argv, ps_out *out)
{
    target t;
    int rc = parse_target(s, argv[0], &t, out);
    if (rc)
        return rc;
    /* "10" and "10%" both mean ten percent. */
    char num[64];
    snprintf(num, sizeof num, "%s", argv[1]);
    size_t len = strlen(num);
    if (len > 1 && num[len - 1] == '%')
        num[len - 1] = '\0';
    double pct = 0;
    if (ps_parse_double(num, "prune: PERCENT", &pct, out))
        return out->err.code;
    if (!(pct >= 0 && pct <= 100))
        return ps_fail(out, PS_ERR_RANGE, "prune: PERCENT %s is not in [0, 100]", argv[1]);
    char label[PS_PERTURB_NAME_MAX], what[ADDR_NAME_MAX + 256], a[32];
    snprintf(label, sizeof label, "prune %s %g%%", t.v.name, pct);
    ps_edit e = {.op = PS_PERTURB_OP_PRUNE, .percent = pct};
    ps_perturb_result res;
    if ((rc = apply(s, &t, &e, label, &res, out)))
        return rc;
    describe(&t, what, sizeof what);
    fprintf(out->f, "pruned %s: zeroed the %s smallest |x| (%g%%)", what,
            ps_fmt_count(res.n_zeroed, a, sizeof a), pct);
    finish_line(out->f, &res);
    return PS_OK;
}

static int cmd_quantize(ps_session *s, int argc, char **argv, ps_out *out)
{
    target t;
    long bits = 0;
    int rc = parse_target(s, argv[0], &t, out);
    if (rc)
        return rc;
    if (ps_parse_long(argv[1], "quantize: BITS", 2, 16, &bits, out))
        return out->err.code;
    char label[PS_PERTURB_NAME_MAX], what[ADDR_NAME_MAX + 256], q[32], f32[32];
    snprintf(label, sizeof label, "quantize %s %ld bits", t.v.name, bits);
    ps_edit e = {.op = PS_PERTURB_OP_QUANTIZE, .bits = (int)bits};
    ps_perturb_result res;
    if ((rc = apply(s, &t, &e, label, &res, out)))
        return rc;
    describe(&t, what, sizeof what);
    double full = 4.0 * (double)res.n_values;
    fprintf(out->f, "quantized %s to %ld bits", what, bits);
    finish_line(out->f, &res);
    fprintf(out->f, "  mean error %.3g, max %.3g; %s instead of %s as float32 (%.1f%%)\n",
            res.quant_mean_err, res.quant_max_err, ps_fmt_bytes((double)res.quant_bytes, q, sizeof q),
            ps_fmt_bytes(full, f32, sizeof f32), full > 0 ? 100.0 * (double)res.quant_bytes / full : 0);
    return PS_OK;
}

/* ---- ablate ---- */

/* "3.7" -> 3 and 7. */
static int parse_pair(const char *text, const char *cmd, const char *second, long *a,
                      long *b, ps_out *out)
{
    char *end;
    const char *p = text;
    if (*p < '0' || *p > '9')
        goto bad;
    *a = strtol(p, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9' || *a > 1000000)
        goto bad;
    *b = strtol(end + 1, &end, 10);
    if (*end || *b > 100000000)
        goto bad;
    return PS_OK;
bad:
    return ps_fail(out, PS_ERR_INVALID, "%s: '%s' is not LAYER.%s, as in 0.3", cmd, text,
                   second);
}

static int ablate(ps_session *s, const char *arg, int neuron, ps_out *out)
{
    long layer = 0, idx = 0;
    const char *cmd = neuron ? "ablate neuron" : "ablate head";
    if (parse_pair(arg, cmd, neuron ? "NEURON" : "HEAD", &layer, &idx, out))
        return out->err.code;
    char addr[96];
    snprintf(addr, sizeof addr, neuron ? "h.%ld.mlp.neuron[%ld]" : "h.%ld.attn.head[%ld]",
             layer, idx);
    target t;
    int rc = parse_target(s, addr, &t, out);
    if (rc)
        return rc;
    char label[PS_PERTURB_NAME_MAX], n[32];
    snprintf(label, sizeof label, "%s %s", cmd, arg);
    ps_edit e = {.op = PS_PERTURB_OP_ZERO};
    ps_perturb_result res;
    if ((rc = apply(s, &t, &e, label, &res, out)))
        return rc;
    if (neuron)
        fprintf(out->f, "ablated neuron %ld.%ld: zeroed its c_fc column, bias and c_proj row "
                "(%s values)", layer, idx, ps_fmt_count(res.n_values, n, sizeof n));
    else
        fprintf(out->f, "ablated head %ld.%ld: zeroed its q, k, v and c_proj rows (%s values)",
                layer, idx, ps_fmt_count(res.n_values, n, sizeof n));
    finish_line(out->f, &res);
    return PS_OK;
}

static int cmd_ablate_head(ps_session *s, int argc, char **argv, ps_out *out)
{
    return ablate(s, argv[0], 0, out);
}

static int cmd_ablate_neuron(ps_session *s, int argc, char **argv, ps_out *out)
{
    return ablate(s, argv[0], 1, out);
}

/* ---- undo, redo, reset ---- */

/* The name of entry i, copied (the journal may drop it). */
static void entry_name(const ps_perturb *j, int i, char *buf, size_t size)
{
    ps_perturb_entry e;
    if (ps_perturb_entry_info(j, i, &e, NULL) == PS_OK)
        snprintf(buf, size, "%s", e.name);
    else
        snprintf(buf, size, "entry %d", i + 1);
}

static int cmd_undo(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_perturb *j = s->journal;
    int cur = ps_perturb_cursor(j);
    if (cur == 0)
        return ps_fail(out, PS_ERR_STATE, ps_perturb_count(j) ? "nothing to undo (`redo` goes forward)"
                                                               : "nothing to undo: no edits yet");
    char name[PS_PERTURB_NAME_MAX];
    entry_name(j, cur - 1, name, sizeof name);
    int rc = ps_perturb_undo(j, &out->err);
    if (rc)
        return rc;
    fprintf(out->f, "undid: %s", name);
    if (cur - 1 > 0)
        fprintf(out->f, " (%d more to undo)", cur - 1);
    fputc('\n', out->f);
    return PS_OK;
}

static int cmd_redo(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_perturb *j = s->journal;
    int cur = ps_perturb_cursor(j), count = ps_perturb_count(j);
    if (cur == count)
        return ps_fail(out, PS_ERR_STATE, "nothing to redo");
    char name[PS_PERTURB_NAME_MAX];
    entry_name(j, cur, name, sizeof name);
    int rc = ps_perturb_redo(j, &out->err);
    if (rc)
        return rc;
    fprintf(out->f, "redid: %s", name);
    if (count - cur - 1 > 0)
        fprintf(out->f, " (%d more to redo)", count - cur - 1);
    fputc('\n', out->f);
    return PS_OK;
}

/* A window of a tensor back to the file's values: the baseline's values
 * assigned, as one entry.  A tensor without a baseline was never touched. */
static int reset_view(ps_session *s, const target *t, ps_out *out)
{
    float *vals = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    if (!vals)
        return ps_fail(out, PS_ERR_NOMEM, "reset: out of memory");
    size_t k = 0, differ = 0;
    for (int i = 0; i < t->n; i++) {
        const addr_region *r = &t->v.regions[i];
        const float *base = ps_perturb_baseline(s->journal, r->param);
        size_t ld = (size_t)r->param->shape[1];
        for (size_t a = 0; a < r->rows; a++)
            for (size_t b = 0; b < r->cols; b++, k++) {
                const float *now = addr_region_at(r, a, b);
                vals[k] = base ? base[(r->row0 + a) * ld + r->col0 + b] : *now;
                differ += memcmp(&vals[k], now, sizeof(float)) != 0;
            }
    }
    char what[ADDR_NAME_MAX + 256];
    describe(t, what, sizeof what);
    if (differ == 0) {
        free(vals);
        fprintf(out->f, "%s already has the file's values\n", what);
        return PS_OK;
    }
    char label[PS_PERTURB_NAME_MAX], n[32];
    snprintf(label, sizeof label, "reset %s", t->v.name);
    ps_edit e = {.op = PS_PERTURB_OP_ASSIGN, .values = vals, .label = label};
    ps_perturb_result res;
    int rc = ps_perturb_edit(s->journal, t->reg, t->n, &e, &res, &out->err);
    free(vals);
    if (rc)
        return rc;
    fprintf(out->f, "reset %s to the file's values (%s changed)", what,
            ps_fmt_count(res.n_changed, n, sizeof n));
    finish_line(out->f, &res);
    return PS_OK;
}

static int cmd_reset(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_perturb_result res;
    char n[32];
    int rc;
    if (argc == 0) {
        ps_model *m = s->lm.model;
        ps_param_diff *d = malloc(sizeof *d * (size_t)m->n_params);
        int nd = 0;
        if (!d)
            return ps_fail(out, PS_ERR_NOMEM, "reset: out of memory");
        rc = ps_perturb_diff(s->journal, d, m->n_params, &nd, &out->err);
        free(d);
        if (rc || (rc = ps_perturb_reset_all(s->journal, &res, &out->err)))
            return rc;
        if (!res.recorded) {
            fputs("nothing to reset: every parameter has the file's values\n", out->f);
            return PS_OK;
        }
        fprintf(out->f, "reset %d tensor%s (%s values) to the file's values; `undo` takes it back",
                nd, nd == 1 ? "" : "s", ps_fmt_count(res.n_values, n, sizeof n));
        finish_line(out->f, &res);
        return PS_OK;
    }
    target t;
    if ((rc = parse_target(s, argv[0], &t, out)))
        return rc;
    if (t.v.kind != ADDR_KIND_TENSOR)
        return reset_view(s, &t, out);
    rc = ps_perturb_reset_param(s->journal, t.v.regions[0].param, &res, &out->err);
    if (rc)
        return rc;
    char what[ADDR_NAME_MAX + 256];
    describe(&t, what, sizeof what);
    if (!res.recorded)
        fprintf(out->f, "%s already has the file's values\n", what);
    else {
        fprintf(out->f, "reset %s to the file's values", what);
        finish_line(out->f, &res);
    }
    return PS_OK;
}

/* ---- diff ---- */

/* The prompt's prediction under the file's values: the changed tensors'
 * baselines are copied in, the model is run, and the current values are
 * copied back, bit for bit (not through the journal: nothing changes; only
 * m->version moves on, twice, so that cached inference recomputes). */
static int predict_file_values(ps_session *s, const ps_param_diff *d, int nd, float temp,
                               int k, ps_prediction *p, ps_error *err)
{
    float **saved = calloc((size_t)nd, sizeof *saved);
    int rc = PS_OK, i;
    if (!saved)
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    for (i = 0; i < nd; i++) {
        const float *base = ps_perturb_baseline(s->journal, d[i].param);
        saved[i] = malloc(sizeof(float) * d[i].param->numel);
        if (!saved[i] || !base) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
            free(saved[i]);
            break;
        }
        memcpy(saved[i], d[i].param->data, sizeof(float) * d[i].param->numel);
        memcpy(d[i].param->data, base, sizeof(float) * d[i].param->numel);
    }
    /* Hand-written values: the version tells cached inference (infer.h). */
    s->lm.model->version++;
    if (rc == PS_OK)
        rc = ps_predict(p, s->lm.model, s->lm.tok, s->prompt, temp, k, err);
    while (i-- > 0) {
        memcpy(d[i].param->data, saved[i], sizeof(float) * d[i].param->numel);
        free(saved[i]);
    }
    s->lm.model->version++;
    free(saved);
    return rc;
}

static void diff_predictions(ps_session *s, const ps_param_diff *d, int nd, ps_out *out)
{
    FILE *f = out->f;
    if (!s->prompt) {
        fputs("(run `predict TEXT` to see here how its predictions moved)\n", f);
        return;
    }
    if (s->trainer && s->trainer->next != PS_PHASE_FORWARD) {
        fputs("(predictions not compared: a training step is half done, and a prediction\n"
              "would overwrite its activations)\n", f);
        return;
    }
    int k = s->set.top < DIFF_TOP_MAX ? s->set.top : DIFF_TOP_MAX;
    ps_prediction now, file;
    ps_error err = {0};
    if (ps_predict(&now, s->lm.model, s->lm.tok, s->prompt, s->set.temperature, k, &err)) {
        fprintf(f, "(predictions not compared: %s)\n", err.msg);
        return;
    }
    if (predict_file_values(s, d, nd, s->set.temperature, k, &file, &err)) {
        fprintf(f, "(predictions not compared: %s)\n", err.msg);
        ps_prediction_free(&now);
        return;
    }
    if (now.n_nonfinite || file.n_nonfinite) {
        char msg[256];
        const ps_prediction *bad = now.n_nonfinite ? &now : &file;
        ps_prediction_nonfinite_msg(bad, msg, sizeof msg);
        fprintf(f, "(predictions not compared: with the %s values %s)\n",
                now.n_nonfinite ? "current" : "file's", msg);
        ps_prediction_free(&now);
        ps_prediction_free(&file);
        return;
    }
    /* The tokens on top now, then those on top before that dropped out. */
    int ids[2 * DIFF_TOP_MAX], n = 0;
    for (int i = 0; i < now.k; i++)
        ids[n++] = now.top[i];
    for (int i = 0; i < file.k; i++) {
        int seen = 0;
        for (int j = 0; j < n; j++)
            seen |= ids[j] == file.top[i];
        if (!seen)
            ids[n++] = file.top[i];
    }
    int V = s->lm.model->cfg.vocab_size, tok_w = 10;
    char shown[2 * DIFF_TOP_MAX][128];        /* control bytes escaped */
    for (int i = 0; i < n; i++) {
        const char *t = ps_tokenizer_token(s->lm.tok, ids[i]);
        ps_escape(t ? t : "<?>", t ? strlen(t) : 3, 0, shown[i], sizeof shown[i]);
        int w = (int)strlen(shown[i]);
        tok_w = w > tok_w && w <= 24 ? w : tok_w;
    }
    double tv = 0;
    for (int i = 0; i < V; i++)
        tv += fabs((double)now.probs[i] - (double)file.probs[i]);
    fputs("next token after \"", f);
    ps_put_token(f, s->prompt);
    fprintf(f, "\": %.1f%% of the probability moved\n", 50.0 * tv);
    fprintf(f, "  %-*s %8s %8s %8s\n", tok_w, "token", "now", "file", "change");
    for (int i = 0; i < n; i++) {
        double pn = 100.0 * now.probs[ids[i]], pf = 100.0 * file.probs[ids[i]];
        fprintf(f, "  %-*s %7.2f%% %7.2f%% %+8.2f%s\n", tok_w, shown[i], pn, pf, pn - pf,
                i >= now.k ? "  (top before)" : "");
    }
    ps_prediction_free(&now);
    ps_prediction_free(&file);
}

static int cmd_diff(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_model *m = s->lm.model;
    ps_param_diff *d = malloc(sizeof *d * (size_t)m->n_params);
    int nd = 0;
    if (!d)
        return ps_fail(out, PS_ERR_NOMEM, "diff: out of memory");
    int rc = ps_perturb_diff(s->journal, d, m->n_params, &nd, &out->err);
    if (rc) {
        free(d);
        return rc;
    }
    FILE *f = out->f;
    if (nd == 0) {
        fputs("every parameter has the file's values\n", f);
        free(d);
        return PS_OK;
    }
    int name_w = 6, cnt_w = 14;
    size_t changed = 0;
    char a[32], b[32], cnt[72];
    for (int i = 0; i < nd; i++) {
        int w = (int)strlen(d[i].param->name);
        name_w = w > name_w ? w : name_w;
        w = snprintf(cnt, sizeof cnt, "%s / %s", ps_fmt_count(d[i].n_changed, a, sizeof a),
                     ps_fmt_count(d[i].param->numel, b, sizeof b));
        cnt_w = w > cnt_w ? w : cnt_w;
        changed += d[i].n_changed;
    }
    fprintf(f, "%-*s  %*s %13s %13s\n", name_w, "tensor", cnt_w, "values changed",
            "L2 of change", "max |change|");
    for (int i = 0; i < nd; i++) {
        snprintf(cnt, sizeof cnt, "%s / %s", ps_fmt_count(d[i].n_changed, a, sizeof a),
                 ps_fmt_count(d[i].param->numel, b, sizeof b));
        fprintf(f, "%-*s  %*s %13.4g %13.4g", name_w, d[i].param->name, cnt_w, cnt, d[i].l2,
                d[i].max_abs);
        if (d[i].n_nonfinite)
            fprintf(f, "  (%zu NaN/Inf)", d[i].n_nonfinite);
        fputc('\n', f);
    }
    char n[32];
    fprintf(f, "%d tensor%s differ%s from the file, %s values in all\n", nd, nd == 1 ? "" : "s",
            nd == 1 ? "s" : "", ps_fmt_count(changed, n, sizeof n));
    diff_predictions(s, d, nd, out);
    free(d);
    return PS_OK;
}

/* ---- history ---- */

static int cmd_history(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_perturb *j = s->journal;
    int count = ps_perturb_count(j), cur = ps_perturb_cursor(j);
    FILE *f = out->f;
    uint64_t dropped = ps_perturb_dropped(j);
    if (count == 0) {
        fprintf(f, "no edits yet%s\n", dropped ? " (older ones were dropped)" : "");
        return PS_OK;
    }
    char n[32], b[32], c[32];
    int num_w = count >= 100 ? 3 : count >= 10 ? 2 : 1;
    for (int i = 0; i <= count; i++) {
        if (i == cur)
            fprintf(f, "%*s  -- now%s --\n", num_w, "",
                    cur < count ? " (redo re-applies what follows)" : "");
        if (i == count)
            break;
        ps_perturb_entry e;
        if (ps_perturb_entry_info(j, i, &e, &out->err))
            return out->err.code;
        fprintf(f, "%*d  %-44s %9s value%s%s\n", num_w, i + 1, e.name,
                ps_fmt_count(e.n_values, n, sizeof n), e.n_values == 1 ? "" : "s",
                e.applied ? "" : "  (undone)");
    }
    fprintf(f, "%d entr%s, %d applied; %s stored (cap %s)", count, count == 1 ? "y" : "ies", cur,
            ps_perturb_bytes(j) ? ps_fmt_bytes((double)ps_perturb_bytes(j), b, sizeof b) : "0 bytes",
            ps_fmt_bytes((double)ps_perturb_cap(j), c, sizeof c));
    if (dropped)
        fprintf(f, "; %llu older dropped", (unsigned long long)dropped);
    fputc('\n', f);
    return PS_OK;
}

/* ---- the table ---- */

const ps_command ps_cmds_edit[] = {
    {"=", "ADDR = VALUE", "set one value, or every value of ADDR",
     "ADDR = VALUE writes VALUE into every value ADDR covers:\n"
     "  h.0.attn.c_attn.weight[3,17] = 0.5     wte[\"sky\"] = 0     h.0.attn.q[2] = 0\n"
     "`undo` gives the old values back.  Parameters are kept finite: NaN and\n"
     "infinities are refused, here and as the result of scale, add and noise\n"
     "(an edit that would overflow float32 changes nothing and says where).\n",
     GROUP, PS_COMPLETE_ADDR, 2, 3, PS_CMD_EDITS, cmd_assign},
    {"scale", "ADDR FACTOR", "multiply the values at ADDR by FACTOR",
     "Multiplies every value at ADDR by FACTOR (in float32); scale by 0 to\n"
     "silence a part, by -1 to flip its sign, by 2 to make it louder.\n",
     GROUP, PS_COMPLETE_ADDR, 2, 2, PS_CMD_EDITS, cmd_scale},
    {"add", "ADDR VALUE", "add VALUE to the values at ADDR", "",
     GROUP, PS_COMPLETE_ADDR, 2, 2, PS_CMD_EDITS, cmd_add},
    {"noise", "ADDR SIGMA [SEED]", "add Gaussian noise of std SIGMA",
     "Adds SIGMA times a standard normal number to every value at ADDR.  The\n"
     "seed is drawn from the session's generator (`set seed` restarts it) unless\n"
     "given, and printed, so `noise ADDR SIGMA SEED` repeats an edit exactly.\n",
     GROUP, PS_COMPLETE_ADDR, 2, 3, PS_CMD_EDITS, cmd_noise},
    {"zero", "ADDR", "set the values at ADDR to 0", "",
     GROUP, PS_COMPLETE_ADDR, 1, 1, PS_CMD_EDITS, cmd_zero},
    {"prune", "ADDR PERCENT", "zero the PERCENT smallest |x| at ADDR",
     "Magnitude pruning: of the n values at ADDR, the floor(n * PERCENT / 100)\n"
     "with the smallest |x| become 0.  Large networks often lose little\n"
     "accuracy when many small weights are removed; try it and `predict`.\n",
     GROUP, PS_COMPLETE_ADDR, 2, 2, PS_CMD_EDITS, cmd_prune},
    {"quantize", "ADDR BITS", "round ADDR to BITS-bit levels; report the error",
     "Symmetric quantization of each tensor (each part of a view): with\n"
     "s = max|x| / (2^(BITS-1) - 1), every x becomes round(x / s) * s.\n"
     "Reports the mean and largest error and the storage BITS-bit values would\n"
     "need compared with float32.  BITS 2..16.\n",
     GROUP, PS_COMPLETE_ADDR, 2, 2, PS_CMD_EDITS, cmd_quantize},
    {"ablate head", "LAYER.HEAD", "switch off a head: ablate head 0.3",
     "Zeroes the head's query, key and value weights and biases and its rows of\n"
     "attn.c_proj.weight, so that it adds nothing to the residual stream.\n"
     "The same as `zero h.LAYER.attn.head[HEAD]`.\n",
     GROUP, PS_COMPLETE_NONE, 1, 1, PS_CMD_EDITS, cmd_ablate_head},
    {"ablate neuron", "LAYER.NEURON", "switch off an MLP neuron: ablate neuron 1.42",
     "Zeroes the neuron's column of mlp.c_fc.weight, its bias and its row of\n"
     "mlp.c_proj.weight.  The same as `zero h.LAYER.mlp.neuron[NEURON]`.\n",
     GROUP, PS_COMPLETE_NONE, 1, 1, PS_CMD_EDITS, cmd_ablate_neuron},
    {"undo", "", "take back the last edit", "Restores the exact values the edit overwrote.\n",
     GROUP, PS_COMPLETE_NONE, 0, 0, PS_CMD_EDITS, cmd_undo},
    {"redo", "", "apply again what undo took back", "",
     GROUP, PS_COMPLETE_NONE, 0, 0, PS_CMD_EDITS, cmd_redo},
    {"reset", "[ADDR]", "back to the file's values (all, or ADDR)",
     "Restores the values the model file had (before any edit or training) for\n"
     "every parameter, or only for ADDR.  A reset is itself an edit: `undo`\n"
     "takes it back.\n",
     GROUP, PS_COMPLETE_ADDR, 0, 1, PS_CMD_EDITS, cmd_reset},
    {"diff", "", "what differs from the file; predictions then/now",
     "Lists each tensor whose values differ from the file's: how many values,\n"
     "the L2 norm of the change and its largest |change|.  If a prompt was\n"
     "predicted, also runs it under the file's values (swapped in for the\n"
     "moment) and shows each top token's probability now and then.\n",
     GROUP, PS_COMPLETE_NONE, 0, 0, PS_CMD_EDITS, cmd_diff},
    {"history", "", "the edits so far, and where undo stands", "",
     GROUP, PS_COMPLETE_NONE, 0, 0, PS_CMD_ANY_MODEL, cmd_history},
    {0},
};
