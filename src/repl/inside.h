/* paramscope — what the commands inside the forward pass share (cmd_inside.c,
 * cmd_circuits.c): arguments, the prompt's forward, text that fits. */
#ifndef PARAMSCOPE_REPL_INSIDE_H
#define PARAMSCOPE_REPL_INSIDE_H

#include "paramscope/probe.h"
#include "repl/command.h"

#define LABEL_MAX 256

/* ---- arguments ---- */

char *inside_skip_space(char *p);
/* A leading "--json" word: removed, and 1. */
int inside_take_json(char **text);
/* The first word of *text into buf (cut to size), *text moved past it. */
void inside_take_word(char **text, char *buf, size_t size);
/* "L" or "L.N" with L < max_l and N < max_n; *n = -1 when there is no ".N".
 * what: "head" or "neuron", for the messages. */
int inside_parse_pair(const char *word, const char *what, int max_l, int max_n, int *l, int *n, ps_out *out);

/* The first word of *text as BLOCK[.N] of the session's model, N a head
 * (what "head") or an MLP neuron ("neuron"); usage is the command's syntax
 * for the message when the word is missing. */
int inside_take_pair(ps_session *s, char **text, const char *what, const char *usage, int *l, int *n, ps_out *out);

/* ---- the prompt's forward ---- */

typedef struct inside {
    ps_model *pm;             /* shares the session's weights */
    ps_tokens tk;             /* the prompt as encoded */
    int first, T;             /* the tokens used: tk.ids[first .. first + T) */
    char *text;               /* the prompt */
} inside;

/* Encodes text (the last prompt when empty), keeps its last n_ctx tokens and
 * runs them through a model sharing the session's weights.  Fails, saying
 * where, when the logits are not finite. */
int inside_run(ps_session *s, const char *text, inside *in, ps_out *out);
void inside_clear(inside *in);
/* The end of a view: when rc is PS_OK its prompt becomes the session's
 * (a failed command changes nothing); then inside_clear.  Returns rc. */
int inside_finish(ps_session *s, inside *in, int rc);
/* The text of used token t. */
const char *inside_piece(const inside *in, int t);

/* ---- text and JSON ---- */

/* Display cells of UTF-8 text (wide characters count two). */
int inside_cells(const char *s);
/* A token escaped and cut to at most `width` cells (an ellipsis marks a cut),
 * padded with spaces to exactly `width` when pad is set.  Returns buf. */
const char *inside_fit(const char *t, int width, int pad, int utf8, char *buf, size_t size);
/* One heatmap cell for p in [0, 1]: a block, or an ASCII character by density. */
const char *inside_shade(double p, int utf8);
struct json_t;
struct json_t *inside_tokens_json(const inside *in);
/* Prints o on one line and releases it. */
int inside_print_json(struct json_t *o, ps_out *out);

/* ---- direct logit attribution as a list ---- */

typedef struct inside_part {
    char name[32];            /* "head 0.1", "MLP 2", "token embedding", ... */
    int layer, head;          /* -1 where they do not apply */
    double value;
} inside_part;

/* Room inside_parts needs for a model of this shape. */
size_t inside_parts_max(const ps_config *cf);
/* Every part of a as a list, largest |value| first; returns how many. */
int inside_parts(const ps_attribution *a, inside_part *parts);

/* ---- handlers in cmd_circuits.c ---- */

int ps_cmd_neuron(ps_session *s, int argc, char **argv, ps_out *out);
int ps_cmd_patch(ps_session *s, int argc, char **argv, ps_out *out);
int ps_cmd_saliency(ps_session *s, int argc, char **argv, ps_out *out);

#endif
