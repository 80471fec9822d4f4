/* The explorer's threads without a terminal: the worker (training and
 * command lines) and the prediction thread run while this thread plays the
 * UI — asking for predictions as a person types, nudging a weight, pausing,
 * interrupting.  Run under ThreadSanitizer in CI at several threads, it is the
 * test of their handshakes; here it checks what the UI would show. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paramscope/blas.h"
#include "repl/session.h"
#include "ui/predictor.h"
#include "ui/worker.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls the snapshot until done() holds, for at most `seconds`. */
static int wait_snap(ui_worker *w, int (*done)(const ui_train_snap *, long), long arg, int seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        ui_train_snap sn;
        ui_worker_snapshot(w, &sn);
        if (done(&sn, arg))
            return 1;
        sleep_ms(10);
    }
    return 0;
}

static int reached(const ui_train_snap *sn, long step)
{
    return sn->step >= step && sn->job == UI_JOB_NONE && !sn->busy && !sn->queued;
}

static int past(const ui_train_snap *sn, long step)
{
    return sn->step > step;
}

static int idle(const ui_train_snap *sn, long unused)
{
    (void)unused;
    return sn->job == UI_JOB_NONE && !sn->busy && !sn->queued && sn->running_phase < 0;
}

/* The next finished prediction for `text`, waiting at most 10 s. */
static ui_pred_result *prediction(ui_predictor *p, const char *text)
{
    for (int i = 0; i < 1000; i++) {
        ui_pred_result *r = ui_predictor_take(p);
        if (r && !strcmp(r->text, text))
            return r;
        ui_pred_result_free(r);
        sleep_ms(10);
    }
    return NULL;
}

static char *all_log(ui_worker *w, char *acc)
{
    char *t = ui_worker_take_log(w);
    if (!t)
        return acc;
    size_t a = acc ? strlen(acc) : 0, n = strlen(t);
    acc = realloc(acc, a + n + 1);
    memcpy(acc + a, t, n + 1);
    free(t);
    return acc;
}

static void test_threads_meet(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/models/classroom.safetensors", getenv("PS_SOURCE_ROOT"));
    const char *env = getenv("PARAMSCOPE_THREADS");
    assert_int_equal(ps_blas_init(env ? atoi(env) : 2, NULL), PS_OK);
    ps_session s;
    ps_error err;
    assert_int_equal(ps_session_open(&s, path, &err), PS_OK);
    ui_worker *w = NULL;
    ui_predictor *p = NULL;
    assert_int_equal(ui_worker_start(&w, &s, 1, &err), PS_OK);
    assert_int_equal(ui_predictor_start(&p, w, &s, &err), PS_OK);

    /* the bundled model knows its fact */
    ui_predictor_request(p, "the sky is", ui_worker_params_version(w));
    ui_pred_result *r = prediction(p, "the sky is");
    assert_non_null(r);
    assert_true(r->ok);
    assert_string_equal(r->names[0], "blue");
    ui_pred_result_free(r);

    /* typing while training runs: requests replace each other, and every
     * answer that arrives is for a prompt that was asked */
    ui_worker_submit(w, "train set batch 4", 0);
    ui_worker_train(w, UI_JOB_STEPS, 12);
    const char *typed[] = {"the", "the sky", "the sky is", "the grass", "the grass is"};
    for (int round = 0; round < 20; round++) {
        const char *t = typed[round % 5];
        ui_predictor_request(p, t, ui_worker_params_version(w));
        ui_pred_result *q = ui_predictor_take(p);
        if (q) {
            int asked = 0;
            for (int i = 0; i < 5; i++)
                asked |= !strcmp(q->text, typed[i]);
            assert_true(asked);
        }
        ui_pred_result_free(q);
        if (round == 7)
            ui_worker_nudge(w, "ln_f.bias[0]", 0.25);
        sleep_ms(5);
    }
    assert_true(wait_snap(w, reached, 12, 60));
    ui_train_snap sn;
    ui_worker_snapshot(w, &sn);
    assert_int_equal(sn.step, 12);
    assert_int_equal(sn.batch, 4);

    char *log = all_log(w, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "step 12"));
    /* the nudge landed between steps, through the command language */
    assert_non_null(strstr(log, "set ln_f.bias[0] to"));

    /* a run, paused from here once it has made a step, stops at a phase
     * boundary and stays */
    ui_worker_train(w, UI_JOB_RUN, 0);
    assert_true(wait_snap(w, past, 12, 60));
    ui_worker_train(w, UI_JOB_NONE, 0);
    assert_true(wait_snap(w, idle, 0, 30));
    ui_worker_snapshot(w, &sn);
    long paused_at = sn.step;
    int next = sn.next_phase;
    sleep_ms(100);
    ui_worker_snapshot(w, &sn);
    assert_int_equal(sn.step, paused_at);
    assert_int_equal(sn.next_phase, next);
    assert_true(paused_at > 12);

    /* Ctrl-C stops a long job, once it is under way */
    ui_worker_submit(w, "train step 100000", 0);
    assert_true(wait_snap(w, past, paused_at, 60));
    ui_worker_interrupt(w);
    assert_true(wait_snap(w, idle, 0, 30));
    ui_worker_snapshot(w, &sn);
    assert_true(sn.step > paused_at && sn.step < paused_at + 1000);

    /* predictions follow the edited, trained weights */
    ui_predictor_request(p, "the sky is", ui_worker_params_version(w));
    r = prediction(p, "the sky is");
    assert_non_null(r);
    assert_true(r->ok);
    ui_pred_result_free(r);
    free(log);
    ui_predictor_stop(p);
    ui_worker_stop(w);
    ps_session_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_meet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
