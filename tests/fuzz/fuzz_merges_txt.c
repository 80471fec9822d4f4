/* Fuzz target: merges.txt (vocab.bpe) of GPT-2's BPE, against a fixed tiny
 * vocabulary (fuzz_gpt2_texts: the 256 byte tokens and a few merged ones).
 * What loads must encode and decode a fixed text back to its bytes. */
#include "fuzz.h"

#include <string.h>

#include "paramscope/tokenizer.h"

static char *vocab;
static const char probe[] = " the sky is, this sky\xff the";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *merges;
    if (fuzz_gpt2_texts(&vocab, &merges))
        abort();
    free(merges);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ps_tokenizer *tok = NULL;
    ps_error err;
    int rc = ps_tokenizer_from_gpt2(&tok, vocab, strlen(vocab), (const char *)data,
                                    size, &err);
    fuzz_note("merges_txt", rc, err.msg);
    if (rc) {
        FUZZ_CHECK(tok == NULL);
        return 0;
    }
    ps_tokens t = {0};
    if (ps_tokenizer_encode(tok, probe, &t, &err) == 0) {
        char *back = ps_tokenizer_decode(tok, t.ids, t.n);
        FUZZ_CHECK(!back || strcmp(back, probe) == 0);
        free(back);
        ps_tokens_free(&t);
    }
    ps_tokenizer_free(tok);
    return 0;
}
