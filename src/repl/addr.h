/* paramscope — tensor addresses: the words people type to name a parameter,
 * a window of it, one number, or a named view (a head, a neuron, a token's
 * embedding row).  The grammar, with examples, is in docs/addresses.md.
 *
 *   address  := name index*
 *   name     := a parameter name             h.0.attn.c_attn.weight, ln_f.bias
 *             | wte | wpe                     aliases of wte.weight, wpe.weight
 *             | h.L.attn.(q|k|v|head)         heads of layer L
 *             | h.L.mlp.neuron                MLP neurons of layer L
 *   index    := '[' item (',' item)* ']'
 *   item     := INT | [INT] ':' [INT] | '"' token '"'
 *
 * INT is a whole number, negative counting from the end (python-like); a:b is
 * half-open; an end left out means "from the start" or "to the end"; slice ends
 * must lie inside the tensor (no silent clamping), and empty or reversed ranges
 * are errors.  White space is allowed inside brackets and around the address.
 *
 * The first index after a view names picks what the view is about: heads for
 * q/k/v/head (a single head or a range; q alone means all heads), neurons for
 * neuron, a token (quoted) for wte.  Indices after that, and every index after
 * a parameter, narrow the current window the way numpy does: [i] removes a
 * dimension, [a:b] keeps it, and they may be chained (h.0.attn.q[3][0:4,:]).
 * A whole single row of wte or wpe is the embedding view of that token or
 * position, however it was spelt.
 *
 * A view is an address, not a copy: its regions point into the model's
 * parameters, so writing through them edits the model.  Views hold no
 * resources and need no freeing; they stay valid while the model lives.
 *
 * Errors are one line for a person, in the ps_error, e.g.
 *   no tensor 'h.0.attn.c_atn.weight'; did you mean 'h.0.attn.c_attn.weight'?
 *   row 80 is out of range: h.0.attn.c_attn.weight has rows 0..63
 *   layer 12: the model has layers 0..1
 *   'xyzzy' is not in the vocabulary
 * with codes PS_ERR_INVALID (syntax), PS_ERR_NOT_FOUND (unknown name, view or
 * token), PS_ERR_RANGE (an index, layer, head or neuron out of range) and
 * PS_ERR_STATE (a quoted token but no tokenizer). */
#ifndef PARAMSCOPE_REPL_ADDR_H
#define PARAMSCOPE_REPL_ADDR_H

#include <stddef.h>

#include "paramscope/error.h"
#include "paramscope/model.h"
#include "paramscope/tokenizer.h"

/* The most regions a view spans: a head's q, k, v weight blocks, its three
 * bias slices and its rows of attn.c_proj.weight. */
#define ADDR_MAX_REGIONS 7
#define ADDR_NAME_MAX 1152            /* a quoted token of 255 bytes, each \xNN, and indices */

/* What an address denotes, for display. */
typedef enum addr_kind {
    ADDR_KIND_TENSOR,    /* a whole parameter: wte, h.0.ln_1.bias */
    ADDR_KIND_VIEW,      /* a named view, whole: h.0.attn.q[3], wte["sky"] */
    ADDR_KIND_ELEMENT,   /* one number: h.0.attn.c_attn.weight[3,17] */
    ADDR_KIND_SLICE,     /* any other window: [0:8,:], [5] on a matrix */
} addr_kind;

/* What an address starts from. */
typedef enum addr_base {
    ADDR_BASE_TENSOR,    /* a parameter by name */
    ADDR_BASE_Q,         /* heads' query block of attn.c_attn.weight */
    ADDR_BASE_K,         /* ... key block (columns + C) */
    ADDR_BASE_V,         /* ... value block (columns + 2C) */
    ADDR_BASE_HEAD,      /* heads' q, k, v blocks and biases, attn.c_proj rows */
    ADDR_BASE_NEURON,    /* neurons: mlp.c_fc column and bias, mlp.c_proj row */
    ADDR_BASE_TOKEN,     /* one row of wte */
    ADDR_BASE_POSITION,  /* one row of wpe */
} addr_base;

/* A strided 2-D window of one parameter: rows row0..row0+rows-1 and columns
 * col0..col0+cols-1; the row stride is param->shape[1] (1 for a 1-D
 * parameter, whose elements are its rows). */
typedef struct addr_region {
    ps_param *param;     /* borrowed from the model */
    size_t row0, rows;
    size_t col0, cols;
} addr_region;

typedef struct addr_view {
    addr_kind kind;
    addr_base base;
    int layer;                   /* block of the base, -1 outside the blocks */
    int first, count;            /* heads or neurons first..first+count-1; the
                                    token id or position (count 1); 0, 0 for
                                    a parameter */
    int n_regions;
    addr_region regions[ADDR_MAX_REGIONS];  /* in model order */
    int ndim;                    /* dimensions left: 2, 1 or 0 (element); -1
                                    for a multi-region view */
    char name[ADDR_NAME_MAX];    /* canonical name, see addr_view_render */

    /* Bookkeeping for the name and further indexing (single-region views):
     * the base's window and, per axis (0 rows, 1 columns), whether the axis
     * is a dimension of the base and of the result. */
    size_t base_row0, base_rows, base_col0, base_cols;
    unsigned char base_live[2], live[2];
} addr_view;

/* Parses `text` into *out.  `tok` may be NULL (then quoted tokens are an
 * error and token rows are named by id).  On failure *out is unspecified,
 * err holds the message and a negative PS_ERR_* code is returned. */
/* A quoted token: s points at its opening '"'; the bytes up to the closing
 * one (not past end) are unescaped into out [cap] (\" \\ \n \r \t \xNN, as
 * canonical names write them) and *stop is left at the closing quote.  On
 * failure (an unknown escape, too long, no closing quote) *stop is where it
 * went wrong and err says what. */
int addr_unquote(const char *s, const char *end, char *out, size_t cap, const char **stop, ps_error *err);

int addr_parse(ps_model *m, const ps_tokenizer *tok, const char *text,
               addr_view *out, ps_error *err);

/* Writes v's canonical name into buf (snprintf-style: returns the length the
 * full name needs, truncates safely).  The name parses back to the same
 * regions: a parameter by its full name (wte -> wte.weight), a view by its
 * short spelling (h.0.attn.q[3], h.0.mlp.neuron[7]), then at most one index
 * relative to it with every number resolved (no negatives, no open ends, ':'
 * for a whole axis, a number for a removed one): h.0.attn.c_attn.weight[:,47],
 * h.0.attn.q[3][0:4,:].  A token row is wte["sky"] when the tokenizer spells
 * that token back to the same id, wte[5] otherwise.  addr_parse stores this
 * in v->name. */
int addr_view_render(const addr_view *v, const ps_tokenizer *tok,
                     char *buf, size_t size);

/* Number of floats the view covers (sum over regions). */
size_t addr_view_numel(const addr_view *v);

/* Pointer to element (i, j) of region r, relative to the region's window. */
float *addr_region_at(const addr_region *r, size_t i, size_t j);

/* Calls fn(candidate, ctx) for every name that starts with prefix: parameter
 * names, the aliases wte and wpe, the view openers h.L.attn.q[ (and k[, v[,
 * head[), h.L.mlp.neuron[ and wte[" , and, when tok is not NULL and prefix
 * starts with wte[" , every token written as wte["token"] (escaped).
 * Candidates come in model order; the string is only valid during the call.
 * Returns the number of candidates.  (A readline completer must keep '[', '"'
 * and '.' out of its word-break characters.) */
int addr_complete(const ps_model *m, const ps_tokenizer *tok, const char *prefix,
                  void (*fn)(const char *candidate, void *ctx), void *ctx);

#endif
