/* Tests of io/safetensors: round trips, half-precision conversions, a table of
 * malformed files and the atomicity of writing. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "paramscope/safetensors.h"

/* ---- helpers ---- */

static char tmpdir[256];

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/ps_st_XXXXXX", base);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes a file: 8-byte length field `hlen`, the header text, data_len zero
 * bytes (or `data` when given). */
static void write_raw(const char *path, uint64_t hlen, const char *hdr, size_t hdr_bytes,
                      const void *data, size_t data_len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(&hlen, 8, 1, fp), 1);
    if (hdr_bytes)
        assert_int_equal(fwrite(hdr, 1, hdr_bytes, fp), hdr_bytes);
    for (size_t i = 0; i < data_len; i++)
        fputc(data ? ((const unsigned char *)data)[i] : 0, fp);
    assert_int_equal(fclose(fp), 0);
}

static void write_file(const char *path, const char *hdr, const void *data, size_t data_len)
{
    write_raw(path, strlen(hdr), hdr, strlen(hdr), data, data_len);
}

static size_t read_whole(const char *path, unsigned char **out)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *out = malloc((size_t)n + 1);
    assert_non_null(*out);
    assert_int_equal(fread(*out, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return (size_t)n;
}

/* Names in tmpdir containing `part`. */
static int count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, part))
            n++;
    closedir(d);
    return n;
}

static void assert_one_line_about(const ps_error *err, const char *path, const char *part)
{
    size_t pl = strlen(path);
    if (strncmp(err->msg, path, pl) != 0 || strncmp(err->msg + pl, ": ", 2) != 0)
        fail_msg("message does not start with the path: \"%s\"", err->msg);
    if (!strstr(err->msg, part))
        fail_msg("expected \"%s\" in \"%s\"", part, err->msg);
    assert_null(strchr(err->msg, '\n'));
}

/* ---- round trip ---- */

static void test_roundtrip(void **state)
{
    (void)state;
    float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    float b[1] = {42.0f};
    float d[5] = {INFINITY, -INFINITY, 1e30f, 7.0f, -7.0f};
    ps_st_out t[4] = {
        {.name = "a.weight", .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "scalar", .ndim = 0, .data = b},
        {.name = "empty", .ndim = 2, .shape = {0, 4}, .data = NULL},
        {.name = "d", .ndim = 1, .shape = {5}, .data = d},
    };
    const char *keys[] = {"format", "note"};
    const char *vals[] = {"paramscope", "h\xc3\xa9 \"quoted\"\nnext line"};
    const char *path = tmp_path("rt.safetensors");
    ps_error err = {0};

    assert_int_equal(ps_st_write(path, t, 4, keys, vals, 2, &err), 0);
    assert_int_equal(count_entries(tmpdir, ".tmp."), 0);

    unsigned char *raw;
    size_t size = read_whole(path, &raw);
    uint64_t hlen;
    memcpy(&hlen, raw, 8);
    assert_int_equal((8 + hlen) % 8, 0);
    assert_int_equal(size, 8 + hlen + 4 * (6 + 1 + 5));
    assert_memory_equal(raw + 8, "{\"__metadata__\":", 16);
    assert_memory_equal(raw + 8 + hlen, a, sizeof a);
    assert_memory_equal(raw + 8 + hlen + sizeof a, b, sizeof b);
    assert_memory_equal(raw + 8 + hlen + sizeof a + sizeof b, d, sizeof d);
    free(raw);

    ps_st_file *f = NULL;
    assert_int_equal(ps_st_open(&f, path, &err), 0);
    assert_int_equal(f->n_tensors, 4);
    assert_int_equal(f->data_start, 8 + hlen);
    const char *names[] = {"a.weight", "scalar", "empty", "d"};
    uint64_t begins[] = {0, 24, 28, 28}, ends[] = {24, 28, 28, 48};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(f->tensors[i].name, names[i]);
        assert_int_equal(f->tensors[i].dtype, PS_DTYPE_F32);
        assert_int_equal(f->tensors[i].ndim, t[i].ndim);
        for (int k = 0; k < t[i].ndim; k++)
            assert_int_equal(f->tensors[i].shape[k], t[i].shape[k]);
        assert_int_equal(f->tensors[i].begin, begins[i]);
        assert_int_equal(f->tensors[i].end, ends[i]);
    }
    assert_int_equal(f->tensors[0].numel, 6);
    assert_int_equal(f->tensors[1].numel, 1);
    assert_int_equal(f->tensors[2].numel, 0);
    assert_string_equal(ps_st_meta(f, "format"), "paramscope");
    assert_string_equal(ps_st_meta(f, "note"), vals[1]);
    assert_null(ps_st_meta(f, "absent"));
    assert_int_equal(f->n_meta, 2);

    const ps_st_tensor *ta = ps_st_find(f, "a.weight");
    assert_ptr_equal(ta, &f->tensors[0]);
    assert_null(ps_st_find(f, "a"));
    assert_memory_equal(ps_st_data(f, ta), a, sizeof a);
    float back[5];
    assert_int_equal(ps_st_read_f32(f, ps_st_find(f, "d"), back, &err), 0);
    assert_memory_equal(back, d, sizeof d);
    ps_st_close(f);
    ps_st_close(NULL);
}

static void test_write_rejects_bad_arguments(void **state)
{
    (void)state;
    float x[2] = {1, 2};
    ps_st_out dup[2] = {
        {.name = "x", .ndim = 1, .shape = {2}, .data = x},
        {.name = "x", .ndim = 1, .shape = {2}, .data = x},
    };
    ps_st_out neg = {.name = "n", .ndim = 1, .shape = {-2}, .data = x};
    ps_st_out reserved = {.name = "__metadata__", .ndim = 1, .shape = {2}, .data = x};
    const char *k[] = {"a", "a"}, *v[] = {"1", "2"};
    const char *path = tmp_path("bad_args.safetensors");
    ps_error err = {0};

    assert_int_equal(ps_st_write(path, dup, 2, NULL, NULL, 0, &err), PS_ERR_INVALID);
    assert_one_line_about(&err, path, "duplicate name 'x'");
    assert_int_equal(ps_st_write(path, &neg, 1, NULL, NULL, 0, &err), PS_ERR_INVALID);
    assert_one_line_about(&err, path, "tensor 'n'");
    assert_int_equal(ps_st_write(path, &reserved, 1, NULL, NULL, 0, &err), PS_ERR_INVALID);
    assert_int_equal(ps_st_write(path, dup, 1, k, v, 2, &err), PS_ERR_INVALID);
    assert_one_line_about(&err, path, "duplicate metadata key 'a'");
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_entries(tmpdir, "bad_args"), 0);
}

/* ---- half precision ---- */

static void test_f16_to_f32_values(void **state)
{
    (void)state;
    assert_true(ps_f16_to_f32(0x3C00) == 1.0f);
    assert_true(ps_f16_to_f32(0xC000) == -2.0f);
    assert_true(ps_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(ps_f16_to_f32(0x0001) == 0x1p-24f);          /* smallest subnormal */
    assert_true(ps_f16_to_f32(0x03FF) == 1023 * 0x1p-24f);   /* largest subnormal */
    assert_true(ps_f16_to_f32(0x0400) == 0x1p-14f);          /* smallest normal */
    assert_true(ps_f16_to_f32(0x8001) == -0x1p-24f);
    assert_true(ps_f16_to_f32(0x3555) == 0x1.554p-2f);       /* ~1/3 */
    assert_true(ps_f16_to_f32(0x3BFF) == 1.0f - 0x1p-11f);
    assert_true(ps_f16_to_f32(0x7C00) == INFINITY);
    assert_true(ps_f16_to_f32(0xFC00) == -INFINITY);
    assert_true(isnan(ps_f16_to_f32(0x7E00)));
    assert_true(isnan(ps_f16_to_f32(0x7C01)));
    assert_true(isnan(ps_f16_to_f32(0xFE00)));
    float z = ps_f16_to_f32(0x8000);
    assert_true(z == 0.0f && signbit(z));
    z = ps_f16_to_f32(0x0000);
    assert_true(z == 0.0f && !signbit(z));
}

static void test_bf16_to_f32_values(void **state)
{
    (void)state;
    assert_true(ps_bf16_to_f32(0x3F80) == 1.0f);
    assert_true(ps_bf16_to_f32(0xC000) == -2.0f);
    assert_true(ps_bf16_to_f32(0x4049) == 3.140625f);
    assert_true(ps_bf16_to_f32(0x0001) == 0x1p-133f);
    assert_true(ps_bf16_to_f32(0x7F80) == INFINITY);
    assert_true(ps_bf16_to_f32(0xFF80) == -INFINITY);
    assert_true(isnan(ps_bf16_to_f32(0x7FC0)));
}

static void test_f32_to_f16_values(void **state)
{
    (void)state;
    assert_int_equal(ps_f32_to_f16(1.0f), 0x3C00);
    assert_int_equal(ps_f32_to_f16(-2.0f), 0xC000);
    assert_int_equal(ps_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(ps_f32_to_f16(65519.99f), 0x7BFF);
    assert_int_equal(ps_f32_to_f16(65520.0f), 0x7C00);       /* tie to even: inf */
    assert_int_equal(ps_f32_to_f16(1e10f), 0x7C00);
    assert_int_equal(ps_f32_to_f16(-1e10f), 0xFC00);
    assert_int_equal(ps_f32_to_f16(0.1f), 0x2E66);
    assert_int_equal(ps_f32_to_f16(1.0f / 3.0f), 0x3555);
    assert_int_equal(ps_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(ps_f32_to_f16(0x1p-25f), 0x0000);       /* tie to even: 0 */
    assert_int_equal(ps_f32_to_f16(0x1.000002p-25f), 0x0001);
    assert_int_equal(ps_f32_to_f16(0x1.8p-24f), 0x0002);     /* 1.5 -> 2 */
    assert_int_equal(ps_f32_to_f16(0x1.4p-23f), 0x0002);     /* 2.5 -> 2 */
    assert_int_equal(ps_f32_to_f16(0x1p-14f), 0x0400);
    assert_int_equal(ps_f32_to_f16(0x1.ff8p-15f), 0x03FF);   /* 1023 * 2^-24 */
    assert_int_equal(ps_f32_to_f16(0x1.ffbp-15f), 0x03FF);   /* below 1023.5 */
    assert_int_equal(ps_f32_to_f16(0x1.ffcp-15f), 0x0400);   /* tie carries into normal */
    assert_int_equal(ps_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(ps_f32_to_f16(-1e-30f), 0x8000);
    assert_int_equal(ps_f32_to_f16(1.0f + 0x1p-11f), 0x3C00); /* tie, even is 1.0 */
    assert_int_equal(ps_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02); /* tie, up to even */
    assert_int_equal(ps_f32_to_f16(INFINITY), 0x7C00);
    assert_int_equal(ps_f32_to_f16(-INFINITY), 0xFC00);
    uint16_t n = ps_f32_to_f16(NAN);
    assert_int_equal(n & 0x7C00, 0x7C00);
    assert_int_not_equal(n & 0x03FF, 0);
}

/* Every finite half survives f16 -> f32 -> f16, and the float halfway
 * between two neighbours rounds to the one with the even mantissa, while
 * the floats just either side of it round to the nearer one. */
static void test_f16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = ps_f16_to_f32((uint16_t)h);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
            assert_true(isnan(f));
            uint16_t back = ps_f32_to_f16(f);
            assert_true((back & 0x7C00) == 0x7C00 && (back & 0x3FF));
            continue;
        }
        if (ps_f32_to_f16(f) != h)
            fail_msg("0x%04x -> %a -> 0x%04x", h, (double)f, ps_f32_to_f16(f));
        if ((h & 0x7FFF) >= 0x7C00)
            continue;
        uint16_t next = (uint16_t)(h + 1);     /* the neighbour away from zero */
        double lo = ps_f16_to_f32((uint16_t)h);
        double hi = (next & 0x7FFF) == 0x7C00 ? ((h & 0x8000) ? -65536.0 : 65536.0)
                                              : ps_f16_to_f32(next);
        float mid = (float)((lo + hi) / 2);    /* exact: needs 12 bits */
        assert_true((double)mid == (lo + hi) / 2);
        uint16_t even = (h & 1) ? next : (uint16_t)h;
        if (ps_f32_to_f16(mid) != even)
            fail_msg("midpoint %a after 0x%04x -> 0x%04x", (double)mid, h,
                     ps_f32_to_f16(mid));
        float below = nextafterf(mid, (float)lo), above = nextafterf(mid, (float)hi);
        assert_int_equal(ps_f32_to_f16(below), h);
        assert_int_equal(ps_f32_to_f16(above), next);
    }
}

/* ---- other dtypes through ps_st_read_f32 ---- */

static void test_read_converts_dtypes(void **state)
{
    (void)state;
    uint16_t f16[4] = {0x3C00, 0xC000, 0x0001, 0x7C00};
    uint16_t bf16[2] = {0x3F80, 0xC0A0};
    double f64[2] = {0.1, -1e300};
    int32_t i32[1] = {7};
    unsigned char data[8 + 4 + 16 + 4];
    memcpy(data, f16, 8);
    memcpy(data + 8, bf16, 4);
    memcpy(data + 12, f64, 16);
    memcpy(data + 28, i32, 4);
    /* header length 146 is not a multiple of 8: the data is unaligned */
    const char *hdr =
        "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
        "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[12,28]},"
        "\"i\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[28,32]}}";
    const char *path = tmp_path("dtypes.safetensors");
    write_file(path, hdr, data, sizeof data);

    ps_st_file *f = NULL;
    ps_error err = {0};
    assert_int_equal(ps_st_open(&f, path, &err), 0);
    assert_int_not_equal(f->data_start % 4, 0);
    float out[4];
    assert_int_equal(ps_st_read_f32(f, ps_st_find(f, "h"), out, &err), 0);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0x1p-24f && out[3] == INFINITY);
    assert_int_equal(ps_st_read_f32(f, ps_st_find(f, "b"), out, &err), 0);
    assert_true(out[0] == 1.0f && out[1] == -5.0f);
    assert_int_equal(ps_st_read_f32(f, ps_st_find(f, "d"), out, &err), 0);
    assert_true(out[0] == 0.1f && out[1] == -INFINITY);
    assert_int_equal(ps_st_find(f, "i")->dtype, PS_DTYPE_I32);
    assert_int_equal(ps_st_read_f32(f, ps_st_find(f, "i"), out, &err), PS_ERR_FORMAT);
    assert_one_line_about(&err, path, "tensor 'i': dtype I32 cannot be read as float32");
    ps_st_close(f);
}

/* ---- malformed files ---- */

#define T(name, dtype, shape, b, e) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

typedef struct bad_case {
    const char *label;
    const char *header;
    size_t data_len;
    uint64_t hlen;            /* 0: strlen(header) */
    long truncate;            /* >= 0: cut the file to this many bytes */
    int code;
    const char *expect;
} bad_case;

static const bad_case bad_cases[] = {
    {"empty file", "{}", 0, 0, 0, PS_ERR_FORMAT,
     "file is 0 bytes, too short for a safetensors header"},
    {"truncated", "{}", 0, 0, 5, PS_ERR_FORMAT,
     "file is 5 bytes, too short for a safetensors header"},
    {"header past end", "{}", 0, 1000, -1, PS_ERR_FORMAT,
     "header: header length 1000 runs past the end of the file (2 bytes after"},
    {"absurd header length", "{}", 0, (uint64_t)1 << 62, -1, PS_ERR_FORMAT,
     "header: header length 4611686018427387904 exceeds the limit of 104857600"},
    {"header length all ones", "{}", 0, 0xffffffffffffffffu, -1, PS_ERR_FORMAT,
     "header length 18446744073709551615 exceeds the limit"},
    {"empty header", "", 0, 0, -1, PS_ERR_FORMAT, "header: not valid JSON"},
    {"not JSON", "{\"a\": {\"dtype\": ", 0, 0, -1, PS_ERR_FORMAT,
     "header: not valid JSON"},
    {"not an object", "[1, 2, 3]", 0, 0, -1, PS_ERR_FORMAT,
     "header: is an array, expected a JSON object"},
    {"entry not an object", "{\"w\": 5}", 0, 0, -1, PS_ERR_FORMAT,
     "tensor 'w': entry is an integer, expected an object"},
    {"unknown dtype", "{" T("w", "Q4_K", "[2]", 0, 2) "}", 2, 0, -1, PS_ERR_FORMAT,
     "tensor 'w': unknown dtype 'Q4_K'"},
    {"dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}",
     4, 0, -1, PS_ERR_FORMAT, "tensor 'w': dtype is an integer, expected a string"},
    {"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, -1,
     PS_ERR_FORMAT, "tensor 'w': no dtype"},
    {"shape and offsets disagree", "{" T("wte.weight", "F32", "[64, 192]", 0, 9) "}",
     9, 0, -1, PS_ERR_FORMAT,
     "tensor 'wte.weight': data_offsets [0, 9] do not match shape [64, 192] of F32 (49152 bytes)"},
    {"overlap", "{" T("a", "F32", "[4]", 0, 16) "," T("b", "F32", "[4]", 8, 24) "}",
     24, 0, -1, PS_ERR_FORMAT,
     "tensor 'b': data_offsets [8, 24] overlap tensor 'a' [0, 16]"},
    {"identical offsets overlap", "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 0, 8) "}",
     8, 0, -1, PS_ERR_FORMAT, "overlap tensor"},
    {"hole", "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 12, 20) "}",
     20, 0, -1, PS_ERR_FORMAT,
     "tensor 'b': hole of 4 bytes before it: data_offsets begin at 12 but 'a' ends at 8"},
    {"hole at start", "{" T("a", "F32", "[2]", 4, 12) "}", 12, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': hole of 4 bytes before it: the first tensor begins at 4"},
    {"trailing bytes", "{" T("a", "F32", "[2]", 0, 8) "}", 11, 0, -1, PS_ERR_FORMAT,
     "header: 3 bytes after the last tensor"},
    {"data but no tensors", "{}", 16, 0, -1, PS_ERR_FORMAT,
     "header: 16 bytes of data but no tensors"},
    {"offsets past end", "{" T("a", "F32", "[4]", 0, 16) "}", 8, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': data_offsets [0, 16] run past the end of the data area (8 bytes)"},
    {"negative offsets", "{" T("a", "F32", "[1]", -4, 0) "}", 4, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': data_offsets [-4, 0] must be non-negative"},
    {"non-integer offsets", "{" T("a", "F32", "[1]", 0.0, 4.0) "}", 4, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': data_offsets must be integers, found a real number"},
    {"offsets as strings", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}",
     4, 0, -1, PS_ERR_FORMAT, "data_offsets must be integers, found a string"},
    {"one offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4, 0, -1,
     PS_ERR_FORMAT, "tensor 'a': data_offsets must be an array of two integers"},
    {"begin after end", "{" T("a", "F32", "[0]", 8, 0) "}", 8, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': data_offsets [8, 0] begin after they end"},
    {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, 0, -1,
     PS_ERR_FORMAT, "tensor 'a': no data_offsets"},
    {"duplicate tensor names", "{" T("a", "F32", "[1]", 0, 4) "," T("a", "F32", "[1]", 4, 8) "}",
     8, 0, -1, PS_ERR_FORMAT, "header: duplicate tensor name 'a'"},
    {"duplicate field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4, 0, -1, PS_ERR_FORMAT, "tensor 'a': duplicate key 'dtype' inside the entry"},
    {"metadata value not a string", "{\"__metadata__\":{\"n_layer\":2}}", 0, 0, -1,
     PS_ERR_FORMAT, "header: __metadata__ 'n_layer' is an integer, expected a string"},
    {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}", 0, 0, -1,
     PS_ERR_FORMAT, "header: duplicate key 'k' in __metadata__"},
    {"text after the object", "{} x", 0, 0, -1, PS_ERR_FORMAT,
     "header: not valid JSON: text after the header's closing brace (byte 3)"},
    {"bad entry syntax", "{\"a\":{\"dtype\" \"F32\"}}", 0, 0, -1, PS_ERR_FORMAT,
     "header: not valid JSON"},
    {"metadata not an object", "{\"__metadata__\":[\"a\"]}", 0, 0, -1, PS_ERR_FORMAT,
     "header: __metadata__ is an array, expected an object"},
    {"negative dimension", "{" T("a", "F32", "[2, -3]", 0, 24) "}", 24, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': shape dimension 1 is -3, must not be negative"},
    {"fractional dimension", "{" T("a", "F32", "[2.5]", 0, 8) "}", 8, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': shape dimension 0 is a real number"},
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, 0, -1,
     PS_ERR_FORMAT, "tensor 'a': no shape"},
    {"shape not an array", "{" T("a", "F32", "4", 0, 16) "}", 16, 0, -1, PS_ERR_FORMAT,
     "tensor 'a': shape is an integer, expected an array"},
    {"too many dimensions", "{" T("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, 0, -1,
     PS_ERR_FORMAT, "tensor 'a': shape has 9 dimensions, at most 8"},
    {"numel overflows", "{" T("a", "F32", "[4294967296, 4294967296, 16]", 0, 4) "}", 4, 0, -1,
     PS_ERR_FORMAT, "tensor 'a': shape [4294967296, 4294967296, 16] of F32 is too large"},
    {"bytes overflow", "{" T("a", "F64", "[2305843009213693952, 2]", 0, 4) "}", 4, 0, -1,
     PS_ERR_FORMAT, "of F64 is too large"},
    {"control characters in a name", "{" T("a\\nb", "F32", "[1]", 0, 9) "}", 9, 0, -1,
     PS_ERR_FORMAT, "tensor 'a\\nb': data_offsets [0, 9]"},
};

static void test_malformed_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char name[64];
        snprintf(name, sizeof name, "bad%02zu.safetensors", i);
        const char *path = tmp_path(name);
        write_raw(path, c->hlen ? c->hlen : strlen(c->header), c->header,
                  strlen(c->header), NULL, c->data_len);
        if (c->truncate >= 0)
            assert_int_equal(truncate(path, c->truncate), 0);

        ps_st_file *f = (ps_st_file *)&f;   /* must be reset to NULL */
        ps_error err = {0};
        int rc = ps_st_open(&f, path, &err);
        if (rc != c->code)
            fail_msg("case '%s': status %d, expected %d (%s)", c->label, rc,
                     c->code, err.msg);
        assert_null(f);
        assert_int_equal(err.code, c->code);
        if (!strstr(err.msg, c->expect))
            fail_msg("case '%s': expected \"%s\" in \"%s\"", c->label, c->expect, err.msg);
        assert_one_line_about(&err, path, c->expect);
    }
}

static void test_valid_edge_cases(void **state)
{
    (void)state;
    static const struct { const char *header; size_t data_len; int n; } ok[] = {
        {"{}", 0, 0},
        {"{\"__metadata__\":{}}", 0, 0},
        {"  {\"__metadata__\":{\"k\":\"v\"}}      ", 0, 0},
        /* listed out of offset order, and a zero-size tensor in the middle */
        {"{" T("b", "F32", "[2]", 8, 16) "," T("z", "F16", "[3, 0]", 8, 8) ","
         T("a", "U8", "[8]", 0, 8) "}", 16, 3},
        {"{" T("s", "F64", "[]", 0, 8) "," T("e", "BOOL", "[0]", 8, 8) "}", 8, 2},
        {"{" T("name with spaces/and.dots", "I64", "[1, 1]", 0, 8) "}", 8, 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *path = tmp_path("ok.safetensors");
        write_file(path, ok[i].header, NULL, ok[i].data_len);
        ps_st_file *f = NULL;
        ps_error err = {0};
        if (ps_st_open(&f, path, &err) != 0)
            fail_msg("valid file %zu rejected: %s", i, err.msg);
        assert_int_equal(f->n_tensors, ok[i].n);
        ps_st_close(f);
    }
}

static void test_open_missing_and_directory(void **state)
{
    (void)state;
    ps_st_file *f = NULL;
    ps_error err = {0};
    const char *path = tmp_path("does-not-exist.safetensors");
    assert_int_equal(ps_st_open(&f, path, &err), PS_ERR_IO);
    assert_null(f);
    assert_one_line_about(&err, path, "cannot open: No such file or directory");
    assert_int_equal(ps_st_open(&f, tmpdir, &err), PS_ERR_IO);
    assert_one_line_about(&err, tmpdir, "is a directory, not a file");
}

/* ---- atomic writing ---- */

static void test_write_into_missing_folder(void **state)
{
    (void)state;
    float x[2] = {1, 2};
    ps_st_out t = {.name = "x", .ndim = 1, .shape = {2}, .data = x};
    const char *path = tmp_path("no-such-folder/m.safetensors");
    ps_error err = {0};
    assert_int_equal(ps_st_write(path, &t, 1, NULL, NULL, 0, &err), PS_ERR_IO);
    assert_one_line_about(&err, path, "cannot write there: folder");
    assert_int_equal(access(tmp_path("no-such-folder"), F_OK), -1);
    assert_int_equal(count_entries(tmpdir, "no-such-folder"), 0);
}

static void test_write_over_directory_fails(void **state)
{
    (void)state;
    const char *path = tmp_path("a-directory.safetensors");
    assert_int_equal(mkdir(path, 0755), 0);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", path);
    write_file(inner, "{}", NULL, 0);

    float x[2] = {1, 2};
    ps_st_out t = {.name = "x", .ndim = 1, .shape = {2}, .data = x};
    ps_error err = {0};
    assert_int_equal(ps_st_write(path, &t, 1, NULL, NULL, 0, &err), PS_ERR_IO);
    assert_one_line_about(&err, path, "is a directory; give a file name");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(access(inner, F_OK), 0);
    assert_int_equal(count_entries(tmpdir, ".tmp."), 0);
}

/* A write that fails part-way (file size limit, as a full disk would) leaves
 * the previous file as it was and no temporary file behind.  Works as root,
 * unlike permission bits. */
static void test_failed_write_keeps_old_file(void **state)
{
    (void)state;
    const char *path = tmp_path("keep.safetensors");
    float old[3] = {1, 2, 3};
    ps_st_out t_old = {.name = "old", .ndim = 1, .shape = {3}, .data = old};
    ps_error err = {0};
    assert_int_equal(ps_st_write(path, &t_old, 1, NULL, NULL, 0, &err), 0);
    unsigned char *before, *after;
    size_t n_before = read_whole(path, &before);

    enum { N = 100000 };
    float *big = calloc(N, sizeof *big);
    assert_non_null(big);
    ps_st_out t_new = {.name = "new", .ndim = 1, .shape = {N}, .data = big};
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = ps_st_write(path, &t_new, 1, NULL, NULL, 0, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);
    free(big);

    assert_int_equal(rc, PS_ERR_IO);
    assert_one_line_about(&err, path, "cannot write: File too large");
    size_t n_after = read_whole(path, &after);
    assert_int_equal(n_after, n_before);
    assert_memory_equal(after, before, n_before);
    assert_int_equal(count_entries(tmpdir, ".tmp."), 0);
    free(before);
    free(after);

    /* and a successful write replaces it, keeping its mode */
    assert_int_equal(chmod(path, 0640), 0);
    float y[1] = {9};
    ps_st_out t_y = {.name = "y", .ndim = 1, .shape = {1}, .data = y};
    assert_int_equal(ps_st_write(path, &t_y, 1, NULL, NULL, 0, &err), 0);
    ps_st_file *f = NULL;
    assert_int_equal(ps_st_open(&f, path, &err), 0);
    assert_int_equal(f->n_tensors, 1);
    assert_string_equal(f->tensors[0].name, "y");
    ps_st_close(f);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

/* ---- files that are not regular, memory ---- */

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "timed out: the FIFO was opened and blocked\n";
    if (write(2, m, sizeof m - 1) < 0)
        _exit(3);
    _exit(2);
}

/* A FIFO is refused at once (it used to block in open(2) forever), and
 * saving onto a FIFO or a symlink to a device leaves them as they are. */
static void test_fifo_and_device_refused(void **state)
{
    (void)state;
    const char *fifo = tmp_path("pipe.safetensors");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    signal(SIGALRM, on_alarm);
    alarm(10);
    ps_st_file *f = NULL;
    ps_error err = {0};
    assert_int_equal(ps_st_open(&f, fifo, &err), PS_ERR_IO);
    assert_one_line_about(&err, fifo, "is a FIFO, not a regular file");

    float x[2] = {1, 2};
    ps_st_out t = {.name = "x", .ndim = 1, .shape = {2}, .data = x};
    assert_int_equal(ps_st_write(fifo, &t, 1, NULL, NULL, 0, &err), PS_ERR_IO);
    assert_one_line_about(&err, fifo, "is a FIFO, not a regular file; not replacing it");
    struct stat st;
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));

    const char *link = tmp_path("zero.safetensors");
    assert_int_equal(symlink("/dev/zero", link), 0);
    assert_int_equal(ps_st_open(&f, link, &err), PS_ERR_IO);
    assert_one_line_about(&err, link, "is a character device, not a regular file");
    assert_int_equal(ps_st_write(link, &t, 1, NULL, NULL, 0, &err), PS_ERR_IO);
    assert_one_line_about(&err, link, "is a symlink to a character device");
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    alarm(0);
    assert_int_equal(count_entries(tmpdir, ".tmp."), 0);

    /* a symlink to a regular file is followed: the link stays a link */
    const char *real = tmp_path("real.safetensors"), *alias = tmp_path("alias.safetensors");
    assert_int_equal(ps_st_write(real, &t, 1, NULL, NULL, 0, &err), 0);
    assert_int_equal(symlink("real.safetensors", alias), 0);
    x[0] = 7;
    assert_int_equal(ps_st_write(alias, &t, 1, NULL, NULL, 0, &err), 0);
    assert_int_equal(lstat(alias, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(ps_st_open(&f, real, &err), 0);
    float back[2];
    assert_int_equal(ps_st_read_f32(f, ps_st_find(f, "x"), back, &err), 0);
    assert_true(back[0] == 7.0f);
    ps_st_close(f);
}

/* A header paramscope would refuse to read is refused when writing, before
 * a byte is written (it used to be written, then not loadable). */
static void test_write_refuses_unreadable_header(void **state)
{
    (void)state;
    size_t n = PS_ST_HEADER_MAX + 16;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    const char *keys[1] = {"vocab"}, *vals[1] = {big};
    const char *path = tmp_path("huge-header.safetensors");
    ps_error err = {0};
    assert_int_equal(ps_st_write(path, NULL, 0, keys, vals, 1, &err), PS_ERR_RANGE);
    free(big);
    assert_one_line_about(&err, path, "over the limit of 104857600 bytes that paramscope reads");
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_entries(tmpdir, "huge-header"), 0);
}

/* A file whose header has `count` zero-sized tensors, written a piece at a
 * time so that making it does not raise the peak memory; its header length
 * in *len. */
static void write_many_entries(const char *path, size_t count, size_t *len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t hlen = 0;
    assert_int_equal(fwrite(&hlen, 8, 1, fp), 1);
    long n = fprintf(fp, "{");
    for (size_t i = 0; i < count; i++)
        n += fprintf(fp, "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                     i ? "," : "", i);
    n += fprintf(fp, "}");
    hlen = (uint64_t)n;
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    assert_int_equal(fwrite(&hlen, 8, 1, fp), 1);
    assert_int_equal(fclose(fp), 0);
    *len = (size_t)n;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Parsing costs a small multiple of the header (jansson's tree of the whole
 * header cost about 20 times), and running out of memory while parsing says
 * so (it used to be "not valid JSON (byte 0)"). */
static void test_header_memory(void **state)
{
    (void)state;
    size_t len;
    const char *path = tmp_path("many.safetensors");
    write_many_entries(path, 200000, &len);      /* about 12 MB */

    long before = max_rss_kb();
    ps_st_file *f = NULL;
    ps_error err = {0};
    assert_int_equal(ps_st_open(&f, path, &err), 0);
    assert_int_equal(f->n_tensors, 200000);
    ps_st_close(f);
    long grown = max_rss_kb() - before;
    print_message("header of %zu bytes: peak memory grew by %ld kB\n", len, grown);
    /* a sanitizer's shadow memory and quarantine make the figures meaningless */
    const char *san = getenv("PS_SANITIZE");
    if (san && *san && strcmp(san, "none")) {
        print_message("(not measured under -Db_sanitize=%s)\n", san);
        return;
    }
    if ((size_t)grown * 1024 > 6 * len)
        fail_msg("parsing a %zu-byte header grew the peak memory by %ld kB", len, grown);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* room for the copy of the file, not for its tensor table */
        FILE *sm = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (!sm || fscanf(sm, "%lu", &pages) != 1)
            _exit(5);
        fclose(sm);
        struct rlimit rl = {.rlim_cur = (rlim_t)pages * 4096 + len + (4u << 20),
                            .rlim_max = RLIM_INFINITY};
        rl.rlim_max = rl.rlim_cur;
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(6);
        ps_error e = {0};
        ps_st_file *g = NULL;
        int rc = ps_st_open(&g, path, &e);
        if (rc == PS_ERR_NOMEM && strstr(e.msg, "out of memory while") && !strchr(e.msg, '\n'))
            _exit(0);
        fprintf(stderr, "under a memory limit: status %d, \"%s\"\n", rc, e.msg);
        _exit(1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_write_rejects_bad_arguments),
        cmocka_unit_test(test_f16_to_f32_values),
        cmocka_unit_test(test_bf16_to_f32_values),
        cmocka_unit_test(test_f32_to_f16_values),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_read_converts_dtypes),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_valid_edge_cases),
        cmocka_unit_test(test_open_missing_and_directory),
        cmocka_unit_test(test_write_into_missing_folder),
        cmocka_unit_test(test_write_over_directory_fails),
        cmocka_unit_test(test_failed_write_keeps_old_file),
        cmocka_unit_test(test_fifo_and_device_refused),
        cmocka_unit_test(test_header_memory),
        cmocka_unit_test(test_write_refuses_unreadable_header),
    };
    return cmocka_run_group_tests_name("safetensors", tests, group_setup, group_teardown);
}
