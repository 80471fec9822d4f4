/* Colours as a table of semantic elements per scheme.  Each element names a
 * colour for 256-colour terminals, one for 8-colour terminals and the
 * attributes that stand in for colour in the monochrome scheme, so that the
 * same screen reads on every terminal (and with NO_COLOR). */
#include "ui/theme.h"

#include <stdlib.h>
#include <string.h>

#define DEF (-1)              /* the terminal's own colour */

typedef struct elem_spec {
    short fg256, bg256;
    short fg8, bg8;
    attr_t color_attr;        /* added to the colour pair */
    attr_t mono;              /* the whole look without colour */
} elem_spec;

/* ---- the schemes ---- */

static const elem_spec default_scheme[UI_ELEM_COUNT] = {
    [UI_NORMAL] = {DEF, DEF, DEF, DEF, 0, 0},
    [UI_TITLE] = {231, 24, COLOR_WHITE, COLOR_BLUE, A_BOLD, A_REVERSE | A_BOLD},
    [UI_PANE_TITLE] = {250, 237, COLOR_WHITE, COLOR_BLACK, 0, A_UNDERLINE},
    [UI_PANE_TITLE_FOCUS] = {231, 31, COLOR_BLACK, COLOR_CYAN, A_BOLD, A_REVERSE | A_BOLD},
    [UI_BORDER] = {240, DEF, COLOR_BLUE, DEF, 0, 0},
    [UI_HINT] = {252, 236, COLOR_WHITE, COLOR_BLACK, 0, 0},
    [UI_HINT_KEY] = {229, 236, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD | A_REVERSE},
    [UI_LABEL] = {245, DEF, COLOR_CYAN, DEF, 0, 0},
    [UI_VALUE] = {DEF, DEF, DEF, DEF, A_BOLD, A_BOLD},
    [UI_BAR] = {39, DEF, COLOR_CYAN, DEF, 0, 0},
    [UI_BAR_UP] = {41, DEF, COLOR_GREEN, DEF, A_BOLD, A_BOLD},
    [UI_BAR_DOWN] = {203, DEF, COLOR_RED, DEF, A_BOLD, A_UNDERLINE},
    [UI_BAR_CUT] = {240, DEF, COLOR_BLUE, DEF, 0, A_DIM},
    [UI_TOKEN] = {DEF, DEF, DEF, DEF, A_BOLD, A_BOLD},
    [UI_TOKEN_UNKNOWN] = {208, DEF, COLOR_YELLOW, DEF, A_UNDERLINE, A_UNDERLINE},
    [UI_SELECTION] = {231, 24, COLOR_WHITE, COLOR_BLUE, A_BOLD, A_REVERSE},
    [UI_CURSOR] = {16, 226, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
    [UI_HEAT_NEG] = {39, DEF, COLOR_BLUE, DEF, A_BOLD, 0},
    [UI_HEAT_ZERO] = {245, DEF, DEF, DEF, 0, 0},
    [UI_HEAT_POS] = {203, DEF, COLOR_RED, DEF, A_BOLD, 0},
    [UI_HIST] = {75, DEF, COLOR_CYAN, DEF, 0, 0},
    [UI_PLOT_TRAIN] = {39, DEF, COLOR_CYAN, DEF, 0, 0},
    [UI_PLOT_VAL] = {214, DEF, COLOR_YELLOW, DEF, A_BOLD, A_BOLD},
    [UI_PLOT_LR] = {141, DEF, COLOR_MAGENTA, DEF, 0, 0},
    [UI_MARK] = {226, DEF, COLOR_YELLOW, DEF, A_BOLD, A_BOLD | A_REVERSE},
    [UI_PHASE] = {246, DEF, DEF, DEF, 0, 0},
    [UI_PHASE_NEXT] = {229, DEF, COLOR_YELLOW, DEF, A_UNDERLINE, A_UNDERLINE},
    [UI_PHASE_ACTIVE] = {16, 214, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
    [UI_LOG] = {DEF, DEF, DEF, DEF, 0, 0},
    [UI_LOG_CMD] = {117, DEF, COLOR_CYAN, DEF, A_BOLD, A_BOLD},
    [UI_LOG_ERR] = {203, DEF, COLOR_RED, DEF, A_BOLD, A_BOLD | A_UNDERLINE},
    [UI_PROMPT] = {229, DEF, COLOR_YELLOW, DEF, A_BOLD, A_BOLD},
    [UI_STALE] = {208, DEF, COLOR_YELLOW, DEF, A_BOLD, A_BOLD},
    [UI_WARN] = {16, 208, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE},
};

/* Bright, saturated and bold on black: what survives a washed-out projector. */
static const elem_spec projector_scheme[UI_ELEM_COUNT] = {
    [UI_NORMAL] = {231, 16, COLOR_WHITE, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_TITLE] = {16, 226, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
    [UI_PANE_TITLE] = {231, 16, COLOR_WHITE, COLOR_BLACK, A_BOLD | A_UNDERLINE, A_UNDERLINE | A_BOLD},
    [UI_PANE_TITLE_FOCUS] = {16, 231, COLOR_BLACK, COLOR_WHITE, A_BOLD, A_REVERSE | A_BOLD},
    [UI_BORDER] = {231, 16, COLOR_WHITE, COLOR_BLACK, 0, 0},
    [UI_HINT] = {231, 16, COLOR_WHITE, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_HINT_KEY] = {16, 226, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
    [UI_LABEL] = {231, 16, COLOR_WHITE, COLOR_BLACK, 0, 0},
    [UI_VALUE] = {231, 16, COLOR_WHITE, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_BAR] = {226, 16, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_BAR_UP] = {46, 16, COLOR_GREEN, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_BAR_DOWN] = {196, 16, COLOR_RED, COLOR_BLACK, A_BOLD, A_BOLD | A_UNDERLINE},
    [UI_BAR_CUT] = {250, 16, COLOR_WHITE, COLOR_BLACK, 0, 0},
    [UI_TOKEN] = {231, 16, COLOR_WHITE, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_TOKEN_UNKNOWN] = {208, 16, COLOR_YELLOW, COLOR_BLACK, A_BOLD | A_UNDERLINE, A_UNDERLINE},
    [UI_SELECTION] = {16, 231, COLOR_BLACK, COLOR_WHITE, A_BOLD, A_REVERSE},
    [UI_CURSOR] = {16, 226, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
    [UI_HEAT_NEG] = {51, 16, COLOR_CYAN, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_HEAT_ZERO] = {231, 16, COLOR_WHITE, COLOR_BLACK, 0, 0},
    [UI_HEAT_POS] = {196, 16, COLOR_RED, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_HIST] = {51, 16, COLOR_CYAN, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_PLOT_TRAIN] = {51, 16, COLOR_CYAN, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_PLOT_VAL] = {226, 16, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_PLOT_LR] = {201, 16, COLOR_MAGENTA, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_MARK] = {226, 16, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD | A_REVERSE},
    [UI_PHASE] = {231, 16, COLOR_WHITE, COLOR_BLACK, 0, 0},
    [UI_PHASE_NEXT] = {226, 16, COLOR_YELLOW, COLOR_BLACK, A_BOLD | A_UNDERLINE, A_UNDERLINE | A_BOLD},
    [UI_PHASE_ACTIVE] = {16, 226, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
    [UI_LOG] = {231, 16, COLOR_WHITE, COLOR_BLACK, 0, 0},
    [UI_LOG_CMD] = {51, 16, COLOR_CYAN, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_LOG_ERR] = {196, 16, COLOR_RED, COLOR_BLACK, A_BOLD, A_BOLD | A_UNDERLINE},
    [UI_PROMPT] = {226, 16, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_STALE] = {208, 16, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD},
    [UI_WARN] = {16, 208, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE},
};

/* ---- the heat scale ---- */

/* Diverging, darkest at zero (most terminals are dark): blues for negative,
 * reds to yellow for positive, from the 6x6x6 cube, weak to strong. */
static const short heat256_neg[6] = {60, 61, 26, 33, 39, 45};
static const short heat256_pos[6] = {95, 131, 160, 202, 214, 227};
static const short heat256_zero = 237;
/* The projector: full saturation from the first step. */
static const short heatproj_neg[6] = {19, 20, 21, 27, 39, 51};
static const short heatproj_pos[6] = {88, 124, 160, 196, 208, 226};

static const char *const shade_utf8[4] = {"\u2591", "\u2592", "\u2593", "\u2588"};
static const char *const shade_ascii[4] = {".", ":", "+", "#"};
/* Without colour the sign needs its own glyphs. */
static const char *const mono_neg[4] = {".", "-", "=", "%"};
static const char *const mono_pos[4] = {"'", "+", "*", "@"};

#define PAIR_ELEM0 1
#define PAIR_HEAT0 (PAIR_ELEM0 + UI_ELEM_COUNT + 1)

static int pair_for(short pair, short fg, short bg, int have_default)
{
    if (!have_default) {
        if (fg == DEF) fg = COLOR_WHITE;
        if (bg == DEF) bg = COLOR_BLACK;
    }
    if (pair >= COLOR_PAIRS)
        return 0;
    init_pair(pair, fg, bg);
    return pair;
}

const char *ui_scheme_name(ui_scheme s)
{
    switch (s) {
    case UI_SCHEME_DEFAULT: return "colour";
    case UI_SCHEME_PROJECTOR: return "projector";
    case UI_SCHEME_MONO: return "monochrome";
    default: return "?";
    }
}

void ui_theme_init(ui_theme *t, ui_scheme scheme, int utf8)
{
    memset(t, 0, sizeof *t);
    const char *no_color = getenv("NO_COLOR");
    int colors = 0;
    if (!(no_color && *no_color) && has_colors()) {
        start_color();
        colors = COLORS >= 256 && COLOR_PAIRS >= PAIR_HEAT0 + 16 ? 256 : (COLORS >= 8 ? 8 : 0);
    }
    if (colors == 0)
        scheme = UI_SCHEME_MONO;
    t->scheme = scheme;
    t->colors = scheme == UI_SCHEME_MONO ? 0 : colors;
    t->utf8 = utf8;
    int have_default = t->colors ? use_default_colors() == OK : 0;

    const elem_spec *spec = scheme == UI_SCHEME_PROJECTOR ? projector_scheme : default_scheme;
    for (int e = 0; e < UI_ELEM_COUNT; e++) {
        const elem_spec *es = &spec[e];
        if (t->colors == 0) {
            t->attr[e] = es->mono;
            continue;
        }
        short fg = t->colors == 256 ? es->fg256 : es->fg8;
        short bg = t->colors == 256 ? es->bg256 : es->bg8;
        int pair = pair_for((short)(PAIR_ELEM0 + e), fg, bg, have_default);
        t->attr[e] = (attr_t)COLOR_PAIR(pair) | es->color_attr;
    }

    /* the heat scale */
    short bg = scheme == UI_SCHEME_PROJECTOR ? 16 : DEF;
    if (t->colors == 256) {
        const short *neg = scheme == UI_SCHEME_PROJECTOR ? heatproj_neg : heat256_neg;
        const short *pos = scheme == UI_SCHEME_PROJECTOR ? heatproj_pos : heat256_pos;
        t->heat_levels = 6;
        for (int i = 0; i < 6; i++) {
            t->heat_neg[i] = (attr_t)COLOR_PAIR(pair_for((short)(PAIR_HEAT0 + i), neg[i], bg, have_default));
            t->heat_pos[i] = (attr_t)COLOR_PAIR(pair_for((short)(PAIR_HEAT0 + 6 + i), pos[i], bg, have_default));
            /* without block characters a reversed space fills the cell */
            t->heat_glyph_neg[i] = t->heat_glyph_pos[i] = utf8 ? "\u2588" : " ";
            if (!utf8) {
                t->heat_neg[i] |= A_REVERSE;
                t->heat_pos[i] |= A_REVERSE;
            }
        }
        t->heat_zero = (attr_t)COLOR_PAIR(pair_for(PAIR_HEAT0 + 12, heat256_zero, bg, have_default));
        t->heat_glyph_zero = utf8 ? "\u2588" : " ";
        if (!utf8)
            t->heat_zero |= A_REVERSE;
    } else if (t->colors == 8) {
        t->heat_levels = 4;
        attr_t neg = (attr_t)COLOR_PAIR(pair_for(PAIR_HEAT0, COLOR_BLUE, scheme == UI_SCHEME_PROJECTOR ? COLOR_BLACK : DEF, have_default));
        attr_t pos = (attr_t)COLOR_PAIR(pair_for(PAIR_HEAT0 + 1, COLOR_RED, scheme == UI_SCHEME_PROJECTOR ? COLOR_BLACK : DEF, have_default));
        for (int i = 0; i < 4; i++) {
            t->heat_neg[i] = neg | (i >= 2 ? A_BOLD : 0);
            t->heat_pos[i] = pos | (i >= 2 ? A_BOLD : 0);
            t->heat_glyph_neg[i] = t->heat_glyph_pos[i] = utf8 ? shade_utf8[i] : shade_ascii[i];
        }
        t->heat_zero = 0;
        t->heat_glyph_zero = " ";
    } else {
        t->heat_levels = 4;
        for (int i = 0; i < 4; i++) {
            t->heat_neg[i] = t->heat_pos[i] = i == 3 ? A_BOLD : 0;
            t->heat_glyph_neg[i] = mono_neg[i];
            t->heat_glyph_pos[i] = mono_pos[i];
        }
        t->heat_zero = 0;
        t->heat_glyph_zero = " ";
    }
}

void ui_heat_cell(const ui_theme *t, double v, const char **glyph, attr_t *attr)
{
    int k = t->heat_levels;
    double a = v < 0 ? -v : v;
    if (!(a == a)) {              /* NaN: the strongest, so it is seen */
        *glyph = "!";
        *attr = t->attr[UI_WARN];
        return;
    }
    if (a > 1)
        a = 1;
    int level = (int)(a * k + 0.5);   /* 0 .. k */
    if (level == 0) {
        *glyph = t->heat_glyph_zero;
        *attr = t->heat_zero;
        return;
    }
    if (v < 0) {
        *glyph = t->heat_glyph_neg[level - 1];
        *attr = t->heat_neg[level - 1];
    } else {
        *glyph = t->heat_glyph_pos[level - 1];
        *attr = t->heat_pos[level - 1];
    }
}
