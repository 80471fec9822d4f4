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

/* What the Inside pane shows of one prompt (ui_predictor_request_inside):
 * one head's attention pattern, the logit lens at the last token and the
 * largest parts of the top token's direct logit attribution. */
#define UI_INSIDE_PARTS 8
typedef struct ui_inside_result {
    int T;                    /* tokens used */
    char **tokens;            /* [T] */
    int layer, head;          /* the pattern's head */
    float *att;               /* [T, T], row = query */
    int S;                    /* stages: the embeddings and each block */
    char **lens_top;          /* [S] each stage's top token */
    float *lens_prob;         /* [S] its probability */
    float *lens_answer;       /* [S] the final answer's probability there */
    char *answer;             /* the top token at the end */
    int n_parts;
    char part_name[UI_INSIDE_PARTS][32];
    double part_value[UI_INSIDE_PARTS];
    double logit;             /* the answer's logit, what the parts add up to */
} ui_inside_result;

void ui_inside_result_free(ui_inside_result *r);   /* and r itself */

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
    ui_inside_result *inside; /* with ui_predictor_request_inside, else NULL */
} ui_pred_result;

void ui_pred_result_free(ui_pred_result *r);   /* and r itself; NULL: nothing */

typedef struct ui_predictor ui_predictor;

int ui_predictor_start(ui_predictor **out, ui_worker *w, ps_session *s, ps_error *err);
void ui_predictor_stop(ui_predictor *p);       /* NULL: nothing */

/* Asks for the prediction of text (with the session's settings). */
void ui_predictor_request(ui_predictor *p, const char *text, uint64_t version);
/* The same, for the Inside pane: the result carries `inside` for head
 * (layer, head) and no bars. */
void ui_predictor_request_inside(ui_predictor *p, const char *text, uint64_t version, int layer, int head);
/* The newest finished result, or NULL; the caller owns it. */
ui_pred_result *ui_predictor_take(ui_predictor *p);

#endif
