/* paramscope — the heatmap pane's state, shared by heatmap.c (what the cells
 * show, read under the session lock) and pane_heat.c (drawing and keys). */
#ifndef PARAMSCOPE_UI_HEATMAP_H
#define PARAMSCOPE_UI_HEATMAP_H

#include <stddef.h>
#include <stdint.h>

#include "paramscope/stats.h"
#include "repl/addr.h"
#include "ui/ui.h"

#define UI_HEAT_BINS 16

typedef enum ui_src {
    UI_SRC_VALUES,
    UI_SRC_GRAD,
    UI_SRC_UPDATE,
    UI_SRC_DIFF,              /* the change from the file */
} ui_src;

/* The weight under the cursor, read in the frame. */
typedef struct ui_heat_info {
    int ok;
    size_t prow, pcol;        /* in the parameter */
    char addr[ADDR_NAME_MAX]; /* "h.0.attn.c_attn.weight[3, 17]" */
    double value, grad, m, v, update, diff;
    int has_grad, has_m, has_v, has_update;
} ui_heat_info;

typedef struct ui_heat {
    char addr[ADDR_NAME_MAX]; /* what is shown (canonical once parsed) */
    int pending;              /* addr waits for the lock to be parsed */
    int have;
    addr_view v;              /* regions point into the model: use under the lock */
    int region;               /* the region shown, of v.n_regions */
    char pname[PS_NAME_MAX];  /* the region's parameter, copied */
    int p_ndim;

    /* the region as a display matrix: a vector wraps at `wrap` columns */
    size_t n, rows, cols, wrap;
    int vector;
    size_t cr, cc;            /* the cursor, in the display matrix */
    int zoom;                 /* weights per cell side; 0 fits the region */
    size_t bs_r, bs_c;        /* weights per cell in effect */
    size_t org_r, org_c;      /* the top-left weight shown */
    int grid_w, grid_h;       /* cells */
    int grid_y, grid_x;       /* where the grid starts in the pane */
    int side_x, side_w;       /* the histogram column (side_w 0: below) */

    ui_src src;               /* chosen with 1-4 */
    ui_src shown;             /* src, or what following training picked */
    int follow;
    int scale_mode;           /* 0 auto: 3 sigma for single weights, the
                                 largest value when cells cover several
                                 (their peaks); 1 3 sigma; 2 the largest */
    int scale_is_max;         /* what auto chose */
    double step;              /* of + and - */

    float *grid;              /* [grid_h * grid_w], INFINITY where no weight */
    size_t grid_cap;
    int grid_ok;
    ps_stats st;
    int stats_ok;
    int sampled;              /* the statistics read a sample of the rows */
    double scale;
    size_t hist[UI_HEAT_BINS];
    double hlo, hhi;
    size_t outside;           /* values beyond the scale */
    ui_heat_info info;
    char msg[256];            /* why nothing is shown */
    uint64_t version;         /* the worker's version the numbers are from */
    int need_grid, need_info;
    int stale;
} ui_heat;

/* heatmap.c */
int ui_heat_region_rc(const ui_heat *H, size_t r, size_t c, size_t *i, size_t *j);
void ui_heat_rewrap(ui *u);
/* Weights per cell for the zoom, and the origin that keeps the cursor in
 * view (geometry only: no lock needed). */
void ui_heat_block_size(ui_heat *H);

/* pane_heat.c */
void ui_heat_draw(ui *u, ui_pane *p);
int ui_heat_key(ui *u, ui_pane *p, ui_key k);
void ui_heat_layout(ui *u, ui_pane *p);

#endif
