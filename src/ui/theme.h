/* paramscope — the explorer's colours: a table of semantic elements per
 * scheme (htop's CRT_colorSchemes).  Panes ask for an element's attributes
 * and never use colour numbers.  The heat scale of the heatmap is part of
 * the theme too: a diverging scale centred at zero, in 256 colours, in 8
 * colours with shading glyphs, or in glyphs alone. */
#ifndef PARAMSCOPE_UI_THEME_H
#define PARAMSCOPE_UI_THEME_H

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>

typedef enum ui_elem {
    UI_NORMAL,
    UI_TITLE,                 /* the top bar */
    UI_PANE_TITLE,
    UI_PANE_TITLE_FOCUS,
    UI_BORDER,
    UI_HINT,
    UI_HINT_KEY,
    UI_LABEL,                 /* quiet text: units, captions */
    UI_VALUE,                 /* numbers that matter */
    UI_BAR,
    UI_BAR_UP,                /* more probable than the baseline */
    UI_BAR_DOWN,
    UI_BAR_CUT,               /* outside top-k / top-p: never sampled */
    UI_TOKEN,
    UI_TOKEN_UNKNOWN,
    UI_SELECTION,             /* the selected row of a list */
    UI_CURSOR,                /* the selected weight */
    UI_HEAT_NEG,
    UI_HEAT_ZERO,
    UI_HEAT_POS,
    UI_HIST,
    UI_PLOT_TRAIN,
    UI_PLOT_VAL,
    UI_PLOT_LR,
    UI_MARK,                  /* the current step on a curve */
    UI_PHASE,
    UI_PHASE_NEXT,
    UI_PHASE_ACTIVE,
    UI_LOG,
    UI_LOG_CMD,
    UI_LOG_ERR,
    UI_PROMPT,
    UI_STALE,                 /* shown values are older than the model */
    UI_WARN,
    UI_ELEM_COUNT,
} ui_elem;

typedef enum ui_scheme {
    UI_SCHEME_DEFAULT,        /* colours for a dark or light terminal */
    UI_SCHEME_PROJECTOR,      /* high contrast for a classroom screen */
    UI_SCHEME_MONO,           /* attributes only (also with NO_COLOR) */
    UI_SCHEME_COUNT,
} ui_scheme;

#define UI_HEAT_LEVELS_MAX 8  /* per sign */

typedef struct ui_theme {
    ui_scheme scheme;
    int colors;               /* 256, 8 or 0: what the terminal gives us */
    int utf8;
    attr_t attr[UI_ELEM_COUNT];
    int heat_levels;          /* per sign */
    attr_t heat_neg[UI_HEAT_LEVELS_MAX], heat_pos[UI_HEAT_LEVELS_MAX], heat_zero;
    const char *heat_glyph_neg[UI_HEAT_LEVELS_MAX];
    const char *heat_glyph_pos[UI_HEAT_LEVELS_MAX];
    const char *heat_glyph_zero;
} ui_theme;

/* Chooses the colour depth from the terminal and NO_COLOR (which forces the
 * monochrome scheme whatever is asked) and sets up colour pairs.  Call after
 * initscr() and again to switch schemes. */
void ui_theme_init(ui_theme *t, ui_scheme scheme, int utf8);

static inline attr_t ui_attr(const ui_theme *t, ui_elem e)
{
    return t->attr[e];
}

/* The cell for a value at v in [-1, 1] of the scale (clamped): its glyph
 * and attributes. */
void ui_heat_cell(const ui_theme *t, double v, const char **glyph, attr_t *attr);

const char *ui_scheme_name(ui_scheme s);

#endif
