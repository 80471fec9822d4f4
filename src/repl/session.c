/* The session: what one person at the prompt is working on. */
#include "repl/session.h"

#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/probe.h"

static void default_settings(ps_session *s)
{
    s->set.temperature = 1.0f;
    s->set.top_k = 0;
    s->set.top_p = 1.0f;
    s->set.seed = 42;
    s->set.threads = ps_blas_threads();
    s->set.top = 10;
    ps_rng_seed(&s->rng, s->set.seed);
}

static void default_training(ps_session *s)
{
    s->tcfg = ps_train_defaults(s->lm.model);
    s->tcfg.seq = s->lm.model->cfg.n_ctx < 64 ? s->lm.model->cfg.n_ctx : 64;
    s->tcfg.batch = 8;
    s->tcfg.keep_update = 1;   /* `update ADDR` and the explorer show it */
    s->eval_every = 50;
}

int ps_session_open(ps_session *s, const char *model_path, ps_error *err)
{
    memset(s, 0, sizeof *s);
    int rc = ps_loaded_open(&s->lm, model_path, err);
    if (rc)
        return rc;
    rc = ps_perturb_init(&s->journal, s->lm.model, err);
    if (rc) {
        ps_loaded_close(&s->lm);
        return rc;
    }
    default_settings(s);
    default_training(s);
    return PS_OK;
}

static void drop_training(ps_session *s)
{
    ps_trainer_free(s->trainer);
    s->trainer = NULL;
    ps_corpus_free(s->corpus);
    s->corpus = NULL;
    ps_neuron_scan_free(s->neuron_scan);
    s->neuron_scan = NULL;
}

void ps_session_close(ps_session *s)
{
    if (!s)
        return;
    drop_training(s);
    free(s->data_path);
    ps_perturb_free(s->journal);
    ps_loaded_close(&s->lm);
    free(s->prompt);
    free(s->baseline);
    free(s->baseline_prompt);
    memset(s, 0, sizeof *s);
}

int ps_session_load(ps_session *s, const char *path, ps_error *err)
{
    ps_loaded l;
    ps_perturb *j = NULL;
    int rc = ps_loaded_open(&l, path, err);
    if (rc)
        return rc;
    rc = ps_perturb_init(&j, l.model, err);
    if (rc) {
        ps_loaded_close(&l);
        return rc;
    }
    drop_training(s);
    ps_perturb_free(s->journal);
    ps_loaded_close(&s->lm);
    s->lm = l;
    s->journal = j;
    free(s->baseline);
    s->baseline = NULL;
    free(s->baseline_prompt);
    s->baseline_prompt = NULL;
    default_training(s);
    return PS_OK;
}

int ps_session_corpus(ps_session *s, ps_error *err)
{
    if (s->corpus)
        return PS_OK;
    char path[4096];
    const char *p = s->data_path;
    if (!p) {
        if (ps_find_data_file(PS_BUNDLED_CORPUS, path, sizeof path))
            return ps_error_set(err, PS_ERR_NOT_FOUND,
                                "no training data: the bundled corpus was not found; use `train data FILE`");
        p = path;
    }
    return ps_corpus_load(&s->corpus, p, s->lm.tok, err);
}

int ps_session_trainer(ps_session *s, ps_error *err)
{
    if (s->trainer)
        return PS_OK;
    int rc = ps_session_corpus(s, err);
    if (rc)
        return rc;
    /* Training changes every parameter outside the journal: keep the file's
     * values now, so that `reset` and `diff` still know them afterwards. */
    for (int i = 0; i < s->lm.model->n_params; i++) {
        rc = ps_perturb_capture(s->journal, &s->lm.model->params[i], err);
        if (rc)
            return rc;
    }
    rc = ps_trainer_init(&s->trainer, s->lm.model, s->corpus->ids, s->corpus->n, &s->tcfg, err);
    if (rc && rc != PS_ERR_NOMEM)
        ps_error_prefix(err, "%s", s->corpus->path);   /* "the training split has ..." of which file */
    return rc;
}

void ps_session_params_changed(ps_session *s)
{
    ps_perturb_clear(s->journal);
}
