/* The heatmap pane's drawing and keys.  Numbers come from heatmap.c, which
 * reads them under the session lock; here only copies are used, so drawing
 * never waits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/heatmap.h"
#include "ui/ui.h"

#define SIDE_W 21

static const char *const src_names[] = {"values", "gradient", "update", "from file"};
static const char *const src_short[] = {"value", "grad", "update", "file"};

/* ---- layout ---- */

void ui_heat_layout(ui *u, ui_pane *p)
{
    ui_heat *H = u->heat;
    H->side_w = p->w >= 50 ? SIDE_W : 0;
    H->grid_x = 1;
    H->grid_y = 3;
    H->grid_w = p->w - 2 - (H->side_w ? H->side_w + 1 : 0);
    H->grid_h = p->h - H->grid_y - 3 - (H->side_w ? 0 : 2);
    if (H->grid_w < 4)
        H->grid_w = 4;
    if (H->grid_h < 2)
        H->grid_h = 2;
    H->side_x = H->grid_x + H->grid_w + 1;
}

/* ---- drawing ---- */

static void draw_header(ui *u, ui_pane *p)
{
    ui_heat *H = u->heat;
    int x = 1;
    int narrow = p->w < 50;
    for (int s = 0; s < 4; s++) {
        char t[32];
        snprintf(t, sizeof t, "%d %s", s + 1, narrow ? src_short[s] : src_names[s]);
        attr_t a = ui_attr(&u->theme, (int)H->shown == s ? UI_SELECTION : UI_LABEL);
        x += ui_put(p->win, 1, x, t, p->w - x - 1, a);
        x += ui_put(p->win, 1, x, " ", 1, 0);
    }
    if (H->follow)
        ui_put(p->win, 1, x + 1, "a: following training", p->w - x - 2, ui_attr(&u->theme, UI_PHASE_NEXT));
    if (!H->have)
        return;
    char geo[160], z[48];
    if (H->zoom == 0)
        snprintf(z, sizeof z, "fit, %zux%zu per cell", H->bs_r, H->bs_c);
    else
        snprintf(z, sizeof z, "zoom %zux%zu per cell", H->bs_r, H->bs_c);
    if (H->vector)
        snprintf(geo, sizeof geo, "%zu values (wrapped at %zu)  %s", H->n, H->wrap, z);
    else
        snprintf(geo, sizeof geo, "[%zu, %zu] rows %zu-%zu cols %zu-%zu  %s", H->rows, H->cols, H->org_r,
                 H->org_r + H->bs_r * (size_t)H->grid_h > H->rows ? H->rows - 1 : H->org_r + H->bs_r * (size_t)H->grid_h - 1,
                 H->org_c,
                 H->org_c + H->bs_c * (size_t)H->grid_w > H->cols ? H->cols - 1 : H->org_c + H->bs_c * (size_t)H->grid_w - 1,
                 z);
    ui_put(p->win, 2, 1, geo, p->w - 2, ui_attr(&u->theme, UI_LABEL));
}

static void draw_grid(ui *u, ui_pane *p)
{
    ui_heat *H = u->heat;
    if (!H->grid_ok) {
        ui_put(p->win, H->grid_y + 1, H->grid_x, H->msg[0] ? H->msg : "nothing to show yet", H->grid_w,
               ui_attr(&u->theme, UI_LABEL));
        return;
    }
    long cy = ((long)H->cr - (long)H->org_r) / (long)H->bs_r;
    long cx = ((long)H->cc - (long)H->org_c) / (long)H->bs_c;
    for (int y = 0; y < H->grid_h; y++)
        for (int x = 0; x < H->grid_w; x++) {
            float g = H->grid[y * H->grid_w + x];
            if (isinf(g))
                continue;
            const char *glyph;
            attr_t a;
            ui_heat_cell(&u->theme, g / H->scale, &glyph, &a);
            if (y == cy && x == cx) {
                a = ui_attr(&u->theme, UI_CURSOR);
                if (!strcmp(glyph, " "))
                    glyph = u->utf8 ? "\u25c6" : "*";
            }
            ui_put(p->win, H->grid_y + y, H->grid_x + x, glyph, 1, a);
        }
}

static void draw_legend(ui *u, ui_pane *p, int y)
{
    ui_heat *H = u->heat;
    if (!H->stats_ok)
        return;
    char lo[24], hi[24];
    ui_fmt(-H->scale, lo, sizeof lo);
    ui_fmt(H->scale, hi, sizeof hi);
    int x = 1 + ui_put(p->win, y, 1, lo, 12, ui_attr(&u->theme, UI_HEAT_NEG));
    x++;
    int k = u->theme.heat_levels;
    for (int i = -k; i <= k; i++) {
        const char *glyph;
        attr_t a;
        ui_heat_cell(&u->theme, (double)i / k, &glyph, &a);
        ui_put(p->win, y, x++, glyph, 1, a);
        if (i == 0 && !strcmp(glyph, " "))
            ui_put(p->win, y, x - 1, "0", 1, ui_attr(&u->theme, UI_LABEL));
    }
    x++;
    x += ui_put(p->win, y, x, hi, 12, ui_attr(&u->theme, UI_HEAT_POS));
    char note[64];
    static const char *const mode[] = {"auto", "", ""};
    snprintf(note, sizeof note, "  %s%s%s (m)", mode[H->scale_mode], H->scale_mode ? "" : ": ",
             H->scale_is_max ? "largest |x|" : (u->utf8 ? "3\u03c3" : "3 sigma"));
    ui_put(p->win, y, x, note, p->w - x - 1, ui_attr(&u->theme, UI_LABEL));
}

static void draw_side(ui *u, ui_pane *p)
{
    ui_heat *H = u->heat;
    if (!H->side_w || !H->stats_ok)
        return;
    int x = H->side_x, w = H->side_w, y = H->grid_y;
    attr_t al = ui_attr(&u->theme, UI_LABEL), av = ui_attr(&u->theme, UI_VALUE);
    char b[32], c[32];
    const ps_stats *st = &H->st;
    struct { const char *k; const char *v; } rows[] = {
        {H->sampled ? "sample" : "count", ps_fmt_count(st->count, c, sizeof c)},
        {"mean", NULL}, {"std", NULL}, {"min", NULL}, {"max", NULL}, {"zeros", NULL},
    };
    double vals[] = {0, st->mean, st->std, st->min, st->max, 100 * st->frac_zero};
    int n_rows = H->grid_h >= 12 ? 6 : (H->grid_h >= 8 ? 3 : 0);
    for (int i = 0; i < n_rows; i++) {
        ui_put(p->win, y + i, x, rows[i].k, 6, al);
        if (i == 0)
            ui_put(p->win, y + i, x + 6, rows[i].v, w - 6, av);
        else if (i == 5)
            ui_putf(p->win, y + i, x + 6, w - 6, av, "%.1f%%", vals[i]);
        else
            ui_put(p->win, y + i, x + 6, ui_fmt_width(vals[i], w - 7, b, sizeof b), w - 6, av);
    }
    int hy = y + n_rows + (n_rows ? 1 : 0);
    int hrows = H->grid_y + H->grid_h - hy;
    if (hrows < 3)
        return;
    /* the histogram: bins merged to the rows available, largest count full */
    int per = (UI_HEAT_BINS + hrows - 1) / hrows;
    int nb = (UI_HEAT_BINS + per - 1) / per;
    size_t merged[UI_HEAT_BINS] = {0}, top = 1;
    for (int i = 0; i < UI_HEAT_BINS; i++)
        merged[i / per] += H->hist[i];
    for (int i = 0; i < nb; i++)
        top = merged[i] > top ? merged[i] : top;
    int cur_bin = -1;
    if (H->info.ok && H->shown == UI_SRC_VALUES && H->hhi > H->hlo) {
        double f = (H->info.value - H->hlo) / (H->hhi - H->hlo);
        if (f >= 0 && f <= 1)
            cur_bin = (int)(f * UI_HEAT_BINS) / per;
        if (cur_bin >= nb)
            cur_bin = nb - 1;
    }
    int barw = w - 8;
    for (int i = 0; i < nb; i++) {
        double centre = H->hlo + (H->hhi - H->hlo) * ((double)i * per + per / 2.0) / UI_HEAT_BINS;
        ui_put(p->win, hy + i, x, ui_fmt_width(centre, 7, b, sizeof b), 7, al);
        char bar[512] = "";
        ps_render_bar(bar, sizeof bar, (double)merged[i] / (double)top, barw - 1, u->utf8);
        const char *glyph;
        attr_t a;
        ui_heat_cell(&u->theme, centre / H->scale, &glyph, &a);
        ui_put(p->win, hy + i, x + 8, bar, barw - 1, u->theme.colors ? a & ~A_REVERSE : ui_attr(&u->theme, UI_HIST));
        if (i == cur_bin)
            ui_put(p->win, hy + i, x + w - 1, u->utf8 ? "\u25c0" : "<", 1, ui_attr(&u->theme, UI_MARK));
    }
}

/* Without room beside the grid: the statistics on one row and the histogram
 * as a row of bar heights, under the grid. */
static void draw_below(ui *u, ui_pane *p)
{
    ui_heat *H = u->heat;
    if (H->side_w || !H->stats_ok)
        return;
    static const char *const up8[8] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char *const up_ascii[8] = {".", ".", ":", ":", "=", "=", "#", "#"};
    int y = H->grid_y + H->grid_h;
    attr_t al = ui_attr(&u->theme, UI_LABEL);
    char a[24], b[24], c[24], d[24], line[160];
    snprintf(line, sizeof line, "%s %s  %s %s  [%s, %s]", u->utf8 ? "\u03bc" : "mean",
             ui_fmt_width(H->st.mean, 7, a, sizeof a), u->utf8 ? "\u03c3" : "sd",
             ui_fmt_width(H->st.std, 6, b, sizeof b), ui_fmt_width(H->st.min, 6, c, sizeof c),
             ui_fmt_width(H->st.max, 6, d, sizeof d));
    ui_put(p->win, y, 1, line, p->w - 2, al);
    int x;
    size_t top = 1;
    for (int i = 0; i < UI_HEAT_BINS; i++)
        top = H->hist[i] > top ? H->hist[i] : top;
    x = 1 + ui_put(p->win, y + 1, 1, "hist ", p->w - 2, al);
    for (int i = 0; i < UI_HEAT_BINS && x < p->w - 1; i++, x++) {
        int lv = H->hist[i] ? (int)((double)H->hist[i] / (double)top * 7.999) : -1;
        double centre = H->hlo + (H->hhi - H->hlo) * (i + 0.5) / UI_HEAT_BINS;
        const char *glyph;
        attr_t at;
        ui_heat_cell(&u->theme, centre / H->scale, &glyph, &at);
        if (lv >= 0)
            ui_put(p->win, y + 1, x, u->utf8 ? up8[lv] : up_ascii[lv],
                   1, u->theme.colors ? at & ~A_REVERSE : ui_attr(&u->theme, UI_HIST));
    }
    ui_putf(p->win, y + 1, x + 1, p->w - x - 2, al, "%s %s", H->sampled ? "sample" : "n",
            ps_fmt_count(H->st.count, a, sizeof a));
}

static void draw_info(ui *u, ui_pane *p)
{
    ui_heat *H = u->heat;
    const ui_heat_info *I = &H->info;
    int y = p->h - 2;
    if (!I->ok)
        return;
    char v[32], d[32];
    /* the whole address when it fits, else the indices (the title names the tensor) */
    const char *at = I->addr;
    if (ui_strwidth(I->addr) + 28 > p->w && strchr(I->addr, '['))
        at = strchr(I->addr, '[');
    int x = 1 + ui_put(p->win, y, 1, at, p->w - 2, ui_attr(&u->theme, UI_TOKEN));
    x += ui_putf(p->win, y, x, p->w - x - 1, ui_attr(&u->theme, UI_VALUE), " = %s", ui_fmt(I->value, v, sizeof v));
    if (I->diff != 0)
        ui_putf(p->win, y, x, p->w - x - 1, ui_attr(&u->theme, I->diff > 0 ? UI_BAR_UP : UI_BAR_DOWN),
                "  file %+.3g", I->diff);
    else
        ui_put(p->win, y, x, "  as in the file", p->w - x - 1, ui_attr(&u->theme, UI_LABEL));
    char line[256];
    size_t o = 0;
    o += (size_t)snprintf(line + o, sizeof line - o, "grad %s", I->has_grad ? ui_fmt(I->grad, d, sizeof d) : "-");
    if (I->has_m)
        o += (size_t)snprintf(line + o, sizeof line - o, "  adam m %s", ui_fmt(I->m, d, sizeof d));
    if (I->has_v)
        o += (size_t)snprintf(line + o, sizeof line - o, " v %s", ui_fmt(I->v, d, sizeof d));
    if (I->has_update)
        o += (size_t)snprintf(line + o, sizeof line - o, "  update %s", ui_fmt(I->update, d, sizeof d));
    snprintf(line + o, sizeof line - o, "  step %s%s", ui_fmt(H->step, d, sizeof d), p->w >= 70 ? " (+ - < >)" : "");
    ui_put(p->win, y + 1, 1, line, p->w - 2, ui_attr(&u->theme, UI_LABEL));
}

void ui_heat_draw(ui *u, ui_pane *p)
{
    ui_heat *H = u->heat;
    werase(p->win);
    char extra[ADDR_NAME_MAX + 64];
    if (H->v.n_regions > 1 && H->have)
        snprintf(extra, sizeof extra, "%s  part %d/%d: %s ([ ])", H->addr, H->region + 1, H->v.n_regions, H->pname);
    else
        snprintf(extra, sizeof extra, "%s%s", H->addr, H->stale ? "  (stale: busy)" : "");
    ui_title_row(u, p, extra);
    draw_header(u, p);
    if (!H->have) {
        ui_put(p->win, H->grid_y, 1, H->msg[0] ? H->msg : "choose a tensor in the list (Tab)", p->w - 2,
               ui_attr(&u->theme, H->msg[0] ? UI_WARN : UI_LABEL));
        return;
    }
    draw_grid(u, p);
    draw_side(u, p);
    draw_below(u, p);
    draw_legend(u, p, p->h - 3);
    draw_info(u, p);
}

/* ---- keys ---- */

static double step_change(double s, int up)
{
    double e = pow(10, floor(log10(s)));
    double f = s / e;
    int m = f < 1.5 ? 1 : f < 3.5 ? 2 : 5;
    if (up)
        return m == 1 ? 2 * e : m == 2 ? 5 * e : 10 * e;
    return m == 1 ? 0.5 * e : m == 2 ? e : 2 * e;
}

static void move_cursor(ui_heat *H, long dr, long dc)
{
    long r = (long)H->cr + dr * (long)H->bs_r, c = (long)H->cc + dc * (long)H->bs_c;
    if (r < 0) r = 0;
    if (c < 0) c = 0;
    if (r >= (long)H->rows) r = (long)H->rows - 1;
    if (c >= (long)H->cols) c = (long)H->cols - 1;
    if (H->vector && (size_t)r * H->wrap + (size_t)c >= H->n)
        c = (long)((H->n - 1) % H->wrap), r = (long)((H->n - 1) / H->wrap);
    H->cr = (size_t)r;
    H->cc = (size_t)c;
    H->need_info = 1;
}

/* The address of the weight under the cursor, from the view's copy (the
 * frame's info may be older than the keys typed since). */
static int cursor_addr(const ui_heat *H, char *buf, size_t size)
{
    size_t i, j;
    if (!H->have || H->pending || !ui_heat_region_rc(H, H->cr, H->cc, &i, &j))
        return 0;
    const addr_region *r = &H->v.regions[H->region];
    if (H->p_ndim == 1)
        snprintf(buf, size, "%s[%zu]", H->pname, r->row0 + i + r->col0 + j);
    else
        snprintf(buf, size, "%s[%zu, %zu]", H->pname, r->row0 + i, r->col0 + j);
    return 1;
}

static char ask_addr[ADDR_NAME_MAX];

static void value_done(ui *u, const char *text, void *ctx)
{
    (void)ctx;
    if (text && *text)
        ui_run(u, "%s = %s", ask_addr, text);
}

static void token_done(ui *u, const char *text, void *ctx)
{
    (void)ctx;
    if (!text || !*text)
        return;
    char addr[ADDR_NAME_MAX];
    size_t o = 0;
    o += (size_t)snprintf(addr, sizeof addr, "wte[\"");
    for (const char *p = text; *p && o + 4 < sizeof addr; p++) {
        if (*p == '"' || *p == '\\')
            addr[o++] = '\\';
        addr[o++] = *p;
    }
    snprintf(addr + o, sizeof addr - o, "\"]");
    ps_error err = {0};
    if (ui_heat_open(u, addr, &err))
        ui_log_add(u, UI_LOG_ERROR, err.msg);
}

/* The layer, and the head or neuron, that the cursor points at. */
static void cursor_unit(ui *u, int neuron, int *layer, int *unit)
{
    ui_heat *H = u->heat;
    int C = u->cfg.n_embd, hd = C / (u->cfg.n_head ? u->cfg.n_head : 1);
    int l = -1;
    char rest[PS_NAME_MAX] = "";
    *unit = 0;
    if (sscanf(H->pname, "h.%d.%63s", &l, rest) != 2)
        l = H->v.layer;
    *layer = l >= 0 ? l : 0;
    const ui_heat_info *I = &H->info;
    if (!neuron) {
        if ((H->v.base == ADDR_BASE_Q || H->v.base == ADDR_BASE_K || H->v.base == ADDR_BASE_V ||
             H->v.base == ADDR_BASE_HEAD) && H->v.count >= 1)
            *unit = H->v.first;
        else if (I->ok && !strcmp(rest, "attn.c_attn.weight"))
            *unit = (int)(I->pcol % (size_t)C) / hd;
        else if (I->ok && !strcmp(rest, "attn.c_attn.bias"))
            *unit = (int)(I->prow % (size_t)C) / hd;
        else if (I->ok && !strcmp(rest, "attn.c_proj.weight"))
            *unit = (int)I->prow / hd;
    } else {
        if (H->v.base == ADDR_BASE_NEURON && H->v.count >= 1)
            *unit = H->v.first;
        else if (I->ok && !strcmp(rest, "mlp.c_fc.weight"))
            *unit = (int)I->pcol;
        else if (I->ok && (!strcmp(rest, "mlp.c_fc.bias") || !strcmp(rest, "mlp.c_proj.weight")))
            *unit = (int)I->prow;
    }
}

static void open_view(ui *u, const char *fmt, int layer, int unit)
{
    char addr[ADDR_NAME_MAX];
    snprintf(addr, sizeof addr, fmt, layer, unit);
    ps_error err = {0};
    if (ui_heat_open(u, addr, &err))
        ui_log_add(u, UI_LOG_ERROR, err.msg);
}

static void set_region(ui *u, int delta)
{
    ui_heat *H = u->heat;
    if (H->v.n_regions < 2)
        return;
    char addr[ADDR_NAME_MAX];
    snprintf(addr, sizeof addr, "%s", H->addr);
    H->region = (H->region + H->v.n_regions + delta) % H->v.n_regions;
    H->cr = H->cc = 0;
    H->zoom = 0;
    ps_error err = {0};
    ui_heat_open(u, addr, &err);   /* re-reads the geometry under the lock */
}

int ui_heat_key(ui *u, ui_pane *p, ui_key k)
{
    ui_heat *H = u->heat;
    ui_action act = ui_key_action(UI_SCOPE_HEAT, k);
    int layer, unit;
    if (H->have)
        ui_heat_block_size(H);   /* keys may come faster than frames */
    char addr[ADDR_NAME_MAX];
    int at = cursor_addr(H, addr, sizeof addr);
    switch (act) {
    case UI_ACT_LEFT: move_cursor(H, 0, -1); break;
    case UI_ACT_RIGHT: move_cursor(H, 0, 1); break;
    case UI_ACT_UP: move_cursor(H, -1, 0); break;
    case UI_ACT_DOWN: move_cursor(H, 1, 0); break;
    case UI_ACT_PAN_UP: move_cursor(H, -H->grid_h, 0); break;
    case UI_ACT_PAN_DOWN: move_cursor(H, H->grid_h, 0); break;
    case UI_ACT_PAN_LEFT: move_cursor(H, 0, -H->grid_w / 2); break;
    case UI_ACT_PAN_RIGHT: move_cursor(H, 0, H->grid_w / 2); break;
    case UI_ACT_ZOOM_IN: {
        size_t b = H->bs_r > H->bs_c ? H->bs_r : H->bs_c;
        int z = H->zoom ? H->zoom / 2 : 1;
        if (!H->zoom)
            while ((size_t)z * 2 < b)
                z *= 2;
        H->zoom = z < 1 ? 1 : z;
        H->need_grid = 1;
        break;
    }
    case UI_ACT_ZOOM_OUT: {
        if (!H->zoom)
            break;
        H->zoom *= 2;
        size_t fr = (H->rows + H->grid_h - 1) / H->grid_h, fc = (H->cols + H->grid_w - 1) / H->grid_w;
        if ((size_t)H->zoom >= (fr > fc ? fr : fc))
            H->zoom = 0;
        H->need_grid = 1;
        break;
    }
    case UI_ACT_FIT: H->zoom = 0; H->need_grid = 1; break;
    case UI_ACT_NUDGE_UP:
    case UI_ACT_NUDGE_DOWN:
        if (at)
            ui_worker_nudge(u->w, addr, act == UI_ACT_NUDGE_UP ? H->step : -H->step);
        break;
    case UI_ACT_STEP_SMALLER:
    case UI_ACT_STEP_LARGER:
        if (H->step > 0)
            H->step = step_change(H->step, act == UI_ACT_STEP_LARGER);
        break;
    case UI_ACT_ZERO:
        if (at)
            ui_run(u, "%s = 0", addr);
        break;
    case UI_ACT_TYPE_VALUE:
        if (at) {
            char prompt[ADDR_NAME_MAX + 8];
            snprintf(ask_addr, sizeof ask_addr, "%s", addr);
            snprintf(prompt, sizeof prompt, "%s = ", ask_addr);
            ui_cmd_ask(u, prompt, "", 0, value_done, NULL);
        }
        break;
    case UI_ACT_SHOW_VALUES:
    case UI_ACT_SHOW_GRAD:
    case UI_ACT_SHOW_UPDATE:
    case UI_ACT_SHOW_DIFF:
        H->src = (ui_src)(act - UI_ACT_SHOW_VALUES);
        H->follow = 0;
        H->need_grid = 1;
        break;
    case UI_ACT_FOLLOW:
        H->follow = !H->follow;
        H->need_grid = 1;
        break;
    case UI_ACT_SCALE:
        H->scale_mode = (H->scale_mode + 1) % 3;
        H->need_grid = 1;
        break;
    case UI_ACT_VIEW_Q:
    case UI_ACT_VIEW_K:
    case UI_ACT_VIEW_V:
        cursor_unit(u, 0, &layer, &unit);
        open_view(u, act == UI_ACT_VIEW_Q ? "h.%d.attn.q[%d]" : act == UI_ACT_VIEW_K ? "h.%d.attn.k[%d]" : "h.%d.attn.v[%d]",
                  layer, unit);
        break;
    case UI_ACT_VIEW_NEURON:
        cursor_unit(u, 1, &layer, &unit);
        open_view(u, "h.%d.mlp.neuron[%d]", layer, unit);
        break;
    case UI_ACT_VIEW_TOKEN: {
        const char *initial = ui_predict_top_token(u);
        char tok[256] = "";
        if (!strcmp(H->pname, "wte.weight") && H->info.ok && ui_lock(u)) {
            const char *t = ps_tokenizer_token(u->s->lm.tok, (int)H->info.prow);
            snprintf(tok, sizeof tok, "%s", t ? t : "");
            ui_unlock(u);
            initial = tok;
        }
        ui_cmd_ask(u, "embedding row of token: ", initial ? initial : "", 0, token_done, NULL);
        break;
    }
    case UI_ACT_VIEW_WHOLE:
        if (H->pname[0]) {
            ps_error err = {0};
            char name[PS_NAME_MAX];
            snprintf(name, sizeof name, "%s", H->pname);
            if (ui_heat_open(u, name, &err))
                ui_log_add(u, UI_LOG_ERROR, err.msg);
        }
        break;
    case UI_ACT_REGION_NEXT: set_region(u, 1); break;
    case UI_ACT_REGION_PREV: set_region(u, -1); break;
    case UI_ACT_ADDRESS: ui_tree_ask_address(u); break;
    case UI_ACT_BACK: ui_focus(u, UI_PANE_TREE); break;
    default:
        return 0;
    }
    (void)p;
    return UI_HANDLED | UI_REDRAW;
}
