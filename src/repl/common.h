/* paramscope — what the subcommands, the REPL and the explorer share: finding
 * and opening the model, and turning a prompt into a prediction. */
#ifndef PARAMSCOPE_REPL_COMMON_H
#define PARAMSCOPE_REPL_COMMON_H

#include <stddef.h>
#include <stdio.h>

#include "paramscope/error.h"
#include "paramscope/model.h"
#include "paramscope/model_file.h"
#include "paramscope/tokenizer.h"

#define PS_BUNDLED_MODEL "classroom.safetensors"
#define PS_BUNDLED_CORPUS "corpus.txt"

/* Finds a bundled file: $PARAMSCOPE_DATA/name, the installed data folder, then
 * the source tree's models/.  Returns 0 and fills buf, or -1 if none exists. */
int ps_find_data_file(const char *name, char *buf, size_t size);

/* The model to open: explicit (if not NULL), else $PARAMSCOPE_MODEL, else the
 * bundled model.  Fills err when nothing is found. */
int ps_resolve_model(const char *explicit_path, char *buf, size_t size, ps_error *err);

/* A model with its tokenizer and metadata. */
typedef struct ps_loaded {
    char *path;
    ps_model *model;
    ps_tokenizer *tok;
    ps_meta meta;
    long long file_bytes;
} ps_loaded;

int ps_loaded_open(ps_loaded *out, const char *path, ps_error *err);

/* The head count for GPT-2 checkpoints without config.json whose width is not
 * one of GPT-2's (768, 1024, 1280, 1600); 0: infer it.  Set by --heads, used
 * by every later ps_loaded_open (the command line's model, `load DIR`). */
void ps_loaded_set_heads(int heads);
void ps_loaded_close(ps_loaded *l);

/* ---- predictions ---- */

typedef struct ps_prediction {
    ps_tokens tokens;         /* the prompt as encoded */
    int first;                /* index of the first token kept (truncation) */
    int n_used;               /* tokens fed to the model */
    float temperature;
    int k;                    /* entries in top */
    int *top;                 /* [k] ids, most likely first */
    float *top_prob;          /* [k] */
    float *top_logit;         /* [k] */
    float *probs;             /* [V] the whole distribution */
    double entropy;           /* nats */
    int vocab;                /* V, the size of probs */
    int n_nonfinite;          /* logits that are NaN or infinite: when not 0,
                                 probs, top_prob and entropy mean nothing and
                                 front ends show no bar and no token */
    char nonfinite_at[48];    /* where the first non-finite value of the
                                 forward appears ("block 0 (attention)", see
                                 ps_forward_stage_name), "" when unknown */
} ps_prediction;

#include "paramscope/infer.h"

/* Counts the non-finite values of logits [V] (the last token of inf); when
 * there are any, fills at with where the forward first had one
 * (ps_infer_find_nonfinite: "block 0 (attention)").  Returns the count.  The
 * normal path costs one pass over the logits. */
int ps_logits_check(ps_infer *inf, const float *logits, int V, char *at, size_t at_size);

/* "the logits are not finite: K of V are NaN or infinite, the first
 * non-finite value appears in AT": what every front end says instead of a
 * bar or a token; the second form for a prediction with n_nonfinite > 0. */
void ps_nonfinite_msg(int n_bad, int V, const char *at, char *msg, size_t size);
void ps_prediction_nonfinite_msg(const ps_prediction *p, char *msg, size_t size);

/* Encodes text, runs the model on its last n_ctx tokens and keeps the k most
 * likely next tokens (k is clamped to the vocabulary).  temperature 0 is
 * greedy; negative is PS_ERR_RANGE.  A prompt with no tokens, or only
 * unknown ones, is PS_ERR_INVALID. */
int ps_predict(ps_prediction *out, ps_model *m, const ps_tokenizer *tok,
               const char *text, float temperature, int k, ps_error *err);
void ps_prediction_free(ps_prediction *p);

/* Whether bars may use Unicode block characters (a UTF-8 locale). */
int ps_utf8_output(void);

/* Appends a bar of `width` cells at fraction frac in [0, 1] to buf. */
void ps_render_bar(char *buf, size_t size, double frac, int width, int utf8);

/* Numbers for people: 124439808 -> "124,439,808" (fmt_count), -> "124M"
 * (fmt_human), 3453344 bytes -> "3.5 MB" (fmt_bytes: decimal kB, MB, GB as
 * `info` uses, 1 kB = 1000 bytes, everywhere).  Return buf. */
const char *ps_fmt_count(size_t n, char *buf, size_t size);
const char *ps_fmt_human(double n, char *buf, size_t size);
const char *ps_fmt_bytes(double b, char *buf, size_t size);

/* Reads the whole of text as a decimal or hexadecimal floating-point number
 * (strtod's syntax; "inf" and "infinity" allowed, the caller decides about
 * them).  Returns NULL and sets *v, or says what is wrong, to follow the
 * quoted text: "is not a number", "is NaN, not a number", "is above the
 * range of numbers (beyond about 1.8e308)" or "is below the range of numbers
 * (nearer 0 than about 2.2e-308; type 0 for zero)".  A tiny number that still
 * has a (subnormal) value is accepted. */
const char *ps_number_read(const char *text, double *v);

/* Joins argv[from..argc) with spaces into a malloc'd string. */
char *ps_join_args(int argc, char **argv, int from);

#endif

/* Writes the prompt's tokens (unknown ones as [word]?) and the top tokens as
 * bars with percentages; with baseline ([V] probabilities, may be NULL) each
 * row also shows the change in percentage points, signed (+/-) so that it
 * reads without colour. */
void ps_print_prediction(FILE *out, const ps_prediction *p, const ps_tokenizer *tok,
                         const float *baseline, int utf8);

/* Writes token bytes for a person: control bytes as \n, \r, \t or \xNN
 * (ps_escape), the rest as they are, so a token never moves the cursor.
 * NULL (an id out of range) reads "<?>". */
void ps_put_token(FILE *out, const char *s);

/* The prediction as one JSON object (malloc'd string, no newline): see
 * docs/commands.md ("JSON output") for its keys.  Text that is valid UTF-8 is
 * a JSON string; text that is not (a GPT-2 token holding part of a
 * character, a prompt with an invalid byte) is {"bytes": [n, ...]}, so that
 * "tokens" has one entry per id.  A non-finite number is null, with
 * "finite": false beside it. */
char *ps_prediction_json(const ps_prediction *p, const ps_tokenizer *tok, const char *prompt);

/* The JSON pieces every --json output is made of (jansson values, new
 * references): text as a string when it is valid UTF-8, else
 * {"bytes": [n, ...]}; a number, or null when it is not finite. */
struct json_t;
struct json_t *ps_json_text(const char *t);
struct json_t *ps_json_number(double x);
