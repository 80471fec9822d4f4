/* The perturbation layer: edits of parameter regions, recorded in a journal of
 * old and new values so that undo, redo and reset write back exact bits.
 *
 * Values move between the arena and the journal with memcpy only, never
 * through a float assignment or comparison, so that signed zeros and NaN
 * payloads survive; "changed" always means "the bits differ".
 *
 * An entry keeps its new values only when they cannot be told in a few
 * bytes (prune, assign, outside changes): set and zero keep one fill value,
 * reset refers to the baselines (which live as long as any entry that could
 * use them), and scale, add, noise and quantize are computed again from the
 * stored old values by the very function that computed them the first time
 * (seeded noise included), which gives the same bits.  That halves the memory
 * of the common large edits; redo writes exactly what the edit wrote. */
#include "paramscope/perturb.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/rng.h"

typedef enum new_kind {
    NEW_STORED,               /* new_vals holds them */
    NEW_FILL,                 /* every value is fill */
    NEW_BASELINE,             /* the baseline of each region's parameter */
    NEW_COMPUTED,             /* op(old values): scale, add, noise, quantize */
} new_kind;

typedef struct entry {
    char name[PS_PERTURB_NAME_MAX];
    ps_perturb_op op;
    uint64_t seed;
    int n_regions;
    ps_region *regions;       /* [n_regions], checked and in the 1 x n form */
    size_t n_values;
    float *old_vals;          /* [n_values] region order */
    float *new_vals;          /* [n_values] NEW_STORED only */
    float fill;               /* NEW_FILL: the value; NEW_COMPUTED: factor,
                                 addend or sigma */
    int bits;                 /* NEW_COMPUTED quantize */
    new_kind kind;
    size_t bytes;             /* stored values, counted against the cap */
} entry;

struct ps_perturb {
    ps_model *m;
    float **base;             /* [n_params] baseline copies, NULL until taken */
    size_t base_bytes;
    entry **entries;          /* [cap_entries], [0, count) in use */
    int count, cursor, cap_entries;
    size_t bytes, cap_bytes;
    uint64_t generation, dropped;
    entry *pending;           /* between begin and commit */
};

/* ---- regions ---- */

ps_region ps_region_block(ps_param *p, size_t row0, size_t rows, size_t col0,
                          size_t cols)
{
    ps_region r = {p, row0, rows, col0, cols, 0};
    if (p)
        r.ld = p->ndim == 1 ? p->numel : (size_t)p->shape[1];
    return r;
}

static size_t param_rows(const ps_param *p)
{
    return !p ? 0 : p->ndim == 1 ? 1 : (size_t)p->shape[0];
}

static size_t param_cols(const ps_param *p)
{
    return !p ? 0 : p->ndim == 1 ? p->numel : (size_t)p->shape[1];
}

ps_region ps_region_whole(ps_param *p)
{
    return ps_region_block(p, 0, param_rows(p), 0, param_cols(p));
}

ps_region ps_region_element(ps_param *p, size_t row, size_t col)
{
    return ps_region_block(p, row, 1, col, 1);
}

ps_region ps_region_index(ps_param *p, size_t i)
{
    size_t cols = param_cols(p);
    if (cols == 0)
        return ps_region_block(p, 0, 0, 0, 0);
    return ps_region_block(p, i / cols, 1, i % cols, 1);
}

ps_region ps_region_rows(ps_param *p, size_t row0, size_t rows)
{
    return ps_region_block(p, row0, rows, 0, param_cols(p));
}

ps_region ps_region_cols(ps_param *p, size_t col0, size_t cols)
{
    return ps_region_block(p, 0, param_rows(p), col0, cols);
}

size_t ps_region_numel(const ps_region *r)
{
    return r->rows * r->cols;
}

static int in_range(size_t start, size_t count, size_t limit)
{
    return start <= limit && count <= limit - start;
}

/* Checks r against its parameter's shape and writes the 1 x n form of 1-D
 * windows (and the exact ld) to *out. */
static int region_canon(const ps_region *r, ps_region *out, ps_error *err)
{
    const ps_param *p = r->param;
    if (!p)
        return ps_error_set(err, PS_ERR_INVALID, "region without a parameter");
    if (r->rows == 0 || r->cols == 0)
        return ps_error_set(err, PS_ERR_RANGE, "%s: empty region (%zu x %zu)",
                            p->name, r->rows, r->cols);
    *out = *r;
    if (p->ndim == 1) {
        size_t n = p->numel;
        if (r->row0 == 0 && r->rows == 1 && in_range(r->col0, r->cols, n)) {
            out->ld = n;
            return PS_OK;
        }
        if (r->col0 == 0 && r->cols == 1 && in_range(r->row0, r->rows, n)) {
            *out = ps_region_block(r->param, 0, 1, r->row0, r->rows);
            return PS_OK;
        }
        return ps_error_set(err, PS_ERR_RANGE,
                            "%s: rows %zu:%zu, columns %zu:%zu are outside "
                            "the shape [%zu]", p->name, r->row0,
                            r->row0 + r->rows, r->col0, r->col0 + r->cols, n);
    }
    size_t R = (size_t)p->shape[0], C = (size_t)p->shape[1];
    if (!in_range(r->row0, r->rows, R))
        return ps_error_set(err, PS_ERR_RANGE, "%s: rows %zu:%zu are outside the shape [%zu, %zu]",
                            p->name, r->row0, r->row0 + r->rows, R, C);
    if (!in_range(r->col0, r->cols, C))
        return ps_error_set(err, PS_ERR_RANGE, "%s: columns %zu:%zu are outside the shape [%zu, %zu]",
                            p->name, r->col0, r->col0 + r->cols, R, C);
    if (r->rows > 1 && r->ld != C)
        return ps_error_set(err, PS_ERR_RANGE, "%s: row stride %zu is not the row length %zu",
                            p->name, r->ld, C);
    out->ld = C;
    return PS_OK;
}

int ps_region_check(const ps_region *r, ps_error *err)
{
    ps_region c;
    return region_canon(r, &c, err);
}

/* Appends to buf[size] at *len, clamping *len at size - 1 when it is full. */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    if (size == 0 || *len >= size - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *len += (size_t)n;
    if (*len > size - 1)
        *len = size - 1;
}

static void append_range(char *buf, size_t size, size_t *len, size_t start,
                         size_t count, size_t full)
{
    if (start == 0 && count == full)
        append(buf, size, len, ":");
    else if (count == 1)
        append(buf, size, len, "%zu", start);
    else
        append(buf, size, len, "%zu:%zu", start, start + count);
}

static void format_into(const ps_region *r, char *buf, size_t size, size_t *len)
{
    ps_region c;
    if (!r->param) {
        append(buf, size, len, "(no parameter)");
        return;
    }
    if (region_canon(r, &c, NULL) != PS_OK)
        c = *r;
    const ps_param *p = c.param;
    size_t R = param_rows(p), C = param_cols(p);
    append(buf, size, len, "%s", p->name);
    if (c.row0 == 0 && c.rows == R && c.col0 == 0 && c.cols == C)
        return;
    append(buf, size, len, "[");
    if (p->ndim == 1) {
        append_range(buf, size, len, c.col0, c.cols, C);
    } else if (c.col0 == 0 && c.cols == C) {
        append_range(buf, size, len, c.row0, c.rows, R);
    } else {
        append_range(buf, size, len, c.row0, c.rows, R);
        append(buf, size, len, ", ");
        append_range(buf, size, len, c.col0, c.cols, C);
    }
    append(buf, size, len, "]");
}

void ps_region_format(const ps_region *r, char *buf, size_t size)
{
    size_t len = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    format_into(r, buf, size, &len);
}

static ps_param *block_param(ps_model *m, int layer, const char *suffix)
{
    char name[PS_NAME_MAX];
    snprintf(name, sizeof name, "h.%d.%s", layer, suffix);
    return ps_model_find(m, name);
}

int ps_region_head(ps_model *m, int layer, int head, ps_head_part part,
                   ps_region out[2], int *n_out, ps_error *err)
{
    const ps_config *c = &m->cfg;
    if (layer < 0 || layer >= c->n_layer)
        return ps_error_set(err, PS_ERR_RANGE, "layer %d is not in [0, %d)", layer, c->n_layer);
    if (head < 0 || head >= c->n_head)
        return ps_error_set(err, PS_ERR_RANGE, "head %d is not in [0, %d)", head, c->n_head);
    size_t C = (size_t)c->n_embd, hd = C / (size_t)c->n_head;
    size_t h0 = (size_t)head * hd;
    if (part == PS_HEAD_PART_O) {
        ps_param *w = block_param(m, layer, "attn.c_proj.weight");
        if (!w)
            return ps_error_set(err, PS_ERR_NOT_FOUND, "h.%d.attn.c_proj.weight: not found", layer);
        out[0] = ps_region_rows(w, h0, hd);
        *n_out = 1;
        return PS_OK;
    }
    if (part != PS_HEAD_PART_Q && part != PS_HEAD_PART_K && part != PS_HEAD_PART_V)
        return ps_error_set(err, PS_ERR_RANGE, "head part %d is not Q, K, V or O", (int)part);
    ps_param *w = block_param(m, layer, "attn.c_attn.weight");
    ps_param *b = block_param(m, layer, "attn.c_attn.bias");
    if (!w || !b)
        return ps_error_set(err, PS_ERR_NOT_FOUND, "h.%d.attn.c_attn: not found", layer);
    size_t col0 = (size_t)part * C + h0;
    out[0] = ps_region_cols(w, col0, hd);
    out[1] = ps_region_block(b, 0, 1, col0, hd);
    *n_out = 2;
    return PS_OK;
}

int ps_region_neuron(ps_model *m, int layer, int neuron, ps_region out[3],
                     ps_error *err)
{
    const ps_config *c = &m->cfg;
    if (layer < 0 || layer >= c->n_layer)
        return ps_error_set(err, PS_ERR_RANGE, "layer %d is not in [0, %d)", layer, c->n_layer);
    if (neuron < 0 || neuron >= 4 * c->n_embd)
        return ps_error_set(err, PS_ERR_RANGE, "neuron %d is not in [0, %d)", neuron, 4 * c->n_embd);
    ps_param *fc = block_param(m, layer, "mlp.c_fc.weight");
    ps_param *fcb = block_param(m, layer, "mlp.c_fc.bias");
    ps_param *proj = block_param(m, layer, "mlp.c_proj.weight");
    if (!fc || !fcb || !proj)
        return ps_error_set(err, PS_ERR_NOT_FOUND, "h.%d.mlp: not found", layer);
    out[0] = ps_region_cols(fc, (size_t)neuron, 1);
    out[1] = ps_region_block(fcb, 0, 1, (size_t)neuron, 1);
    out[2] = ps_region_rows(proj, (size_t)neuron, 1);
    return PS_OK;
}

/* ---- moving values between the arena and buffers ---- */

static float *region_row(const ps_region *r, size_t i)
{
    return r->param->data + (r->row0 + i) * r->ld + r->col0;
}

static void gather(const ps_region *regs, int n, float *dst)
{
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < regs[k].rows; i++) {
            memcpy(dst, region_row(&regs[k], i), regs[k].cols * sizeof *dst);
            dst += regs[k].cols;
        }
}

static void scatter(const ps_region *regs, int n, const float *src)
{
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < regs[k].rows; i++) {
            memcpy(region_row(&regs[k], i), src, regs[k].cols * sizeof *src);
            src += regs[k].cols;
        }
}

static void fill_regions(const ps_region *regs, int n, float v)
{
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < regs[k].rows; i++) {
            float *d = region_row(&regs[k], i);
            for (size_t c = 0; c < regs[k].cols; c++)
                memcpy(&d[c], &v, sizeof v);
        }
}

static int param_index(const ps_model *m, const ps_param *p)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)m->params;
    uintptr_t hi = (uintptr_t)(m->params + m->n_params);
    if (a < lo || a >= hi || (a - lo) % sizeof *p != 0)
        return -1;
    return (int)((a - lo) / sizeof *p);
}

/* Each region from the same positions of its parameter's baseline. */
static void scatter_baseline(ps_perturb *j, const ps_region *regs, int n)
{
    for (int k = 0; k < n; k++) {
        const ps_region *r = &regs[k];
        const float *base = j->base[param_index(j->m, r->param)];
        for (size_t i = 0; i < r->rows; i++)
            memcpy(region_row(r, i), base + (r->row0 + i) * r->ld + r->col0,
                   r->cols * sizeof *base);
    }
}

static int bits_differ(const float *a, const float *b)
{
    return memcmp(a, b, sizeof *a) != 0;
}

static size_t count_changed(const float *a, const float *b, size_t n)
{
    size_t changed = 0;
    for (size_t i = 0; i < n; i++)
        changed += bits_differ(&a[i], &b[i]);
    return changed;
}

/* ---- baselines ---- */

static int ensure_baseline(ps_perturb *j, ps_param *p, ps_error *err)
{
    int idx = param_index(j->m, p);
    if (j->base[idx])
        return PS_OK;
    float *b = malloc(p->numel * sizeof *b);
    if (!b)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: no memory for the baseline copy (%zu values)",
                            p->name, p->numel);
    memcpy(b, p->data, p->numel * sizeof *b);
    j->base[idx] = b;
    j->base_bytes += p->numel * sizeof *b;
    return PS_OK;
}

const float *ps_perturb_baseline(const ps_perturb *j, const ps_param *p)
{
    int idx = param_index(j->m, p);
    return idx < 0 ? NULL : j->base[idx];
}

int ps_perturb_capture(ps_perturb *j, ps_param *p, ps_error *err)
{
    if (p) {
        if (param_index(j->m, p) < 0)
            return ps_error_set(err, PS_ERR_INVALID, "%s: not a parameter of this model", p->name);
        return ensure_baseline(j, p, err);
    }
    for (int i = 0; i < j->m->n_params; i++) {
        int rc = ensure_baseline(j, &j->m->params[i], err);
        if (rc)
            return rc;
    }
    return PS_OK;
}

/* ---- entries and the journal ---- */

static void entry_free(entry *e)
{
    if (!e)
        return;
    free(e->regions);
    free(e->old_vals);
    free(e->new_vals);
    free(e);
}

/* An entry with its regions checked and copied in the 1 x n form, and a
 * baseline for each of their parameters.  Values are not allocated yet. */
static int entry_new(ps_perturb *j, const ps_region *regions, int n_regions,
                     entry **out, ps_error *err)
{
    *out = NULL;
    if (n_regions < 1 || !regions)
        return ps_error_set(err, PS_ERR_INVALID, "an edit needs at least one region");
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return ps_error_set(err, PS_ERR_NOMEM, "journal entry: out of memory");
    e->regions = malloc((size_t)n_regions * sizeof *e->regions);
    if (!e->regions) {
        entry_free(e);
        return ps_error_set(err, PS_ERR_NOMEM, "journal entry: out of memory");
    }
    e->n_regions = n_regions;
    int rc = PS_OK;
    for (int k = 0; k < n_regions && rc == PS_OK; k++) {
        if (regions[k].param && param_index(j->m, regions[k].param) < 0)
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: not a parameter of this model",
                              regions[k].param->name);
        else
            rc = region_canon(&regions[k], &e->regions[k], err);
        if (rc == PS_OK) {
            size_t nv = ps_region_numel(&e->regions[k]);
            if (e->n_values > SIZE_MAX / (2 * sizeof(float)) - nv)
                rc = ps_error_set(err, PS_ERR_RANGE, "edit of too many values");
            e->n_values += nv;
        }
    }
    for (int k = 0; k < n_regions && rc == PS_OK; k++)
        rc = ensure_baseline(j, e->regions[k].param, err);
    if (rc) {
        entry_free(e);
        return rc;
    }
    *out = e;
    return PS_OK;
}

static int entry_alloc_values(entry *e, int with_new, ps_error *err)
{
    e->old_vals = malloc(e->n_values * sizeof(float));
    if (with_new)
        e->new_vals = malloc(e->n_values * sizeof(float));
    if (!e->old_vals || (with_new && !e->new_vals))
        return ps_error_set(err, PS_ERR_NOMEM, "journal: no memory for %zu values",
                            e->n_values * (with_new ? 2 : 1));
    e->bytes = e->n_values * sizeof(float) * (with_new ? 2 : 1);
    return PS_OK;
}

/* Room for one more entry at the cursor. */
static int reserve_slot(ps_perturb *j, ps_error *err)
{
    if (j->cursor < j->cap_entries)
        return PS_OK;
    int cap = j->cap_entries ? 2 * j->cap_entries : 64;
    entry **grown = realloc(j->entries, (size_t)cap * sizeof *grown);
    if (!grown)
        return ps_error_set(err, PS_ERR_NOMEM, "journal: out of memory");
    j->entries = grown;
    j->cap_entries = cap;
    return PS_OK;
}

static void drop_at(ps_perturb *j, int i)
{
    j->bytes -= j->entries[i]->bytes;
    entry_free(j->entries[i]);
    memmove(&j->entries[i], &j->entries[i + 1],
            (size_t)(j->count - i - 1) * sizeof *j->entries);
    j->count--;
    if (i < j->cursor)
        j->cursor--;
}

static int trim(ps_perturb *j)
{
    int dropped = 0;
    while (j->bytes > j->cap_bytes) {
        if (j->cursor > 1)
            drop_at(j, 0);
        else if (j->count > j->cursor)
            drop_at(j, j->count - 1);
        else
            break;
        dropped++;
    }
    j->dropped += (uint64_t)dropped;
    return dropped;
}

/* Adds e at the cursor (a slot is reserved), dropping the undone tail and then
 * what the cap asks.  Returns the number dropped for the cap. */
static int push(ps_perturb *j, entry *e)
{
    while (j->count > j->cursor)
        drop_at(j, j->count - 1);
    j->entries[j->cursor++] = e;
    j->count = j->cursor;
    j->bytes += e->bytes;
    return trim(j);
}

int ps_perturb_init(ps_perturb **out, ps_model *m, ps_error *err)
{
    *out = NULL;
    ps_perturb *j = calloc(1, sizeof *j);
    if (!j)
        return ps_error_set(err, PS_ERR_NOMEM, "journal: out of memory");
    j->base = calloc((size_t)m->n_params, sizeof *j->base);
    if (!j->base) {
        free(j);
        return ps_error_set(err, PS_ERR_NOMEM, "journal: out of memory");
    }
    j->m = m;
    j->cap_bytes = PS_PERTURB_DEFAULT_CAP;
    *out = j;
    return PS_OK;
}

void ps_perturb_clear(ps_perturb *j)
{
    ps_perturb_cancel(j);
    for (int i = 0; i < j->count; i++)
        entry_free(j->entries[i]);
    j->count = j->cursor = 0;
    j->bytes = 0;
}

void ps_perturb_rebase(ps_perturb *j)
{
    ps_perturb_clear(j);
    for (int i = 0; i < j->m->n_params; i++) {
        free(j->base[i]);
        j->base[i] = NULL;
    }
    j->base_bytes = 0;
}

void ps_perturb_free(ps_perturb *j)
{
    if (!j)
        return;
    ps_perturb_rebase(j);
    free(j->base);
    free(j->entries);
    free(j);
}

int ps_perturb_set_cap(ps_perturb *j, size_t bytes)
{
    j->cap_bytes = bytes;
    return trim(j);
}

size_t ps_perturb_cap(const ps_perturb *j) { return j->cap_bytes; }
size_t ps_perturb_bytes(const ps_perturb *j) { return j->bytes; }
size_t ps_perturb_baseline_bytes(const ps_perturb *j) { return j->base_bytes; }
int ps_perturb_count(const ps_perturb *j) { return j->count; }
int ps_perturb_cursor(const ps_perturb *j) { return j->cursor; }
uint64_t ps_perturb_generation(const ps_perturb *j) { return j->generation; }
uint64_t ps_perturb_dropped(const ps_perturb *j) { return j->dropped; }

const char *ps_perturb_op_name(ps_perturb_op op)
{
    static const char *const names[] = {
        "set", "scale", "add", "noise", "zero", "prune", "quantize", "assign",
        "reset", "external",
    };
    if ((unsigned)op >= sizeof names / sizeof names[0])
        return "unknown";
    return names[op];
}

int ps_perturb_entry_info(const ps_perturb *j, int i, ps_perturb_entry *out,
                          ps_error *err)
{
    if (i < 0 || i >= j->count)
        return ps_error_set(err, PS_ERR_RANGE, "history entry %d is not in [0, %d)", i, j->count);
    const entry *e = j->entries[i];
    out->name = e->name;
    out->op = e->op;
    out->n_regions = e->n_regions;
    out->n_values = e->n_values;
    out->seed = e->seed;
    out->bytes = e->bytes;
    out->applied = i < j->cursor;
    return PS_OK;
}

/* ---- computing new values ---- */

/* "op region + region ... arg", truncated with "..." when too long. */
static void name_entry(entry *e, const char *op, const char *arg)
{
    size_t len = 0, size = sizeof e->name;
    e->name[0] = '\0';
    append(e->name, size, &len, "%s", op);
    for (int k = 0; k < e->n_regions; k++) {
        append(e->name, size, &len, k ? " + " : " ");
        format_into(&e->regions[k], e->name, size, &len);
    }
    if (arg && arg[0])
        append(e->name, size, &len, " %s", arg);
    if (len >= size - 1)
        memcpy(e->name + size - 4, "...", 4);
}

static uint32_t magnitude_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b & 0x7fffffffu;
}

/* Zeroes the k smallest magnitudes of the old values in the new ones.
 * Without the sign bit a float's bits order like its magnitude (NaNs above
 * infinity, -0 equal to +0), so the k-th smallest magnitude is found by a
 * two-level radix select over those 31 bits: a histogram of the top 16 bits
 * finds its bucket, a histogram of the low 15 bits within that bucket finds
 * the value T.  Everything below T is zeroed, and of the values equal to T the
 * earliest in region order, as many as k still asks.  Two reads and one write
 * of the values and 512 KB of counters, whatever the size of the tensor. */
static int prune_values(entry *e, double percent, size_t *n_zeroed,
                        ps_error *err)
{
    size_t n = e->n_values;
    size_t k = (size_t)floor((double)n * percent / 100.0);
    if (k > n)
        k = n;
    memcpy(e->new_vals, e->old_vals, n * sizeof(float));
    *n_zeroed = k;
    if (k == 0)
        return PS_OK;
    size_t *hist = malloc(((size_t)1 << 16) * sizeof *hist);
    if (!hist)
        return ps_error_set(err, PS_ERR_NOMEM, "prune: out of memory");
    const float *x = e->old_vals;
    size_t below = 0;
    uint32_t top = 0, low = 0;
    memset(hist, 0, ((size_t)1 << 16) * sizeof *hist);
    for (size_t i = 0; i < n; i++)
        hist[magnitude_bits(x[i]) >> 15]++;
    while (below + hist[top] < k)
        below += hist[top++];
    memset(hist, 0, ((size_t)1 << 15) * sizeof *hist);
    for (size_t i = 0; i < n; i++) {
        uint32_t mb = magnitude_bits(x[i]);
        if (mb >> 15 == top)
            hist[mb & 0x7fffu]++;
    }
    while (below + hist[low] < k)
        below += hist[low++];
    free(hist);
    uint32_t threshold = top << 15 | low;
    size_t ties = k - below;               /* >= 1 values equal to threshold */
    for (size_t i = 0; i < n; i++) {
        uint32_t mb = magnitude_bits(x[i]);
        if (mb < threshold || (mb == threshold && ties > 0)) {
            ties -= mb == threshold;
            e->new_vals[i] = 0.0f;
        }
    }
    return PS_OK;
}

typedef struct quant_figures {
    double err_sum, err_max;
    size_t n_finite;
} quant_figures;

/* The quantization step of one region: max|x| over its finite values / qmax,
 * or 0 when that max is 0 (the region is then left as it is). */
static double quant_step(const float *x, size_t n, double qmax)
{
    double maxabs = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && fabs((double)x[i]) > maxabs)
            maxabs = fabs((double)x[i]);
    return maxabs / qmax;
}

/* Writes op(old) into one row: the one place where scale, add, noise and
 * quantize are computed, for the edit and for redo alike, so that redo
 * reproduces the edit's bits without storing them.  Returns how many values
 * changed bits. */
static size_t compute_row(const entry *e, const float *x, float *d, size_t n,
                          ps_rng *rng, double step, double qmax,
                          quant_figures *qf)
{
    size_t changed = 0;
    for (size_t c = 0; c < n; c++) {
        float y = x[c];
        switch (e->op) {
        case PS_PERTURB_OP_SCALE:
            y = x[c] * e->fill;
            break;
        case PS_PERTURB_OP_ADD:
            y = x[c] + e->fill;
            break;
        case PS_PERTURB_OP_NOISE: {
            float delta = e->fill * ps_rng_normal(rng);
            y = x[c] + delta;
            break;
        }
        case PS_PERTURB_OP_QUANTIZE:
            if (step > 0.0 && isfinite(x[c])) {
                double q = round((double)x[c] / step);
                q = q > qmax ? qmax : q < -qmax ? -qmax : q;
                y = (float)(q * step);
            }
            if (qf && isfinite(x[c])) {
                double err = fabs((double)y - (double)x[c]);
                qf->err_sum += err;
                qf->err_max = err > qf->err_max ? err : qf->err_max;
                qf->n_finite++;
            }
            break;
        default:
            break;
        }
        changed += bits_differ(&x[c], &y);
        memcpy(&d[c], &y, sizeof y);
    }
    return changed;
}

static size_t write_computed(const entry *e, quant_figures *qf)
{
    ps_rng rng;
    ps_rng_seed(&rng, e->seed);
    double qmax = e->op == PS_PERTURB_OP_QUANTIZE
                      ? (double)((1u << (e->bits - 1)) - 1) : 1.0;
    size_t changed = 0;
    const float *x = e->old_vals;
    for (int k = 0; k < e->n_regions; k++) {
        const ps_region *r = &e->regions[k];
        double step = e->op == PS_PERTURB_OP_QUANTIZE
                          ? quant_step(x, ps_region_numel(r), qmax) : 0.0;
        for (size_t i = 0; i < r->rows; i++) {
            changed += compute_row(e, x, region_row(r, i), r->cols, &rng,
                                   step, qmax, qf);
            x += r->cols;
        }
    }
    return changed;
}

static int check_edit(const ps_edit *e, ps_error *err)
{
    switch (e->op) {
    case PS_PERTURB_OP_SET:
    case PS_PERTURB_OP_SCALE:
    case PS_PERTURB_OP_ADD:
    case PS_PERTURB_OP_ZERO:
        return PS_OK;
    case PS_PERTURB_OP_NOISE:
        if (!isfinite(e->value) || e->value < 0.0f)
            return ps_error_set(err, PS_ERR_RANGE, "noise sigma %g is not finite and >= 0", (double)e->value);
        return PS_OK;
    case PS_PERTURB_OP_PRUNE:
        if (!(e->percent >= 0.0 && e->percent <= 100.0))
            return ps_error_set(err, PS_ERR_RANGE, "prune percent %g is not in [0, 100]", e->percent);
        return PS_OK;
    case PS_PERTURB_OP_QUANTIZE:
        if (e->bits < 2 || e->bits > 16)
            return ps_error_set(err, PS_ERR_RANGE, "quantize bits %d is not in [2, 16]", e->bits);
        return PS_OK;
    case PS_PERTURB_OP_ASSIGN:
        if (!e->values)
            return ps_error_set(err, PS_ERR_INVALID, "assign without values");
        return PS_OK;
    default:
        return ps_error_set(err, PS_ERR_INVALID, "edit op %d is not an edit", (int)e->op);
    }
}

/* Edits that keep parameters finite (keep_finite): NaN and infinities in
 * the weights show up downstream as confident-looking nonsense (a softmax of
 * NaN), so such an edit that would turn a finite value into a non-finite one
 * fails, with every value back as it was.  Values that were non-finite
 * already (a file's) may stay so: scaling a NaN is not the edit's doing.
 * Counts such values and names the first, as "h.0.ln_1.bias[5]" or
 * "wte.weight[3, 7]". */
static size_t count_made_nonfinite(const ps_region *regs, int n, const float *old,
                                   char *first, size_t size, float *first_new)
{
    size_t count = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < regs[k].rows; i++) {
            const float *row = region_row(&regs[k], i);
            for (size_t c = 0; c < regs[k].cols; c++, old++) {
                if (!isfinite(*old) || isfinite(row[c]))
                    continue;
                if (count++ == 0) {
                    const ps_param *p = regs[k].param;
                    size_t r = regs[k].row0 + i, col = regs[k].col0 + c;
                    if (p->ndim == 2)
                        snprintf(first, size, "%s[%zu, %zu]", p->name, r, col);
                    else
                        snprintf(first, size, "%s[%zu]", p->name, r * regs[k].ld + col);
                    *first_new = row[c];
                }
            }
        }
    return count;
}

static void describe_arg(const ps_edit *ed, const entry *e, char *arg, size_t size)
{
    arg[0] = '\0';
    switch (ed->op) {
    case PS_PERTURB_OP_SET:
    case PS_PERTURB_OP_SCALE:
    case PS_PERTURB_OP_ADD:
        snprintf(arg, size, "%g", (double)ed->value);
        break;
    case PS_PERTURB_OP_NOISE:
        snprintf(arg, size, "%g seed %llu", (double)ed->value, (unsigned long long)ed->seed);
        break;
    case PS_PERTURB_OP_PRUNE:
        snprintf(arg, size, "%g%%", ed->percent);
        break;
    case PS_PERTURB_OP_QUANTIZE:
        snprintf(arg, size, "%d bits", ed->bits);
        break;
    case PS_PERTURB_OP_ASSIGN:
        if (e->n_values == 1)
            snprintf(arg, size, "= %g", (double)ed->values[0]);
        else
            snprintf(arg, size, "(%zu values)", e->n_values);
        break;
    default:
        break;
    }
}

/* ---- edits ---- */

static void result_clear(ps_perturb_result *res)
{
    memset(res, 0, sizeof *res);
}

int ps_perturb_edit(ps_perturb *j, const ps_region *regions, int n_regions,
                    const ps_edit *ed, ps_perturb_result *res_out,
                    ps_error *err)
{
    ps_perturb_result res;
    result_clear(&res);
    if (res_out)
        result_clear(res_out);
    if (j->pending)
        return ps_error_set(err, PS_ERR_STATE, "an outside change ('%s') is in progress",
                            j->pending->name);
    int rc = check_edit(ed, err);
    if (rc)
        return rc;
    entry *e = NULL;
    rc = entry_new(j, regions, n_regions, &e, err);
    if (rc)
        return rc;
    e->op = ed->op;
    e->seed = ed->op == PS_PERTURB_OP_NOISE ? ed->seed : 0;
    e->bits = ed->bits;
    switch (ed->op) {
    case PS_PERTURB_OP_SET:
    case PS_PERTURB_OP_ZERO:
        e->kind = NEW_FILL;
        break;
    case PS_PERTURB_OP_PRUNE:
    case PS_PERTURB_OP_ASSIGN:
        e->kind = NEW_STORED;
        break;
    default:
        e->kind = NEW_COMPUTED;
        break;
    }
    e->fill = ed->op == PS_PERTURB_OP_ZERO ? 0.0f : ed->value;
    rc = entry_alloc_values(e, e->kind == NEW_STORED, err);
    if (rc == PS_OK)
        rc = reserve_slot(j, err);
    if (rc)
        goto fail;
    gather(e->regions, e->n_regions, e->old_vals);
    size_t n = e->n_values;
    if (ed->op == PS_PERTURB_OP_PRUNE) {
        rc = prune_values(e, ed->percent, &res.n_zeroed, err);
        if (rc)
            goto fail;
    } else if (ed->op == PS_PERTURB_OP_ASSIGN) {
        memcpy(e->new_vals, ed->values, n * sizeof(float));
    }

    /* Everything is in hand: from here on only the finiteness check can
     * fail, and it puts the old values back. */
    switch (e->kind) {
    case NEW_FILL:
        for (size_t i = 0; i < n; i++)
            res.n_changed += bits_differ(&e->old_vals[i], &e->fill);
        fill_regions(e->regions, e->n_regions, e->fill);
        break;
    case NEW_STORED:
        res.n_changed = count_changed(e->old_vals, e->new_vals, n);
        scatter(e->regions, e->n_regions, e->new_vals);
        break;
    default: {
        quant_figures qf = {0.0, 0.0, 0};
        res.n_changed = write_computed(e, &qf);
        if (ed->op == PS_PERTURB_OP_QUANTIZE) {
            res.quant_mean_err = qf.n_finite ? qf.err_sum / (double)qf.n_finite : 0.0;
            res.quant_max_err = qf.err_max;
            res.quant_bytes = (n * (size_t)ed->bits + 7) / 8 +
                              sizeof(float) * (size_t)e->n_regions;
        }
        break;
    }
    }
    char bad[PS_NAME_MAX + 48];
    float bad_new = 0.0f;
    size_t n_bad = !ed->keep_finite ? 0
                 : count_made_nonfinite(e->regions, e->n_regions, e->old_vals, bad, sizeof bad,
                                        &bad_new);
    if (n_bad) {
        scatter(e->regions, e->n_regions, e->old_vals);    /* exact bits back */
        rc = ps_error_set(err, PS_ERR_NUMERIC,
                          "%s would make %zu finite value%s %s (the first: %s would be %g); "
                          "parameters are kept finite, nothing was changed",
                          ps_perturb_op_name(ed->op), n_bad, n_bad == 1 ? "" : "s",
                          isnan(bad_new) ? "NaN or infinite" : "infinite", bad, (double)bad_new);
        goto fail;
    }
    if (ed->label) {
        snprintf(e->name, sizeof e->name, "%s", ed->label);
    } else {
        char arg[96];
        describe_arg(ed, e, arg, sizeof arg);
        name_entry(e, ps_perturb_op_name(ed->op), arg);
    }
    res.n_values = n;
    res.n_dropped = push(j, e);
    res.recorded = 1;
    j->generation++;
    j->m->version++;      /* caches of results (infer.h) are stale */
    if (res_out)
        *res_out = res;
    return PS_OK;
fail:
    entry_free(e);
    return rc;
}

int ps_perturb_set(ps_perturb *j, const ps_region *regions, int n_regions,
                   float value, ps_perturb_result *res, ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_SET, .value = value};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

int ps_perturb_scale(ps_perturb *j, const ps_region *regions, int n_regions,
                     float factor, ps_perturb_result *res, ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_SCALE, .value = factor};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

int ps_perturb_add(ps_perturb *j, const ps_region *regions, int n_regions,
                   float value, ps_perturb_result *res, ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_ADD, .value = value};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

int ps_perturb_noise(ps_perturb *j, const ps_region *regions, int n_regions,
                     float sigma, uint64_t seed, ps_perturb_result *res,
                     ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_NOISE, .value = sigma, .seed = seed};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

int ps_perturb_zero(ps_perturb *j, const ps_region *regions, int n_regions,
                    ps_perturb_result *res, ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_ZERO};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

int ps_perturb_prune(ps_perturb *j, const ps_region *regions, int n_regions,
                     double percent, ps_perturb_result *res, ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_PRUNE, .percent = percent};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

int ps_perturb_quantize(ps_perturb *j, const ps_region *regions, int n_regions,
                        int bits, ps_perturb_result *res, ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_QUANTIZE, .bits = bits};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

int ps_perturb_assign(ps_perturb *j, const ps_region *regions, int n_regions,
                      const float *values, ps_perturb_result *res,
                      ps_error *err)
{
    ps_edit e = {.op = PS_PERTURB_OP_ASSIGN, .values = values};
    return ps_perturb_edit(j, regions, n_regions, &e, res, err);
}

/* ---- undo, redo, reset ---- */

static int check_not_pending(const ps_perturb *j, const char *what, ps_error *err)
{
    if (j->pending)
        return ps_error_set(err, PS_ERR_STATE, "%s: an outside change ('%s') is in progress",
                            what, j->pending->name);
    return PS_OK;
}

int ps_perturb_undo(ps_perturb *j, ps_error *err)
{
    int rc = check_not_pending(j, "undo", err);
    if (rc)
        return rc;
    if (j->cursor == 0)
        return ps_error_set(err, PS_ERR_STATE, "nothing to undo");
    /* The old values were all read before the edit wrote anything, so where
     * regions overlap every copy holds the same bits: any order restores. */
    entry *e = j->entries[--j->cursor];
    scatter(e->regions, e->n_regions, e->old_vals);
    j->generation++;
    j->m->version++;
    return PS_OK;
}

int ps_perturb_redo(ps_perturb *j, ps_error *err)
{
    int rc = check_not_pending(j, "redo", err);
    if (rc)
        return rc;
    if (j->cursor == j->count)
        return ps_error_set(err, PS_ERR_STATE, "nothing to redo");
    entry *e = j->entries[j->cursor++];
    switch (e->kind) {
    case NEW_STORED:
        scatter(e->regions, e->n_regions, e->new_vals);
        break;
    case NEW_FILL:
        fill_regions(e->regions, e->n_regions, e->fill);
        break;
    case NEW_BASELINE:
        scatter_baseline(j, e->regions, e->n_regions);
        break;
    case NEW_COMPUTED:
        write_computed(e, NULL);
        break;
    }
    j->generation++;
    j->m->version++;
    return PS_OK;
}

static int differs_from_baseline(const ps_perturb *j, int idx)
{
    const ps_param *p = &j->m->params[idx];
    return j->base[idx] &&
           memcmp(j->base[idx], p->data, p->numel * sizeof(float)) != 0;
}

/* Restores params[idx] for idx in [first, last) that differ from their
 * baselines, as one entry called name. */
static int reset_range(ps_perturb *j, int first, int last, const char *name,
                       ps_perturb_result *res_out, ps_error *err)
{
    ps_perturb_result res;
    result_clear(&res);
    if (res_out)
        result_clear(res_out);
    int rc = check_not_pending(j, "reset", err);
    if (rc)
        return rc;
    int n = 0;
    for (int i = first; i < last; i++)
        n += differs_from_baseline(j, i);
    if (n == 0)
        return PS_OK;
    ps_region *regs = malloc((size_t)n * sizeof *regs);
    if (!regs)
        return ps_error_set(err, PS_ERR_NOMEM, "reset: out of memory");
    n = 0;
    for (int i = first; i < last; i++)
        if (differs_from_baseline(j, i))
            regs[n++] = ps_region_whole(&j->m->params[i]);
    entry *e = NULL;
    rc = entry_new(j, regs, n, &e, err);
    free(regs);
    if (rc)
        return rc;
    e->op = PS_PERTURB_OP_RESET;
    e->kind = NEW_BASELINE;
    rc = entry_alloc_values(e, 0, err);
    if (rc == PS_OK)
        rc = reserve_slot(j, err);
    if (rc) {
        entry_free(e);
        return rc;
    }
    gather(e->regions, e->n_regions, e->old_vals);
    size_t off = 0;
    for (int k = 0; k < e->n_regions; k++) {
        const ps_param *p = e->regions[k].param;
        res.n_changed += count_changed(e->old_vals + off,
                                       j->base[param_index(j->m, p)], p->numel);
        off += p->numel;
    }
    scatter_baseline(j, e->regions, e->n_regions);
    snprintf(e->name, sizeof e->name, "%s", name);
    res.n_values = e->n_values;
    res.n_dropped = push(j, e);
    res.recorded = 1;
    j->generation++;
    j->m->version++;
    if (res_out)
        *res_out = res;
    return PS_OK;
}

int ps_perturb_reset_all(ps_perturb *j, ps_perturb_result *res, ps_error *err)
{
    return reset_range(j, 0, j->m->n_params, "reset all", res, err);
}

int ps_perturb_reset_param(ps_perturb *j, ps_param *p, ps_perturb_result *res,
                           ps_error *err)
{
    int idx = param_index(j->m, p);
    if (idx < 0) {
        if (res)
            result_clear(res);
        return ps_error_set(err, PS_ERR_INVALID, "reset: not a parameter of this model");
    }
    char name[PS_PERTURB_NAME_MAX];
    snprintf(name, sizeof name, "reset %s", p->name);
    return reset_range(j, idx, idx + 1, name, res, err);
}

int ps_perturb_diff(const ps_perturb *j, ps_param_diff *out, int cap,
                    int *n_out, ps_error *err)
{
    int n = 0, rc = PS_OK;
    for (int i = 0; i < j->m->n_params; i++) {
        if (!differs_from_baseline(j, i))
            continue;
        if (n >= cap) {
            rc = ps_error_set(err, PS_ERR_RANGE, "diff: more than %d parameters differ", cap);
            break;
        }
        ps_param *p = &j->m->params[i];
        const float *b = j->base[i];
        ps_param_diff d = {.param = p};
        double sq = 0.0;
        for (size_t k = 0; k < p->numel; k++) {
            if (!bits_differ(&b[k], &p->data[k]))
                continue;
            d.n_changed++;
            if (!isfinite(b[k]) || !isfinite(p->data[k])) {
                d.n_nonfinite++;
                continue;
            }
            double delta = fabs((double)p->data[k] - (double)b[k]);
            sq += delta * delta;
            d.max_abs = delta > d.max_abs ? delta : d.max_abs;
        }
        d.l2 = sqrt(sq);
        out[n++] = d;
    }
    *n_out = n;
    return rc;
}

/* ---- changes made outside ---- */

int ps_perturb_begin(ps_perturb *j, const ps_region *regions, int n_regions,
                     const char *label, ps_error *err)
{
    int rc = check_not_pending(j, "begin", err);
    if (rc)
        return rc;
    ps_region *all = NULL;
    if (!regions && n_regions == 0) {
        n_regions = j->m->n_params;
        all = malloc((size_t)n_regions * sizeof *all);
        if (!all)
            return ps_error_set(err, PS_ERR_NOMEM, "begin: out of memory");
        for (int i = 0; i < n_regions; i++)
            all[i] = ps_region_whole(&j->m->params[i]);
        regions = all;
    }
    entry *e = NULL;
    rc = entry_new(j, regions, n_regions, &e, err);
    free(all);
    if (rc)
        return rc;
    e->op = PS_PERTURB_OP_EXTERNAL;
    e->kind = NEW_STORED;
    rc = entry_alloc_values(e, 1, err);
    if (rc) {
        entry_free(e);
        return rc;
    }
    gather(e->regions, e->n_regions, e->old_vals);
    snprintf(e->name, sizeof e->name, "%s", label ? label : "external change");
    j->pending = e;
    return PS_OK;
}

int ps_perturb_commit(ps_perturb *j, ps_perturb_result *res_out, ps_error *err)
{
    ps_perturb_result res;
    result_clear(&res);
    if (res_out)
        result_clear(res_out);
    entry *e = j->pending;
    if (!e)
        return ps_error_set(err, PS_ERR_STATE, "commit: no outside change in progress");
    j->pending = NULL;
    int rc = reserve_slot(j, err);
    if (rc) {
        entry_free(e);
        return rc;
    }
    gather(e->regions, e->n_regions, e->new_vals);
    res.n_values = e->n_values;
    res.n_changed = count_changed(e->old_vals, e->new_vals, e->n_values);
    if (res.n_changed == 0) {
        entry_free(e);
    } else {
        res.n_dropped = push(j, e);
        res.recorded = 1;
        j->generation++;
        j->m->version++;
    }
    if (res_out)
        *res_out = res;
    return PS_OK;
}

void ps_perturb_cancel(ps_perturb *j)
{
    entry_free(j->pending);
    j->pending = NULL;
}
