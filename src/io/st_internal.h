/* Shared between the safetensors reader's two files; not public API. */
#ifndef PARAMSCOPE_IO_ST_INTERNAL_H
#define PARAMSCOPE_IO_ST_INTERNAL_H

#include "paramscope/safetensors.h"

/* "F32" etc. -> *out; 0 for an unknown name. */
int ps_st_dtype_parse(const char *s, ps_dtype *out);

/* Parses and checks the header text hdr [hlen] of f (whose path, size and
 * data_start are set) into f->tensors and f->meta_*, which f owns even on
 * failure (ps_st_close frees them).  PS_ERR_FORMAT naming what is wrong, or
 * PS_ERR_NOMEM "PATH: out of memory while parsing the header". */
int ps_st_parse_header(ps_st_file *f, const char *hdr, size_t hlen, ps_error *err);

#endif
