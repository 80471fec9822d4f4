/* paramscope — perturbations of parameters with an undo journal.
 *
 * Every edit of a model's parameters goes through a ps_perturb journal, which
 * records the exact bits each edit overwrote and how to write its own again,
 * so that undo, redo and reset restore values bit for bit (signed zeros and
 * NaN payloads included).
 *
 * An edit covers one or more regions.  A region is a strided 2-D window of one
 * parameter: rows [row0, row0 + rows) and columns [col0, col0 + cols) of the
 * parameter seen as a matrix whose consecutive rows are ld floats apart.  A 2-D
 * parameter is its [shape[0], shape[1]] matrix (ld = shape[1]); a 1-D
 * parameter of n values is a 1 x n matrix (row0 0, rows 1, ld n), which is the
 * form the helpers build; the n x 1 form (col0 0, cols 1) that shape[]
 * describes is accepted too and means the same values.  ld is only checked
 * for 2-D parameters when rows > 1 (it must be shape[1]); 1-D ones ignore it.
 *
 * The values of an edit are its regions' values in order, each region row by
 * row ("region order").  Regions of one edit may overlap: every new value is
 * computed from the values before the edit, the regions are written in order
 * (so a later region's value wins), and undo restores what was there before.
 *
 * The journal is a list of entries with a cursor: entries [0, cursor) are
 * applied (undo goes back through them), entries [cursor, count) were undone
 * (redo re-applies them).  A new edit drops the undone tail.  An entry stores
 * the old values of its regions; prune, assign and outside changes store the
 * new ones too, while set and zero keep one value, reset uses the baselines,
 * and scale, add, noise and quantize compute them again, bit for bit, from
 * the old ones.  The stored values (not the few hundred bytes of bookkeeping
 * per entry) are limited by a cap (PS_PERTURB_DEFAULT_CAP bytes unless set):
 * when an edit takes the journal over it, the oldest entries are dropped and
 * the edit still succeeds; the newest entry is always kept, even alone over
 * the cap.  Reported through ps_perturb_result.n_dropped and
 * ps_perturb_dropped().
 *
 * The baseline is the parameters' values before this journal first touched
 * them: before the first edit of a parameter its values are copied (lazily, one
 * parameter at a time, so a 500 MB model costs only what is edited).  Reset
 * restores the baseline and is itself an undoable entry; diff compares with it.
 * Baselines are not counted in the cap.  A parameter changed by someone else
 * (the trainer) before its first edit gets that changed state as its baseline
 * unless ps_perturb_capture() was called first.
 *
 * Failures change nothing: regions and arguments are checked and all memory is
 * allocated before the first value is written.  Every change of values (edit,
 * undo, redo, reset, commit) increments a generation counter, so that a
 * display can tell that predictions computed earlier are stale.
 *
 * The journal keeps pointers to the model's parameter table: the model must
 * outlive it.  One thread at a time. */
#ifndef PARAMSCOPE_PERTURB_H
#define PARAMSCOPE_PERTURB_H

#include <stddef.h>
#include <stdint.h>

#include "paramscope/error.h"
#include "paramscope/model.h"

#define PS_PERTURB_DEFAULT_CAP ((size_t)256 << 20)
#define PS_PERTURB_NAME_MAX 1280      /* an address (ADDR_NAME_MAX) and the edit around it */

/* ---- regions ---- */

typedef struct ps_region {
    ps_param *param;
    size_t row0, rows;
    size_t col0, cols;
    size_t ld;                /* floats between consecutive rows */
} ps_region;

/* Constructors: they fill the fields and check nothing (ps_region_check and
 * every edit do; a NULL p gives a region they reject).  row/col are those of
 * the matrix form above; for a 1-D parameter use row 0. */
ps_region ps_region_whole(ps_param *p);
ps_region ps_region_element(ps_param *p, size_t row, size_t col);
ps_region ps_region_index(ps_param *p, size_t i);   /* i-th value, row-major */
ps_region ps_region_rows(ps_param *p, size_t row0, size_t rows);  /* all columns */
ps_region ps_region_cols(ps_param *p, size_t col0, size_t cols);  /* all rows */
ps_region ps_region_block(ps_param *p, size_t row0, size_t rows, size_t col0,
                          size_t cols);

/* rows * cols. */
size_t ps_region_numel(const ps_region *r);

/* PS_ERR_INVALID for a NULL parameter, PS_ERR_RANGE (naming the parameter,
 * the window and the shape) for an empty window, one outside the shape or a
 * wrong ld. */
int ps_region_check(const ps_region *r, ps_error *err);

/* "h.0.attn.c_attn.weight[0:8, 8:12]": the parameter's name alone for the
 * whole tensor, "name[i]" / "name[a:b]" for rows (all columns) or 1-D ranges,
 * "name[r, c]" otherwise, with ":" for all and a:b end-exclusive.  Always
 * terminated; truncated to size. */
void ps_region_format(const ps_region *r, char *buf, size_t size);

/* The parts of an attention head. */
typedef enum ps_head_part {
    PS_HEAD_PART_Q,           /* c_attn columns h*hd.. of Q, and its bias */
    PS_HEAD_PART_K,           /* the same in the K third (offset C) */
    PS_HEAD_PART_V,           /* the same in the V third (offset 2C) */
    PS_HEAD_PART_O,           /* attn.c_proj.weight rows h*hd..(h+1)*hd-1 */
} ps_head_part;

/* Head `head` of block `layer`: out[0] is the weight block, and for Q, K, V
 * out[1] is the matching segment of attn.c_attn.bias (pass only out[0] to an
 * edit to leave the bias alone); *n_out receives 2 or 1 (O: the c_proj bias is
 * shared by all heads).  PS_ERR_RANGE for a bad layer or head or part. */
int ps_region_head(ps_model *m, int layer, int head, ps_head_part part,
                   ps_region out[2], int *n_out, ps_error *err);

/* MLP neuron j of block `layer` (j < 4 n_embd): out[0] column j of
 * mlp.c_fc.weight, out[1] element j of mlp.c_fc.bias, out[2] row j of
 * mlp.c_proj.weight.  PS_ERR_RANGE for a bad layer or neuron. */
int ps_region_neuron(ps_model *m, int layer, int neuron, ps_region out[3],
                     ps_error *err);

/* ---- edits ---- */

typedef enum ps_perturb_op {
    PS_PERTURB_OP_SET,        /* x = value */
    PS_PERTURB_OP_SCALE,      /* x = x * value (float) */
    PS_PERTURB_OP_ADD,        /* x = x + value (float) */
    PS_PERTURB_OP_NOISE,      /* x = x + sigma * n_i: n_i the i-th ps_rng_normal
                                 of a generator seeded with seed, in region order */
    PS_PERTURB_OP_ZERO,       /* x = +0 */
    PS_PERTURB_OP_PRUNE,      /* the k smallest |x| over all the regions set to
                                 +0, k = floor(n * percent / 100); ties go to the
                                 earlier value in region order; -0 and +0 tie;
                                 NaN counts as larger than everything */
    PS_PERTURB_OP_QUANTIZE,   /* per region, in double: s = max|x| / (2^(bits-1)
                                 - 1) over the finite x; x = (float)(clamp(
                                 round(x / s), -qmax, qmax) * s), round() halves
                                 away from zero; a region with max|x| 0 and every
                                 non-finite x are left as they are */
    PS_PERTURB_OP_ASSIGN,     /* x = the caller's values, in region order */
    PS_PERTURB_OP_RESET,      /* x = baseline (ps_perturb_reset_*) */
    PS_PERTURB_OP_EXTERNAL,   /* a change made outside (ps_perturb_begin) */
} ps_perturb_op;

/* "set", "scale", "add", "noise", "zero", "prune", "quantize", "assign",
 * "reset", "external"; "unknown" otherwise. */
const char *ps_perturb_op_name(ps_perturb_op op);

/* One edit for ps_perturb_edit.  Only the fields of the op are read. */
typedef struct ps_edit {
    ps_perturb_op op;         /* SET .. ASSIGN */
    float value;              /* SET: the value; SCALE: the factor; ADD: the
                                 addend; NOISE: sigma (finite, >= 0) */
    uint64_t seed;            /* NOISE */
    double percent;           /* PRUNE: in [0, 100] */
    int bits;                 /* QUANTIZE: in [2, 16] */
    const float *values;      /* ASSIGN: [n values of the regions], copied */
    const char *label;        /* the entry's name, or NULL for a generated one
                                 like "scale h.0.mlp.c_fc.weight 0" */
    int keep_finite;          /* 1: refuse to make a finite value NaN or
                                 infinite (what people's edits want; 0 lets
                                 tools write any bits) */
} ps_edit;

/* What an edit did; every field is set (0 where it does not apply). */
typedef struct ps_perturb_result {
    size_t n_values;          /* values covered by the regions */
    size_t n_changed;         /* of those, values whose bits changed */
    size_t n_zeroed;          /* PRUNE: values selected and set to zero (k) */
    double quant_mean_err;    /* QUANTIZE: mean |new - old| over finite values */
    double quant_max_err;     /* QUANTIZE: max |new - old| */
    size_t quant_bytes;       /* QUANTIZE: ceil(n * bits / 8) + 4 per region */
    int n_dropped;            /* oldest entries dropped for the cap by this call */
    int recorded;             /* 1 if a journal entry was added */
} ps_perturb_result;

typedef struct ps_perturb ps_perturb;

/* A journal for model m, empty, with no baseline yet and the default cap.
 * *out is owned by the caller (ps_perturb_free); NULL on failure. */
int ps_perturb_init(ps_perturb **out, ps_model *m, ps_error *err);
void ps_perturb_free(ps_perturb *j);

/* Applies e to the regions [n_regions >= 1] of j's model as one entry.  res
 * may be NULL.  PS_ERR_INVALID (bad op, NULL values, parameter of another
 * model, n_regions < 1), PS_ERR_RANGE (a region, sigma, percent, bits),
 * PS_ERR_STATE (between begin and commit), PS_ERR_NOMEM: nothing changed.
 * With e->keep_finite, an edit that would turn a finite value into NaN or an
 * infinity (set to inf or NaN, a scale or add that overflows float32,
 * assigned non-finite values, noise) is PS_ERR_NUMERIC, naming the first
 * such value, and changes nothing; values already non-finite may stay so. */
int ps_perturb_edit(ps_perturb *j, const ps_region *regions, int n_regions,
                    const ps_edit *e, ps_perturb_result *res, ps_error *err);

/* The same, one function per op, with a generated name. */
int ps_perturb_set(ps_perturb *j, const ps_region *regions, int n_regions,
                   float value, ps_perturb_result *res, ps_error *err);
int ps_perturb_scale(ps_perturb *j, const ps_region *regions, int n_regions,
                     float factor, ps_perturb_result *res, ps_error *err);
int ps_perturb_add(ps_perturb *j, const ps_region *regions, int n_regions,
                   float value, ps_perturb_result *res, ps_error *err);
int ps_perturb_noise(ps_perturb *j, const ps_region *regions, int n_regions,
                     float sigma, uint64_t seed, ps_perturb_result *res,
                     ps_error *err);
int ps_perturb_zero(ps_perturb *j, const ps_region *regions, int n_regions,
                    ps_perturb_result *res, ps_error *err);
int ps_perturb_prune(ps_perturb *j, const ps_region *regions, int n_regions,
                     double percent, ps_perturb_result *res, ps_error *err);
int ps_perturb_quantize(ps_perturb *j, const ps_region *regions, int n_regions,
                        int bits, ps_perturb_result *res, ps_error *err);
int ps_perturb_assign(ps_perturb *j, const ps_region *regions, int n_regions,
                      const float *values, ps_perturb_result *res,
                      ps_error *err);

/* Undo the entry before the cursor / redo the one after it.  PS_ERR_STATE
 * ("nothing to undo" / "nothing to redo", or between begin and commit). */
int ps_perturb_undo(ps_perturb *j, ps_error *err);
int ps_perturb_redo(ps_perturb *j, ps_error *err);

/* Restores the baseline of every parameter that differs from it (bitwise) /
 * of p, as one entry named "reset all" / "reset NAME".  When nothing differs
 * no entry is added, nothing changes and res->recorded is 0.  res may be
 * NULL; res->n_values counts the values of the restored parameters. */
int ps_perturb_reset_all(ps_perturb *j, ps_perturb_result *res, ps_error *err);
int ps_perturb_reset_param(ps_perturb *j, ps_param *p, ps_perturb_result *res,
                           ps_error *err);

/* How a parameter differs from its baseline. */
typedef struct ps_param_diff {
    ps_param *param;
    size_t n_changed;         /* values whose bits differ */
    size_t n_nonfinite;       /* of those, where old or new is NaN or Inf */
    double l2;                /* sqrt(sum (new - old)^2) over the finite pairs */
    double max_abs;           /* max |new - old| over the finite pairs */
} ps_param_diff;

/* One row for every parameter that differs from its baseline, in table order,
 * into out[cap] (cap >= m->n_params always suffices); *n_out the number of
 * rows.  PS_ERR_RANGE when cap is too small (out then holds the first cap). */
int ps_perturb_diff(const ps_perturb *j, ps_param_diff *out, int cap,
                    int *n_out, ps_error *err);

/* The baseline of p ([p->numel]), or NULL if none was taken yet. */
const float *ps_perturb_baseline(const ps_perturb *j, const ps_param *p);

/* Takes the baseline of p now if it has none (p NULL: of every parameter),
 * e.g. before training so that reset and diff refer to the loaded values.
 * PS_ERR_NOMEM leaves the baselines taken so far. */
int ps_perturb_capture(ps_perturb *j, ps_param *p, ps_error *err);

/* ---- changes made outside the journal (training) ---- */

/* Records the current values of the regions (NULL and 0: every parameter),
 * taking their baselines, as the old values of a pending entry named label
 * (NULL: "external change").  Until ps_perturb_commit or ps_perturb_cancel,
 * edits, undo, redo and reset fail with PS_ERR_STATE; meanwhile the caller
 * changes the values as it likes.  The entry holds old and new values of the
 * regions: twice the model for a whole-model training run, so on large models
 * a session may prefer ps_perturb_clear() after training instead. */
int ps_perturb_begin(ps_perturb *j, const ps_region *regions, int n_regions,
                     const char *label, ps_error *err);
/* Stores the regions' values now as the new values and adds the entry (which
 * undo and redo treat like any other).  res may be NULL.  PS_ERR_STATE when
 * nothing is pending; PS_ERR_NOMEM drops the pending entry and adds nothing
 * (the values stay as the caller left them). */
int ps_perturb_commit(ps_perturb *j, ps_perturb_result *res, ps_error *err);
/* Forgets a pending entry; the values stay as they are. */
void ps_perturb_cancel(ps_perturb *j);

/* ---- the journal itself ---- */

/* Forgets every entry; keeps the baselines. */
void ps_perturb_clear(ps_perturb *j);
/* Forgets every entry and every baseline: the current values become the
 * baseline (lazily, as at init). */
void ps_perturb_rebase(ps_perturb *j);

/* Sets the cap on stored values, in bytes, and drops entries to meet it: the
 * oldest applied ones first (the newest applied one is kept), then undone ones
 * from the newest.  Returns how many were dropped. */
int ps_perturb_set_cap(ps_perturb *j, size_t bytes);
size_t ps_perturb_cap(const ps_perturb *j);
size_t ps_perturb_bytes(const ps_perturb *j);          /* stored by entries */
size_t ps_perturb_baseline_bytes(const ps_perturb *j);  /* held by baselines */

int ps_perturb_count(const ps_perturb *j);     /* entries, applied or undone */
int ps_perturb_cursor(const ps_perturb *j);    /* applied entries: undo depth */
uint64_t ps_perturb_generation(const ps_perturb *j);
uint64_t ps_perturb_dropped(const ps_perturb *j); /* dropped for the cap, ever */

/* One entry of the history, 0 the oldest kept. */
typedef struct ps_perturb_entry {
    const char *name;         /* valid until the journal changes */
    ps_perturb_op op;
    int n_regions;
    size_t n_values;
    uint64_t seed;            /* NOISE: the generator's seed */
    size_t bytes;             /* stored values */
    int applied;              /* index < cursor */
} ps_perturb_entry;

/* PS_ERR_RANGE when i is not in [0, count). */
int ps_perturb_entry_info(const ps_perturb *j, int i, ps_perturb_entry *out,
                          ps_error *err);

#endif
