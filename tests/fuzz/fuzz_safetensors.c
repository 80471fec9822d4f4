/* Fuzz target: the safetensors reader (ps_st_open) and, on what it accepts,
 * the per-tensor reads and the native model loader (ps_model_load) on the
 * same bytes.  The input is the whole file, placed in a memfd so that the
 * reader maps it through a path as it maps a real file. */
#include "fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

#include "paramscope/model.h"
#include "paramscope/model_file.h"
#include "paramscope/safetensors.h"
#include "paramscope/tokenizer.h"

/* Larger tensors are not converted: the reader's checks are what is fuzzed,
 * and a 64 MB conversion per input would only slow the search. */
#define MAX_READ_FLOATS (1u << 16)

static void read_tensors(const ps_st_file *f)
{
    for (int i = 0; i < f->n_tensors; i++) {
        const ps_st_tensor *t = &f->tensors[i];
        /* promises of the header: offsets inside the data area, size = span */
        FUZZ_CHECK(t->begin <= t->end && f->data_start + t->end <= f->size);
        FUZZ_CHECK(t->numel * ps_dtype_size(t->dtype) == t->end - t->begin);
        FUZZ_CHECK(ps_st_find(f, t->name) != NULL);
        if (t->numel > MAX_READ_FLOATS)
            continue;
        float *dst = malloc((t->numel ? t->numel : 1) * sizeof *dst);
        if (!dst)
            return;
        ps_error err;
        ps_st_read_f32(f, t, dst, &err);
        free(dst);
    }
    for (int i = 0; i < f->n_meta; i++)
        FUZZ_CHECK(ps_st_meta(f, f->meta_keys[i]) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t)n;
    }
    ps_st_file *f = NULL;
    ps_error err;
    int rc = ps_st_open(&f, path, &err);
    fuzz_note("safetensors", rc, err.msg);
    if (rc == 0) {
        read_tensors(f);
        ps_st_close(f);
        ps_model *m = NULL;
        ps_tokenizer *tok = NULL;
        ps_meta meta = {0};
        rc = ps_model_load(&m, &tok, &meta, path, &err);
        fuzz_note("model_load", rc, err.msg);
        if (rc == 0) {
            ps_model_free(m);
            ps_tokenizer_free(tok);
            ps_meta_free(&meta);
        }
    } else {
        FUZZ_CHECK(f == NULL);
    }
    close(fd);
    return 0;
}
