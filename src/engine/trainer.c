/* The trainer's phase machine.  Each phase leaves its results in the trainer
 * so that a person can look between phases; a step that meets a non-finite
 * loss or gradient is abandoned before anything touches the parameters. */
#include "paramscope/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[PS_PHASE_COUNT] = {"forward", "loss", "backward", "update"};

const char *ps_phase_name(ps_phase p)
{
    return (unsigned)p < PS_PHASE_COUNT ? phase_names[p] : "?";
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

ps_train_config ps_train_defaults(const ps_model *m)
{
    ps_train_config c;
    memset(&c, 0, sizeof c);
    c.batch = 8;
    c.seq = m->cfg.n_ctx < 32 ? m->cfg.n_ctx : 32;
    c.optim = ps_optim_defaults(PS_OPTIM_KIND_ADAMW);
    c.sched.kind = PS_SCHED_KIND_CONSTANT;
    c.sched.lr = 1e-3f;
    c.sched.total = 1000;
    c.sched.min_lr = 1e-4f;
    c.sched.step_size = 100;
    c.sched.gamma = 0.5f;
    c.clip = 1.0f;
    c.seed = 1337;
    c.val_fraction = 0.1f;
    return c;
}

static int check_shape(const ps_trainer *t, int batch, int seq, ps_error *err)
{
    if (batch < 1 || batch > 4096)
        return ps_error_set(err, PS_ERR_RANGE, "batch size %d is not in [1, 4096]", batch);
    if (seq < 1 || seq > t->m->cfg.n_ctx)
        return ps_error_set(err, PS_ERR_RANGE, "sequence length %d is not in [1, n_ctx %d]",
                            seq, t->m->cfg.n_ctx);
    if (t->n_train <= (size_t)seq)
        return ps_error_set(err, PS_ERR_RANGE,
                            "the training split has %zu tokens, not more than the sequence length %d",
                            t->n_train, seq);
    return PS_OK;
}

static int alloc_batch(ps_trainer *t, int batch, int seq, ps_error *err)
{
    size_t n = (size_t)batch * seq;
    int *in = malloc(n * sizeof *in), *tg = malloc(n * sizeof *tg);
    float *tp = calloc(n, sizeof *tp);
    if (!in || !tg || !tp) {
        free(in);
        free(tg);
        free(tp);
        return ps_error_set(err, PS_ERR_NOMEM, "batch %d x %d: out of memory", batch, seq);
    }
    free(t->inputs);
    free(t->targets);
    free(t->target_probs);
    t->inputs = in;
    t->targets = tg;
    t->target_probs = tp;
    return ps_model_reserve(t->m, batch, seq, err);
}

int ps_trainer_init(ps_trainer **out, ps_model *m, const int *tokens,
                    size_t n_tokens, const ps_train_config *cfg, ps_error *err)
{
    *out = NULL;
    if (!(cfg->val_fraction >= 0.0f && cfg->val_fraction <= 0.5f))
        return ps_error_set(err, PS_ERR_RANGE, "validation fraction %g is not in [0, 0.5]",
                            (double)cfg->val_fraction);
    ps_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return ps_error_set(err, PS_ERR_NOMEM, "trainer: out of memory");
    t->m = m;
    t->cfg = *cfg;
    t->tokens = tokens;
    t->n_tokens = n_tokens;
    t->n_train = n_tokens - (size_t)((double)n_tokens * cfg->val_fraction);
    ps_rng_seed(&t->rng, cfg->seed);
    int rc = check_shape(t, cfg->batch, cfg->seq, err);
    if (!rc)
        rc = alloc_batch(t, cfg->batch, cfg->seq, err);
    if (!rc)
        rc = ps_optim_init(&t->opt, &cfg->optim, m->n_floats, err);
    if (!rc) {
        t->param_grad_norm = calloc((size_t)m->n_params, sizeof(double));
        t->param_update_ratio = calloc((size_t)m->n_params, sizeof(double));
        if (cfg->keep_update)
            t->delta = calloc(m->n_floats, sizeof(float));
        if (!t->param_grad_norm || !t->param_update_ratio || (cfg->keep_update && !t->delta))
            rc = ps_error_set(err, PS_ERR_NOMEM, "trainer: out of memory");
    }
    if (rc) {
        ps_trainer_free(t);
        return rc;
    }
    *out = t;
    return PS_OK;
}

void ps_trainer_free(ps_trainer *t)
{
    if (!t)
        return;
    ps_optim_free(t->opt);
    free(t->inputs);
    free(t->targets);
    free(t->target_probs);
    free(t->param_grad_norm);
    free(t->param_update_ratio);
    free(t->delta);
    free(t->train_hist);
    free(t->val_hist);
    free(t);
}

static void push_point(ps_point **arr, size_t *n, size_t *cap, long step, float v)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        ps_point *p = realloc(*arr, nc * sizeof *p);
        if (!p)
            return;   /* history is for display; losing a point is not an error */
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = (ps_point){step, v};
}

/* ---- the phases ---- */

static void draw_batch(ps_trainer *t)
{
    int B = t->cfg.batch, T = t->cfg.seq;
    size_t span = t->n_train - (size_t)T;   /* start positions with a full target window */
    for (int b = 0; b < B; b++) {
        size_t at = span > 0xffffffffu ? (size_t)(ps_rng_u64(&t->rng) % span)
                                       : ps_rng_below(&t->rng, (uint32_t)span);
        memcpy(t->inputs + (size_t)b * T, t->tokens + at, sizeof(int) * T);
        memcpy(t->targets + (size_t)b * T, t->tokens + at + 1, sizeof(int) * T);
    }
}

static int run_forward(ps_trainer *t, ps_error *err)
{
    draw_batch(t);
    return ps_model_forward(t->m, t->inputs, t->cfg.batch, t->cfg.seq, err);
}

static int run_loss(ps_trainer *t, ps_error *err)
{
    int rc = ps_model_loss(t->m, t->targets, &t->loss, err);
    if (rc)
        return rc;
    int BT = t->cfg.batch * t->cfg.seq;
    for (int i = 0; i < BT; i++)
        t->target_probs[i] = t->m->acts.probs[(size_t)i * t->m->cfg.vocab_size + t->targets[i]];
    if (!isfinite(t->loss))
        return ps_error_set(err, PS_ERR_NUMERIC, "step %ld: the loss is %g; the step is abandoned and the parameters are unchanged",
                            t->step + 1, (double)t->loss);
    return PS_OK;
}

static int run_backward(ps_trainer *t, ps_error *err)
{
    int rc = ps_model_backward(t->m, err);
    if (rc)
        return rc;
    double total = 0.0;
    for (int i = 0; i < t->m->n_params; i++) {
        const ps_param *p = &t->m->params[i];
        double n = ps_grad_norm(t->m->grad + p->offset, p->numel);
        t->param_grad_norm[i] = n;
        total += n * n;
    }
    t->grad_norm = sqrt(total);
    return PS_OK;
}

static int run_update(ps_trainer *t, ps_error *err)
{
    ps_model *m = t->m;
    if (!m->has_grad)
        return ps_error_set(err, PS_ERR_STATE, "update needs the gradients of a backward pass");
    /* Checked before clipping touches anything: a NaN anywhere poisons the norm. */
    double norm = ps_grad_clip(m->grad, m->n_floats, t->cfg.clip);
    if (!isfinite(norm))
        return ps_error_set(err, PS_ERR_NUMERIC, "step %ld: the gradient norm is %g; the update is skipped and the parameters are unchanged",
                            t->step + 1, norm);
    t->lr = ps_schedule_lr(&t->cfg.sched, t->step);
    ps_update_stats *st = malloc(sizeof *st * (size_t)m->n_params);
    ps_optim_step(t->opt, m->params, m->n_params, m->grad, t->lr, t->delta, st);
    m->version++;             /* caches of results (infer.h) are stale */
    for (int i = 0; i < m->n_params; i++)
        t->param_update_ratio[i] = st ? sqrt(st[i].update_sq) / (sqrt(st[i].weight_sq) + 1e-30) : 0.0;
    free(st);
    t->step++;
    push_point(&t->train_hist, &t->n_train_hist, &t->cap_train_hist, t->step, t->loss);
    return PS_OK;
}

int ps_trainer_phase(ps_trainer *t, ps_phase *ran, ps_error *err)
{
    ps_phase p = t->next;
    if (ran)
        *ran = p;
    double t0 = now_ms();
    int rc;
    switch (p) {
    case PS_PHASE_FORWARD:  rc = run_forward(t, err); break;
    case PS_PHASE_LOSS:     rc = run_loss(t, err); break;
    case PS_PHASE_BACKWARD: rc = run_backward(t, err); break;
    default:                rc = run_update(t, err); break;
    }
    t->phase_ms[p] = now_ms() - t0;
    if (rc == PS_ERR_NUMERIC) {
        t->last_skipped = 1;
        t->next = PS_PHASE_FORWARD;
        return rc;
    }
    if (rc)
        return rc;
    if (p == PS_PHASE_UPDATE)
        t->last_skipped = 0;
    t->next = (ps_phase)((p + 1) % PS_PHASE_COUNT);
    return PS_OK;
}

int ps_trainer_step(ps_trainer *t, ps_error *err)
{
    do {
        int rc = ps_trainer_phase(t, NULL, err);
        if (rc)
            return rc;
    } while (t->next != PS_PHASE_FORWARD);
    return PS_OK;
}

int ps_trainer_eval(ps_trainer *t, int max_batches, float *loss, ps_error *err)
{
    int B = t->cfg.batch, T = t->cfg.seq;
    size_t n_val = t->n_tokens - t->n_train;
    if (n_val <= (size_t)T)
        return ps_error_set(err, PS_ERR_RANGE,
                            "the validation split has %zu tokens, not more than the sequence length %d",
                            n_val, T);
    size_t windows = (n_val - 1) / (size_t)T;
    double sum = 0.0;
    size_t counted = 0;
    int batches = 0;
    for (size_t w0 = 0; w0 < windows; w0 += (size_t)B) {
        if (max_batches > 0 && batches == max_batches)
            break;
        int nb = (int)(windows - w0 < (size_t)B ? windows - w0 : (size_t)B);
        for (int b = 0; b < nb; b++) {
            const int *src = t->tokens + t->n_train + (w0 + b) * (size_t)T;
            memcpy(t->inputs + (size_t)b * T, src, sizeof(int) * T);
            memcpy(t->targets + (size_t)b * T, src + 1, sizeof(int) * T);
        }
        float l;
        int rc = ps_model_forward(t->m, t->inputs, nb, T, err);
        if (!rc)
            rc = ps_model_loss(t->m, t->targets, &l, err);
        if (rc) {
            t->next = PS_PHASE_FORWARD;
            return rc;
        }
        sum += (double)l * nb * T;
        counted += (size_t)nb * T;
        batches++;
    }
    t->next = PS_PHASE_FORWARD;
    float v = (float)(sum / (double)counted);
    push_point(&t->val_hist, &t->n_val_hist, &t->cap_val_hist, t->step, v);
    if (loss)
        *loss = v;
    return PS_OK;
}

int ps_trainer_set_optim(ps_trainer *t, const ps_optim_config *cfg, ps_error *err)
{
    if (cfg->kind == t->cfg.optim.kind) {
        t->cfg.optim = *cfg;
        t->opt->cfg = *cfg;
        return PS_OK;
    }
    ps_optim *o = NULL;
    int rc = ps_optim_init(&o, cfg, t->m->n_floats, err);
    if (rc)
        return rc;
    ps_optim_free(t->opt);
    t->opt = o;
    t->cfg.optim = *cfg;
    return PS_OK;
}

int ps_trainer_set_shape(ps_trainer *t, int batch, int seq, ps_error *err)
{
    int rc = check_shape(t, batch, seq, err);
    if (!rc)
        rc = alloc_batch(t, batch, seq, err);
    if (rc)
        return rc;
    t->cfg.batch = batch;
    t->cfg.seq = seq;
    t->next = PS_PHASE_FORWARD;
    return PS_OK;
}

void ps_trainer_rng_state(const ps_trainer *t, uint64_t state[4])
{
    memcpy(state, t->rng.s, sizeof t->rng.s);
}

void ps_trainer_set_rng_state(ps_trainer *t, const uint64_t state[4])
{
    memcpy(t->rng.s, state, sizeof t->rng.s);
}
