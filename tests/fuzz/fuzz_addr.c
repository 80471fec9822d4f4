/* Fuzz target: the tensor-address parser (src/repl/addr.c) on the tiny
 * model.  What parses must render to a canonical name that parses back to
 * the same regions (addr.h's promise); completion runs on the same text. */
#include "fuzz.h"

#include <string.h>

#include "paramscope/model.h"
#include "paramscope/tokenizer.h"
#include "repl/addr.h"

static ps_model *model;
static ps_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (fuzz_tiny_model(&model, &tok))
        abort();
    return 0;
}

static void count_candidate(const char *candidate, void *ctx)
{
    FUZZ_CHECK(candidate != NULL);
    (*(int *)ctx)++;
}

static int same_regions(const addr_view *a, const addr_view *b)
{
    if (a->n_regions != b->n_regions)
        return 0;
    for (int i = 0; i < a->n_regions; i++) {
        const addr_region *x = &a->regions[i], *y = &b->regions[i];
        if (x->param != y->param || x->row0 != y->row0 || x->rows != y->rows ||
            x->col0 != y->col0 || x->cols != y->cols)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    if (!text)
        return 0;
    addr_view v, again;
    ps_error err;
    int parsed = addr_parse(model, tok, text, &v, &err);
    fuzz_note("addr", parsed, err.msg);
    if (parsed == 0) {
        size_t numel = addr_view_numel(&v);
        for (int r = 0; r < v.n_regions; r++) {
            const addr_region *reg = &v.regions[r];
            FUZZ_CHECK(reg->rows > 0 && reg->cols > 0);
            /* the window's last element lies inside its parameter */
            const float *last = addr_region_at(reg, reg->rows - 1, reg->cols - 1);
            FUZZ_CHECK(last >= reg->param->data && last < reg->param->data + reg->param->numel);
        }
        char name[ADDR_NAME_MAX];
        int need = addr_view_render(&v, tok, name, sizeof name);
        FUZZ_CHECK(need >= 0);
        if ((size_t)need < sizeof name) {
            int rc = addr_parse(model, tok, name, &again, &err);
            if (rc || !same_regions(&v, &again))
                fprintf(stderr, "'%s' renders as '%s', which %s\n", text, name,
                        rc ? err.msg : "names other regions");
            FUZZ_CHECK(rc == 0 && same_regions(&v, &again));
            FUZZ_CHECK(addr_view_numel(&again) == numel);
        }
    }
    int n = 0;
    FUZZ_CHECK(addr_complete(model, tok, text, count_candidate, &n) == n);
    free(text);
    return 0;
}
