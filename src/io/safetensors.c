/* safetensors: validated reading through a read-only mapping, atomic writing,
 * and the half-precision conversions.
 *
 * Reading trusts nothing in the file.  The order of the checks matters: the
 * header length is checked against the file and PS_ST_HEADER_MAX before the
 * JSON parser sees a byte, and every entry is checked before anything sized
 * by it is allocated, so a hostile file can make us allocate at most about
 * the size of its header. */
#include "paramscope/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor bytes are copied straight between the file and float arrays; the
 * format is little-endian, and so must the host be. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "paramscope's safetensors code assumes a little-endian host"
#endif

/* ---- dtypes ---- */

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [PS_DTYPE_F32] = {"F32", 4},  [PS_DTYPE_F16] = {"F16", 2},
    [PS_DTYPE_BF16] = {"BF16", 2}, [PS_DTYPE_F64] = {"F64", 8},
    [PS_DTYPE_I64] = {"I64", 8},  [PS_DTYPE_I32] = {"I32", 4},
    [PS_DTYPE_U8] = {"U8", 1},    [PS_DTYPE_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtype_info / sizeof dtype_info[0]))

const char *ps_dtype_name(ps_dtype d)
{
    if ((int)d < 0 || (int)d >= N_DTYPES)
        return "?";
    return dtype_info[d].name;
}

size_t ps_dtype_size(ps_dtype d)
{
    if ((int)d < 0 || (int)d >= N_DTYPES)
        return 0;
    return dtype_info[d].size;
}

static int dtype_parse(const char *s, ps_dtype *out)
{
    for (int i = 0; i < N_DTYPES; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (ps_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* ---- half precision ---- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float ps_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;

    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in float */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31)   /* inf, or NaN keeping its payload */
        return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

float ps_bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

/* Shifts m right by `shift` (1..31) rounding to nearest, ties to even. */
static uint32_t shift_round_even(uint32_t m, unsigned shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

uint16_t ps_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;

    if (a > 0x7f800000u) {            /* NaN: keep it quiet and non-zero */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    }
    if (a >= 0x477ff000u)             /* >= 65520 rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) {           /* normal half: rebias 127 -> 15 */
        /* a carry out of the mantissa correctly bumps the exponent */
        return (uint16_t)(sign | shift_round_even(a - 0x38000000u, 13));
    }
    /* Subnormal half (or zero): value * 2^24 rounded, that is
     * m * 2^(e - 126) with the implicit bit restored. */
    uint32_t e = a >> 23;
    if (e < 102)                      /* below 2^-25: rounds to zero */
        return sign;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    /* rounding up to 0x400 gives the smallest normal, which is right */
    return (uint16_t)(sign | shift_round_even(m, 126u - e));
}

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

static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
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

/* ---- validation of the header ---- */

/* jansson reports a duplicate key as `duplicate object key near '"NAME"'`;
 * say whether it is a tensor name (a key of the top-level object) or a field
 * inside an entry, using a lenient re-parse to tell the two apart. */
static int fail_duplicate(ps_error *err, const char *path, const char *hdr,
                          size_t hlen, const json_error_t *je)
{
    const char *near = strstr(je->text, "near '");
    char key[PS_ERROR_MSG_MAX] = "";
    if (near) {
        near += 6;
        size_t n = strlen(near);
        if (n > 0 && near[n - 1] == '\'')
            n--;
        json_t *k = json_loadb(near, n, JSON_DECODE_ANY, NULL);
        if (json_is_string(k))
            snprintf(key, sizeof key, "%s", json_string_value(k));
        json_decref(k);
    }
    char kb[96];
    int top = 0;
    json_t *all = json_loadb(hdr, hlen, 0, NULL);
    if (key[0] && json_is_object(all) && json_object_get(all, key))
        top = 1;
    json_decref(all);
    if (!key[0])
        return fail_header(err, path, "duplicate key (%s)", je->text);
    if (top)
        return fail_header(err, path, "duplicate tensor name '%s'",
                           ps_printable(key, kb, sizeof kb));
    return fail_header(err, path, "duplicate key '%s' inside an entry",
                       ps_printable(key, kb, sizeof kb));
}

static int check_metadata(ps_error *err, const char *path, json_t *meta)
{
    if (!json_is_object(meta))
        return fail_header(err, path, "__metadata__ is %s, expected an object "
                           "of string to string", json_kind(meta));
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        char kb[96];
        if (!json_is_string(v))
            return fail_header(err, path, "__metadata__ '%s' is %s, expected "
                               "a string", ps_printable(k, kb, sizeof kb), json_kind(v));
    }
    return 0;
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
    if (!dtype_parse(json_string_value(dt), &t->dtype)) {
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
                           shape_str(t->shape, t->ndim, sb, sizeof sb),
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
                           shape_str(t->shape, t->ndim, sb, sizeof sb),
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
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", f->path);
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

/* Checks the parsed header and fills f's tensors and metadata. */
static int load_header(ps_st_file *f, json_t *root, ps_error *err)
{
    const char *path = f->path;
    uint64_t data_len = f->size - f->data_start;
    if (!json_is_object(root))
        return fail_header(err, path, "is %s, expected a JSON object",
                           json_kind(root));

    json_t *meta = json_object_get(root, "__metadata__");
    int rc;
    if (meta && (rc = check_metadata(err, path, meta)) < 0)
        return rc;

    size_t n = json_object_size(root) - (meta ? 1 : 0);
    if (n > 0) {
        f->tensors = calloc(n, sizeof *f->tensors);
        if (!f->tensors)
            goto nomem;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (val == meta)
            continue;
        ps_st_tensor *t = &f->tensors[f->n_tensors];
        if ((rc = check_entry(err, path, key, val, data_len, t)) < 0)
            return rc;
        if (!(t->name = strdup(key)))
            goto nomem;
        f->n_tensors++;
    }
    if ((rc = check_tiling(err, f, data_len)) < 0)
        return rc;

    if (meta && json_object_size(meta) > 0) {
        size_t nm = json_object_size(meta);
        f->meta_keys = calloc(nm, sizeof *f->meta_keys);
        f->meta_vals = calloc(nm, sizeof *f->meta_vals);
        if (!f->meta_keys || !f->meta_vals)
            goto nomem;
        json_object_foreach(meta, key, val) {
            f->meta_keys[f->n_meta] = strdup(key);
            f->meta_vals[f->n_meta] = strdup(json_string_value(val));
            f->n_meta++;
            if (!f->meta_keys[f->n_meta - 1] || !f->meta_vals[f->n_meta - 1])
                goto nomem;
        }
    }
    return 0;
nomem:
    return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", path);
}

/* ---- reading ---- */

/* Both entry points: the mapping is private either way; writable means that
 * stores into it are allowed and stay in this process (copy-on-write). */
static int open_mapped(ps_st_file **out, const char *path, int writable,
                       ps_error *err)
{
    *out = NULL;
    int fd = -1, rc;
    json_t *root = NULL;
    ps_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path, strerror(EISDIR));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot open: not a regular file", path);
        goto fail;
    }
    if (st.st_size < 8) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: file is %lld bytes, too short "
                          "for a safetensors header", path, (long long)st.st_size);
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path, strerror(EFBIG));
        goto fail;
    }
    f->size = (size_t)st.st_size;
    void *map = mmap(NULL, f->size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                     MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    f->map = map;
    f->map_rw = writable ? map : NULL;
    close(fd);
    fd = -1;

    uint64_t hlen;
    memcpy(&hlen, f->map, sizeof hlen);
    if (hlen > PS_ST_HEADER_MAX) {
        rc = fail_header(err, path, "header length %llu exceeds the limit of %u bytes",
                         (unsigned long long)hlen, PS_ST_HEADER_MAX);
        goto fail;
    }
    if (hlen > f->size - 8) {
        rc = fail_header(err, path, "header length %llu runs past the end of the "
                         "file (%zu bytes after the length field)",
                         (unsigned long long)hlen, f->size - 8);
        goto fail;
    }
    f->data_start = 8 + (size_t)hlen;

    json_error_t je;
    const char *hdr = (const char *)f->map + 8;
    root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_duplicate_key)
            rc = fail_duplicate(err, path, hdr, (size_t)hlen, &je);
        else
            rc = fail_header(err, path, "not valid JSON: %s (byte %d)", je.text,
                             je.position);
        goto fail;
    }
    if ((rc = load_header(f, root, err)) < 0)
        goto fail;
    json_decref(root);
    *out = f;
    return 0;
fail:
    json_decref(root);
    if (fd >= 0)
        close(fd);
    ps_st_close(f);
    return rc;
}

int ps_st_open(ps_st_file **out, const char *path, ps_error *err)
{
    return open_mapped(out, path, 0, err);
}

int ps_st_map_private(ps_st_file **out, const char *path, ps_error *err)
{
    return open_mapped(out, path, 1, err);
}

void ps_st_close(ps_st_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->size);
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->path);
    free(f);
}

const char *ps_st_meta(const ps_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_vals[i];
    return NULL;
}

const ps_st_tensor *ps_st_find(const ps_st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const void *ps_st_data(const ps_st_file *f, const ps_st_tensor *t)
{
    return f->map + f->data_start + t->begin;
}

int ps_st_read_f32(const ps_st_file *f, const ps_st_tensor *t, float *dst,
                   ps_error *err)
{
    /* The data area need not be aligned (the header length is free), so
     * elements are read with memcpy. */
    const uint8_t *src = ps_st_data(f, t);
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case PS_DTYPE_F32:
        if (n)
            memcpy(dst, src, n * sizeof(float));
        return 0;
    case PS_DTYPE_F16:
    case PS_DTYPE_BF16: {
        float (*conv)(uint16_t) =
            t->dtype == PS_DTYPE_F16 ? ps_f16_to_f32 : ps_bf16_to_f32;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = conv(h);
        }
        return 0;
    }
    case PS_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return fail_tensor(err, f->path, t->name, "dtype %s cannot be read as "
                           "float32", ps_dtype_name(t->dtype));
    }
}

/* ---- writing ---- */

/* The header JSON, padded with spaces so that the data area starts at a
 * multiple of 8 bytes (as Hugging Face's writer does): malloc'd text in *out
 * and its padded length in *out_len. */
static int build_header(const char *path, const ps_st_out *tensors, int n_tensors,
                        const char *const *meta_keys, const char *const *meta_vals,
                        int n_meta, char **out, size_t *out_len, ps_error *err)
{
    char *text = NULL, *padded, nb[96];
    json_t *root = json_object();
    json_t *meta = n_meta > 0 ? json_object() : NULL;
    int rc = PS_ERR_NOMEM;
    if (!root || (n_meta > 0 && !meta))
        goto fail;

    /* jansson keeps insertion order, so __metadata__ comes first */
    if (meta && json_object_set(root, "__metadata__", meta) < 0)
        goto fail;
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_vals[i]) {
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: metadata entry %d is NULL",
                              path, i);
            goto fail;
        }
        if (json_object_get(meta, meta_keys[i])) {
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: duplicate metadata key '%s'",
                              path, ps_printable(meta_keys[i], nb, sizeof nb));
            goto fail;
        }
        json_t *v = json_string(meta_vals[i]);
        if (!v) {   /* jansson only takes UTF-8 */
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: metadata '%s' is not "
                              "valid UTF-8", path, ps_printable(meta_keys[i], nb, sizeof nb));
            goto fail;
        }
        if (json_object_set_new(meta, meta_keys[i], v) < 0) {
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: metadata key '%s' is not "
                              "valid UTF-8", path, ps_printable(meta_keys[i], nb, sizeof nb));
            goto fail;
        }
    }

    uint64_t off = 0;
    for (int i = 0; i < n_tensors; i++) {
        const ps_st_out *t = &tensors[i];
        if (!t->name || strcmp(t->name, "__metadata__") == 0 ||
            json_object_get(root, t->name)) {
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: tensor %d: missing, "
                              "reserved or duplicate name '%s'", path, i,
                              t->name ? ps_printable(t->name, nb, sizeof nb) : "(null)");
            goto fail;
        }
        if (t->ndim < 0 || t->ndim > PS_ST_MAX_DIMS) {
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: tensor '%s': %d dimensions",
                              path, ps_printable(t->name, nb, sizeof nb), t->ndim);
            goto fail;
        }
        json_t *entry = json_object(), *shape = json_array(), *offs = json_array();
        if (!entry || !shape || !offs) {
            json_decref(entry);
            json_decref(shape);
            json_decref(offs);
            goto fail;
        }
        uint64_t numel = 1;
        int bad = 0;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 ||
                __builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel))
                bad = 1;
            json_array_append_new(shape, json_integer(t->shape[d]));
        }
        uint64_t nbytes = 0;
        if (bad || __builtin_mul_overflow(numel, (uint64_t)4, &nbytes) ||
            nbytes > (uint64_t)INT64_MAX - off || (numel && !t->data)) {
            json_decref(entry);
            json_decref(shape);
            json_decref(offs);
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: tensor '%s': bad shape "
                              "or no data", path, ps_printable(t->name, nb, sizeof nb));
            goto fail;
        }
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + nbytes)));
        off += nbytes;
        json_object_set_new(entry, "dtype", json_string("F32"));
        json_object_set_new(entry, "shape", shape);
        json_object_set_new(entry, "data_offsets", offs);
        if (json_object_set_new(root, t->name, entry) < 0) {
            rc = ps_error_set(err, PS_ERR_INVALID, "%s: tensor name '%s' is not "
                              "valid UTF-8", path, ps_printable(t->name, nb, sizeof nb));
            goto fail;
        }
    }

    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        goto fail;
    size_t len = strlen(text), plen = (len + 7) & ~(size_t)7;
    if (!(padded = malloc(plen)))
        goto fail;
    memcpy(padded, text, len);
    memset(padded + len, ' ', plen - len);
    *out = padded;
    *out_len = plen;
    free(text);
    json_decref(meta);
    json_decref(root);
    return 0;
fail:
    if (rc == PS_ERR_NOMEM)
        ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", path);
    free(text);
    json_decref(meta);
    json_decref(root);
    return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Best effort: make the rename itself durable. */
static void sync_folder(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int ps_st_write(const char *path, const ps_st_out *tensors, int n_tensors,
                const char *const *meta_keys, const char *const *meta_vals,
                int n_meta, ps_error *err)
{
    if (n_tensors < 0 || n_meta < 0 || (n_tensors && !tensors) ||
        (n_meta && (!meta_keys || !meta_vals)))
        return ps_error_set(err, PS_ERR_INVALID, "%s: invalid arguments to write",
                            path);
    size_t hlen = 0;
    char *hdr = NULL;
    int fd = -1, rc = build_header(path, tensors, n_tensors, meta_keys, meta_vals,
                                   n_meta, &hdr, &hlen, err);
    if (rc < 0)
        return rc;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) {
        free(hdr);
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");

    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        goto fail;
    }
    /* mkstemp makes the file 0600; a model file is for sharing.  Reading the
     * umask would change it process-wide for a moment, so keep an existing
     * file's mode, else use 0644. */
    struct stat st;
    mode_t mode = 0644;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777;
    uint8_t len8[8];
    uint64_t h64 = hlen;
    memcpy(len8, &h64, 8);
    if (fchmod(fd, mode) < 0 || write_all(fd, len8, 8) < 0 ||
        write_all(fd, hdr, hlen) < 0)
        goto io_fail;
    for (int i = 0; i < n_tensors; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            numel *= (size_t)tensors[i].shape[d];   /* checked in build_header */
        if (numel && write_all(fd, tensors[i].data, numel * sizeof(float)) < 0)
            goto io_fail;
    }
    if (fsync(fd) < 0)
        goto io_fail;
    int cfd = fd;
    fd = -1;
    if (close(cfd) < 0 || rename(tmp, path) < 0)
        goto io_fail;
    sync_folder(path);
    free(tmp);
    free(hdr);
    return 0;

io_fail:
    rc = ps_error_set(err, PS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
fail:
    free(tmp);
    free(hdr);
    return rc;
}
