/* Training runs that can stop and resume bit-exactly. */
#include "repl/train_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/safetensors.h"

unsigned long long ps_tokens_digest(const int *ids, size_t n)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 1099511628211ULL;
        }
    }
    return h;
}

static int set_f(ps_meta *m, const char *key, const char *fmt, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    return ps_meta_set(m, key, buf);
}

int ps_train_state_to_meta(const ps_trainer *t, ps_meta *meta, ps_error *err)
{
    const ps_train_config *c = &t->cfg;
    char buf[128];
    uint64_t s[4];
    ps_trainer_rng_state(t, s);
    snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, s[0], s[1], s[2], s[3]);
    int rc = ps_meta_set(meta, "train.rng", buf);
    rc |= set_f(meta, "train.step", "%.0f", (double)t->step);
    rc |= set_f(meta, "train.batch", "%.0f", c->batch);
    rc |= set_f(meta, "train.seq", "%.0f", c->seq);
    rc |= ps_meta_set(meta, "train.optimizer", ps_optim_kind_name(c->optim.kind));
    rc |= set_f(meta, "train.beta1", "%.9g", c->optim.beta1);
    rc |= set_f(meta, "train.beta2", "%.9g", c->optim.beta2);
    rc |= set_f(meta, "train.eps", "%.9g", c->optim.eps);
    rc |= set_f(meta, "train.weight_decay", "%.9g", c->optim.weight_decay);
    rc |= set_f(meta, "train.decay_all", "%.0f", c->optim.decay_all);
    rc |= ps_meta_set(meta, "train.schedule", ps_sched_kind_name(c->sched.kind));
    rc |= set_f(meta, "train.lr", "%.9g", c->sched.lr);
    rc |= set_f(meta, "train.warmup", "%.0f", c->sched.warmup);
    rc |= set_f(meta, "train.decay_steps", "%.0f", (double)c->sched.total);
    rc |= set_f(meta, "train.min_lr", "%.9g", c->sched.min_lr);
    rc |= set_f(meta, "train.step_size", "%.0f", c->sched.step_size);
    rc |= set_f(meta, "train.gamma", "%.9g", c->sched.gamma);
    rc |= set_f(meta, "train.clip", "%.9g", c->clip);
    rc |= set_f(meta, "train.seed", "%.0f", (double)c->seed);
    rc |= set_f(meta, "train.val_fraction", "%.9g", c->val_fraction);
    return rc ? ps_error_set(err, PS_ERR_NOMEM, "training metadata: out of memory") : PS_OK;
}

static int get_num(const ps_meta *meta, const char *path, const char *key, double *out, ps_error *err)
{
    const char *v = ps_meta_get(meta, key);
    if (!v)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: no '%s' in the metadata: it was not saved by a training run", path, key);
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata '%s' is '%s', not a number", path, key, v);
    *out = d;
    return PS_OK;
}

int ps_train_state_from_meta(const ps_meta *meta, const char *path, ps_train_config *c,
                             long *step, uint64_t rng[4], ps_error *err)
{
    double v[17];
    static const char *const keys[17] = {
        "train.step", "train.batch", "train.seq", "train.beta1", "train.beta2", "train.eps",
        "train.weight_decay", "train.decay_all", "train.lr", "train.warmup", "train.decay_steps",
        "train.min_lr", "train.step_size", "train.gamma", "train.clip", "train.seed",
        "train.val_fraction",
    };
    for (int i = 0; i < 17; i++) {
        int rc = get_num(meta, path, keys[i], &v[i], err);
        if (rc)
            return rc;
    }
    const char *opt = ps_meta_get(meta, "train.optimizer"), *sch = ps_meta_get(meta, "train.schedule");
    const char *r = ps_meta_get(meta, "train.rng");
    int ok = ps_optim_kind_parse(opt ? opt : "");
    int sk = ps_sched_kind_parse(sch ? sch : "");
    if (ok < 0 || sk < 0)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata 'train.%s' is missing or unknown", path,
                            ok < 0 ? "optimizer" : "schedule");
    if (!r || strlen(r) != 64)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata 'train.rng' is missing or not 64 hex digits", path);
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, r + 16 * i, 16);
        part[16] = '\0';
        char *end;
        rng[i] = strtoull(part, &end, 16);
        if (*end)
            return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata 'train.rng' is not hexadecimal", path);
    }
    *step = (long)v[0];
    c->batch = (int)v[1];
    c->seq = (int)v[2];
    c->optim = ps_optim_defaults((ps_optim_kind)ok);
    c->optim.beta1 = (float)v[3];
    c->optim.beta2 = (float)v[4];
    c->optim.eps = (float)v[5];
    c->optim.weight_decay = (float)v[6];
    c->optim.decay_all = (int)v[7];
    c->sched.kind = (ps_sched_kind)sk;
    c->sched.lr = (float)v[8];
    c->sched.warmup = (int)v[9];
    c->sched.total = (long)v[10];
    c->sched.min_lr = (float)v[11];
    c->sched.step_size = (int)v[12];
    c->sched.gamma = (float)v[13];
    c->clip = (float)v[14];
    c->seed = (uint64_t)v[15];
    c->val_fraction = (float)v[16];
    return PS_OK;
}

static char *state_path(const char *model_path)
{
    size_t n = strlen(model_path) + 7;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.state", model_path);
    return p;
}

int ps_train_state_save(const ps_trainer *t, const char *model_path, ps_error *err)
{
    const ps_model *m = t->m;
    int n_moments = (t->opt->m ? 1 : 0) + (t->opt->v ? 1 : 0);
    char *path = state_path(model_path);
    ps_st_out *outs = calloc((size_t)(m->n_params * n_moments + 1), sizeof *outs);
    char (*names)[PS_NAME_MAX + 2] = calloc((size_t)(m->n_params * n_moments + 1), sizeof *names);
    if (!path || !outs || !names) {
        free(path); free(outs); free(names);
        return ps_error_set(err, PS_ERR_NOMEM, "%s.state: out of memory", model_path);
    }
    int k = 0;
    for (int which = 0; which < 2; which++) {
        const float *arena = which ? t->opt->v : t->opt->m;
        if (!arena)
            continue;
        for (int i = 0; i < m->n_params; i++) {
            const ps_param *p = &m->params[i];
            snprintf(names[k], sizeof names[k], "%c.%s", which ? 'v' : 'm', p->name);
            outs[k].name = names[k];
            outs[k].ndim = p->ndim;
            outs[k].shape[0] = p->shape[0];
            outs[k].shape[1] = p->shape[1];
            outs[k].data = arena + p->offset;
            k++;
        }
    }
    char step[32], ostep[32];
    snprintf(step, sizeof step, "%ld", t->step);
    snprintf(ostep, sizeof ostep, "%ld", t->opt->step);
    const char *keys[3] = {"format", "train.step", "optim.step"};
    const char *vals[3] = {"paramscope-train-state", step, ostep};
    int rc = ps_st_write(path, outs, k, keys, vals, 3, err);
    free(path);
    free(outs);
    free(names);
    return rc;
}

int ps_train_state_load(ps_trainer *t, const char *model_path, long step, ps_error *err)
{
    char *path = state_path(model_path);
    if (!path)
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    ps_st_file *f = NULL;
    int rc = ps_st_open(&f, path, err);
    if (rc)
        goto done;
    const char *fs = ps_st_meta(f, "train.step"), *os = ps_st_meta(f, "optim.step");
    if (!fs || !os || atol(fs) != step) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: its step (%s) does not match the model file's step %ld",
                          path, fs ? fs : "missing", step);
        goto done;
    }
    const ps_model *m = t->m;
    for (int which = 0; which < 2 && !rc; which++) {
        float *arena = which ? t->opt->v : t->opt->m;
        if (!arena)
            continue;
        for (int i = 0; i < m->n_params && !rc; i++) {
            char name[PS_NAME_MAX + 2];
            snprintf(name, sizeof name, "%c.%s", which ? 'v' : 'm', m->params[i].name);
            const ps_st_tensor *st = ps_st_find(f, name);
            if (!st || st->numel != m->params[i].numel)
                rc = ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s' is missing or has the wrong size", path, name);
            else
                rc = ps_st_read_f32(f, st, arena + m->params[i].offset, err);
        }
    }
    if (!rc) {
        t->opt->step = atol(os);
        t->step = step;
    }
done:
    ps_st_close(f);
    free(path);
    return rc;
}
