/* Drawing helpers the panes share: text clipped by display cells (UTF-8
 * tokens and block characters are wider in bytes than on screen), pane
 * title rows, number formats and a braille dot canvas for curves. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ui/ui.h"

/* ---- text ---- */

/* Decodes one UTF-8 character; returns its byte length (1 for an invalid
 * byte, which then stands for itself). */
static int utf8_next(const char *s, wchar_t *wc)
{
    const unsigned char *p = (const unsigned char *)s;
    int n;
    wchar_t c;
    if (p[0] < 0x80) {
        *wc = p[0];
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        n = 2, c = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, c = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4, c = p[0] & 0x07;
    } else {
        *wc = '?';
        return 1;
    }
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *wc = '?';
            return 1;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    *wc = c;
    return n;
}

static int cell_width(wchar_t wc)
{
    if (wc < 0x20 || wc == 0x7f)
        return 0;
    int w = wcwidth(wc);
    return w < 0 ? 1 : w;
}

int ui_strwidth(const char *s)
{
    int w = 0;
    while (*s) {
        wchar_t wc;
        s += utf8_next(s, &wc);
        w += cell_width(wc);
    }
    return w;
}

int ui_put(WINDOW *win, int y, int x, const char *s, int maxw, attr_t a)
{
    if (!win || maxw <= 0 || !s)
        return 0;
    int wy, wx;
    getmaxyx(win, wy, wx);
    if (y < 0 || y >= wy || x >= wx)
        return 0;
    if (x + maxw > wx)
        maxw = wx - x;
    wattr_set(win, a & ~A_COLOR, (short)PAIR_NUMBER(a), NULL);
    wmove(win, y, x);
    int used = 0;
    const char *p = s;
    while (*p) {
        wchar_t wc;
        int n = utf8_next(p, &wc);
        int cw = cell_width(wc);
        if (cw == 0) {        /* control characters: skip */
            p += n;
            continue;
        }
        if (used + cw > maxw)
            break;
        if (wc < 0x80) {
            waddch(win, (chtype)wc);
        } else {
            wchar_t ws[2] = {wc, 0};
            cchar_t cc;
            setcchar(&cc, ws, a & ~A_COLOR, (short)PAIR_NUMBER(a), NULL);
            wadd_wch(win, &cc);
        }
        used += cw;
        p += n;
    }
    wattr_set(win, A_NORMAL, 0, NULL);
    return used;
}

int ui_putf(WINDOW *w, int y, int x, int maxw, attr_t a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ui_put(w, y, x, buf, maxw, a);
}

void ui_fill(WINDOW *w, int y, int x, int n, const char *ch, attr_t a)
{
    for (int i = 0; i < n; i++)
        ui_put(w, y, x + i, ch, 1, a);
}

void ui_title_row(ui *u, ui_pane *p, const char *extra)
{
    int focus = u->focus == (ui_pane_id)(p - u->panes);
    attr_t a = ui_attr(&u->theme, focus ? UI_PANE_TITLE_FOCUS : UI_PANE_TITLE);
    const char *line = u->utf8 ? "\u2500" : "-";
    ui_fill(p->win, 0, 0, p->w, line, a);
    int x = ui_putf(p->win, 0, 1, p->w - 2, a | A_BOLD, " %s%s ", focus && u->utf8 ? "\u25b6 " : (focus ? "> " : ""),
                    p->title);
    if (extra && *extra) {
        int ew = ui_strwidth(extra);
        int ex = p->w - ew - 2;
        if (ex < x + 2)
            ex = x + 2;
        ui_put(p->win, 0, ex, extra, p->w - ex - 1, a);
    }
}

/* ---- numbers ---- */

const char *ui_fmt(double v, char *buf, size_t size)
{
    double a = fabs(v);
    if (v != v)
        snprintf(buf, size, "nan");
    else if (a == 0)
        snprintf(buf, size, "0");
    else if (a >= 1e5 || a < 1e-3)
        snprintf(buf, size, "%.2e", v);
    else if (a >= 100)
        snprintf(buf, size, "%.1f", v);
    else if (a >= 1)
        snprintf(buf, size, "%.3f", v);
    else
        snprintf(buf, size, "%.4f", v);
    return buf;
}

const char *ui_fmt_width(double v, int width, char *buf, size_t size)
{
    static const char *const fmts[] = {"%.4g", "%.3g", "%.2g", "%.1g", "%.0e"};
    for (int i = 0; i < 5; i++) {
        snprintf(buf, size, fmts[i], v);
        if ((int)strlen(buf) <= width)
            return buf;
    }
    return buf;
}

/* ---- the dot canvas ---- */

int ui_canvas_init(ui_canvas *c, int w, int h, int utf8)
{
    memset(c, 0, sizeof *c);
    if (w < 1 || h < 1)
        return -1;
    c->w = w;
    c->h = h;
    c->utf8 = utf8;
    c->dw = utf8 ? 2 * w : w;
    c->dh = utf8 ? 4 * h : h;
    c->cells = calloc((size_t)w * h, 1);
    return c->cells ? 0 : -1;
}

void ui_canvas_free(ui_canvas *c)
{
    free(c->cells);
    c->cells = NULL;
}

void ui_canvas_clear(ui_canvas *c)
{
    if (c->cells)
        memset(c->cells, 0, (size_t)c->w * c->h);
}

void ui_canvas_dot(ui_canvas *c, int x, int y)
{
    /* braille dots: bit for (column, row) inside the 2x4 cell */
    static const unsigned char bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    if (!c->cells || x < 0 || y < 0 || x >= c->dw || y >= c->dh)
        return;
    if (!c->utf8) {
        c->cells[y * c->w + x] = 1;
        return;
    }
    c->cells[(y / 4) * c->w + x / 2] |= bit[y % 4][x % 2];
}

void ui_canvas_line(ui_canvas *c, int x0, int y0, int x1, int y1)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (int guard = 0; guard < 100000; guard++) {
        ui_canvas_dot(c, x0, y0);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

void ui_canvas_draw(const ui_canvas *c, WINDOW *win, int y, int x, attr_t a, const char *ascii_dot)
{
    for (int r = 0; r < c->h; r++)
        for (int col = 0; col < c->w; col++) {
            unsigned char b = c->cells[r * c->w + col];
            if (!b)
                continue;
            if (c->utf8) {
                char s[4];
                unsigned cp = 0x2800u + b;
                s[0] = (char)(0xe0 | (cp >> 12));
                s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                s[2] = (char)(0x80 | (cp & 0x3f));
                s[3] = '\0';
                ui_put(win, y + r, x + col, s, 1, a);
            } else {
                ui_put(win, y + r, x + col, ascii_dot, 1, a);
            }
        }
}
