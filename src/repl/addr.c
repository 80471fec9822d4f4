/* Tensor addresses: parsing into views, canonical names, suggestions and
 * completion.  The grammar is in addr.h and docs/addresses.md.
 *
 * Parsing runs in three steps: a scan of the whole address for unbalanced
 * brackets and quotes (so that those errors point at the culprit, whatever
 * else is wrong), the name, then the bracketed indices one pair at a time.
 * Every index is resolved against the window built so far, so chained
 * indices and views compose without special cases.  Numbers are kept as
 * typed for messages: an error quotes what the person wrote. */
#include "repl/addr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_ITEMS 2                 /* a tensor has at most two dimensions */
#define NUM_LIMIT 1000000000000000LL /* numbers saturate here: beyond any
                                        tensor, and resolving cannot overflow */
#define TOKEN_MAX 256               /* bytes of a quoted token */
#define DIST_MAX 128                /* longest name we compute distances for */
#define SUGGEST_MAX 3

/* ---- characters and small helpers ---- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Appends a formatted piece to buf (size bytes), tracking the full length as
 * snprintf does, so that callers can detect truncation. */
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = *len < size ? size - *len : 0;
    int n = vsnprintf(room ? buf + *len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

/* A token between quotes.  With '"' it is written the way the parser reads
 * it back: '"' and '\\' escaped, control bytes as \\n, \\r, \\t or \\xNN and
 * bytes that are not valid UTF-8 as \\xNN, so every token can be typed back;
 * with '\'' it is for a message, where only control bytes are escaped, so
 * that the message stays one line. */
static void put_quoted(char *buf, size_t size, size_t *len, const char *s, char quote)
{
    put(buf, size, len, "%c", quote);
    size_t n = strlen(s);
    int flags = quote == '"' ? PS_ESCAPE_QUOTED | PS_ESCAPE_UTF8 : 0;
    size_t room = *len < size ? size - *len : 0;
    *len += ps_escape(s, n, flags, room ? buf + *len : NULL, room);
    put(buf, size, len, "%c", quote);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Optimal-string-alignment distance (Levenshtein plus swaps of neighbours, so
 * that "weigth" is one step from "weight"). */
static int edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    int rows[3][DIST_MAX + 1];
    if (la > DIST_MAX || lb > DIST_MAX)
        return 1 << 20;
    int *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= lb; j++)
        p[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int d = p[j - 1] + cost;
            if (p[j] + 1 < d)
                d = p[j] + 1;
            if (c[j - 1] + 1 < d)
                d = c[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1;
            c[j] = d;
        }
        int *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[lb];
}

/* How far a suggestion may be from what was typed: a quarter of its length,
 * at least two edits, but one for short words, where two edits reach almost
 * anything, and none for a single character. */
static int close_enough(size_t len)
{
    if (len <= 1)
        return 0;
    if (len <= 4)
        return 1;
    return len / 4 > 2 ? (int)(len / 4) : 2;
}

/* ---- the names an address can start with ---- */

enum { NAME_TENSOR, NAME_ALIAS, NAME_VIEW };

static const char *const VIEW_SUFFIX[] = {
    "attn.q", "attn.k", "attn.v", "attn.head", "mlp.neuron",
};
static const addr_base VIEW_BASE[] = {
    ADDR_BASE_Q, ADDR_BASE_K, ADDR_BASE_V, ADDR_BASE_HEAD, ADDR_BASE_NEURON,
};
#define N_VIEWS (int)(sizeof VIEW_SUFFIX / sizeof VIEW_SUFFIX[0])

/* Calls fn for every parameter name, alias and view name, in model order
 * (a layer's views after its parameters). */
static void each_name(const ps_model *m,
                      void (*fn)(const char *name, int what, void *ctx), void *ctx)
{
    char buf[PS_NAME_MAX + 16];
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = &m->params[i];
        fn(p->name, NAME_TENSOR, ctx);
        if (strcmp(p->name, "wte.weight") == 0)
            fn("wte", NAME_ALIAS, ctx);
        else if (strcmp(p->name, "wpe.weight") == 0)
            fn("wpe", NAME_ALIAS, ctx);
        if (p->layer >= 0 && (i + 1 == m->n_params || m->params[i + 1].layer != p->layer)) {
            for (int k = 0; k < N_VIEWS; k++) {
                snprintf(buf, sizeof buf, "h.%d.%s", p->layer, VIEW_SUFFIX[k]);
                fn(buf, NAME_VIEW, ctx);
            }
        }
    }
}

/* What to offer for a name that is not there: the names that continue it
 * after a dot ("h.0.attn" -> "h.0.attn.c_attn.weight", ...) when there are
 * any, since it is then a group, not a typo; else the nearest names by edit
 * distance, ties kept in model order. */
typedef struct suggest {
    const char *typed;
    size_t len;
    int limit, best, n;
    char hit[SUGGEST_MAX][PS_NAME_MAX + 16];
    int n_below;
    char below[SUGGEST_MAX][PS_NAME_MAX + 16];
} suggest;

static void suggest_add(suggest *s, const char *name)
{
    size_t ln = strlen(name);
    int d = edit_distance(s->typed, s->len, name, ln);
    if (d <= s->limit) {
        if (d < s->best) {
            s->best = d;
            s->n = 0;
        }
        if (d == s->best && s->n < SUGGEST_MAX)
            snprintf(s->hit[s->n++], sizeof s->hit[0], "%s", name);
    }
    if (ln > s->len + 1 && strncmp(name, s->typed, s->len) == 0 && name[s->len] == '.') {
        if (s->n_below < SUGGEST_MAX)
            snprintf(s->below[s->n_below], sizeof s->below[0], "%s", name);
        s->n_below++;
    }
}

static void suggest_name(const char *name, int what, void *ctx)
{
    (void)what;
    suggest_add(ctx, name);
}

static void suggest_init(suggest *s, const char *typed, size_t len)
{
    memset(s, 0, sizeof *s);
    s->typed = typed;
    s->len = len;
    s->limit = close_enough(len);
    s->best = s->limit + 1;
}

/* "; did you mean 'a', 'b' or 'c'?" (empty when nothing is close). */
static void put_suggestions(char *buf, size_t size, size_t *len, const suggest *s)
{
    if (s->n == 0)
        return;
    put(buf, size, len, "; did you mean ");
    for (int i = 0; i < s->n; i++) {
        put(buf, size, len, "%s", i == 0 ? "" : i + 1 == s->n ? " or " : ", ");
        put_quoted(buf, size, len, s->hit[i], '\'');
    }
    put(buf, size, len, "?");
}

/* ---- the parser ---- */

typedef enum item_type { ITEM_INT, ITEM_SLICE, ITEM_STRING } item_type;

/* One comma-separated part of an index. */
typedef struct item {
    item_type type;
    long long a, b;         /* INT: a; SLICE: the ends, where has_a / has_b */
    int has_a, has_b;
    const char *text;       /* as typed, without surrounding blanks */
    int len;
} item;

typedef struct parser {
    ps_model *m;
    const ps_tokenizer *tok;
    const char *text;       /* the address as given, for columns */
    const char *start, *end; /* the address without surrounding blanks */
    const char *s;          /* cursor */
    ps_error *err;
    addr_view *v;
    int n_index;            /* bracket pairs read so far */
    char str[TOKEN_MAX];    /* the quoted token, unescaped */
} parser;

#define ADDR_ARG(P) (int)((P)->end - (P)->start), (P)->start

static int column(const parser *P, const char *p)
{
    return (int)(p - P->text) + 1;
}

static void skip_blanks(parser *P)
{
    while (P->s < P->end && is_blank(*P->s))
        P->s++;
}

/* Brackets and quotes must pair up before anything else is looked at. */
static int check_brackets(parser *P)
{
    const char *open = NULL, *quote = NULL;
    for (const char *p = P->start; p < P->end; p++) {
        if (quote) {
            if (*p == '\\' && p + 1 < P->end)
                p++;
            else if (*p == '"')
                quote = NULL;
            continue;
        }
        if (*p == '"') {
            quote = p;
        } else if (*p == '[') {
            if (open)
                return ps_error_set(P->err, PS_ERR_INVALID,
                                    "unexpected '[' at column %d of '%.*s': brackets do not "
                                    "nest; chain them instead, as in h.0.attn.q[3][0:4,:]",
                                    column(P, p), ADDR_ARG(P));
            open = p;
        } else if (*p == ']') {
            if (!open)
                return ps_error_set(P->err, PS_ERR_INVALID,
                                    "unbalanced brackets in '%.*s': the ']' at column %d "
                                    "has no matching '['", ADDR_ARG(P), column(P, p));
            open = NULL;
        }
    }
    if (quote)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "unterminated string in '%.*s': the '\"' at column %d is "
                            "never closed", ADDR_ARG(P), column(P, quote));
    if (open)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "unbalanced brackets in '%.*s': the '[' at column %d is "
                            "never closed", ADDR_ARG(P), column(P, open));
    return 0;
}

/* A whole number at *pp (optional sign, digits), saturated at NUM_LIMIT.
 * Returns 0 when no number starts there. */
static int read_number(const char **pp, const char *end, long long *out)
{
    const char *p = *pp;
    int neg = 0;
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    if (p >= end || !is_digit(*p))
        return 0;
    long long v = 0;
    for (; p < end && is_digit(*p); p++)
        if (v < NUM_LIMIT)
            v = v * 10 + (*p - '0');
    if (v > NUM_LIMIT)
        v = NUM_LIMIT;
    *out = neg ? -v : v;
    *pp = p;
    return 1;
}

/* The item starting at `from` is not an index: quote it up to its ',' or ']'. */
static int bad_item(parser *P, const char *from)
{
    const char *q = from;
    while (q < P->end && *q != ',' && *q != ']')
        q++;
    while (q > from && is_blank(q[-1]))
        q--;
    if (q == from)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "empty index at column %d of '%.*s': expected a whole "
                            "number, a:b or :", column(P, from), ADDR_ARG(P));
    return ps_error_set(P->err, PS_ERR_INVALID,
                        "'%.*s' is not an index (column %d of '%.*s'): expected a whole "
                        "number, a:b or :", (int)(q - from), from, column(P, from),
                        ADDR_ARG(P));
}

/* " at column C of 'TEXT'" for a place in the text being parsed, or "". */
static void place(char *buf, size_t size, const char *base, int shown_len, const char *shown, const char *at)
{
    if (base)
        snprintf(buf, size, " at column %d of '%.*s'", (int)(at - base) + 1, shown_len, shown);
    else
        buf[0] = '\0';
}

/* addr_unquote, with the place of a failure in the message: its column
 * counted from base, and the text shown. */
static int addr_unquote_in(const char *s, const char *end, char *out, size_t cap, const char **stop,
                           const char *base, int shown_len, const char *shown, ps_error *err)
{
    size_t n = 0;
    char where[600];
    const char *p = s + 1;                   /* past the opening quote */
    while (p < end && *p != '"') {
        const char *at = p;
        char c = *p++;
        if (c == '\\' && p < end) {
            char e = *p++;
            int h1, h2;
            switch (e) {
            case '"': case '\\': c = e; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'x':
                if (end - p < 2 || (h1 = hex_digit(p[0])) < 0 || (h2 = hex_digit(p[1])) < 0 || (h1 == 0 && h2 == 0)) {
                    *stop = at;
                    place(where, sizeof where, base, shown_len, shown, at);
                    return ps_error_set(err, PS_ERR_INVALID, "'\\x'%s needs two hex digits, not 00 (a byte: \\x1b)",
                                        where);
                }
                c = (char)(h1 * 16 + h2);
                p += 2;
                break;
            default:
                *stop = at;
                place(where, sizeof where, base, shown_len, shown, at);
                return ps_error_set(err, PS_ERR_INVALID, "unknown escape '\\%c'%s: a quoted token knows \\\", "
                                    "\\\\, \\n, \\r, \\t and \\xNN", e, where);
            }
        }
        if (n + 1 >= cap) {
            *stop = s;
            place(where, sizeof where, base, shown_len, shown, s);
            return ps_error_set(err, PS_ERR_INVALID, "quoted token%s is longer than %zu bytes", where, cap - 1);
        }
        out[n++] = c;
    }
    out[n] = '\0';
    *stop = p;
    if (p >= end)
        return ps_error_set(err, PS_ERR_INVALID, "the quote is not closed");
    return PS_OK;
}

int addr_unquote(const char *s, const char *end, char *out, size_t cap, const char **stop, ps_error *err)
{
    return addr_unquote_in(s, end, out, cap, stop, NULL, 0, NULL, err);
}

static int parse_string(parser *P, item *it)
{
    const char *stop;
    int rc = addr_unquote_in(P->s, P->end, P->str, sizeof P->str, &stop, P->text, ADDR_ARG(P), P->err);
    if (rc)
        return rc;
    P->s = stop + 1;                         /* past the closing quote */
    it->type = ITEM_STRING;
    return 0;
}

/* One item, up to (not past) its ',' or ']'. */
static int parse_item(parser *P, item *it)
{
    memset(it, 0, sizeof *it);
    skip_blanks(P);
    const char *from = P->s;
    it->text = from;
    if (P->s < P->end && *P->s == '"') {
        int rc = parse_string(P, it);
        if (rc)
            return rc;
    } else {
        if (read_number(&P->s, P->end, &it->a))
            it->has_a = 1;
        skip_blanks(P);
        if (P->s < P->end && *P->s == ':') {
            P->s++;
            skip_blanks(P);
            if (read_number(&P->s, P->end, &it->b))
                it->has_b = 1;
            it->type = ITEM_SLICE;
        } else if (it->has_a) {
            it->type = ITEM_INT;
        } else {
            return bad_item(P, from);
        }
    }
    skip_blanks(P);
    if (P->s >= P->end || (*P->s != ',' && *P->s != ']'))
        return bad_item(P, from);
    const char *q = P->s;
    while (q > from && is_blank(q[-1]))
        q--;
    it->len = (int)(q - from);
    return 0;
}

/* A bracket pair at the cursor into items[MAX_ITEMS]. */
static int parse_index(parser *P, item *items, int *n)
{
    const char *open = P->s;
    *n = 0;
    P->s++;
    for (;;) {
        item it;
        int rc = parse_item(P, &it);
        if (rc)
            return rc;
        if (*n == MAX_ITEMS)
            return ps_error_set(P->err, PS_ERR_INVALID,
                                "too many indices in the brackets at column %d of '%.*s': "
                                "a tensor has at most 2 dimensions", column(P, open),
                                ADDR_ARG(P));
        items[(*n)++] = it;
        if (*P->s++ == ']')
            return 0;
    }
}

/* ---- resolving numbers against sizes ---- */

/* Resolves an INT or SLICE item against n positions, python-like.  Nouns and
 * owner only shape the messages ("row 80 is out of range: X has rows 0..63").
 * *single tells an INT (which removes its dimension) from a slice. */
static int resolve(parser *P, const item *it, long long n, const char *one,
                   const char *many, const char *owner, long long *start,
                   long long *count, int *single)
{
    if (it->type == ITEM_INT) {
        long long i = it->a < 0 ? it->a + n : it->a;
        if (i < 0 || i >= n)
            return ps_error_set(P->err, PS_ERR_RANGE,
                                "%s %.*s is out of range: %s has %s 0..%lld", one,
                                it->len, it->text, owner, many, n - 1);
        *start = i;
        *count = 1;
        *single = 1;
        return 0;
    }
    long long a = it->has_a ? it->a : 0, b = it->has_b ? it->b : n;
    if (a < 0)
        a += n;
    if (b < 0)
        b += n;
    if (a < 0 || a > n || b < 0 || b > n)
        return ps_error_set(P->err, PS_ERR_RANGE,
                            "%s %.*s are out of range: %s has %s 0..%lld", many,
                            it->len, it->text, owner, many, n - 1);
    if (a > b)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "range %.*s is reversed: write %lld:%lld for %s %lld..%lld of %s",
                            it->len, it->text, b, a, many, b, a - 1, owner);
    if (a == b)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "range %.*s of the %s of %s is empty: a:b covers a..b-1",
                            it->len, it->text, many, owner);
    *start = a;
    *count = b - a;
    *single = 0;
    return 0;
}

/* ---- building views ---- */

static ps_param *layer_param(ps_model *m, int layer, const char *suffix)
{
    char name[PS_NAME_MAX];
    snprintf(name, sizeof name, "h.%d.%s", layer, suffix);
    return ps_model_find(m, name);
}

static void set_region(addr_region *r, ps_param *p, size_t row0, size_t rows,
                       size_t col0, size_t cols)
{
    r->param = p;
    r->row0 = row0;
    r->rows = rows;
    r->col0 = col0;
    r->cols = cols;
}

/* A single-region view whose window is also its base. */
static void set_window(addr_view *v, ps_param *p, size_t row0, size_t rows,
                       size_t col0, size_t cols, int live_rows, int live_cols)
{
    v->n_regions = 1;
    set_region(&v->regions[0], p, row0, rows, col0, cols);
    v->base_row0 = row0;
    v->base_rows = rows;
    v->base_col0 = col0;
    v->base_cols = cols;
    v->base_live[0] = v->live[0] = (unsigned char)live_rows;
    v->base_live[1] = v->live[1] = (unsigned char)live_cols;
    v->ndim = live_rows + live_cols;
}

/* Fills the regions of a head or neuron view for first..first+count-1. */
static void build_view(parser *P, int first, int count)
{
    addr_view *v = P->v;
    ps_model *m = P->m;
    int L = v->layer;
    size_t C = (size_t)m->cfg.n_embd, hd = C / (size_t)m->cfg.n_head;
    size_t f = (size_t)first, c = (size_t)count;
    v->first = first;
    v->count = count;
    switch (v->base) {
    case ADDR_BASE_Q:
    case ADDR_BASE_K:
    case ADDR_BASE_V: {
        size_t off = (size_t)(v->base - ADDR_BASE_Q) * C;
        set_window(v, layer_param(m, L, "attn.c_attn.weight"), 0, C, off + f * hd,
                   c * hd, 1, 1);
        break;
    }
    case ADDR_BASE_HEAD: {
        ps_param *w = layer_param(m, L, "attn.c_attn.weight");
        ps_param *b = layer_param(m, L, "attn.c_attn.bias");
        ps_param *proj = layer_param(m, L, "attn.c_proj.weight");
        for (size_t j = 0; j < 3; j++) {
            set_region(&v->regions[j], w, 0, C, j * C + f * hd, c * hd);
            set_region(&v->regions[3 + j], b, j * C + f * hd, c * hd, 0, 1);
        }
        set_region(&v->regions[6], proj, f * hd, c * hd, 0, C);
        v->n_regions = 7;
        v->ndim = -1;
        break;
    }
    case ADDR_BASE_NEURON:
        set_region(&v->regions[0], layer_param(m, L, "mlp.c_fc.weight"), 0, C, f, c);
        set_region(&v->regions[1], layer_param(m, L, "mlp.c_fc.bias"), f, c, 0, 1);
        set_region(&v->regions[2], layer_param(m, L, "mlp.c_proj.weight"), f, c, 0, C);
        v->n_regions = 3;
        v->ndim = -1;
        break;
    case ADDR_BASE_TOKEN:
    case ADDR_BASE_POSITION:
        set_window(v, ps_model_find(m, v->base == ADDR_BASE_TOKEN ? "wte.weight" : "wpe.weight"),
                   f, 1, 0, C, 0, 1);
        break;
    case ADDR_BASE_TENSOR:
        break;
    }
}

static int is_selector_base(addr_base b)
{
    return b >= ADDR_BASE_Q && b <= ADDR_BASE_NEURON;
}

/* "h.L" at the start of name: the layer's digits (canonical spelling) and
 * where they end; 0 when name does not start that way. */
static int layer_prefix(const char *name, size_t len, long long *layer, size_t *after)
{
    if (len < 3 || name[0] != 'h' || name[1] != '.' || !is_digit(name[2]))
        return 0;
    size_t i = 2;
    long long L = 0;
    for (; i < len && is_digit(name[i]); i++)
        if (L < NUM_LIMIT)
            L = L * 10 + (name[i] - '0');
    if (i < len && name[i] != '.')
        return 0;
    *layer = L;
    *after = i;
    return 1;
}

/* Sets the base of the view from the name, or explains why there is none. */
static int resolve_name(parser *P, const char *name, size_t len)
{
    addr_view *v = P->v;
    ps_model *m = P->m;
    char buf[PS_NAME_MAX];
    long long L;
    size_t after;

    v->layer = -1;
    if (len < sizeof buf) {
        memcpy(buf, name, len);
        buf[len] = '\0';
        ps_param *p = ps_model_find(m, buf);
        if (!p && strcmp(buf, "wte") == 0)
            p = ps_model_find(m, "wte.weight");
        if (!p && strcmp(buf, "wpe") == 0)
            p = ps_model_find(m, "wpe.weight");
        if (p) {
            v->base = ADDR_BASE_TENSOR;
            v->layer = p->layer;
            set_window(v, p, 0, (size_t)p->shape[0], 0, (size_t)p->shape[1], 1,
                       p->ndim == 2);
            return 0;
        }
    }
    if (layer_prefix(name, len, &L, &after)) {
        if (L >= m->cfg.n_layer)
            return ps_error_set(P->err, PS_ERR_RANGE, "layer %.*s: the model has layers 0..%d",
                                (int)(after - 2), name + 2, m->cfg.n_layer - 1);
        char digits[24];
        snprintf(digits, sizeof digits, "%lld", L);
        if (after < len && strlen(digits) == after - 2) {
            for (int k = 0; k < N_VIEWS; k++) {
                if (strlen(VIEW_SUFFIX[k]) == len - after - 1 &&
                    memcmp(name + after + 1, VIEW_SUFFIX[k], len - after - 1) == 0) {
                    v->base = VIEW_BASE[k];
                    v->layer = (int)L;
                    return 0;
                }
            }
        }
    }

    /* Unknown: call it a view if it sits where views live (h.L.attn.X,
     * h.L.mlp.X), so that the message speaks of what was meant. */
    const char *what = "tensor";
    if (layer_prefix(name, len, &L, &after) && after < len) {
        const char *rest = name + after + 1;
        size_t rl = len - after - 1;
        size_t group = rl >= 5 && memcmp(rest, "attn.", 5) == 0 ? 5
                     : rl >= 4 && memcmp(rest, "mlp.", 4) == 0 ? 4 : 0;
        if (group && rl > group && !memchr(rest + group, '.', rl - group))
            what = "view";
    }
    suggest s;
    suggest_init(&s, name, len);
    each_name(m, suggest_name, &s);
    if (s.n_below > 0)
        what = "tensor";        /* a group of names (h.0.attn.c_attn), not a view */
    char msg[PS_ERROR_MSG_MAX];
    size_t ml = 0;
    put(msg, sizeof msg, &ml, "no %s '%.*s'", what, (int)len, name);
    if (s.n_below == 0) {
        put_suggestions(msg, sizeof msg, &ml, &s);
    } else {
        put(msg, sizeof msg, &ml, "; names below it: ");
        int shown = s.n_below < SUGGEST_MAX ? s.n_below : SUGGEST_MAX;
        for (int i = 0; i < shown; i++)
            put(msg, sizeof msg, &ml, "%s'%s'", i ? ", " : "", s.below[i]);
        if (s.n_below > shown)
            put(msg, sizeof msg, &ml, " and %d more", s.n_below - shown);
    }
    return ps_error_set(P->err, PS_ERR_NOT_FOUND, "%s", msg);
}

/* The first index after q/k/v/head/neuron: which heads or neurons. */
static int apply_selector(parser *P, const item *items, int n)
{
    addr_view *v = P->v;
    int neuron = v->base == ADDR_BASE_NEURON;
    const char *one = neuron ? "neuron" : "head", *many = neuron ? "neurons" : "heads";
    long long total = neuron ? 4LL * P->m->cfg.n_embd : P->m->cfg.n_head;
    char owner[32];
    snprintf(owner, sizeof owner, "h.%d.%s", v->layer, neuron ? "mlp" : "attn");
    const char *view = VIEW_SUFFIX[v->base - ADDR_BASE_Q];
    if (n != 1 || items[0].type == ITEM_STRING)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "'%.*s': the first index of h.%d.%s picks %s: one number or a "
                            "range, as in [3] or [0:2]%s", ADDR_ARG(P), v->layer, view, many,
                            v->base <= ADDR_BASE_V ? "; all heads then an index: [:][0:4,:]"
                                                   : "");
    long long start = 0, count = 0;
    int single = 0;
    int rc = resolve(P, &items[0], total, one, many, owner, &start, &count, &single);
    if (rc)
        return rc;
    build_view(P, (int)start, (int)count);
    return 0;
}

/* wte["token"]: the row of a token looked up through the tokenizer. */
static int apply_token(parser *P, int n)
{
    if (n != 1)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "'%.*s': a quoted token stands alone in its brackets; index "
                            "its row with another pair, as in wte[\"sky\"][0:4]", ADDR_ARG(P));
    if (!P->tok)
        return ps_error_set(P->err, PS_ERR_STATE,
                            "'%.*s': there is no tokenizer to look the token up; use its "
                            "id, as in wte[5]", ADDR_ARG(P));
    int id = ps_tokenizer_find(P->tok, P->str);
    if (id < 0) {
        suggest s;
        size_t len = strlen(P->str);
        suggest_init(&s, P->str, len);
        int V = ps_tokenizer_vocab_size(P->tok);
        for (int i = 0; i < V; i++) {
            const char *t = ps_tokenizer_token(P->tok, i);
            if (t)
                suggest_add(&s, t);
        }
        char msg[PS_ERROR_MSG_MAX];
        size_t ml = 0;
        put_quoted(msg, sizeof msg, &ml, P->str, '\'');
        put(msg, sizeof msg, &ml, " is not in the vocabulary");
        put_suggestions(msg, sizeof msg, &ml, &s);
        return ps_error_set(P->err, PS_ERR_NOT_FOUND, "%s", msg);
    }
    if (id >= P->m->cfg.vocab_size)
        return ps_error_set(P->err, PS_ERR_RANGE,
                            "token '%s' has id %d, but wte.weight has rows 0..%d",
                            P->str, id, P->m->cfg.vocab_size - 1);
    P->v->base = ADDR_BASE_TOKEN;
    build_view(P, id, 1);
    return 0;
}

/* Narrows a single-region window, numpy-like: each item takes the next
 * dimension left; a number removes it, a range keeps it. */
static int apply_index(parser *P, const item *items, int n)
{
    addr_view *v = P->v;
    char cur[ADDR_NAME_MAX];
    addr_view_render(v, P->tok, cur, sizeof cur);
    if (v->ndim < 0)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "%s spans %d tensors and cannot be indexed further; index one "
                            "of them, e.g. %s", cur, v->n_regions, v->regions[0].param->name);
    if (v->ndim == 0)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "%s is a single number and cannot be indexed further", cur);
    if (n > v->ndim)
        return ps_error_set(P->err, PS_ERR_INVALID,
                            "too many indices: %s has %d dimension%s, got %d", cur,
                            v->ndim, v->ndim == 1 ? "" : "s", n);
    int axes[2], n_axes = 0;
    for (int a = 0; a < 2; a++)
        if (v->live[a])
            axes[n_axes++] = a;
    int two = v->ndim == 2;
    addr_region *r = &v->regions[0];
    for (int k = 0; k < n; k++) {
        if (items[k].type == ITEM_STRING)
            return ps_error_set(P->err, PS_ERR_INVALID,
                                "'%.*s': a quoted token can only index wte, as in wte[\"sky\"]",
                                ADDR_ARG(P));
        int a = axes[k];
        const char *one = !two ? "index" : a == 0 ? "row" : "column";
        const char *many = !two ? "indices" : a == 0 ? "rows" : "columns";
        long long start = 0, count = 0;
        int single = 0;
        int rc = resolve(P, &items[k], (long long)(a == 0 ? r->rows : r->cols), one, many,
                         cur, &start, &count, &single);
        if (rc)
            return rc;
        if (a == 0) {
            r->row0 += (size_t)start;
            r->rows = (size_t)count;
        } else {
            r->col0 += (size_t)start;
            r->cols = (size_t)count;
        }
        if (single)
            v->live[a] = 0;
    }
    v->ndim = v->live[0] + v->live[1];
    return 0;
}

/* Whether the index moved the window away from its base. */
static int is_narrowed(const addr_view *v)
{
    const addr_region *r = &v->regions[0];
    return v->n_regions == 1 &&
           (v->live[0] != v->base_live[0] || v->live[1] != v->base_live[1] ||
            r->row0 != v->base_row0 || r->rows != v->base_rows ||
            r->col0 != v->base_col0 || r->cols != v->base_cols);
}

/* A whole row of wte or wpe is the view of that token or position, however
 * it was spelt; the rule runs after every index, so that wte[2][3] and
 * wte["sky"][3] are the same address with the same name. */
static void rebase_embedding_row(parser *P)
{
    addr_view *v = P->v;
    addr_region *r = &v->regions[0];
    if (v->base != ADDR_BASE_TENSOR || !v->base_live[0] || !v->base_live[1] ||
        v->live[0] || !v->live[1] || r->cols != v->base_cols)
        return;
    if (r->param == ps_model_find(P->m, "wte.weight"))
        v->base = ADDR_BASE_TOKEN;
    else if (r->param == ps_model_find(P->m, "wpe.weight"))
        v->base = ADDR_BASE_POSITION;
    else
        return;
    build_view(P, (int)r->row0, 1);
}

static void finish(parser *P)
{
    addr_view *v = P->v;
    if (v->n_regions > 1 || !is_narrowed(v))
        v->kind = v->base == ADDR_BASE_TENSOR ? ADDR_KIND_TENSOR : ADDR_KIND_VIEW;
    else
        v->kind = v->ndim == 0 ? ADDR_KIND_ELEMENT : ADDR_KIND_SLICE;
    addr_view_render(v, P->tok, v->name, sizeof v->name);
}

int addr_parse(ps_model *m, const ps_tokenizer *tok, const char *text,
               addr_view *out, ps_error *err)
{
    if (!m || !text || !out)
        return ps_error_set(err, PS_ERR_INVALID, "address: missing model, text or view");
    memset(out, 0, sizeof *out);
    parser P = { .m = m, .tok = tok, .text = text, .err = err, .v = out };
    P.start = text;
    P.end = text + strlen(text);
    while (P.start < P.end && is_blank(*P.start))
        P.start++;
    while (P.end > P.start && is_blank(P.end[-1]))
        P.end--;
    P.s = P.start;
    if (P.start == P.end)
        return ps_error_set(err, PS_ERR_INVALID,
                            "empty address: expected a tensor name, as in wte or h.0.attn.q[0]");
    int rc = check_brackets(&P);
    if (rc)
        return rc;

    const char *name = P.s;
    while (P.s < P.end && !is_blank(*P.s) && *P.s != '[' && *P.s != ']' && *P.s != '"' &&
           *P.s != ',')
        P.s++;
    if (P.s == name)
        return ps_error_set(err, PS_ERR_INVALID,
                            "'%.*s' does not start with a tensor name, as in wte or "
                            "h.0.attn.q[0]", ADDR_ARG(&P));
    rc = resolve_name(&P, name, (size_t)(P.s - name));
    if (rc)
        return rc;

    while (P.s < P.end) {
        if (*P.s != '[') {
            const char *done = P.s;
            skip_blanks(&P);
            return ps_error_set(err, PS_ERR_INVALID, "unexpected '%.*s' after '%.*s'",
                                (int)(P.end - P.s), P.s, (int)(done - P.start), P.start);
        }
        item items[MAX_ITEMS];
        int n;
        rc = parse_index(&P, items, &n);
        if (rc)
            return rc;
        int first = P.n_index++ == 0;
        if (first && is_selector_base(out->base))
            rc = apply_selector(&P, items, n);
        else if (first && items[0].type == ITEM_STRING && out->base == ADDR_BASE_TENSOR &&
                 out->regions[0].param == ps_model_find(m, "wte.weight"))
            rc = apply_token(&P, n);
        else if ((rc = apply_index(&P, items, n)) == 0)
            rebase_embedding_row(&P);
        if (rc)
            return rc;
    }
    if (P.n_index == 0 && is_selector_base(out->base)) {
        if (out->base == ADDR_BASE_HEAD || out->base == ADDR_BASE_NEURON) {
            int neuron = out->base == ADDR_BASE_NEURON;
            return ps_error_set(err, PS_ERR_INVALID,
                                "'%.*s' needs an index: which %s, 0..%d (or a range a:b)",
                                ADDR_ARG(&P), neuron ? "neuron" : "head",
                                neuron ? 4 * m->cfg.n_embd - 1 : m->cfg.n_head - 1);
        }
        build_view(&P, 0, m->cfg.n_head);    /* q, k, v alone: all heads */
    }
    finish(&P);
    return 0;
}

/* ---- names ---- */

int addr_view_render(const addr_view *v, const ps_tokenizer *tok, char *buf, size_t size)
{
    size_t len = 0;
    const addr_region *r = &v->regions[0];
    if (size)
        buf[0] = '\0';
    if (v->n_regions < 1)
        return 0;
    int narrowed = is_narrowed(v);
    switch (v->base) {
    case ADDR_BASE_TENSOR:
        put(buf, size, &len, "%s", r->param->name);
        break;
    case ADDR_BASE_Q:
    case ADDR_BASE_K:
    case ADDR_BASE_V:
    case ADDR_BASE_HEAD:
    case ADDR_BASE_NEURON: {
        int neuron = v->base == ADDR_BASE_NEURON;
        /* How many heads or neurons there are, from the shapes: c_fc is
         * [C, 4C]; c_attn is [C, 3C] and the base block spans count heads. */
        size_t block = v->base == ADDR_BASE_HEAD ? r->cols : v->base_cols;
        int total = neuron ? r->param->shape[1]
                  : (int)((size_t)r->param->shape[0] / (block / (size_t)v->count));
        put(buf, size, &len, "h.%d.%s", v->layer, VIEW_SUFFIX[v->base - ADDR_BASE_Q]);
        if (v->count == 1)
            put(buf, size, &len, "[%d]", v->first);
        else if (v->first != 0 || v->count != total || v->base == ADDR_BASE_HEAD || neuron)
            put(buf, size, &len, "[%d:%d]", v->first, v->first + v->count);
        else if (narrowed)
            put(buf, size, &len, "[:]");       /* keeps the next index an index */
        break;
    }
    case ADDR_BASE_TOKEN: {
        /* Quoted when the quotes read back as this token and the name fits
         * (a token longer than the parser takes, or a name that would be
         * cut, is spelt by its id: every name must parse back). */
        const char *t = ps_tokenizer_token(tok, v->first);
        size_t at = len;
        if (t && strlen(t) < TOKEN_MAX && ps_tokenizer_find(tok, t) == v->first) {
            put(buf, size, &len, "wte[");
            put_quoted(buf, size, &len, t, '"');
            put(buf, size, &len, "]");
        }
        if (len == at || len + 64 >= size) {   /* room left for the indices after it */
            len = at;
            if (size > at)
                buf[at] = '\0';
            put(buf, size, &len, "wte[%d]", v->first);
        }
        break;
    }
    case ADDR_BASE_POSITION:
        put(buf, size, &len, "wpe[%d]", v->first);
        break;
    }
    if (narrowed) {
        const char *sep = "[";
        for (int a = 0; a < 2; a++) {
            if (!v->base_live[a])
                continue;
            size_t at = a == 0 ? r->row0 - v->base_row0 : r->col0 - v->base_col0;
            size_t n = a == 0 ? r->rows : r->cols;
            size_t base_n = a == 0 ? v->base_rows : v->base_cols;
            if (!v->live[a])
                put(buf, size, &len, "%s%zu", sep, at);
            else if (n == base_n)
                put(buf, size, &len, "%s:", sep);
            else
                put(buf, size, &len, "%s%zu:%zu", sep, at, at + n);
            sep = ",";
        }
        put(buf, size, &len, "]");
    }
    return (int)len;
}

size_t addr_view_numel(const addr_view *v)
{
    size_t n = 0;
    for (int i = 0; i < v->n_regions; i++)
        n += v->regions[i].rows * v->regions[i].cols;
    return n;
}

float *addr_region_at(const addr_region *r, size_t i, size_t j)
{
    return r->param->data + (r->row0 + i) * (size_t)r->param->shape[1] + r->col0 + j;
}

/* ---- completion ---- */

typedef struct completion {
    const char *prefix;
    size_t len;
    void (*fn)(const char *candidate, void *ctx);
    void *ctx;
    int n;
} completion;

static void offer(completion *c, const char *candidate)
{
    if (strncmp(candidate, c->prefix, c->len) == 0) {
        c->fn(candidate, c->ctx);
        c->n++;
    }
}

/* Views are offered with their bracket only: a bare view name is never where
 * a person stops typing (q alone is complete, but q[ is the common case). */
static void complete_name(const char *name, int what, void *ctx)
{
    completion *c = ctx;
    char buf[PS_NAME_MAX + 16];
    if (what == NAME_VIEW) {
        snprintf(buf, sizeof buf, "%s[", name);
        offer(c, buf);
        return;
    }
    offer(c, name);
    if (what == NAME_ALIAS && strcmp(name, "wte") == 0)
        offer(c, "wte[\"");
}

int addr_complete(const ps_model *m, const ps_tokenizer *tok, const char *prefix,
                  void (*fn)(const char *candidate, void *ctx), void *ctx)
{
    if (!m || !fn)
        return 0;
    completion c = { .prefix = prefix ? prefix : "", .fn = fn, .ctx = ctx };
    c.len = strlen(c.prefix);
    each_name(m, complete_name, &c);
    if (tok && strncmp(c.prefix, "wte[\"", 5) == 0) {
        char buf[TOKEN_MAX * 4 + 8];        /* every byte may be \xNN */
        int V = ps_tokenizer_vocab_size(tok);
        for (int i = 0; i < V && i < m->cfg.vocab_size; i++) {
            const char *t = ps_tokenizer_token(tok, i);
            size_t len = 0;
            if (!t || strlen(t) >= TOKEN_MAX || ps_tokenizer_find(tok, t) != i)
                continue;
            put(buf, sizeof buf, &len, "wte[");
            put_quoted(buf, sizeof buf, &len, t, '"');
            put(buf, sizeof buf, &len, "]");
            if (len < sizeof buf)
                offer(&c, buf);
        }
    }
    return c.n;
}
