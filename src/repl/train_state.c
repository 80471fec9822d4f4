/* Training runs that can stop and resume bit-exactly. */
#include "repl/train_state.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paramscope/fileio.h"
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
    return rc ? ps_error_set(err, PS_ERR_NOMEM, "out of memory while writing the training metadata") : PS_OK;
}

/* What a saved setting may be.  Every value is checked against its range as a
 * double before it is converted, so that no out-of-range value reaches an
 * integer conversion (undefined behaviour) and no nonsense (a negative rate,
 * a NaN) reaches the trainer. */
typedef struct num_key {
    const char *key;
    double lo, hi;
    int whole;
} num_key;

static const num_key num_keys[17] = {
    {"train.step", 0, 1e15, 1},        {"train.batch", 1, 4096, 1},
    {"train.seq", 1, 65536, 1},        {"train.beta1", 0, 1, 0},
    {"train.beta2", 0, 1, 0},          {"train.eps", 0, 1, 0},
    {"train.weight_decay", 0, 100, 0}, {"train.decay_all", 0, 1, 1},
    {"train.lr", 0, 100, 0},           {"train.warmup", 0, 1e8, 1},
    {"train.decay_steps", 0, 1e8, 1},  {"train.min_lr", 0, 100, 0},
    {"train.step_size", 1, 1e8, 1},    {"train.gamma", 0, 10, 0},
    {"train.clip", 0, 1e30, 0},        {"train.seed", 0, 9223372036854775807.0, 1},
    {"train.val_fraction", 0, 0.5, 0},
};

static int get_num(const ps_meta *meta, const char *path, const num_key *k, double *out, ps_error *err)
{
    const char *v = ps_meta_get(meta, k->key);
    char vb[64];
    if (!v)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: no '%s' in the metadata: it was not saved by a training run",
                            path, k->key);
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end)
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata '%s' is '%s', not a number", path, k->key,
                            ps_printable(v, vb, sizeof vb));
    /* the seed's upper end is 2^63 as a double: the bound itself is out */
    int in = d >= k->lo && (k->whole && k->hi > 1e18 ? d < k->hi : d <= k->hi);
    if (!in || (k->whole && d != floor(d)))
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata '%s' is '%s': must be %s in [%.9g, %.9g]",
                            path, k->key, ps_printable(v, vb, sizeof vb),
                            k->whole ? "a whole number" : "a number", k->lo, k->hi);
    *out = d;
    return PS_OK;
}

int ps_train_state_from_meta(const ps_meta *meta, const char *path, ps_train_config *c,
                             long *step, uint64_t rng[4], ps_error *err)
{
    double v[17];
    for (int i = 0; i < 17; i++) {
        int rc = get_num(meta, path, &num_keys[i], &v[i], err);
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
        if (*end || !isxdigit((unsigned char)part[0]))
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

/* ---- the pair: the model file and PATH.state ----
 *
 * The model file and its .state must never disagree, yet two files cannot be
 * renamed at once.  So a save
 *   1. writes the state, complete and fsync'ed, under a new name
 *      PATH.state.ID (ID: 16 random hex digits, also in the state's metadata
 *      as "state_id"),
 *   2. writes the model with train.state_id = ID and renames it over PATH:
 *      this rename is the moment the save happens,
 *   3. renames PATH.state.ID over PATH.state and removes any other
 *      PATH.state.* that a killed save left behind.
 * Killed before step 2's rename: the old pair is as it was (the stray
 * PATH.state.ID goes at the next save).  Killed between 2 and 3: the model
 * names ID while PATH.state has the old id, and loading the state takes
 * PATH.state.ID instead and finishes step 3.  A pair that matches neither
 * way is refused with both ids, never trained on. */

#define STATE_ID_LEN 16
#define STATE_SUFFIX ".state"

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", a, b, c);
    return p;
}

static int is_state_id(const char *s)
{
    if (!s || strlen(s) != STATE_ID_LEN)
        return 0;
    for (int i = 0; i < STATE_ID_LEN; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int ps_train_check_target(const char *model_path, ps_error *err)
{
    int rc = ps_file_check_target(model_path, strlen(STATE_SUFFIX ".") + STATE_ID_LEN, err);
    char *sp = rc ? NULL : join3(model_path, STATE_SUFFIX, "");
    if (!rc && !sp)
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while saving the training state", model_path);
    if (!rc)
        rc = ps_file_check_target(sp, 0, err);
    free(sp);
    return rc;
}

static int write_state(const ps_trainer *t, const char *path, const char *id, ps_error *err)
{
    const ps_model *m = t->m;
    int n_moments = (t->opt->m ? 1 : 0) + (t->opt->v ? 1 : 0);
    ps_st_out *outs = calloc((size_t)(m->n_params * n_moments + 1), sizeof *outs);
    char (*names)[PS_NAME_MAX + 2] = calloc((size_t)(m->n_params * n_moments + 1), sizeof *names);
    if (!outs || !names) {
        free(outs);
        free(names);
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while saving the training state", path);
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
    const char *keys[4] = {"format", "train.step", "optim.step", "state_id"};
    const char *vals[4] = {"paramscope-train-state", step, ostep, id};
    int rc = ps_st_write_ex(path, outs, k, keys, vals, 4, PS_ST_NO_REPLACE, err);
    free(outs);
    free(names);
    return rc;
}

/* Removes PATH.state.ID files of saves that never finished, but keep. */
static void remove_stale(const char *model_path, const char *keep)
{
    char *prefix = join3(model_path, STATE_SUFFIX ".", "");
    const char *slash = prefix ? strrchr(prefix, '/') : NULL;
    char *dir = prefix ? (slash ? strndup(prefix, slash == prefix ? 1 : (size_t)(slash - prefix)) : strdup(".")) : NULL;
    DIR *d = dir ? opendir(dir) : NULL;
    if (d) {
        const char *base = slash ? slash + 1 : prefix;
        size_t bl = strlen(base);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, base, bl) || !is_state_id(e->d_name + bl) ||
                !strcmp(e->d_name + bl, keep))
                continue;
            char *full = join3(dir, "/", e->d_name);
            if (full)
                unlink(full);
            free(full);
        }
        closedir(d);
    }
    free(dir);
    free(prefix);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_floats(uint64_t h, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        uint64_t w;
        memcpy(&w, x + i, sizeof w);
        h = mix(h, w);
    }
    if (i < n) {
        uint32_t w;
        memcpy(&w, x + i, sizeof w);
        h = mix(h, w);
    }
    return h;
}

static uint64_t run_hash(const ps_trainer *t)
{
    uint64_t h = mix(mix(0xcbf29ce484222325ULL, (uint64_t)t->step), (uint64_t)t->opt->step);
    const ps_model *m = t->m;
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = &m->params[i];
        h = hash_floats(h, p->data, p->numel);
        if (t->opt->m)
            h = hash_floats(h, t->opt->m + p->offset, p->numel);
        if (t->opt->v)
            h = hash_floats(h, t->opt->v + p->offset, p->numel);
    }
    return h;
}

int ps_train_save_run(const ps_trainer *t, const ps_tokenizer *tok, ps_meta *meta,
                      const char *path, ps_error *err)
{
    int rc = ps_train_check_target(path, err);
    if (rc)
        return rc;
    char id[STATE_ID_LEN + 1];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)run_hash(t));
    char *pending = join3(path, STATE_SUFFIX ".", id), *final = join3(path, STATE_SUFFIX, "");
    if (!pending || !final || ps_meta_set(meta, "train.state_id", id)) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while saving the training state", path);
        goto done;
    }
    /* PATH.state.ID left by a save of this very state that failed or was
     * killed after naming it: ID is a hash of the state, so it holds what
     * would be written, whole (it was named only once complete).  Keep it:
     * deleting it first would, if this save failed too, leave the model on
     * disk (which may already carry ID) without its state. */
    int wrote = access(pending, F_OK) != 0;
    if (wrote && (rc = write_state(t, pending, id, err)) < 0)
        goto done;
    if ((rc = ps_model_save(t->m, tok, meta, path, err)) < 0) {
        if (wrote)
            unlink(pending);
        goto done;
    }
    if ((rc = ps_file_rename(pending, final, err)) < 0) {
        ps_error_prefix(err, "%s was saved, but its optimizer state stays in %s", path, pending);
        goto done;
    }
    remove_stale(path, id);
done:
    free(pending);
    free(final);
    return rc;
}

/* A decimal in [0, 1e15] that is all of s. */
static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || end == s || *end || errno || v < 0 || v > 1000000000000000L)
        return -1;
    *out = v;
    return 0;
}

/* The state file for a model saved with id (NULL: an older file without
 * one), opened into *out; *pending set when it was PATH.state.ID. */
static int open_state(const char *final, const char *pending, const char *model_path,
                      const char *id, ps_st_file **out, int *is_pending, ps_error *err)
{
    *is_pending = 0;
    int rc = ps_st_open(out, final, err);
    if (!id && !rc && ps_st_meta(*out, "state_id")) {
        /* the state belongs to a save; a model without the id was saved
         * after it, without a run (`save` of an edited model) */
        ps_st_close(*out);
        *out = NULL;
        return ps_error_set(err, PS_ERR_FORMAT, "%s: was saved without its optimizer state (no train.state_id), "
                            "so %s belongs to an earlier save: the two do not match", model_path, final);
    }
    if (!id)
        return rc;
    const char *sid = rc ? NULL : ps_st_meta(*out, "state_id");
    if (sid && !strcmp(sid, id))
        return PS_OK;
    ps_st_file *g = NULL;
    if (ps_st_open(&g, pending, NULL) == 0 && ps_st_meta(g, "state_id") &&
        !strcmp(ps_st_meta(g, "state_id"), id)) {
        ps_st_close(*out);
        *out = g;
        *is_pending = 1;
        return PS_OK;
    }
    ps_st_close(g);
    if (rc)
        return rc;
    char vb[40];
    return ps_error_set(err, PS_ERR_FORMAT, "%s: belongs to another save (state_id %s) than %s "
                        "(train.state_id %s): the model and its optimizer state do not match",
                        final, sid ? ps_printable(sid, vb, sizeof vb) : "missing", model_path, id);
}

int ps_train_state_load(ps_trainer *t, const char *model_path, long step, const char *id,
                        ps_error *err)
{
    char vb[64];
    if (id && !is_state_id(id))
        return ps_error_set(err, PS_ERR_FORMAT, "%s: metadata 'train.state_id' is '%s', not %d hex digits",
                            model_path, ps_printable(id, vb, sizeof vb), STATE_ID_LEN);
    char *final = join3(model_path, STATE_SUFFIX, ""), *pending = join3(model_path, STATE_SUFFIX ".", id ? id : "");
    ps_st_file *f = NULL;
    int rc, is_pending = 0;
    if (!final || !pending) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while saving the training state", model_path);
        goto done;
    }
    if ((rc = open_state(final, pending, model_path, id, &f, &is_pending, err)))
        goto done;
    const char *path = f->path;
    const char *fs = ps_st_meta(f, "train.step"), *os = ps_st_meta(f, "optim.step");
    long fstep = -1, ostep = -1;
    if (parse_count(fs, &fstep) || fstep != step) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: its step (%s) does not match the model file's step %ld",
                          path, fs ? ps_printable(fs, vb, sizeof vb) : "missing", step);
        goto done;
    }
    if (parse_count(os, &ostep)) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: metadata 'optim.step' is '%s', not a step count",
                          path, os ? ps_printable(os, vb, sizeof vb) : "missing");
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
        t->opt->step = ostep;
        t->step = step;
        if (is_pending)
            ps_file_rename(pending, final, NULL);   /* finish the save that was cut short */
    }
done:
    ps_st_close(f);
    free(final);
    free(pending);
    return rc;
}
