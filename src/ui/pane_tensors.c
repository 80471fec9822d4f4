/* The tensor tree: the model's parameters by layer, with shapes and counts,
 * and the named views people think in (each head's query, key and value).
 * Moving the selection shows the tensor in the heatmap at once; Enter goes
 * there.  Built from the model's parameter table when the model is loaded. */
#include <stdlib.h>
#include <string.h>

#include "repl/addr.h"
#include "ui/ui.h"

typedef struct node {
    char label[64];
    char addr[ADDR_NAME_MAX];   /* "" for a group */
    char shape[32];
    size_t count;
    int depth;
    int parent;                 /* index, -1 at the top */
    int expanded;
} node;

typedef struct ui_tree {
    node *nodes;
    int n, cap;
    int sel;                    /* index into nodes */
    int n_params;
    int top;                    /* first visible row shown */
} ui_tree;

static int add_node(ui_tree *t, int parent, const char *label, const char *addr, const char *shape, size_t count)
{
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 128;
        node *p = realloc(t->nodes, sizeof *p * (size_t)cap);
        if (!p)
            return -1;
        t->nodes = p;
        t->cap = cap;
    }
    node *nd = &t->nodes[t->n];
    memset(nd, 0, sizeof *nd);
    snprintf(nd->label, sizeof nd->label, "%s", label);
    snprintf(nd->addr, sizeof nd->addr, "%s", addr ? addr : "");
    snprintf(nd->shape, sizeof nd->shape, "%s", shape ? shape : "");
    nd->count = count;
    nd->parent = parent;
    nd->depth = parent < 0 ? 0 : t->nodes[parent].depth + 1;
    for (int p = parent; p >= 0; p = t->nodes[p].parent)
        t->nodes[p].count += count;
    return t->n++;
}

static void add_param(ui_tree *t, int parent, const ps_param *p, const char *label)
{
    char shape[32];
    if (p->ndim == 1)
        snprintf(shape, sizeof shape, "[%d]", p->shape[0]);
    else
        snprintf(shape, sizeof shape, "[%d, %d]", p->shape[0], p->shape[1]);
    add_node(t, parent, label ? label : p->name, p->name, shape, p->numel);
}

/* Parameters of block l whose name ends in one of the suffixes. */
static void add_block_params(ui_tree *t, int parent, ps_model *m, int l, const char *const *suffixes)
{
    char name[PS_NAME_MAX];
    for (int i = 0; suffixes[i]; i++) {
        snprintf(name, sizeof name, "h.%d.%s", l, suffixes[i]);
        ps_param *p = ps_model_find(m, name);
        const char *dot = strchr(suffixes[i], '.');
        /* inside "attention" and "MLP" the attn. and mlp. prefixes go */
        if (p)
            add_param(t, parent, p, dot && strncmp(suffixes[i], "ln_", 3) ? dot + 1 : suffixes[i]);
    }
}

void ui_tree_rebuild(ui *u)
{
    ui_tree *t = u->tree;
    ps_model *m = u->s->lm.model;
    char sel_addr[ADDR_NAME_MAX] = "";
    if (t->n && t->sel < t->n)
        snprintf(sel_addr, sizeof sel_addr, "%s", t->nodes[t->sel].addr);
    t->n = 0;
    t->n_params = m->n_params;
    static const char *const attn[] = {"attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                                       "attn.c_proj.bias", NULL};
    static const char *const mlp[] = {"mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
                                      NULL};
    static const char *const norms[] = {"ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", NULL};

    int g = add_node(t, -1, "embeddings", NULL, NULL, 0);
    ps_param *p;
    if ((p = ps_model_find(m, "wte.weight")))
        add_param(t, g, p, "wte.weight  tokens");
    if ((p = ps_model_find(m, "wpe.weight")))
        add_param(t, g, p, "wpe.weight  positions");
    int hd = m->cfg.n_embd / m->cfg.n_head;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        char label[64];
        snprintf(label, sizeof label, "block %d", l);
        int b = add_node(t, -1, label, NULL, NULL, 0);
        int a = add_node(t, b, "attention", NULL, NULL, 0);
        add_block_params(t, a, m, l, attn);
        int heads = add_node(t, a, "heads q k v", NULL, NULL, 0);
        char shape[32];
        snprintf(shape, sizeof shape, "[%d, %d]", m->cfg.n_embd, hd);
        static const char part[3] = {'q', 'k', 'v'};
        static const char *const part_name[3] = {"query", "key", "value"};
        for (int h = 0; h < m->cfg.n_head; h++)
            for (int k = 0; k < 3; k++) {
                char addr[64], lab[64];
                snprintf(addr, sizeof addr, "h.%d.attn.%c[%d]", l, part[k], h);
                snprintf(lab, sizeof lab, "head %d %s", h, part_name[k]);
                add_node(t, heads, lab, addr, shape, 0);   /* views: counted above */
            }
        t->nodes[heads].count = 0;
        int mm = add_node(t, b, "MLP", NULL, NULL, 0);
        add_block_params(t, mm, m, l, mlp);
        int nn = add_node(t, b, "norms", NULL, NULL, 0);
        add_block_params(t, nn, m, l, norms);
    }
    int f = add_node(t, -1, "final norm", NULL, NULL, 0);
    if ((p = ps_model_find(m, "ln_f.weight")))
        add_param(t, f, p, "ln_f.weight");
    if ((p = ps_model_find(m, "ln_f.bias")))
        add_param(t, f, p, "ln_f.bias");
    t->sel = 0;
    for (int i = 0; sel_addr[0] && i < t->n; i++)
        if (!strcmp(t->nodes[i].addr, sel_addr)) {
            t->sel = i;
            for (int q = t->nodes[i].parent; q >= 0; q = t->nodes[q].parent)
                t->nodes[q].expanded = 1;
        }
    ui_dirty(u, UI_PANE_TREE);
}

/* ---- the visible rows ---- */

static int visible(const ui_tree *t, int i)
{
    for (int p = t->nodes[i].parent; p >= 0; p = t->nodes[p].parent)
        if (!t->nodes[p].expanded)
            return 0;
    return 1;
}

/* Rows shown, in order, into rows[] (n nodes at most); returns how many. */
static int rows_of(const ui_tree *t, int *rows)
{
    int n = 0;
    for (int i = 0; i < t->n; i++)
        if (visible(t, i))
            rows[n++] = i;
    return n;
}

static int is_group(const node *nd)
{
    return nd->addr[0] == '\0';
}

static void draw(ui *u, ui_pane *p)
{
    ui_tree *t = u->tree;
    werase(p->win);
    char extra[48];
    snprintf(extra, sizeof extra, "%d tensors", t->n_params);
    ui_title_row(u, p, extra);
    int *rows = malloc(sizeof(int) * (size_t)(t->n ? t->n : 1));
    if (!rows)
        return;
    int n = rows_of(t, rows);
    int at = 0;
    while (at < n && rows[at] != t->sel)
        at++;
    int h = p->h - 1;
    if (at < t->top)
        t->top = at;
    if (at >= t->top + h)
        t->top = at - h + 1;
    if (t->top > n - h)
        t->top = n - h > 0 ? n - h : 0;
    for (int r = 0; r < h && t->top + r < n; r++) {
        const node *nd = &t->nodes[rows[t->top + r]];
        int sel = rows[t->top + r] == t->sel;
        attr_t a = sel ? ui_attr(&u->theme, u->focus == UI_PANE_TREE ? UI_SELECTION : UI_PANE_TITLE)
                       : ui_attr(&u->theme, is_group(nd) && nd->depth == 0 ? UI_VALUE : UI_NORMAL);
        if (sel)
            ui_fill(p->win, 1 + r, 0, p->w, " ", a);
        const char *mark = is_group(nd) ? (nd->expanded ? (u->utf8 ? "\u25be " : "- ") : (u->utf8 ? "\u25b8 " : "+ "))
                                        : "  ";
        int x = 1 + 2 * nd->depth;
        x += ui_put(p->win, 1 + r, x, mark, p->w - x, a);
        x += ui_put(p->win, 1 + r, x, nd->label, p->w - x - 1, a);
        char right[64] = "";
        char cnt[32];
        if (is_group(nd) && nd->count)
            snprintf(right, sizeof right, "%s", ps_fmt_count(nd->count, cnt, sizeof cnt));
        else if (!is_group(nd) && nd->count && p->w >= 44)
            snprintf(right, sizeof right, "%s %10s", nd->shape, ps_fmt_count(nd->count, cnt, sizeof cnt));
        else if (!is_group(nd))
            snprintf(right, sizeof right, "%s", nd->shape);
        int rw = ui_strwidth(right);
        if (rw && x + rw + 2 < p->w)
            ui_put(p->win, 1 + r, p->w - rw - 1, right, rw, sel ? a : ui_attr(&u->theme, UI_LABEL));
    }
    free(rows);
}

static void select_node(ui *u, int i)
{
    ui_tree *t = u->tree;
    if (i < 0 || i >= t->n)
        return;
    t->sel = i;
    if (!is_group(&t->nodes[i])) {
        ps_error err = {0};
        if (ui_heat_open(u, t->nodes[i].addr, &err))
            ui_note(u, "%s", err.msg);
    }
}

static void move_sel(ui *u, int delta)
{
    ui_tree *t = u->tree;
    int *rows = malloc(sizeof(int) * (size_t)(t->n ? t->n : 1));
    if (!rows)
        return;
    int n = rows_of(t, rows);
    int at = 0;
    while (at < n && rows[at] != t->sel)
        at++;
    at += delta;
    if (at < 0)
        at = 0;
    if (at >= n)
        at = n - 1;
    if (n)
        select_node(u, rows[at]);
    free(rows);
}

static void address_done(ui *u, const char *text, void *ctx)
{
    (void)ctx;
    if (!text || !*text)
        return;
    ps_error err = {0};
    if (ui_heat_open(u, text, &err))
        ui_log_add(u, UI_LOG_ERROR, err.msg);
    else
        ui_focus(u, UI_PANE_HEAT);
}

void ui_tree_ask_address(ui *u)
{
    ui_cmd_ask(u, "show address: ", "", 1, address_done, NULL);
}

static int on_key(ui *u, ui_pane *p, ui_key k)
{
    ui_tree *t = u->tree;
    node *nd = t->n ? &t->nodes[t->sel] : NULL;
    switch (ui_key_action(UI_SCOPE_TREE, k)) {
    case UI_ACT_UP: move_sel(u, -1); break;
    case UI_ACT_DOWN: move_sel(u, 1); break;
    case UI_ACT_PAGE_UP: move_sel(u, -(p->h - 2)); break;
    case UI_ACT_PAGE_DOWN: move_sel(u, p->h - 2); break;
    case UI_ACT_HOME: move_sel(u, -t->n); break;
    case UI_ACT_END: move_sel(u, t->n); break;
    case UI_ACT_OPEN:
        if (!nd)
            break;
        if (is_group(nd)) {
            nd->expanded = 1;
            move_sel(u, 1);
        } else {
            select_node(u, t->sel);
            ui_focus(u, UI_PANE_HEAT);
        }
        break;
    case UI_ACT_CLOSE:
        if (!nd)
            break;
        if (is_group(nd) && nd->expanded)
            nd->expanded = 0;
        else if (nd->parent >= 0) {
            t->sel = nd->parent;
            t->nodes[t->sel].expanded = 0;
        }
        break;
    case UI_ACT_TOGGLE:
        if (nd && is_group(nd))
            nd->expanded = !nd->expanded;
        else if (nd)
            select_node(u, t->sel);
        break;
    case UI_ACT_ADDRESS:
        ui_tree_ask_address(u);
        break;
    default:
        return 0;
    }
    return UI_HANDLED | UI_REDRAW;
}

int ui_tree_init(ui *u, ui_pane *p)
{
    ui_tree *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    u->tree = t;
    p->title = "Tensors";
    p->draw = draw;
    p->on_key = on_key;
    return 0;
}

void ui_tree_free(ui *u)
{
    if (!u->tree)
        return;
    free(u->tree->nodes);
    free(u->tree);
    u->tree = NULL;
}
