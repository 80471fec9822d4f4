/* safetensors: validated reading through a read-only mapping, atomic writing,
 * and the half-precision conversions.
 *
 * Reading trusts nothing in the file.  The order of the checks matters: the
 * header length is checked against the file and PS_ST_HEADER_MAX before the
 * JSON parser sees a byte, and every entry is checked before anything sized
 * by it is allocated, so a hostile file can make us allocate at most about
 * the size of its header. */
#include "io/st_internal.h"

#include "paramscope/fileio.h"
#include "paramscope/mapguard.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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

int ps_st_dtype_parse(const char *s, ps_dtype *out)
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


/* ---- reading ---- */

/* Why a copy below PS_ST_COPY_MAX: a mapping shows whatever the file holds
 * now, so another program rewriting the file in place changes the model
 * silently, and truncating it kills us with SIGBUS at the next touch.  A
 * copy is immune.  Above the limit (GPT-2 small and up) the file stays
 * mapped, because copying it would double the memory of the biggest models;
 * ps_st_check_unchanged tells whether it changed.  The copy lives in an
 * anonymous mapping of its own, not the malloc heap, so that loading a
 * model again and again gives every byte back (no heap growth). */
static int read_copy(ps_st_file *f, int fd, ps_error *err)
{
    void *buf = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while reading it (%zu bytes)",
                            f->path, f->size);
    f->map = buf;
    f->copied = 1;
    size_t n = 0;
    while (n < f->size) {
        ssize_t got = read(fd, (uint8_t *)buf + n, f->size - n > (1u << 30) ? (1u << 30) : f->size - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return ps_error_set(err, PS_ERR_IO, "%s: cannot read: %s", f->path, strerror(errno));
        if (got == 0)
            return ps_error_set(err, PS_ERR_IO, "%s: became shorter while being read "
                                "(%zu of %zu bytes): another program is changing it",
                                f->path, n, f->size);
        n += (size_t)got;
    }
    return PS_OK;
}

int ps_st_open_flags(ps_st_file **out, const char *path, unsigned flags, ps_error *err)
{
    *out = NULL;
    int fd = -1, rc;
    int writable = (flags & PS_ST_WRITABLE) != 0;
    ps_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while opening it", path);
    }
    f->fd = -1;
    struct stat st;
    if ((rc = ps_file_open_read(path, &fd, &st, err)) < 0)
        goto fail;
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
    f->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    /* $PARAMSCOPE_COPY_MAX (bytes) moves the limit, so that the tests can
     * map a small file as the big ones are mapped */
    const char *lim = getenv("PARAMSCOPE_COPY_MAX");
    unsigned long long copy_max = lim && *lim ? strtoull(lim, NULL, 10) : PS_ST_COPY_MAX;
    if (f->size <= copy_max && !(flags & PS_ST_NO_COPY)) {
        if ((rc = read_copy(f, fd, err)) < 0)
            goto fail;
        f->map_rw = writable ? (uint8_t *)f->map : NULL;
        if (!writable)
            mprotect((void *)f->map, f->size, PROT_READ);
    } else {
        void *map = mmap(NULL, f->size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                         MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            rc = ps_error_set(err, errno == ENOMEM ? PS_ERR_NOMEM : PS_ERR_IO,
                              "%s: cannot map: %s", path, strerror(errno));
            goto fail;
        }
        f->map = map;
        f->map_rw = writable ? map : NULL;
        f->fd = fd;           /* kept for ps_st_check_unchanged */
        ps_mapguard_add(map, f->size);   /* a truncation then costs no crash */
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    fd = -1;

    uint64_t hlen;
    memcpy(&hlen, f->map, sizeof hlen);
    if (hlen > PS_ST_HEADER_MAX) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: header: header length %llu exceeds the "
                          "limit of %u bytes", path, (unsigned long long)hlen, PS_ST_HEADER_MAX);
        goto fail;
    }
    if (hlen > f->size - 8) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: header: header length %llu runs past the "
                          "end of the file (%zu bytes after the length field)", path,
                          (unsigned long long)hlen, f->size - 8);
        goto fail;
    }
    f->data_start = 8 + (size_t)hlen;
    if ((rc = ps_st_parse_header(f, (const char *)f->map + 8, (size_t)hlen, err)) < 0)
        goto fail;
    *out = f;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    ps_st_close(f);
    return rc;
}

int ps_st_open(ps_st_file **out, const char *path, ps_error *err)
{
    return ps_st_open_flags(out, path, 0, err);
}

int ps_st_map_private(ps_st_file **out, const char *path, ps_error *err)
{
    return ps_st_open_flags(out, path, PS_ST_WRITABLE, err);
}

int ps_st_check_unchanged(const ps_st_file *f, ps_error *err)
{
    struct stat st;
    if (f->copied || f->fd < 0)
        return PS_OK;
    if (fstat(f->fd, &st) < 0)
        return ps_error_set(err, PS_ERR_IO, "%s: cannot check it: %s", f->path, strerror(errno));
    long long mt = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    if ((uint64_t)st.st_size != f->size || mt != f->mtime_ns)
        return ps_error_set(err, PS_ERR_STATE, "%s: changed on disk since it was opened "
                            "(%zu bytes then, %lld now%s): the parameters not yet edited "
                            "may no longer be the ones loaded", f->path, f->size,
                            (long long)st.st_size, mt != f->mtime_ns ? ", modified since" : "");
    return PS_OK;
}

void ps_st_close(ps_st_file *f)
{
    if (!f)
        return;
    if (f->map && !f->copied)
        ps_mapguard_remove(f->map);
    if (f->map)
        munmap((void *)f->map, f->size);
    if (f->fd >= 0)
        close(f->fd);
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

void ps_st_release(void *f)
{
    ps_st_close(f);
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
    {
        char nb[96];
        return ps_error_set(err, PS_ERR_FORMAT, "%s: tensor '%s': dtype %s cannot be "
                            "read as float32", f->path, ps_printable(t->name, nb, sizeof nb),
                            ps_dtype_name(t->dtype));
    }
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
        ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while building its header", path);
    free(text);
    json_decref(meta);
    json_decref(root);
    return rc;
}

int ps_st_write(const char *path, const ps_st_out *tensors, int n_tensors,
                const char *const *meta_keys, const char *const *meta_vals,
                int n_meta, ps_error *err)
{
    return ps_st_write_ex(path, tensors, n_tensors, meta_keys, meta_vals, n_meta, 0, err);
}

int ps_st_write_ex(const char *path, const ps_st_out *tensors, int n_tensors,
                   const char *const *meta_keys, const char *const *meta_vals,
                   int n_meta, int flags, ps_error *err)
{
    if (n_tensors < 0 || n_meta < 0 || (n_tensors && !tensors) ||
        (n_meta && (!meta_keys || !meta_vals)))
        return ps_error_set(err, PS_ERR_INVALID, "%s: invalid arguments to write",
                            path);
    size_t hlen = 0;
    char *hdr = NULL;
    ps_atomic_file a = {.fd = -1};
    int rc = build_header(path, tensors, n_tensors, meta_keys, meta_vals,
                          n_meta, &hdr, &hlen, err);
    if (rc < 0)
        return rc;
    /* never write what ps_st_open would refuse */
    if (hlen > PS_ST_HEADER_MAX) {
        rc = ps_error_set(err, PS_ERR_RANGE, "%s: not written: its header would be %zu "
                          "bytes, over the limit of %u bytes that paramscope reads "
                          "(a vocabulary this large cannot be saved)", path, hlen,
                          PS_ST_HEADER_MAX);
        goto fail;
    }
    if ((flags & PS_ST_DRY_RUN) || (rc = ps_atomic_open(&a, path, err)) < 0)
        goto fail;
    uint8_t len8[8];
    uint64_t h64 = hlen;
    memcpy(len8, &h64, 8);
    if ((rc = ps_atomic_write(&a, len8, 8, err)) < 0 ||
        (rc = ps_atomic_write(&a, hdr, hlen, err)) < 0)
        goto fail;
    for (int i = 0; i < n_tensors; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            numel *= (size_t)tensors[i].shape[d];   /* checked in build_header */
        if (numel && (rc = ps_atomic_write(&a, tensors[i].data, numel * sizeof(float), err)) < 0)
            goto fail;
    }
    rc = ps_atomic_commit(&a, flags & PS_ST_NO_REPLACE, err);
fail:
    ps_atomic_abort(&a);
    free(hdr);
    return rc;
}
