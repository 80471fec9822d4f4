/* The safetensors header: a scanner for its outer structure and the checks
 * of every entry.
 *
 * Why not hand the whole header to jansson: a parsed JSON tree costs about
 * twenty times its text (a 100 MB header of small entries took 2.1 GB), so a
 * hostile header could make us allocate gigabytes.  Here only the outer
 * object (tensor name -> entry) and __metadata__ (key -> string) are walked
 * by hand, and each entry, a few dozen bytes, is parsed by jansson on its
 * own and freed before the next.  What stays is what ps_st_file keeps: one
 * ps_st_tensor and one name per tensor, one key and one value per metadata
 * pair; about five times the smallest entry's text at worst, usually less.
 * Duplicate names and keys are found by sorting, not by a hash table. */
#include "io/st_internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ---- */

static int fail_tensor(ps_error *err, const char *path, const char *name,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail_tensor(ps_error *err, const char *path, const char *name,
                       const char *fmt, ...)
{
    char why[PS_ERROR_MSG_MAX], nb[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s': %s", path,
                        ps_printable(name, nb, sizeof nb), why);
}

static int fail_header(ps_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_header(ps_error *err, const char *path, const char *fmt, ...)
{
    char why[PS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return ps_error_set(err, PS_ERR_FORMAT, "%s: header: %s", path, why);
}

const char *ps_st_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* A non-negative JSON integer, or -1 with *kind set to what it was. */
static int64_t nonneg_int(const json_t *j)
{
    if (!json_is_integer(j))
        return -1;
    json_int_t v = json_integer_value(j);
    return v < 0 ? -1 : (int64_t)v;
}

/* Validates one entry into t (name not yet set); data_len bounds offsets. */
static int check_entry(ps_error *err, const char *path, const char *name,
                       json_t *e, uint64_t data_len, ps_st_tensor *t)
{
    char sb[256];
    if (!json_is_object(e))
        return fail_tensor(err, path, name, "entry is %s, expected an object",
                           json_kind(e));

    json_t *dt = json_object_get(e, "dtype");
    if (!dt)
        return fail_tensor(err, path, name, "no dtype");
    if (!json_is_string(dt))
        return fail_tensor(err, path, name, "dtype is %s, expected a string",
                           json_kind(dt));
    if (!ps_st_dtype_parse(json_string_value(dt), &t->dtype)) {
        char db[64];
        return fail_tensor(err, path, name, "unknown dtype '%s'",
                           ps_printable(json_string_value(dt), db, sizeof db));
    }

    json_t *sh = json_object_get(e, "shape");
    if (!sh)
        return fail_tensor(err, path, name, "no shape");
    if (!json_is_array(sh))
        return fail_tensor(err, path, name, "shape is %s, expected an array",
                           json_kind(sh));
    if (json_array_size(sh) > PS_ST_MAX_DIMS)
        return fail_tensor(err, path, name, "shape has %zu dimensions, at most "
                           "%d are supported", json_array_size(sh), PS_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(sh);
    int has_zero = 0;
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(sh, (size_t)i);
        int64_t v = nonneg_int(d);
        if (v < 0) {
            if (json_is_integer(d))
                return fail_tensor(err, path, name, "shape dimension %d is "
                                   "%lld, must not be negative", i,
                                   (long long)json_integer_value(d));
            return fail_tensor(err, path, name, "shape dimension %d is %s, "
                               "expected a non-negative integer", i, json_kind(d));
        }
        t->shape[i] = v;
        has_zero |= v == 0;
    }
    /* numel and byte size, refusing to wrap (a zero dimension cannot) */
    t->numel = has_zero ? 0 : 1;
    uint64_t nbytes = 0;
    int overflow = 0;
    for (int i = 0; i < t->ndim && !has_zero; i++)
        overflow |= __builtin_mul_overflow(t->numel, (uint64_t)t->shape[i], &t->numel);
    overflow |= __builtin_mul_overflow(t->numel, (uint64_t)ps_dtype_size(t->dtype), &nbytes);
    if (overflow)
        return fail_tensor(err, path, name, "shape %s of %s is too large",
                           ps_st_shape_str(t->shape, t->ndim, sb, sizeof sb),
                           ps_dtype_name(t->dtype));

    json_t *off = json_object_get(e, "data_offsets");
    if (!off)
        return fail_tensor(err, path, name, "no data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2)
        return fail_tensor(err, path, name, "data_offsets must be an array of "
                           "two integers [begin, end]");
    json_t *jb = json_array_get(off, 0), *jend = json_array_get(off, 1);
    if (!json_is_integer(jb) || !json_is_integer(jend))
        return fail_tensor(err, path, name, "data_offsets must be integers, "
                           "found %s", json_kind(json_is_integer(jb) ? jend : jb));
    long long b = json_integer_value(jb), en = json_integer_value(jend);
    if (b < 0 || en < 0)
        return fail_tensor(err, path, name, "data_offsets [%lld, %lld] must be "
                           "non-negative", b, en);
    if (b > en)
        return fail_tensor(err, path, name, "data_offsets [%lld, %lld] begin "
                           "after they end", b, en);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)en;
    if (t->end - t->begin != nbytes)
        return fail_tensor(err, path, name, "data_offsets [%lld, %lld] do not "
                           "match shape %s of %s (%llu bytes)", b, en,
                           ps_st_shape_str(t->shape, t->ndim, sb, sizeof sb),
                           ps_dtype_name(t->dtype), (unsigned long long)nbytes);
    if (t->end > data_len)
        return fail_tensor(err, path, name, "data_offsets [%lld, %lld] run past "
                           "the end of the data area (%llu bytes)", b, en,
                           (unsigned long long)data_len);
    return 0;
}

static int cmp_begin(const void *pa, const void *pb)
{
    const ps_st_tensor *a = *(const ps_st_tensor *const *)pa;
    const ps_st_tensor *b = *(const ps_st_tensor *const *)pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return 0;
}

/* Sorted by offset, the tensors must tile [0, data_len) exactly. */
static int check_tiling(ps_error *err, const ps_st_file *f, uint64_t data_len)
{
    int n = f->n_tensors, rc = 0;
    if (n == 0) {
        if (data_len)
            return fail_header(err, f->path, "%llu bytes of data but no tensors",
                               (unsigned long long)data_len);
        return 0;
    }
    const ps_st_tensor **order = malloc((size_t)n * sizeof *order);
    if (!order)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while parsing the header", f->path);
    for (int i = 0; i < n; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)n, sizeof *order, cmp_begin);

    const ps_st_tensor *prev = NULL;
    uint64_t covered = 0;
    char nb[96];
    for (int i = 0; i < n && rc == 0; i++) {
        const ps_st_tensor *t = order[i];
        if (t->begin > covered) {
            if (prev)
                rc = fail_tensor(err, f->path, t->name, "hole of %llu bytes "
                                 "before it: data_offsets begin at %llu but "
                                 "'%s' ends at %llu",
                                 (unsigned long long)(t->begin - covered),
                                 (unsigned long long)t->begin,
                                 ps_printable(prev->name, nb, sizeof nb),
                                 (unsigned long long)covered);
            else
                rc = fail_tensor(err, f->path, t->name, "hole of %llu bytes "
                                 "before it: the first tensor begins at %llu, "
                                 "not 0", (unsigned long long)t->begin,
                                 (unsigned long long)t->begin);
        } else if (t->begin < covered) {
            rc = fail_tensor(err, f->path, t->name, "data_offsets [%llu, %llu] "
                             "overlap tensor '%s' [%llu, %llu]",
                             (unsigned long long)t->begin,
                             (unsigned long long)t->end,
                             ps_printable(prev->name, nb, sizeof nb),
                             (unsigned long long)prev->begin,
                             (unsigned long long)prev->end);
        }
        covered = t->end;
        prev = t;
    }
    if (rc == 0 && covered < data_len)
        rc = fail_header(err, f->path, "%llu bytes after the last tensor "
                         "(data area is %llu bytes, tensors end at %llu)",
                         (unsigned long long)(data_len - covered),
                         (unsigned long long)data_len,
                         (unsigned long long)covered);
    free(order);
    return rc;
}


/* ---- the scanner ---- */

typedef struct scan {
    const char *base, *p, *end;
    const char *path;
} scan;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int bad_json(const scan *s, ps_error *err, const char *what)
{
    return fail_header(err, s->path, "not valid JSON: %s (byte %zu)", what,
                       (size_t)(s->p - s->base));
}

static int nomem(const char *path, ps_error *err)
{
    return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while parsing the header", path);
}

/* jansson failed on the slice starting at `at`. */
static int json_fail(const scan *s, const char *at, const json_error_t *je, ps_error *err)
{
    if (json_error_code(je) == json_error_out_of_memory)
        return nomem(s->path, err);
    return fail_header(err, s->path, "not valid JSON: %s (byte %zu)", je->text,
                       (size_t)(at - s->base) + (size_t)je->position);
}

/* Past the string at s->p (a '"'): 0, -1 unterminated, -2 a control byte.
 * *plain: no escapes and only ASCII, so its text is its value. */
static int skip_string(scan *s, int *plain)
{
    const char *p = s->p + 1;
    int pl = 1;
    while (p < s->end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) {
            s->p = p;
            return -2;
        }
        if (c == '\\') {
            pl = 0;
            p++;
        } else if (c >= 0x80) {
            pl = 0;
        }
        p++;
    }
    if (p >= s->end)
        return -1;
    s->p = p + 1;
    if (plain)
        *plain = pl;
    return 0;
}

/* Past one value, without checking what is inside brackets (jansson or the
 * metadata walk does that): 0 or -1. */
static int skip_value(scan *s)
{
    if (s->p >= s->end)
        return -1;
    if (*s->p == '"')
        return skip_string(s, NULL) ? -1 : 0;
    if (*s->p == '{' || *s->p == '[') {
        size_t depth = 0;
        while (s->p < s->end) {
            char c = *s->p;
            if (c == '"') {
                if (skip_string(s, NULL))
                    return -1;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0) {
                s->p++;
                return 0;
            }
            s->p++;
        }
        return -1;
    }
    const char *start = s->p;
    while (s->p < s->end && *s->p && !strchr(",}] \t\n\r", *s->p))
        s->p++;
    return s->p > start ? 0 : -1;
}

/* What the value at a [n] is, for messages, without parsing it. */
static const char *kind_at(const char *a, size_t n)
{
    switch (n ? *a : 0) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    case 0: return "empty";
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] == '.' || a[i] == 'e' || a[i] == 'E')
            return "a real number";
    return "an integer";
}

/* The string token at a [n] (quotes included) as a malloc'd C string. */
static int decode_string(const scan *s, const char *a, size_t n, int plain, char **out,
                         ps_error *err)
{
    if (plain) {
        if (!(*out = malloc(n - 1)))
            return nomem(s->path, err);
        memcpy(*out, a + 1, n - 2);
        (*out)[n - 2] = '\0';
        return PS_OK;
    }
    json_error_t je;
    json_t *j = json_loadb(a, n, JSON_DECODE_ANY, &je);
    if (!j)
        return json_fail(s, a, &je, err);
    *out = strdup(json_string_value(j));
    json_decref(j);
    return *out ? PS_OK : nomem(s->path, err);
}

/* A string token at s->p, decoded; what says what it is for messages. */
static int take_string(scan *s, const char *what, char **out, ps_error *err)
{
    if (s->p >= s->end || *s->p != '"') {
        char why[64];
        snprintf(why, sizeof why, "expected %s in quotes", what);
        return bad_json(s, err, why);
    }
    const char *a = s->p;
    int plain, r = skip_string(s, &plain);
    if (r)
        return bad_json(s, err, r == -2 ? "a control byte inside a string"
                                        : "a string runs to the end of the header");
    return decode_string(s, a, (size_t)(s->p - a), plain, out, err);
}

static int colon(scan *s, ps_error *err)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return bad_json(s, err, "expected ':' after a key");
    s->p++;
    skip_ws(s);
    return PS_OK;
}

/* After a pair: 1 for another, 0 at the closing brace, <0 on error. */
static int next_pair(scan *s, ps_error *err)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        skip_ws(s);
        return 1;
    }
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    return bad_json(s, err, "expected ',' or '}' after a value");
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *na = realloc(*arr, nc * size);
    if (!na)
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A name given twice among names [n], found by sorting copies of the
 * pointers: NULL when none (or *oom when the copy could not be made). */
static const char *find_duplicate(char *const *names, size_t n, size_t stride, int *oom)
{
    *oom = 0;
    if (n < 2)
        return NULL;
    const char **v = malloc(n * sizeof *v);
    if (!v) {
        *oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = *(char *const *)((const char *)names + i * stride);
    qsort(v, n, sizeof *v, cmp_str);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            dup = v[i];
    free(v);
    return dup;
}

/* ---- the two levels of the header ---- */

static int parse_metadata(ps_st_file *f, const scan *outer, const char *a, size_t n,
                          ps_error *err)
{
    if (*a != '{')
        return fail_header(err, f->path, "__metadata__ is %s, expected an object "
                           "of string to string", kind_at(a, n));
    scan s = {outer->base, a + 1, a + n, f->path};
    size_t cap_k = 0, cap_v = 0;
    char kb[96];
    int more = 1, rc;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
        more = 0;
    }
    while (more > 0) {
        char *key = NULL, *val = NULL;
        if ((rc = take_string(&s, "a metadata key", &key, err)) < 0 ||
            (rc = colon(&s, err)) < 0) {
            free(key);
            return rc;
        }
        if (s.p >= s.end || *s.p != '"') {
            const char *va = s.p;
            if (skip_value(&s))
                rc = bad_json(&s, err, "a value is cut short");
            else
                rc = fail_header(err, f->path, "__metadata__ '%s' is %s, expected a string",
                                 ps_printable(key, kb, sizeof kb), kind_at(va, (size_t)(s.p - va)));
            free(key);
            return rc;
        }
        if ((rc = take_string(&s, "a metadata value", &val, err)) < 0) {
            free(key);
            return rc;
        }
        if (grow((void **)&f->meta_keys, &cap_k, (size_t)f->n_meta, sizeof *f->meta_keys) ||
            grow((void **)&f->meta_vals, &cap_v, (size_t)f->n_meta, sizeof *f->meta_vals)) {
            free(key);
            free(val);
            return nomem(f->path, err);
        }
        f->meta_keys[f->n_meta] = key;
        f->meta_vals[f->n_meta] = val;
        f->n_meta++;
        if ((more = next_pair(&s, err)) < 0)
            return more;
    }
    skip_ws(&s);
    if (s.p != s.end)
        return bad_json(&s, err, "text after __metadata__'s closing brace");
    int oom;
    const char *dup = find_duplicate(f->meta_keys, (size_t)f->n_meta, sizeof(char *), &oom);
    if (oom)
        return nomem(f->path, err);
    if (dup)
        return fail_header(err, f->path, "duplicate key '%s' in __metadata__",
                           ps_printable(dup, kb, sizeof kb));
    return PS_OK;
}

/* The entry at a [n] for the tensor just added as f->tensors[last]. */
static int parse_entry(ps_st_file *f, const scan *s, const char *a, size_t n, ps_error *err)
{
    ps_st_tensor *t = &f->tensors[f->n_tensors - 1];
    json_error_t je;
    json_t *e = json_loadb(a, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!e) {
        if (json_error_code(&je) != json_error_duplicate_key)
            return json_fail(s, a, &je, err);
        /* jansson says: duplicate object key near '"NAME"' */
        const char *near = strstr(je.text, "near '\"");
        char key[64] = "?";
        if (near) {
            size_t k = 0;
            for (near += 7; *near && *near != '"' && k + 1 < sizeof key; near++)
                key[k++] = *near;
            key[k] = '\0';
        }
        char kb[64];
        return fail_tensor(err, f->path, t->name, "duplicate key '%s' inside the entry",
                           ps_printable(key, kb, sizeof kb));
    }
    int rc = check_entry(err, f->path, t->name, e, f->size - f->data_start, t);
    json_decref(e);
    return rc;
}

int ps_st_parse_header(ps_st_file *f, const char *hdr, size_t hlen, ps_error *err)
{
    scan s = {hdr, hdr, hdr + hlen, f->path};
    size_t cap = 0;
    int seen_meta = 0, more = 1, rc;
    skip_ws(&s);
    if (s.p == s.end)
        return bad_json(&s, err, "the header is empty");
    if (*s.p != '{')
        return fail_header(err, f->path, "is %s, expected a JSON object",
                           kind_at(s.p, (size_t)(s.end - s.p)));
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
        more = 0;
    }
    while (more > 0) {
        char *name = NULL;
        if ((rc = take_string(&s, "a tensor name", &name, err)) < 0 ||
            (rc = colon(&s, err)) < 0) {
            free(name);
            return rc;
        }
        const char *va = s.p;
        if (skip_value(&s)) {
            free(name);
            return bad_json(&s, err, "a value is cut short");
        }
        size_t vn = (size_t)(s.p - va);
        if (strcmp(name, "__metadata__") == 0) {
            free(name);
            if (seen_meta)
                return fail_header(err, f->path, "duplicate key '__metadata__'");
            seen_meta = 1;
            if ((rc = parse_metadata(f, &s, va, vn, err)) < 0)
                return rc;
        } else {
            if (grow((void **)&f->tensors, &cap, (size_t)f->n_tensors, sizeof *f->tensors)) {
                free(name);
                return nomem(f->path, err);
            }
            memset(&f->tensors[f->n_tensors], 0, sizeof *f->tensors);
            f->tensors[f->n_tensors++].name = name;
            if ((rc = parse_entry(f, &s, va, vn, err)) < 0)
                return rc;
        }
        if ((more = next_pair(&s, err)) < 0)
            return more;
    }
    skip_ws(&s);
    if (s.p != s.end)
        return bad_json(&s, err, "text after the header's closing brace");

    int oom;
    char nb[96];
    const char *dup = f->n_tensors < 2 ? (oom = 0, NULL)
                      : find_duplicate(&f->tensors[0].name, (size_t)f->n_tensors,
                                       sizeof *f->tensors, &oom);
    if (oom)
        return nomem(f->path, err);
    if (dup)
        return fail_header(err, f->path, "duplicate tensor name '%s'",
                           ps_printable(dup, nb, sizeof nb));
    return check_tiling(err, f, f->size - f->data_start);
}
