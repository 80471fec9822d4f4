/* paramscope — safetensors files: validated, memory-mapped reading and atomic
 * writing.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON (an object of
 * tensor name -> {"dtype", "shape", "data_offsets": [begin, end]} plus an
 * optional "__metadata__" object of string -> string), then the data area;
 * offsets are relative to the data area's start.
 *
 * ps_st_open validates everything before it allocates anything large: header
 * length inside the file and below PS_ST_HEADER_MAX, JSON well formed and an
 * object, every dtype known, every shape (at most PS_ST_MAX_DIMS non-negative
 * integers) with a byte size equal to its offsets' span, offsets inside the
 * data area, tensors contiguous and not overlapping (sorted by offset they
 * tile the whole data area from 0: no holes, no trailing bytes), names
 * unique, metadata string -> string.  Each failure fills err with one line,
 * "PATH: tensor 'NAME': reason" or "PATH: header: reason", naming the values
 * involved, e.g.
 *   "x.safetensors: tensor 'wte.weight': data_offsets [0, 9] do not match shape [64, 192] of F32 (49152 bytes)".
 * Names from the file are shown with control characters replaced by '?'. */
#ifndef PARAMSCOPE_SAFETENSORS_H
#define PARAMSCOPE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "paramscope/error.h"

#define PS_ST_HEADER_MAX (100u * 1024u * 1024u)
/* Files up to this size are read into memory when opened; larger ones are
 * mapped (see ps_st_open_flags). */
#define PS_ST_COPY_MAX ((size_t)256 << 20)
#define PS_ST_MAX_DIMS 8

typedef enum ps_dtype {
    PS_DTYPE_F32,
    PS_DTYPE_F16,
    PS_DTYPE_BF16,
    PS_DTYPE_F64,
    PS_DTYPE_I64,
    PS_DTYPE_I32,
    PS_DTYPE_U8,
    PS_DTYPE_BOOL,
} ps_dtype;

/* "F32" etc. for messages; "?" for a value outside the enum, never NULL. */
const char *ps_dtype_name(ps_dtype d);
size_t ps_dtype_size(ps_dtype d);

typedef struct ps_st_tensor {
    char *name;
    ps_dtype dtype;
    int ndim;
    int64_t shape[PS_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;      /* byte offsets in the data area */
} ps_st_tensor;

typedef struct ps_st_file {
    char *path;
    const uint8_t *map;       /* whole file: a copy in memory of its own, or
                                 the file mapped privately (MAP_PRIVATE) */
    uint8_t *map_rw;          /* the same bytes when they are writable
                                 (ps_st_map_private), else NULL */
    int copied;               /* 1: map is a copy, immune to the file changing */
    int fd;                   /* the mapped file (for ps_st_check_unchanged),
                                 -1 for a copy */
    long long mtime_ns;       /* the file's modification time when opened */
    size_t size;              /* file size */
    size_t data_start;        /* 8 + header length */
    int n_tensors;
    ps_st_tensor *tensors;    /* in header order */
    int n_meta;
    char **meta_keys;         /* [n_meta] */
    char **meta_vals;         /* [n_meta] */
} ps_st_file;

/* Reads and validates path.  *out is freed with ps_st_close; it is NULL on
 * failure.  Returns PS_ERR_IO when the file cannot be opened or mapped
 * ("PATH: cannot open: No such file or directory"; a FIFO, device or
 * directory is refused at once, see fileio.h), PS_ERR_FORMAT for any
 * problem with its contents (including a file shorter than 8 bytes),
 * PS_ERR_NOMEM ("PATH: out of memory while parsing the header").
 *
 * A file of at most PS_ST_COPY_MAX bytes is copied into memory, so that
 * another program changing or truncating it later cannot touch us.  A
 * larger one is mapped: the pages are read when first touched, and the file
 * must not be truncated or rewritten in place while open (replacing it by
 * rename, as ps_st_write does, is safe); ps_st_check_unchanged tells. */
int ps_st_open(ps_st_file **out, const char *path, ps_error *err);

#define PS_ST_WRITABLE 1u     /* map_rw set: stores allowed, copy-on-write */
#define PS_ST_NO_COPY 2u      /* map even a small file (for tests) */
/* ps_st_open and ps_st_map_private with flags. */
int ps_st_open_flags(ps_st_file **out, const char *path, unsigned flags, ps_error *err);

/* PS_OK while the file f was opened from still has the size and the
 * modification time it had then (always for a copy); PS_ERR_STATE
 * "PATH: changed on disk since it was opened (...)" when not. */
int ps_st_check_unchanged(const ps_st_file *f, ps_error *err);

/* Like ps_st_open (same validation, same errors), but the mapping is
 * writable: PROT_READ | PROT_WRITE, MAP_PRIVATE.  A store into map_rw copies
 * only the page it touches, and only in this process: the file never
 * changes.  For models whose parameters stay in the file's pages until
 * edited.  Pages are read from the file when first touched, so opening costs
 * about the header, whatever the file's size. */
int ps_st_map_private(ps_st_file **out, const char *path, ps_error *err);

/* Unmaps and frees; NULL does nothing. */
void ps_st_close(ps_st_file *f);

/* ps_st_close(f) as a model's release callback (ps_model_init_mapped), so
 * that ps_model_file_check can find the file a model lives in. */
void ps_st_release(void *f);

/* A shape as people read it, "[768, 2304]", into buf (returned). */
const char *ps_st_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);

/* Metadata value for key, or NULL. */
const char *ps_st_meta(const ps_st_file *f, const char *key);
/* Tensor by name, or NULL. */
const ps_st_tensor *ps_st_find(const ps_st_file *f, const char *name);
/* Pointer to a tensor's bytes inside the mapping (valid until ps_st_close;
 * not necessarily aligned to the element size). */
const void *ps_st_data(const ps_st_file *f, const ps_st_tensor *t);

/* Copies a tensor into dst [numel] as float32, converting F16, BF16, F64.
 * Other dtypes: PS_ERR_FORMAT naming the file, tensor and dtype. */
int ps_st_read_f32(const ps_st_file *f, const ps_st_tensor *t, float *dst,
                   ps_error *err);

/* Half-precision conversions, exact on the way up (subnormals, infinities,
 * NaN payloads); ps_f32_to_f16 rounds to nearest, ties to even, overflows to
 * infinity from 65520 up and keeps NaN a NaN. */
float ps_f16_to_f32(uint16_t h);
float ps_bf16_to_f32(uint16_t h);
uint16_t ps_f32_to_f16(float f);

/* One tensor to write, always F32. */
typedef struct ps_st_out {
    const char *name;
    int ndim;
    int64_t shape[PS_ST_MAX_DIMS];
    const float *data;
} ps_st_out;

/* Writes tensors in the given order with metadata pairs (keys[i], vals[i]),
 * atomically (ps_atomic_open in fileio.h): a temporary file in the target's
 * folder, written, fsync'ed and renamed over path.  On any failure the
 * temporary file is removed and an existing file at path is untouched.
 * Only a regular file or a new name is replaced; a FIFO, device, folder
 * (or a symlink to one) is refused with PS_ERR_IO before anything is
 * written.  A header over PS_ST_HEADER_MAX is refused (PS_ERR_RANGE) before
 * anything is written, since ps_st_open would not read the file.
 *
 * Layout: "__metadata__" first (omitted when n_meta is 0), then the tensors
 * in order, back to back from offset 0; the header is padded with spaces so
 * that the data area starts at a multiple of 8 bytes.  The new file keeps the
 * mode of the file it replaces, else gets 0644.  A tensor with no elements
 * may have NULL data.
 *
 * Returns PS_ERR_INVALID for bad arguments (duplicate, reserved or NULL
 * names, duplicate metadata keys, negative dimensions, more than
 * PS_ST_MAX_DIMS dimensions, strings that are not UTF-8), PS_ERR_IO with
 * "PATH: cannot write: <strerror>" when the file system refuses (missing
 * folder, no space, path is a directory, ...), PS_ERR_NOMEM. */
int ps_st_write(const char *path, const ps_st_out *tensors, int n_tensors,
                const char *const *meta_keys, const char *const *meta_vals,
                int n_meta, ps_error *err);

/* The same with flags: PS_ST_NO_REPLACE, path must be a new name (PS_ERR_IO
 * when it exists), for a file that is renamed into place later;
 * PS_ST_DRY_RUN, only the checks that need no file (arguments, the header's
 * size), nothing written. */
#define PS_ST_NO_REPLACE 1
#define PS_ST_DRY_RUN 2
int ps_st_write_ex(const char *path, const ps_st_out *tensors, int n_tensors,
                   const char *const *meta_keys, const char *const *meta_vals,
                   int n_meta, int flags, ps_error *err);

#endif
