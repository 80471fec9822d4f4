/* The prediction thread (predictor.h): requests in, results out, the
 * session read only under its lock. */
#include "ui/predictor.h"

#include <math.h>
#include <pthread.h>

#include "paramscope/kernels.h"
#include "paramscope/probe.h"
#include "paramscope/sample.h"
#include "repl/inside.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ui_predictor {
    ui_worker *w;
    ps_session *s;
    pthread_t thread;
    pthread_mutex_t mu;       /* the request, the result, stop */
    pthread_cond_t cv;
    int stop;
    char *req_text;           /* waiting to be computed, or NULL */
    uint64_t req_version;
    int req_inside, req_layer, req_head;   /* ui_predictor_request_inside */
    ui_pred_result *done;

    /* the thread's own */
    ps_model *pm;             /* the session's weights, own activations */
    ps_model *model_seen;
    uint32_t epoch;           /* counts the pm made, for its version */
    ps_sampler sampler;       /* draws the token ^R appends */
    int sampler_ok;
    ps_settings sampler_set;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ui_inside_result_free(ui_inside_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->tokens && i < r->T; i++)
        free(r->tokens[i]);
    for (int i = 0; r->lens_top && i < r->S; i++)
        free(r->lens_top[i]);
    free(r->tokens);
    free(r->lens_top);
    free(r->att);
    free(r->lens_prob);
    free(r->lens_answer);
    free(r->answer);
    free(r);
}

void ui_pred_result_free(ui_pred_result *r)
{
    if (!r)
        return;
    ui_inside_result_free(r->inside);
    for (int i = 0; r->names && i < r->p.k; i++)
        free(r->names[i]);
    free(r->names);
    ps_prediction_free(&r->p);
    free(r->logp);
    free(r->session_baseline);
    free(r->top_piece);
    free(r->sample_piece);
    free(r->text);
    free(r);
}

/* Under the session lock: a model sharing the session model's weights,
 * made again when `load` replaced that model. */
static int ensure_model(ui_predictor *P, ps_error *err)
{
    ps_model *m = P->s->lm.model;
    if (P->pm && P->model_seen == m)
        return PS_OK;
    ps_model_free(P->pm);
    P->pm = NULL;
    size_t *offsets = malloc(sizeof *offsets * (size_t)m->n_params);
    if (!offsets)
        return ps_error_set(err, PS_ERR_NOMEM, "prediction: out of memory");
    for (int i = 0; i < m->n_params; i++)
        offsets[i] = m->params[i].offset;
    int rc = ps_model_init_mapped(&P->pm, &m->cfg, m->w, m->n_floats, offsets, NULL, NULL, err);
    free(offsets);
    if (rc)
        return rc;
    P->model_seen = m;
    P->epoch++;
    return PS_OK;
}

/* Under the session lock. */
static ui_pred_result *compute(ui_predictor *P, char *text, uint64_t version)
{
    ps_session *s = P->s;
    ui_pred_result *r = calloc(1, sizeof *r);
    if (!r) {
        free(text);
        return NULL;
    }
    double t0 = now_s();
    r->text = text;
    r->version = version;
    r->set = s->set;
    r->words = ps_tokenizer_kind_of(s->lm.tok) == PS_TOKENIZER_KIND_WORDS;
    int V = r->V = s->lm.model->cfg.vocab_size;
    if (ensure_model(P, &r->err))
        return r;
    /* The inference cache (infer.h) trusts m->version: pm's follows the
     * session model's changes in its low bits; its high bits are pm's own
     * epoch (top bit set, apart from the epochs infer.c hands out), so that a
     * pm made after `load`, perhaps at the same address, is never taken for
     * the old one. */
    P->pm->version = ((uint64_t)(0x80000000u | P->epoch) << 32) | (uint32_t)s->lm.model->version;
    if (ps_predict(&r->p, P->pm, s->lm.tok, text, r->set.temperature, r->set.top, &r->err))
        return r;
    /* the session's last prompt, as if `predict` had run: `baseline` and
     * `predict` without arguments then mean the prompt on screen */
    if (!s->prompt || strcmp(s->prompt, text)) {
        char *keep = strdup(text);
        if (keep) {
            free(s->prompt);
            s->prompt = keep;
        }
    }
    r->names = calloc((size_t)r->p.k, sizeof *r->names);
    r->logp = malloc(sizeof(float) * (size_t)V);
    int ok = r->names && r->logp;
    for (int i = 0; ok && i < r->p.k; i++) {
        const char *t = ps_tokenizer_token(s->lm.tok, r->p.top[i]);
        ok = (r->names[i] = strdup(t ? t : "?")) != NULL;
    }
    for (int i = 0; ok && i < V; i++)
        r->logp[i] = r->p.probs[i] > 0 ? logf(r->p.probs[i]) : -INFINITY;
    if (ok && s->baseline && s->baseline_prompt && !strcmp(s->baseline_prompt, text)) {
        r->session_baseline = malloc(sizeof(float) * (size_t)V);
        if (r->session_baseline)
            memcpy(r->session_baseline, s->baseline, sizeof(float) * (size_t)V);
    }
    /* the tokens to append, as the tokenizer writes them */
    int top = r->p.top[0], pick = top;
    if (ok && r->set.temperature > 0) {
        const ps_settings *st = &P->sampler_set;
        if (!P->sampler_ok || P->sampler.V != V || st->seed != r->set.seed || st->top_k != r->set.top_k ||
            st->top_p != r->set.top_p) {
            ps_sampler_free(&P->sampler);
            /* the log-probabilities carry the temperature already */
            P->sampler_ok = !ps_sampler_init(&P->sampler, V, 1.0f, r->set.top_k, r->set.top_p, r->set.seed, NULL);
            P->sampler_set = r->set;
        }
        if (P->sampler_ok)
            pick = ps_sample(&P->sampler, r->logp);
    }
    if (ok) {
        r->top_piece = ps_tokenizer_decode(s->lm.tok, &top, 1);
        r->sample_piece = ps_tokenizer_decode(s->lm.tok, &pick, 1);
        ok = r->top_piece && r->sample_piece;
    }
    if (!ok)
        ps_error_set(&r->err, PS_ERR_NOMEM, "prediction: out of memory");
    r->ok = ok;
    r->ms = (now_s() - t0) * 1000;
    return r;
}

static char *dup_token(const ps_tokenizer *tok, int id)
{
    const char *t = ps_tokenizer_token(tok, id);
    return strdup(t ? t : "?");
}

/* Under the session lock: the Inside pane's numbers for text (probe.h over
 * one forward pass of a model sharing the session's weights). */
static int fill_inside(ps_session *s, const char *text, int layer, int head, ui_inside_result *in, ps_error *err)
{
    ps_out out = {.width = 80};
    inside fw;
    int rc = inside_run(s, text, &fw, &out);
    if (rc) {
        *err = out.err;
        return rc;
    }
    const ps_config *cf = &fw.pm->cfg;
    int T = fw.T, S = cf->n_layer + 1, V = cf->vocab_size;
    layer = layer < cf->n_layer ? layer : cf->n_layer - 1;
    head = head < cf->n_head ? head : cf->n_head - 1;
    in->T = T;
    in->S = S;
    in->layer = layer;
    in->head = head;
    in->tokens = calloc((size_t)T, sizeof *in->tokens);
    in->att = malloc((size_t)T * T * sizeof *in->att);
    in->lens_top = calloc((size_t)S, sizeof *in->lens_top);
    in->lens_prob = malloc((size_t)S * sizeof *in->lens_prob);
    in->lens_answer = malloc((size_t)S * sizeof *in->lens_answer);
    float *lens = malloc((size_t)S * V * sizeof *lens), *probs = malloc((size_t)V * sizeof *probs);
    inside_part *parts = malloc(inside_parts_max(cf) * sizeof *parts);
    ps_attribution a = {0};
    rc = PS_ERR_NOMEM;
    if (!in->tokens || !in->att || !in->lens_top || !in->lens_prob || !in->lens_answer || !lens || !probs || !parts)
        goto done;
    for (int t = 0; t < T; t++)
        if (!(in->tokens[t] = strdup(inside_piece(&fw, t))))
            goto done;
    memcpy(in->att, ps_model_attention(fw.pm, layer, 0, head), (size_t)T * T * sizeof *in->att);
    if ((rc = ps_probe_lens(fw.pm, 0, T - 1, lens, err)))
        goto done;
    int answer = ps_argmax(lens + (size_t)(S - 1) * V, V);
    for (int st = 0; st < S; st++) {
        ps_softmax(probs, lens + (size_t)st * V, V, 1.0f);
        int top = ps_argmax(probs, V);
        in->lens_prob[st] = probs[top];
        in->lens_answer[st] = probs[answer];
        if (!(in->lens_top[st] = dup_token(s->lm.tok, top))) {
            rc = PS_ERR_NOMEM;
            goto done;
        }
    }
    if (!(in->answer = dup_token(s->lm.tok, answer))) {
        rc = PS_ERR_NOMEM;
        goto done;
    }
    if ((rc = ps_probe_attribute(fw.pm, 0, T - 1, answer, &a, err)))
        goto done;
    int n = inside_parts(&a, parts);
    in->n_parts = n < UI_INSIDE_PARTS ? n : UI_INSIDE_PARTS;
    for (int i = 0; i < in->n_parts; i++) {
        snprintf(in->part_name[i], sizeof in->part_name[i], "%s", parts[i].name);
        in->part_value[i] = parts[i].value;
    }
    in->logit = a.logit;
    rc = PS_OK;
done:
    if (rc == PS_ERR_NOMEM)
        ps_error_set(err, PS_ERR_NOMEM, "inside: out of memory");
    ps_attribution_clear(&a);
    free(parts);
    free(lens);
    free(probs);
    inside_clear(&fw);
    return rc;
}

static ui_pred_result *compute_inside(ui_predictor *P, char *text, uint64_t version, int layer, int head)
{
    ui_pred_result *r = calloc(1, sizeof *r);
    if (!r || !(r->inside = calloc(1, sizeof *r->inside))) {
        free(r);
        free(text);
        return NULL;
    }
    double t0 = now_s();
    r->text = text;
    r->version = version;
    r->set = P->s->set;
    r->ok = fill_inside(P->s, text, layer, head, r->inside, &r->err) == PS_OK;
    r->ms = (now_s() - t0) * 1000;
    return r;
}

static void *predictor_main(void *arg)
{
    ui_predictor *P = arg;
    pthread_mutex_lock(&P->mu);
    while (!P->stop) {
        if (!P->req_text) {
            pthread_cond_wait(&P->cv, &P->mu);
            continue;
        }
        char *text = P->req_text;
        uint64_t version = P->req_version;
        int want_inside = P->req_inside, layer = P->req_layer, head = P->req_head;
        P->req_text = NULL;
        pthread_mutex_unlock(&P->mu);

        /* wait for the session, giving up for a newer request or stop */
        int got = 0;
        while (!got) {
            got = ui_worker_trylock(P->w, 50);
            pthread_mutex_lock(&P->mu);
            int give_up = P->stop || P->req_text != NULL;
            pthread_mutex_unlock(&P->mu);
            if (give_up)
                break;
        }
        ui_pred_result *r = NULL;
        if (got) {
            r = want_inside ? compute_inside(P, text, version, layer, head) : compute(P, text, version);
            ui_worker_unlock(P->w);
        } else {
            free(text);
        }
        pthread_mutex_lock(&P->mu);
        if (r) {
            ui_pred_result_free(P->done);
            P->done = r;
        }
    }
    pthread_mutex_unlock(&P->mu);
    return NULL;
}

int ui_predictor_start(ui_predictor **out, ui_worker *w, ps_session *s, ps_error *err)
{
    *out = NULL;
    ui_predictor *P = calloc(1, sizeof *P);
    if (!P)
        return ps_error_set(err, PS_ERR_NOMEM, "prediction thread: out of memory");
    P->w = w;
    P->s = s;
    pthread_mutex_init(&P->mu, NULL);
    pthread_cond_init(&P->cv, NULL);
    if (pthread_create(&P->thread, NULL, predictor_main, P)) {
        pthread_mutex_destroy(&P->mu);
        pthread_cond_destroy(&P->cv);
        free(P);
        return ps_error_set(err, PS_ERR_STATE, "cannot start the prediction thread");
    }
    *out = P;
    return PS_OK;
}

void ui_predictor_stop(ui_predictor *P)
{
    if (!P)
        return;
    pthread_mutex_lock(&P->mu);
    P->stop = 1;
    pthread_cond_signal(&P->cv);
    pthread_mutex_unlock(&P->mu);
    pthread_join(P->thread, NULL);
    free(P->req_text);
    ui_pred_result_free(P->done);
    ps_sampler_free(&P->sampler);
    ps_model_free(P->pm);
    pthread_mutex_destroy(&P->mu);
    pthread_cond_destroy(&P->cv);
    free(P);
}

static void request(ui_predictor *P, const char *text, uint64_t version, int inside, int layer, int head)
{
    char *t = strdup(text);
    if (!t)
        return;
    pthread_mutex_lock(&P->mu);
    free(P->req_text);
    P->req_text = t;
    P->req_version = version;
    P->req_inside = inside;
    P->req_layer = layer;
    P->req_head = head;
    pthread_cond_signal(&P->cv);
    pthread_mutex_unlock(&P->mu);
}

void ui_predictor_request(ui_predictor *P, const char *text, uint64_t version)
{
    request(P, text, version, 0, 0, 0);
}

void ui_predictor_request_inside(ui_predictor *P, const char *text, uint64_t version, int layer, int head)
{
    request(P, text, version, 1, layer, head);
}

ui_pred_result *ui_predictor_take(ui_predictor *P)
{
    pthread_mutex_lock(&P->mu);
    ui_pred_result *r = P->done;
    P->done = NULL;
    pthread_mutex_unlock(&P->mu);
    return r;
}
