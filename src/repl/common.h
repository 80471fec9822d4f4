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
} ps_prediction;

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
 * (fmt_human), 3453344 bytes -> "3.3 MB" (fmt_bytes).  Return buf. */
const char *ps_fmt_count(size_t n, char *buf, size_t size);
const char *ps_fmt_human(double n, char *buf, size_t size);
const char *ps_fmt_bytes(double b, char *buf, size_t size);

/* Joins argv[from..argc) with spaces into a malloc'd string. */
char *ps_join_args(int argc, char **argv, int from);

#endif

/* Writes the prompt's tokens (unknown ones as [word]?) and the top tokens as
 * bars with percentages; with baseline ([V] probabilities, may be NULL) each
 * row also shows the change in percentage points, signed (+/-) so that it
 * reads without colour. */
void ps_print_prediction(FILE *out, const ps_prediction *p, const ps_tokenizer *tok,
                         const float *baseline, int utf8);

/* The prediction as one JSON object (malloc'd string, no newline). */
char *ps_prediction_json(const ps_prediction *p, const ps_tokenizer *tok, const char *prompt);
