/* The heatmap pane: one region of a tensor or view as coloured cells, on a
 * diverging scale centred at zero, with its legend, a histogram and the
 * statistics beside it, and a cursor over single weights that shows the
 * weight's value, gradient, Adam moments and change from the file.
 *
 * What the cells show is a "source": the values, the gradient, the last
 * update or the change from the file.  When a cell covers several weights
 * (zoomed out), it shows the one of largest magnitude, sign kept, so that
 * outliers stay visible.  Every number is read under the session lock, in
 * the frame, and only when something changed (the worker's version, the
 * view, the zoom); when the lock is busy the last picture stays, marked.
 * Edits go through the command language (`ADDR = VALUE`), so the journal
 * records them and `undo` takes them back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/stats.h"
#include "repl/addr.h"
#include "ui/heatmap.h"
#include "ui/ui.h"

/* ---- opening an address ---- */

/* Geometry of the shown region as a display matrix (vectors wrap). */
static void set_geometry(ui_heat *H, int grid_w)
{
    const addr_region *r = &H->v.regions[H->region];
    H->n = r->rows * r->cols;
    H->vector = r->rows == 1 || r->cols == 1;
    if (H->vector) {
        size_t wrap = grid_w >= 8 ? (size_t)grid_w : 8;
        H->wrap = H->n < wrap ? H->n : wrap;
        H->rows = (H->n + H->wrap - 1) / H->wrap;
        H->cols = H->wrap;
    } else {
        H->rows = r->rows;
        H->cols = r->cols;
    }
    snprintf(H->pname, sizeof H->pname, "%s", r->param->name);
    H->p_ndim = r->param->ndim;
    if (H->cr >= H->rows)
        H->cr = H->rows ? H->rows - 1 : 0;
    if (H->cc >= H->cols)
        H->cc = H->cols ? H->cols - 1 : 0;
}

/* Region coordinates of display cell (r, c); 0 when outside a vector. */
int ui_heat_region_rc(const ui_heat *H, size_t r, size_t c, size_t *i, size_t *j)
{
    if (!H->vector) {
        *i = r;
        *j = c;
        return r < H->rows && c < H->cols;
    }
    size_t k = r * H->wrap + c;
    if (k >= H->n)
        return 0;
    const addr_region *reg = &H->v.regions[H->region];
    *i = reg->cols == 1 ? k : 0;
    *j = reg->cols == 1 ? 0 : k;
    return 1;
}

static int parse_now(ui *u, const char *addr, ps_error *err)
{
    ui_heat *H = u->heat;
    addr_view v;
    int rc = addr_parse(u->s->lm.model, u->s->lm.tok, addr, &v, err);
    if (rc)
        return rc;
    if (v.n_regions < 1)
        return ps_error_set(err, PS_ERR_INVALID, "%s covers nothing", addr);
    int same = H->have && !strcmp(H->v.name, v.name);
    H->v = v;
    H->have = 1;
    H->pending = 0;
    if (!same) {
        H->region = 0;
        H->cr = H->cc = 0;
        H->zoom = 0;
        H->step = 0;
    }
    if (H->region >= v.n_regions)
        H->region = 0;
    set_geometry(H, H->grid_w);
    H->need_grid = H->need_info = 1;
    snprintf(H->addr, sizeof H->addr, "%s", v.name);
    H->msg[0] = '\0';
    return PS_OK;
}

int ui_heat_open(ui *u, const char *addr, ps_error *err)
{
    ui_heat *H = u->heat;
    if (!ui_lock(u)) {
        /* busy: parse when the lock is free */
        snprintf(H->addr, sizeof H->addr, "%s", addr);
        H->pending = 1;
        ui_dirty(u, UI_PANE_HEAT);
        return PS_OK;
    }
    int rc = parse_now(u, addr, err);
    ui_unlock(u);
    ui_dirty(u, UI_PANE_HEAT);
    return rc;
}

void ui_heat_model_changed(ui *u)
{
    ui_heat *H = u->heat;
    ps_error err = {0};
    H->have = 0;
    if (!H->addr[0] || parse_now(u, H->addr, &err))
        parse_now(u, "wte.weight", &err);
}

/* ---- reading sources (under the session lock) ---- */

/* The arena the source reads, or NULL with a reason in H->msg.  For the
 * change from the file, *base receives the parameter's baseline (NULL when
 * the journal has none: nothing changed). */
static const float *source_arena(ui *u, const ps_param *p, const float **base)
{
    ui_heat *H = u->heat;
    ps_session *s = u->s;
    ps_model *m = s->lm.model;
    *base = NULL;
    switch (H->shown) {
    case UI_SRC_VALUES:
        return m->w;
    case UI_SRC_GRAD:
        if (!ps_model_param_grad(m, p)) {
            snprintf(H->msg, sizeof H->msg, "no gradient yet: run phases up to backward (p), or a step (s)");
            return NULL;
        }
        return m->grad;
    case UI_SRC_UPDATE:
        if (!s->trainer || s->trainer->n_train_hist == 0 || !s->trainer->delta) {
            snprintf(H->msg, sizeof H->msg, "no update yet: run a training step (s)");
            return NULL;
        }
        return s->trainer->delta;
    case UI_SRC_DIFF:
        *base = ps_perturb_baseline(s->journal, p);
        return m->w;
    }
    return NULL;
}

/* Value of source at region element (i, j). */
static float read_at(const ui_heat *H, const float *arena, const float *base, const addr_region *r, size_t i,
                     size_t j)
{
    size_t ld = (size_t)r->param->shape[1];
    size_t off = (r->row0 + i) * ld + r->col0 + j;
    float x = arena[r->param->offset + off];
    if (H->shown == UI_SRC_DIFF)
        return base ? x - base[off] : 0.0f;
    return x;
}

/* Above this many values, statistics read every k-th row, so that a frame
 * stays short even for GPT-2's token embedding (38M values). */
#define STATS_MAX ((size_t)1 << 20)

static void compute_stats(ui *u, const float *arena, const float *base)
{
    ui_heat *H = u->heat;
    const addr_region *r = &H->v.regions[H->region];
    size_t ld = (size_t)r->param->shape[1];
    size_t n = r->rows * r->cols;
    size_t k = n > STATS_MAX && r->rows > 1 ? (n + STATS_MAX - 1) / STATS_MAX : 1;
    size_t rows = (r->rows + k - 1) / k;
    const float *x = arena + r->param->offset + r->row0 * ld + r->col0;
    size_t stride = ld * k;
    float *tmp = NULL;
    if (H->shown == UI_SRC_DIFF) {
        tmp = malloc(sizeof(float) * rows * r->cols);
        if (!tmp) {
            H->stats_ok = 0;
            return;
        }
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < r->cols; j++)
                tmp[i * r->cols + j] = read_at(H, arena, base, r, i * k, j);
        x = tmp;
        stride = r->cols;
    }
    ps_stats_compute(&H->st, x, rows, r->cols, stride);
    H->sampled = k > 1;
    H->scale_is_max = H->scale_mode == 2 || (H->scale_mode == 0 && H->bs_r * H->bs_c > 1);
    double lim = H->scale_is_max ? fmax(fabs(H->st.min), fabs(H->st.max))
                                 : 3.0 * sqrt(H->st.mean * H->st.mean + H->st.std * H->st.std);
    H->scale = lim > 0 ? lim : 1e-12;
    ps_histogram(x, rows, r->cols, stride, UI_HEAT_BINS, -H->scale, H->scale, H->hist, &H->hlo, &H->hhi);
    size_t in = 0;
    for (int b = 0; b < UI_HEAT_BINS; b++)
        in += H->hist[b];
    H->outside = H->st.count > in ? H->st.count - in : 0;
    H->stats_ok = 1;
    free(tmp);
}

void ui_heat_block_size(ui_heat *H)
{
    size_t fr = (H->rows + H->grid_h - 1) / (H->grid_h ? H->grid_h : 1);
    size_t fc = (H->cols + H->grid_w - 1) / (H->grid_w ? H->grid_w : 1);
    if (fr < 1) fr = 1;
    if (fc < 1) fc = 1;
    if (H->zoom == 0) {
        H->bs_r = fr;
        H->bs_c = fc;
    } else {
        H->bs_r = H->bs_c = (size_t)H->zoom;
    }
    /* keep the cursor's block in view, origins on block boundaries */
    size_t vr = H->bs_r * (size_t)H->grid_h, vc = H->bs_c * (size_t)H->grid_w;
    if (H->cr < H->org_r)
        H->org_r = H->cr / H->bs_r * H->bs_r;
    if (H->cr >= H->org_r + vr)
        H->org_r = (H->cr / H->bs_r + 1) * H->bs_r - vr;
    if (H->cc < H->org_c)
        H->org_c = H->cc / H->bs_c * H->bs_c;
    if (H->cc >= H->org_c + vc)
        H->org_c = (H->cc / H->bs_c + 1) * H->bs_c - vc;
    H->org_r = H->org_r / H->bs_r * H->bs_r;
    H->org_c = H->org_c / H->bs_c * H->bs_c;
    if (H->zoom == 0)
        H->org_r = H->org_c = 0;
}

static void compute_grid(ui *u, const float *arena, const float *base)
{
    ui_heat *H = u->heat;
    size_t cells = (size_t)H->grid_w * H->grid_h;
    if (cells > H->grid_cap) {
        free(H->grid);
        H->grid = malloc(sizeof(float) * cells);
        H->grid_cap = H->grid ? cells : 0;
        if (!H->grid)
            return;
    }
    const addr_region *r = &H->v.regions[H->region];
    /* very large blocks are sampled, so that a frame stays short */
    size_t total = H->bs_r * H->bs_c * cells;
    size_t stride = total > ((size_t)1 << 20) ? (total >> 20) + 1 : 1;
    for (int y = 0; y < H->grid_h; y++)
        for (int x = 0; x < H->grid_w; x++) {
            float best = NAN;
            int any = 0;
            size_t r0 = H->org_r + (size_t)y * H->bs_r, c0 = H->org_c + (size_t)x * H->bs_c;
            for (size_t a = 0; a < H->bs_r && r0 + a < H->rows; a += stride)
                for (size_t b = 0; b < H->bs_c && c0 + b < H->cols; b++) {
                    size_t i, j;
                    if (!ui_heat_region_rc(H, r0 + a, c0 + b, &i, &j))
                        continue;
                    float v = read_at(H, arena, base, r, i, j);
                    if (!any || fabsf(v) > fabsf(best) || v != v) {
                        best = v;
                        any = 1;
                    }
                }
            H->grid[y * H->grid_w + x] = any ? best : INFINITY;   /* INFINITY: no weight here */
        }
    H->grid_ok = 1;
}

static void compute_info(ui *u)
{
    ui_heat *H = u->heat;
    ps_session *s = u->s;
    ps_model *m = s->lm.model;
    const addr_region *r = &H->v.regions[H->region];
    ui_heat_info *I = &H->info;
    memset(I, 0, sizeof *I);
    size_t i, j;
    if (!ui_heat_region_rc(H, H->cr, H->cc, &i, &j))
        return;
    I->ok = 1;
    I->prow = r->row0 + i;
    I->pcol = r->col0 + j;
    size_t off = r->param->offset + I->prow * (size_t)r->param->shape[1] + I->pcol;
    I->value = m->w[off];
    if (m->grad && ps_model_param_grad(m, r->param)) {
        I->has_grad = 1;
        I->grad = m->grad[off];
    }
    ps_trainer *t = s->trainer;
    if (t && t->opt && t->opt->m && t->opt->step > 0) {
        I->has_m = 1;
        I->m = t->opt->m[off];
        if (t->opt->v) {
            I->has_v = 1;
            I->v = t->opt->v[off];
        }
    }
    if (t && t->delta && t->n_train_hist > 0) {
        I->has_update = 1;
        I->update = t->delta[off];
    }
    const float *base = ps_perturb_baseline(s->journal, r->param);
    I->diff = base ? I->value - base[off - r->param->offset] : 0.0;
    if (H->p_ndim == 1)
        snprintf(I->addr, sizeof I->addr, "%s[%zu]", H->pname, I->prow);
    else
        snprintf(I->addr, sizeof I->addr, "%s[%zu, %zu]", H->pname, I->prow, I->pcol);
    if (H->step <= 0) {
        /* a tenth of the typical size, rounded to 1, 2 or 5 */
        double typ = H->stats_ok && H->shown == UI_SRC_VALUES
                         ? sqrt(H->st.mean * H->st.mean + H->st.std * H->st.std) : fabs(I->value);
        double st = typ > 0 ? typ / 10 : 0.01;
        double e = pow(10, floor(log10(st)));
        double f = st / e;
        H->step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * e;
    }
}

static ui_src follow_source(const ui *u)
{
    const ui_train_snap *sn = &u->snap;
    if (!sn->has_trainer)
        return UI_SRC_VALUES;
    if (sn->next_phase == PS_PHASE_UPDATE)
        return UI_SRC_GRAD;      /* backward just ran */
    if (sn->next_phase == PS_PHASE_FORWARD && sn->step > 0)
        return UI_SRC_UPDATE;    /* the update just ran */
    return UI_SRC_VALUES;
}

static ui_src wanted(ui *u)
{
    ui_heat *H = u->heat;
    return H->follow ? follow_source(u) : H->src;
}

int ui_heat_needs(ui *u)
{
    ui_heat *H = u->heat;
    return H->pending || H->version != u->version || H->need_grid || H->need_info || wanted(u) != H->shown;
}

void ui_heat_stale(ui *u)
{
    u->heat->stale = 1;
    ui_dirty(u, UI_PANE_HEAT);
}

void ui_heat_compute(ui *u)
{
    ui_heat *H = u->heat;
    if (!ui_heat_needs(u))
        return;
    if (wanted(u) != H->shown) {
        H->shown = wanted(u);
        H->need_grid = 1;
    }
    int changed = H->version != u->version;
    if (H->pending) {
        ps_error err = {0};
        if (parse_now(u, H->addr, &err)) {
            snprintf(H->msg, sizeof H->msg, "%s", err.msg);
            H->pending = 0;
        }
    }
    if (H->have) {
        const addr_region *r = &H->v.regions[H->region];
        const float *base;
        H->msg[0] = '\0';
        const float *arena = source_arena(u, r->param, &base);
        if (changed || H->need_grid) {
            if (arena) {
                ui_heat_block_size(H);
                compute_stats(u, arena, base);
                compute_grid(u, arena, base);
            } else {
                H->grid_ok = H->stats_ok = 0;
            }
        } else {
            ui_heat_block_size(H);
        }
        compute_info(u);
    }
    H->version = u->version;
    H->need_grid = H->need_info = 0;
    H->stale = 0;
    ui_dirty(u, UI_PANE_HEAT);
}

/* ---- the pane's life ---- */

static void on_resize(ui *u, ui_pane *p)
{
    ui_heat_layout(u, p);
    ui_heat_rewrap(u);
    u->heat->need_grid = 1;
}

int ui_heat_init(ui *u, ui_pane *p)
{
    ui_heat *H = calloc(1, sizeof *H);
    if (!H)
        return -1;
    u->heat = H;
    p->title = "Heatmap";
    p->draw = ui_heat_draw;
    p->on_key = ui_heat_key;
    p->on_resize = on_resize;
    H->grid_w = 32;
    H->grid_h = 12;
    return 0;
}

void ui_heat_free(ui *u)
{
    if (!u->heat)
        return;
    free(u->heat->grid);
    free(u->heat);
    u->heat = NULL;
}

/* Re-wraps a vector to the grid's width (after a resize), keeping the
 * cursor on the same value. */
void ui_heat_rewrap(ui *u)
{
    ui_heat *H = u->heat;
    if (!H->have || !H->vector || H->pending)
        return;
    size_t k = H->cr * H->wrap + H->cc;
    if (!ui_lock(u))
        return;
    set_geometry(H, H->grid_w);
    ui_unlock(u);
    H->cr = k / H->wrap;
    H->cc = k % H->wrap;
    H->need_grid = 1;
}
