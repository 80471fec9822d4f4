/* The worker thread: training phases and command lines, one at a time, with
 * the session lock held around each, so that the UI thread can always tell
 * whether it may read the session (trylock) and never waits for a phase.
 *
 * Why the worker also runs the commands the UI would run itself: with a
 * GPT-2-sized model `eval`, `generate 50` or `load` take seconds, and a
 * command that edits parameters must not land in the middle of a step.  One
 * queue keeps their order as typed and lets the UI go on drawing. */
#include "ui/worker.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repl/addr.h"
#include "repl/repl.h"

enum { ITEM_LINE, ITEM_NUDGE };

typedef struct item {
    int kind;
    char *text;               /* the line, or the element's address */
    double delta;             /* ITEM_NUDGE */
    int echo;
    struct item *next;
} item;

struct ui_worker {
    ps_session *s;
    pthread_t thread;
    pthread_mutex_t session_lock;
    pthread_mutex_t mu;       /* everything below */
    pthread_cond_t cv;
    int stop;
    item *head, *tail;
    int queued;
    ui_job job;
    long steps_left;
    ui_train_snap snap;
    ps_point *train, *val;
    size_t cap_train, cap_val;
    char *log;
    size_t log_len, log_cap;
    int width, utf8;

    /* the worker's own (no lock: only its thread touches them) */
    ps_trainer *trainer_seen;
    double step_start;        /* when the FORWARD of a continuous step began */
    int continuous;           /* the step's phases all ran in this job */
    double rate;              /* steps per second, smoothed */
    double locked_at, last_ms; /* the last time the worker held the session */

    _Atomic uint64_t version;
    _Atomic uint64_t params;  /* changes when what predictions read may have */
    _Atomic int ui_wants;     /* the UI found the session locked */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The worker takes the session for each phase and command; between them it
 * lets the UI have a turn if the UI is waiting for it (pthread mutexes are
 * not fair: a thread that unlocks and locks again at once starves the
 * other).  The UI waits in a timed lock, so a moment is enough. */
static void lock_session(ui_worker *w)
{
    /* a tenth of the last phase: a moment for the bundled model, up to a
     * frame for a big one (whose phases last seconds) */
    double limit_us = w->last_ms * 100;
    limit_us = limit_us < 200 ? 200 : limit_us > 60000 ? 60000 : limit_us;
    for (double t = 0; t < limit_us && atomic_load(&w->ui_wants); t += 100)
        usleep(100);
    atomic_store(&w->ui_wants, 0);
    pthread_mutex_lock(&w->session_lock);
    w->locked_at = now_s();
}

static void unlock_session(ui_worker *w)
{
    w->last_ms = (now_s() - w->locked_at) * 1000;
    pthread_mutex_unlock(&w->session_lock);
}

/* ---- the log text (under mu) ---- */

static void log_append_locked(ui_worker *w, const char *text, size_t n)
{
    if (w->log_len + n + 1 > w->log_cap) {
        size_t cap = (w->log_cap ? w->log_cap * 2 : 4096);
        while (cap < w->log_len + n + 1)
            cap *= 2;
        char *p = realloc(w->log, cap);
        if (!p)
            return;
        w->log = p;
        w->log_cap = cap;
    }
    memcpy(w->log + w->log_len, text, n);
    w->log_len += n;
    w->log[w->log_len] = '\0';
}

/* Appends lines, each marked with style (0 for plain text). */
static void post(ui_worker *w, int style, const char *text)
{
    pthread_mutex_lock(&w->mu);
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (style) {
            char c = (char)style;
            log_append_locked(w, &c, 1);
        }
        log_append_locked(w, p, n);
        log_append_locked(w, "\n", 1);
        p += n + (nl ? 1 : 0);
    }
    pthread_mutex_unlock(&w->mu);
}

static void postf(ui_worker *w, int style, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void postf(ui_worker *w, int style, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    post(w, style, buf);
}

/* ---- the snapshot (the worker holds the session lock) ---- */

static int grow_points(ps_point **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    ps_point *q = realloc(*p, c * sizeof *q);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void sync_snapshot(ui_worker *w, int running_phase)
{
    ps_session *s = w->s;
    ps_trainer *t = s->trainer;
    pthread_mutex_lock(&w->mu);
    ui_train_snap *sn = &w->snap;
    if (t != w->trainer_seen) {
        /* a new trainer (the first, or after `load` or `train data`) */
        w->trainer_seen = t;
        sn->epoch++;
        sn->n_train = sn->n_val = 0;
        w->continuous = 0;
        w->rate = 0;
    }
    sn->has_trainer = t != NULL;
    sn->running_phase = running_phase;
    const ps_train_config *c = t ? &t->cfg : &s->tcfg;
    sn->sched = c->sched;
    sn->batch = c->batch;
    sn->seq = c->seq;
    sn->edits = ps_perturb_cursor(s->journal);
    sn->quit = s->quit;
    if (t) {
        sn->step = t->step;
        sn->next_phase = t->next;
        sn->loss = t->loss;
        sn->grad_norm = t->grad_norm;
        sn->lr = t->lr;
        memcpy(sn->phase_ms, t->phase_ms, sizeof sn->phase_ms);
        if (t->n_train_hist > sn->n_train && !grow_points(&w->train, &w->cap_train, t->n_train_hist)) {
            memcpy(w->train + sn->n_train, t->train_hist + sn->n_train,
                   (t->n_train_hist - sn->n_train) * sizeof *w->train);
            sn->n_train = t->n_train_hist;
        }
        if (t->n_val_hist > sn->n_val && !grow_points(&w->val, &w->cap_val, t->n_val_hist)) {
            memcpy(w->val + sn->n_val, t->val_hist + sn->n_val, (t->n_val_hist - sn->n_val) * sizeof *w->val);
            sn->n_val = t->n_val_hist;
        }
    } else {
        sn->step = 0;
        sn->next_phase = PS_PHASE_FORWARD;
    }
    sn->steps_per_s = w->rate;
    sn->tokens_per_s = w->rate * c->batch * c->seq;
    pthread_mutex_unlock(&w->mu);
}

/* ---- command lines ---- */

/* Whether a line changes parameters (then it waits for the end of a step
 * while training runs): assignments, commands flagged PS_CMD_EDITS, and
 * `load`, which replaces the model under the trainer. */
static int line_edits(const char *line)
{
    int depth = 0;
    for (const char *p = line; *p; p++) {
        if (*p == '[') depth++;
        else if (*p == ']') depth--;
        else if (*p == '=' && depth == 0) return 1;
    }
    char **words = NULL;
    int n = ps_split_line(line, &words, NULL);
    int edits = 0;
    if (n > 0) {
        const ps_command *c = NULL;
        if (n >= 2) {
            char two[128];
            snprintf(two, sizeof two, "%s %s", words[0], words[1]);
            c = ps_command_find(two);
        }
        if (!c)
            c = ps_command_find(words[0]);
        edits = c && ((c->flags & PS_CMD_EDITS) || !strcmp(c->name, "load") || !strcmp(c->name, "train data"));
    }
    ps_words_free(words, n);
    return edits;
}

/* `train phase`, `train step [N]` and `train run` become jobs, so that the
 * dashboard follows them phase by phase; returns 1 when line was one. */
static int training_job(ui_worker *w, const char *line)
{
    char **words = NULL;
    int n = ps_split_line(line, &words, NULL);
    int taken = 0;
    if (n >= 2 && !strcmp(words[0], "train")) {
        ui_job job = UI_JOB_NONE;
        long steps = 1;
        if (!strcmp(words[1], "phase") && n == 2) {
            job = UI_JOB_PHASE;
        } else if (!strcmp(words[1], "run") && n == 2) {
            job = UI_JOB_RUN;
        } else if (!strcmp(words[1], "step") && n <= 3) {
            job = UI_JOB_STEPS;
            if (n == 3) {
                char *end;
                steps = strtol(words[2], &end, 10);
                if (*end || steps < 1 || steps > 1000000) {
                    postf(w, 2, "error: train step: '%s' is not a whole number in [1, 1000000]", words[2]);
                    ps_words_free(words, n);
                    return 1;
                }
            }
        }
        if (job != UI_JOB_NONE) {
            ui_worker_train(w, job, steps);
            taken = 1;
        }
    }
    ps_words_free(words, n);
    return taken;
}

static void run_line(ui_worker *w, const char *line, int echo)
{
    if (echo)
        postf(w, 1, "> %s", line);
    if (training_job(w, line))
        return;
    ps_session *s = w->s;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        post(w, 2, "error: out of memory for the command's output");
        return;
    }
    pthread_mutex_lock(&w->mu);
    snprintf(w->snap.running, sizeof w->snap.running, "%s", line);
    ps_out out = {.f = f, .utf8 = w->utf8, .width = w->width};
    pthread_mutex_unlock(&w->mu);

    lock_session(w);
    s->interrupt = 0;
    int rc = ps_repl_exec(s, line, &out);
    fclose(f);
    sync_snapshot(w, -1);
    unlock_session(w);
    atomic_fetch_add(&w->params, 1);
    atomic_fetch_add(&w->version, 1);

    if (buf && len)
        post(w, 0, buf);
    free(buf);
    if (rc)
        postf(w, 2, "error: %s", out.err.msg[0] ? out.err.msg : ps_status_str(rc));
    pthread_mutex_lock(&w->mu);
    w->snap.running[0] = '\0';
    if (w->job != UI_JOB_NONE && s->trainer != w->trainer_seen)
        w->job = UI_JOB_NONE;     /* the model or data changed under it */
    pthread_mutex_unlock(&w->mu);
}

static void run_nudge(ui_worker *w, const char *addr, double delta)
{
    ps_session *s = w->s;
    addr_view v;
    ps_error err = {0};
    lock_session(w);
    int rc = addr_parse(s->lm.model, s->lm.tok, addr, &v, &err);
    double old = 0;
    if (!rc && v.kind != ADDR_KIND_ELEMENT)
        rc = ps_error_set(&err, PS_ERR_INVALID, "%s is not a single value", addr);
    if (!rc)
        old = *addr_region_at(&v.regions[0], 0, 0);
    unlock_session(w);
    if (rc) {
        postf(w, 2, "error: %s", err.msg);
        return;
    }
    char line[512];
    snprintf(line, sizeof line, "%s = %.9g", addr, old + delta);
    run_line(w, line, 1);
}

/* ---- training ---- */

static void step_done(ui_worker *w, ui_job job, int ok)
{
    ps_session *s = w->s;
    ps_trainer *t = s->trainer;
    double now = now_s();
    if (w->continuous && ok) {
        double dt = now - w->step_start;
        if (dt > 0) {
            double r = 1.0 / dt;
            w->rate = w->rate > 0 ? 0.7 * w->rate + 0.3 * r : r;
        }
    }
    w->continuous = 0;
    if (!ok)
        return;
    char line[256];
    int n = snprintf(line, sizeof line, "step %ld: loss %.4f, gradient norm %.3g, lr %.3g", t->step,
                     (double)t->loss, t->grad_norm, (double)t->lr);
    int show = job != UI_JOB_RUN || t->step % 10 == 0 || w->rate < 2;
    if (s->eval_every > 0 && t->step % s->eval_every == 0 && t->n_tokens > t->n_train) {
        float v;
        ps_error err = {0};
        if (ps_trainer_eval(t, 8, &v, &err) == 0)
            snprintf(line + n, sizeof line - (size_t)n, ", validation %.4f", (double)v);
        else
            snprintf(line + n, sizeof line - (size_t)n, " (validation failed: %s)", err.msg);
        show = 1;
    }
    if (show)
        post(w, 0, line);
}

/* Runs the next phase of the current job. */
static void run_phase(ui_worker *w, ui_job job)
{
    ps_session *s = w->s;
    ps_error err = {0};
    lock_session(w);
    int rc = ps_session_trainer(s, &err);
    if (rc) {
        unlock_session(w);
        postf(w, 2, "error: %s", err.msg);
        pthread_mutex_lock(&w->mu);
        w->job = UI_JOB_NONE;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    ps_trainer *t = s->trainer;
    ps_phase ph = t->next;
    sync_snapshot(w, (int)ph);
    if (ph == PS_PHASE_FORWARD) {
        w->step_start = now_s();
        w->continuous = job != UI_JOB_PHASE;
    }
    int finished = 0, ok = 0;
    if (job == UI_JOB_PHASE) {
        /* one phase: the command language explains what it did */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        ps_out out = {.f = f ? f : stderr, .utf8 = w->utf8, .width = w->width};
        rc = ps_repl_exec(s, "train phase", &out);
        if (f)
            fclose(f);
        if (buf && len)
            post(w, 0, buf);
        free(buf);
        if (rc)
            postf(w, 2, "error: %s", out.err.msg);
        finished = ph == PS_PHASE_UPDATE;
        w->continuous = 0;
    } else {
        ps_phase ran;
        rc = ps_trainer_phase(t, &ran, &err);
        if (rc == PS_ERR_NUMERIC) {
            postf(w, 2, "%s", err.msg);
            finished = 1;
            rc = 0;
        } else if (rc) {
            postf(w, 2, "error: %s", err.msg);
        } else if (ran == PS_PHASE_UPDATE) {
            ps_session_params_changed(s);
            finished = ok = 1;
        }
    }
    if (finished && job != UI_JOB_PHASE)
        step_done(w, job, ok);
    sync_snapshot(w, -1);
    unlock_session(w);
    /* forward and loss change nothing the panes show but the dashboard */
    if (ph == PS_PHASE_BACKWARD || ph == PS_PHASE_UPDATE || finished || rc)
        atomic_fetch_add(&w->version, 1);
    if (ph == PS_PHASE_UPDATE || finished)
        atomic_fetch_add(&w->params, 1);

    pthread_mutex_lock(&w->mu);
    if (w->job == job) {
        if (rc)
            w->job = UI_JOB_NONE;
        else if (job == UI_JOB_PHASE && --w->steps_left <= 0)
            w->job = UI_JOB_NONE;
        else if (job == UI_JOB_STEPS && finished && --w->steps_left <= 0)
            w->job = UI_JOB_NONE;
    }
    w->snap.job = w->job;
    w->snap.steps_left = w->steps_left;
    pthread_mutex_unlock(&w->mu);
}

/* ---- the thread ---- */

static void *worker_main(void *arg)
{
    ui_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        item *it = w->head;
        /* an edit waits for the end of the step while training runs */
        if (it && w->job != UI_JOB_NONE && w->s->trainer && w->s->trainer->next != PS_PHASE_FORWARD &&
            (it->kind == ITEM_NUDGE || line_edits(it->text)))
            it = NULL;
        if (it) {
            w->head = it->next;
            if (!w->head)
                w->tail = NULL;
            w->queued--;
            w->snap.queued = w->queued;
            w->snap.busy = 1;
            pthread_mutex_unlock(&w->mu);
            if (it->kind == ITEM_NUDGE)
                run_nudge(w, it->text, it->delta);
            else
                run_line(w, it->text, it->echo);
            free(it->text);
            free(it);
            pthread_mutex_lock(&w->mu);
            w->snap.busy = 0;
            continue;
        }
        if (w->job != UI_JOB_NONE) {
            ui_job job = w->job;
            w->snap.busy = 1;
            pthread_mutex_unlock(&w->mu);
            run_phase(w, job);
            pthread_mutex_lock(&w->mu);
            w->snap.busy = 0;
            continue;
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int ui_worker_start(ui_worker **out, ps_session *s, int utf8, ps_error *err)
{
    *out = NULL;
    ui_worker *w = calloc(1, sizeof *w);
    if (!w)
        return ps_error_set(err, PS_ERR_NOMEM, "worker: out of memory");
    w->s = s;
    w->utf8 = utf8;
    w->width = 80;
    w->snap.running_phase = -1;
    pthread_mutex_init(&w->session_lock, NULL);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_lock(&w->session_lock);
    sync_snapshot(w, -1);
    pthread_mutex_unlock(&w->session_lock);
    if (pthread_create(&w->thread, NULL, worker_main, w)) {
        pthread_mutex_destroy(&w->session_lock);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return ps_error_set(err, PS_ERR_STATE, "worker: cannot start a thread");
    }
    *out = w;
    return PS_OK;
}

void ui_worker_stop(ui_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    w->job = UI_JOB_NONE;
    w->s->interrupt = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    for (item *it = w->head, *next; it; it = next) {
        next = it->next;
        free(it->text);
        free(it);
    }
    pthread_mutex_destroy(&w->session_lock);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->train);
    free(w->val);
    free(w->log);
    free(w);
}

int ui_worker_trylock(ui_worker *w, int wait_ms)
{
    if (pthread_mutex_trylock(&w->session_lock) == 0) {
        atomic_store(&w->ui_wants, 0);
        return 1;
    }
    atomic_store(&w->ui_wants, 1);
    if (wait_ms <= 0)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)wait_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    if (pthread_mutex_timedlock(&w->session_lock, &ts) == 0) {
        atomic_store(&w->ui_wants, 0);
        return 1;
    }
    return 0;
}

void ui_worker_lock(ui_worker *w)
{
    pthread_mutex_lock(&w->session_lock);
}

void ui_worker_unlock(ui_worker *w)
{
    pthread_mutex_unlock(&w->session_lock);
}

static void enqueue(ui_worker *w, int kind, const char *text, double delta, int echo)
{
    item *it = calloc(1, sizeof *it);
    char *t = strdup(text);
    if (!it || !t) {
        free(it);
        free(t);
        return;
    }
    it->kind = kind;
    it->text = t;
    it->delta = delta;
    it->echo = echo;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    w->queued++;
    w->snap.queued = w->queued;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void ui_worker_submit(ui_worker *w, const char *line, int echo)
{
    enqueue(w, ITEM_LINE, line, 0, echo);
}

void ui_worker_nudge(ui_worker *w, const char *addr, double delta)
{
    enqueue(w, ITEM_NUDGE, addr, delta, 1);
}

void ui_worker_train(ui_worker *w, ui_job job, long n)
{
    pthread_mutex_lock(&w->mu);
    n = n > 0 ? n : 1;
    /* pressing "one phase" or "one step" again adds one more */
    if ((job == UI_JOB_PHASE || job == UI_JOB_STEPS) && w->job == job)
        w->steps_left += n;
    else
        w->steps_left = job == UI_JOB_PHASE || job == UI_JOB_STEPS ? n : 0;
    w->job = job;
    w->snap.job = job;
    w->snap.steps_left = w->steps_left;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void ui_worker_interrupt(ui_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->s->interrupt = 1;
    w->job = UI_JOB_NONE;
    w->snap.job = UI_JOB_NONE;
    for (item *it = w->head, *next; it; it = next) {
        next = it->next;
        free(it->text);
        free(it);
    }
    w->head = w->tail = NULL;
    w->queued = w->snap.queued = 0;
    pthread_mutex_unlock(&w->mu);
}

void ui_worker_set_width(ui_worker *w, int cols)
{
    pthread_mutex_lock(&w->mu);
    w->width = cols;
    pthread_mutex_unlock(&w->mu);
}

void ui_worker_snapshot(ui_worker *w, ui_train_snap *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->snap;
    pthread_mutex_unlock(&w->mu);
}

size_t ui_worker_history(ui_worker *w, int which, size_t from, ps_point **dst, size_t *cap,
                         uint64_t *epoch)
{
    pthread_mutex_lock(&w->mu);
    size_t n = which ? w->snap.n_val : w->snap.n_train;
    const ps_point *src = which ? w->val : w->train;
    *epoch = w->snap.epoch;
    if (from > n)
        from = 0;
    if (n > from && !grow_points(dst, cap, n))
        memcpy(*dst + from, src + from, (n - from) * sizeof **dst);
    else if (n > from)
        n = from;
    pthread_mutex_unlock(&w->mu);
    return n;
}

char *ui_worker_take_log(ui_worker *w)
{
    pthread_mutex_lock(&w->mu);
    char *text = w->log_len ? w->log : NULL;
    if (text) {
        w->log = NULL;
        w->log_len = w->log_cap = 0;
    }
    pthread_mutex_unlock(&w->mu);
    return text;
}

uint64_t ui_worker_version(ui_worker *w)
{
    return atomic_load(&w->version);
}

uint64_t ui_worker_params_version(ui_worker *w)
{
    return atomic_load(&w->params);
}
