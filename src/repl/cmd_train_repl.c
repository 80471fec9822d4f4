/* Training from the prompt: one phase, one step, or a run, with what each
 * phase did printed so that people can follow learning as it happens. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/probe.h"
#include "repl/command.h"

static int ensure_trainer(ps_session *s, ps_out *out)
{
    return ps_session_trainer(s, &out->err);
}

/* Indices of the k largest values, largest first. */
static int top_indices(const double *v, int n, int k, int *idx)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        int at = m < k ? m : k;
        while (at > 0 && v[i] > v[idx[at - 1]])
            at--;
        if (at >= k)
            continue;
        for (int j = (m < k ? m : k - 1); j > at; j--)
            idx[j] = idx[j - 1];
        idx[at] = i;
        if (m < k)
            m++;
    }
    return m;
}

static void print_phase(ps_session *s, ps_phase ph, FILE *f)
{
    ps_trainer *t = s->trainer;
    ps_model *m = s->lm.model;
    int BT = t->cfg.batch * t->cfg.seq;
    int idx[5];
    switch (ph) {
    case PS_PHASE_FORWARD: {
        fprintf(f, "forward: %d sequences of %d tokens through %d layers (%.1f ms)\n", t->cfg.batch,
                t->cfg.seq, m->cfg.n_layer, t->phase_ms[ph]);
        char *txt = ps_tokenizer_decode(s->lm.tok, t->inputs, t->cfg.seq < 12 ? t->cfg.seq : 12);
        if (txt) {
            fputs("  the first sequence begins: ", f);
            ps_put_token(f, txt);
            fputs(" ...\n", f);
        }
        free(txt);
        break;
    }
    case PS_PHASE_LOSS: {
        double mean = 0;
        float lo = 1, hi = 0;
        for (int i = 0; i < BT; i++) {
            mean += t->target_probs[i];
            lo = t->target_probs[i] < lo ? t->target_probs[i] : lo;
            hi = t->target_probs[i] > hi ? t->target_probs[i] : hi;
        }
        fprintf(f, "loss: %.4f (perplexity %.2f); the right next token got probability %.3f on average (min %.3g, max %.3f)\n",
                (double)t->loss, exp(t->loss), mean / BT, (double)lo, (double)hi);
        fputs("  first targets:", f);
        for (int i = 0; i < 6 && i < BT; i++) {
            fputc(' ', f);
            ps_put_token(f, ps_tokenizer_token(s->lm.tok, t->targets[i]));
            fprintf(f, " %.2f", (double)t->target_probs[i]);
        }
        fputc('\n', f);
        break;
    }
    case PS_PHASE_BACKWARD: {
        fprintf(f, "backward: gradient norm %.4g (%.1f ms); largest per tensor:\n", t->grad_norm, t->phase_ms[ph]);
        int k = top_indices(t->param_grad_norm, m->n_params, 5, idx);
        for (int i = 0; i < k; i++)
            fprintf(f, "  %-28s %.4g\n", m->params[idx[i]].name, t->param_grad_norm[idx[i]]);
        break;
    }
    default: {
        fprintf(f, "update: step %ld done with learning rate %.3g (%s); largest |update| / |weights|:\n", t->step,
                (double)t->lr, ps_optim_kind_name(t->cfg.optim.kind));
        int k = top_indices(t->param_update_ratio, m->n_params, 5, idx);
        for (int i = 0; i < k; i++)
            fprintf(f, "  %-28s %.3g\n", m->params[idx[i]].name, t->param_update_ratio[idx[i]]);
        break;
    }
    }
}

/* After a forward whose loss or logits were not finite: " (the first
 * non-finite value appears in block 0 (attention))", from the activations
 * the forward kept, or "" when they are finite (an earlier batch had it). */
static void nonfinite_where(const ps_session *s, char *buf, size_t size)
{
    char at[48];
    if (ps_model_find_nonfinite(s->lm.model, at, sizeof at))
        snprintf(buf, size, " (the first non-finite value appears in %s)", at);
    else if (size)
        buf[0] = '\0';
}

/* A training step refused for a non-finite loss or gradient: the trainer's
 * message, and where the forward first went non-finite. */
static void print_abandoned(const ps_session *s, ps_out *out)
{
    char where[96];
    nonfinite_where(s, where, sizeof where);
    fprintf(out->f, "%s%s\n", out->err.msg, where);
}

static int cmd_train_phase(ps_session *s, int argc, char **argv, ps_out *out)
{
    int rc = ensure_trainer(s, out);
    if (rc)
        return rc;
    ps_phase ran;
    rc = ps_trainer_phase(s->trainer, &ran, &out->err);
    if (rc == PS_ERR_NUMERIC) {
        print_abandoned(s, out);
        return PS_OK;
    }
    if (rc)
        return rc;
    print_phase(s, ran, out->f);
    if (ran == PS_PHASE_UPDATE)
        ps_session_params_changed(s);
    fprintf(out->f, "next phase: %s\n", ps_phase_name(s->trainer->next));
    return PS_OK;
}

static int after_step(ps_session *s, ps_out *out)
{
    ps_trainer *t = s->trainer;
    fprintf(out->f, "step %ld: loss %.4f, gradient norm %.3g, lr %.3g", t->step, (double)t->loss,
            t->grad_norm, (double)t->lr);
    if (s->eval_every > 0 && t->step % s->eval_every == 0 && t->n_tokens > t->n_train) {
        float v;
        int rc = ps_trainer_eval(t, 8, &v, &out->err);
        if (rc) {
            fputc('\n', out->f);
            return rc;
        }
        char where[96] = "";
        if (!isfinite(v))
            nonfinite_where(s, where, sizeof where);
        fprintf(out->f, isfinite(v) ? ", validation %.4f" : ", validation loss not finite (%g)%s",
                (double)v, where);
    }
    fputc('\n', out->f);
    return PS_OK;
}

static int run_steps(ps_session *s, long n, ps_out *out)
{
    int rc = ensure_trainer(s, out);
    if (rc)
        return rc;
    ps_trainer *t = s->trainer;
    if (t->next != PS_PHASE_FORWARD) {
        /* finish the step that `train phase` began */
        rc = ps_trainer_step(t, &out->err);
        ps_session_params_changed(s);
        if (rc && rc != PS_ERR_NUMERIC)
            return rc;
        if (!rc && (rc = after_step(s, out)))
            return rc;
        n--;
    }
    int abandoned = 0;
    for (long i = 0; (n < 0 || i < n) && !s->interrupt; i++) {
        rc = ps_trainer_step(t, &out->err);
        ps_session_params_changed(s);
        if (rc == PS_ERR_NUMERIC) {
            print_abandoned(s, out);
            if (++abandoned < PS_MAX_ABANDONED)
                continue;
            return ps_fail(out, PS_ERR_NUMERIC, "%d steps in a row had a non-finite loss or gradient: "
                           "training diverged (try `train set lr` lower, or `train set clip 1`)", abandoned);
        }
        if (rc)
            return rc;
        abandoned = 0;
        if ((rc = after_step(s, out)))
            return rc;
        fflush(out->f);
    }
    if (s->interrupt)
        fprintf(out->f, "stopped after step %ld\n", t->step);
    return PS_OK;
}

static int cmd_train_step(ps_session *s, int argc, char **argv, ps_out *out)
{
    long n = 1;
    if (argc && ps_parse_long(argv[0], "train step", 1, 1000000, &n, out))
        return out->err.code;
    return run_steps(s, n, out);
}

static int cmd_train_run(ps_session *s, int argc, char **argv, ps_out *out)
{
    fprintf(out->f, "training until stopped (Ctrl-C)\n");
    return run_steps(s, -1, out);
}

static int cmd_train_data(ps_session *s, int argc, char **argv, ps_out *out)
{
    if (argc == 0) {
        fprintf(out->f, "training data: %s (%zu tokens)\n", s->data_path ? s->data_path : "the bundled corpus",
                s->corpus ? s->corpus->n : (size_t)0);
        return PS_OK;
    }
    ps_corpus *c = NULL;
    int rc = ps_corpus_load(&c, argv[0], s->lm.tok, &out->err);
    if (rc)
        return rc;
    char *path = strdup(argv[0]);
    if (!path) {
        ps_corpus_free(c);
        return ps_fail(out, PS_ERR_NOMEM, "out of memory");
    }
    ps_trainer *t = NULL;
    if (s->trainer) {
        /* the trainer points into the corpus: make a new one on the new data */
        rc = ps_trainer_init(&t, s->lm.model, c->ids, c->n, &s->trainer->cfg, &out->err);
        if (rc) {
            ps_corpus_free(c);
            free(path);
            return rc;
        }
        t->step = s->trainer->step;
        ps_trainer_free(s->trainer);
        s->trainer = t;
    }
    ps_corpus_free(s->corpus);
    free(s->data_path);
    s->corpus = c;
    s->data_path = path;
    /* `neuron`'s contexts are positions in the old text */
    ps_neuron_scan_free(s->neuron_scan);
    s->neuron_scan = NULL;
    fprintf(out->f, "training data: %s, %zu tokens (%zu unknown words)\n", path, c->n, c->n_unknown);
    return PS_OK;
}

/* ---- training settings ---- */

static void print_train_settings(const ps_session *s, FILE *f)
{
    const ps_train_config *c = s->trainer ? &s->trainer->cfg : &s->tcfg;
    fprintf(f, "optimizer     %s (beta1 %g, beta2 %g, eps %g)\n", ps_optim_kind_name(c->optim.kind),
            (double)c->optim.beta1, (double)c->optim.beta2, (double)c->optim.eps);
    fprintf(f, "lr            %g\n", (double)c->sched.lr);
    fprintf(f, "schedule      %s (warmup %d, decay-steps %ld, min-lr %g)\n", ps_sched_kind_name(c->sched.kind),
            c->sched.warmup, c->sched.total, (double)c->sched.min_lr);
    fprintf(f, "batch         %d\n", c->batch);
    fprintf(f, "seq           %d\n", c->seq);
    fprintf(f, "weight-decay  %g\n", (double)c->optim.weight_decay);
    fprintf(f, "clip          %g\n", (double)c->clip);
    fprintf(f, "eval-every    %ld\n", s->eval_every);
    fprintf(f, "seed          %llu\n", (unsigned long long)c->seed);
}

/* What an optimizer change did to the settings with per-optimizer defaults:
 * " (weight-decay 0.1 -> 0, beta2 0.95 -> 0.999: Adam's defaults;
 * weight-decay 0.05 stays, as set)". */
static void describe_follow(const ps_optim_config *a, const ps_optim_config *b, char *buf, size_t size)
{
    static const struct { const char *name; unsigned bit; size_t off; } f[] = {
        {"beta1", PS_OPTIM_SET_BETA1, offsetof(ps_optim_config, beta1)},
        {"beta2", PS_OPTIM_SET_BETA2, offsetof(ps_optim_config, beta2)},
        {"eps", PS_OPTIM_SET_EPS, offsetof(ps_optim_config, eps)},
        {"weight-decay", PS_OPTIM_SET_WEIGHT_DECAY, offsetof(ps_optim_config, weight_decay)},
    };
    char moved[192] = "", kept[96] = "";
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        float x, y;
        memcpy(&x, (const char *)a + f[i].off, sizeof x);
        memcpy(&y, (const char *)b + f[i].off, sizeof y);
        char *dst = (b->set & f[i].bit) ? kept : moved;
        size_t cap = (b->set & f[i].bit) ? sizeof kept : sizeof moved, len = strlen(dst);
        if (b->set & f[i].bit)
            snprintf(dst + len, cap - len, "%s%s %g", len ? ", " : "", f[i].name, (double)y);
        else if (x != y)
            snprintf(dst + len, cap - len, "%s%s %g -> %g", len ? ", " : "", f[i].name, (double)x, (double)y);
    }
    if (!moved[0] && !kept[0])
        return;
    snprintf(buf, size, " (%s%s%s%s%s%s)", moved, moved[0] ? ": " : "",
             moved[0] ? ps_optim_kind_name(b->kind) : "", moved[0] ? "'s defaults" : "",
             moved[0] && kept[0] ? "; " : "", kept[0] ? kept : "");
    if (kept[0]) {
        size_t len = strlen(buf) - 1;    /* before the closing parenthesis */
        snprintf(buf + len, size - len, " %s as set)", strchr(kept, ',') ? "stay" : "stays");
    }
}

static int cmd_train_set(ps_session *s, int argc, char **argv, ps_out *out)
{
    if (argc == 0) {
        print_train_settings(s, out->f);
        return PS_OK;
    }
    if (argc != 2)
        return ps_fail(out, PS_ERR_INVALID, "usage: train set [NAME VALUE]");
    ps_train_config c = s->trainer ? s->trainer->cfg : s->tcfg;
    const char *name = argv[0], *val = argv[1];
    double d = 0;
    long l = 0;
    int follow = !strcmp(name, "weight-decay") && !strcmp(val, "default");
    int numeric = strcmp(name, "optimizer") && strcmp(name, "schedule") && !follow;
    if (numeric && ps_parse_double(val, name, &d, out))
        return out->err.code;
    char note[256] = "";
    if (!strcmp(name, "optimizer")) {
        int k = ps_optim_kind_parse(val);
        if (k < 0)
            return ps_fail(out, PS_ERR_INVALID, "optimizer: unknown '%s' (sgd, momentum, adam, adamw)", val);
        ps_optim_config old = c.optim;
        c.optim = ps_optim_with_kind(&old, (ps_optim_kind)k);
        describe_follow(&old, &c.optim, note, sizeof note);
    } else if (follow) {
        c.optim.set &= ~(unsigned)PS_OPTIM_SET_WEIGHT_DECAY;
        c.optim.weight_decay = ps_optim_defaults(c.optim.kind).weight_decay;
        snprintf(note, sizeof note, " (%g, %s's; it follows the optimizer again)",
                 (double)c.optim.weight_decay, ps_optim_kind_name(c.optim.kind));
    } else if (!strcmp(name, "schedule")) {
        int k = ps_sched_kind_parse(val);
        if (k < 0)
            return ps_fail(out, PS_ERR_INVALID, "schedule: unknown '%s' (constant, cosine, step)", val);
        c.sched.kind = (ps_sched_kind)k;
    } else if (!strcmp(name, "lr")) {
        if (!(d > 0 && d <= 10)) return ps_fail(out, PS_ERR_RANGE, "lr: %g is not in (0, 10]", d);
        c.sched.lr = (float)d;
    } else if (!strcmp(name, "min-lr")) {
        if (!(d >= 0 && d <= 10)) return ps_fail(out, PS_ERR_RANGE, "min-lr: %g is not in [0, 10]", d);
        c.sched.min_lr = (float)d;
    } else if (!strcmp(name, "warmup") || !strcmp(name, "decay-steps") || !strcmp(name, "batch") ||
               !strcmp(name, "seq") || !strcmp(name, "eval-every") || !strcmp(name, "seed")) {
        if (d != floor(d) || d < 0 || d > 1e9)
            return ps_fail(out, PS_ERR_INVALID, "%s: '%s' is not a whole number >= 0", name, val);
        l = (long)d;
        if (!strcmp(name, "warmup")) c.sched.warmup = (int)l;
        else if (!strcmp(name, "decay-steps")) c.sched.total = l;
        else if (!strcmp(name, "batch")) c.batch = (int)l;
        else if (!strcmp(name, "seq")) c.seq = (int)l;
        else if (!strcmp(name, "seed")) {
            if (s->trainer)
                return ps_fail(out, PS_ERR_STATE, "seed: training has started; the batch seed is set before the first step");
            c.seed = (uint64_t)l;
        } else {
            s->eval_every = l;
            fprintf(out->f, "eval-every = %ld\n", l);
            return PS_OK;
        }
    } else if (!strcmp(name, "weight-decay")) {
        if (!(d >= 0 && d <= 10)) return ps_fail(out, PS_ERR_RANGE, "weight-decay: %g is not in [0, 10]", d);
        c.optim.weight_decay = (float)d;
        c.optim.set |= PS_OPTIM_SET_WEIGHT_DECAY;   /* stays when the optimizer changes */
    } else if (!strcmp(name, "clip")) {
        if (!(d >= 0)) return ps_fail(out, PS_ERR_RANGE, "clip: %g is negative (0 turns clipping off)", d);
        c.clip = (float)d;
    } else {
        return ps_fail(out, PS_ERR_NOT_FOUND,
                       "no training setting '%s' (optimizer, lr, schedule, warmup, decay-steps, min-lr, batch, seq, weight-decay, clip, eval-every, seed)",
                       name);
    }
    if (s->trainer) {
        int rc = 0;
        if (c.batch != s->trainer->cfg.batch || c.seq != s->trainer->cfg.seq)
            rc = ps_trainer_set_shape(s->trainer, c.batch, c.seq, &out->err);
        if (!rc && memcmp(&c.optim, &s->trainer->cfg.optim, sizeof c.optim))
            rc = ps_trainer_set_optim(s->trainer, &c.optim, &out->err);
        if (rc)
            return rc;
        s->trainer->cfg.sched = c.sched;
        s->trainer->cfg.clip = c.clip;
    } else {
        if (c.batch < 1 || c.batch > 4096)
            return ps_fail(out, PS_ERR_RANGE, "batch: %d is not in [1, 4096]", c.batch);
        if (c.seq < 1 || c.seq > s->lm.model->cfg.n_ctx)
            return ps_fail(out, PS_ERR_RANGE, "seq: %d is not in [1, n_ctx %d]", c.seq, s->lm.model->cfg.n_ctx);
        s->tcfg = c;
    }
    fprintf(out->f, "%s = %s%s\n", name, val, note);
    return PS_OK;
}

/* ---- loss history ---- */

static void chart(FILE *f, const ps_point *pts, size_t n, const char *label, int utf8)
{
    if (n == 0)
        return;
    float lo = pts[0].value, hi = pts[0].value;
    for (size_t i = 0; i < n; i++) {
        lo = pts[i].value < lo ? pts[i].value : lo;
        hi = pts[i].value > hi ? pts[i].value : hi;
    }
    fprintf(f, "%s loss, %zu points, from %.4f to %.4f (min %.4f):\n", label, n, (double)pts[0].value,
            (double)pts[n - 1].value, (double)lo);
    /* at most 16 rows, each the mean of its share of points, as a bar */
    size_t rows = n < 16 ? n : 16;
    for (size_t r = 0; r < rows; r++) {
        size_t a = r * n / rows, b = (r + 1) * n / rows;
        double v = 0;
        for (size_t i = a; i < b; i++)
            v += pts[i].value;
        v /= (double)(b - a);
        char bar[256] = "";
        ps_render_bar(bar, sizeof bar, hi > 0 ? v / hi : 0, 40, utf8);
        fprintf(f, "  step %6ld  %7.4f %s\n", pts[b - 1].step, v, bar);
    }
}

static int cmd_loss(ps_session *s, int argc, char **argv, ps_out *out)
{
    if (!s->trainer || s->trainer->n_train_hist == 0)
        return ps_fail(out, PS_ERR_STATE, "no training yet: `train step` or `train run` first");
    chart(out->f, s->trainer->train_hist, s->trainer->n_train_hist, "training", out->utf8);
    chart(out->f, s->trainer->val_hist, s->trainer->n_val_hist, "validation", out->utf8);
    return PS_OK;
}

static int cmd_eval(ps_session *s, int argc, char **argv, ps_out *out)
{
    int rc = ensure_trainer(s, out);
    if (rc)
        return rc;
    float v;
    rc = ps_trainer_eval(s->trainer, 0, &v, &out->err);
    if (rc)
        return rc;
    if (!isfinite(v)) {
        char where[96];
        nonfinite_where(s, where, sizeof where);
        return ps_fail(out, PS_ERR_NUMERIC, "eval: the validation loss is not finite (%g)%s; "
                       "no loss or perplexity to show", (double)v,
                       where[0] ? where : " (in an earlier validation batch)");
    }
    fprintf(out->f, "validation loss %.4f (perplexity %.2f) over %zu held-out tokens, at step %ld\n", (double)v,
            exp(v), s->trainer->n_tokens - s->trainer->n_train, s->trainer->step);
    return PS_OK;
}

const ps_command ps_cmds_train[] = {
    {"train data", "[FILE]", "train on FILE (default: the bundled corpus)",
     "Reads FILE as training text with the model's tokenizer.  The last tenth is\n"
     "held out for validation.  Without FILE, says what the data is.\n",
     "Training", PS_COMPLETE_FILE, 0, 1, 0, cmd_train_data},
    {"train set", "[NAME VALUE]", "show or change the training settings",
     "Without arguments, lists them.  NAME is one of: optimizer (sgd, momentum,\n"
     "adam, adamw), lr, schedule (constant, cosine, step), warmup, decay-steps,\n"
     "min-lr, batch, seq, weight-decay, clip, eval-every, seed.\n"
     "Settings with per-optimizer defaults (weight-decay: 0.1 for adamw, 0\n"
     "otherwise; beta2: 0.95 for adamw, 0.999 otherwise) follow the optimizer,\n"
     "as `paramscope train --optimizer` gives them, unless set by hand; the\n"
     "optimizer line says what changed.  `train set weight-decay default`\n"
     "makes it follow the optimizer again.\n",
     "Training", PS_COMPLETE_TRAIN, 0, 2, 0, cmd_train_set},
    {"train phase", "", "run one phase: forward, loss, backward or update",
     "A training step is four phases.  forward runs the batch through the model;\n"
     "loss compares its predictions with the right next tokens; backward computes\n"
     "every parameter's gradient; update changes the parameters.  Each call runs\n"
     "one and prints what it did.  After backward, `grad ADDR` shows gradients;\n"
     "after update, `update ADDR` shows the change.\n",
     "Training", PS_COMPLETE_NONE, 0, 0, PS_CMD_EDITS, cmd_train_phase},
    {"train step", "[N]", "run N training steps (default 1), with losses",
     "Finishes a step begun with `train phase`, then runs whole steps.  Ctrl-C\n"
     "stops between steps.  Training forgets the undo history (the values it\n"
     "changed are no longer the edits'); `reset` still returns to the file.\n",
     "Training", PS_COMPLETE_NONE, 0, 1, PS_CMD_EDITS, cmd_train_step},
    {"train run", "", "train until stopped (Ctrl-C)",
     "Runs steps until Ctrl-C, printing each loss and, every eval-every steps,\n"
     "the validation loss.\n",
     "Training", PS_COMPLETE_NONE, 0, 0, PS_CMD_EDITS, cmd_train_run},
    {"loss", "", "training and validation loss so far, as a chart", "",
     "Training", PS_COMPLETE_NONE, 0, 0, 0, cmd_loss},
    {"eval", "", "validation loss on the held-out data, now", "",
     "Training", PS_COMPLETE_NONE, 0, 0, 0, cmd_eval},
    {0},
};
