/* paramscope — the explorer's prediction thread.
 *
 * Why a thread of its own: with GPT-2's 124M parameters one prediction takes
 * a few hundred milliseconds on a small machine, longer than a frame may
 * last.  The UI asks for the prediction of a prompt and goes on drawing; the
 * thread takes the session lock when the worker leaves it free, runs the
 * prediction on a model of its own that borrows the session's weights (own
 * activations and inference cache, shared parameters), and leaves the result
 * for the UI to pick up.  A newer request replaces one not yet started. */
#ifndef PARAMSCOPE_UI_PREDICTOR_H
#define PARAMSCOPE_UI_PREDICTOR_H

#include <stdint.h>

#include "repl/session.h"
#include "ui/worker.h"

typedef struct ui_pred_result {
    char *text;               /* the prompt */
    uint64_t version;         /* the request's version of the parameters */
    int ok;                   /* else err says why */
    ps_error err;
    ps_prediction p;
    char **names;             /* [p.k] the bars' tokens */
    float *logp;              /* [V] log-probabilities at the temperature */
    float *session_baseline;  /* [V] `baseline`'s, when it is for this prompt */
    int V;
    ps_settings set;          /* the settings it was computed with */
    int words;                /* the tokenizer is the words kind */
    char *top_piece;          /* the top token as text to append */
    char *sample_piece;       /* a token drawn with the sampling settings */
    double ms;
} ui_pred_result;

void ui_pred_result_free(ui_pred_result *r);   /* and r itself; NULL: nothing */

typedef struct ui_predictor ui_predictor;

int ui_predictor_start(ui_predictor **out, ui_worker *w, ps_session *s, ps_error *err);
void ui_predictor_stop(ui_predictor *p);       /* NULL: nothing */

/* Asks for the prediction of text (with the session's settings). */
void ui_predictor_request(ui_predictor *p, const char *text, uint64_t version);
/* The newest finished result, or NULL; the caller owns it. */
ui_pred_result *ui_predictor_take(ui_predictor *p);

#endif
