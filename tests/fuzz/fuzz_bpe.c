/* Fuzz target: GPT-2's BPE encoder on arbitrary bytes, with the tiny
 * vocabulary of fuzz_gpt2_texts built once.  The header promises that every
 * byte string encodes and decodes back to exactly its bytes ("<|endoftext|>"
 * included, as its special id), and that every id is in range. */
#include "fuzz.h"

#include <string.h>

#include "paramscope/tokenizer.h"

static ps_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *vocab, *merges;
    if (fuzz_gpt2_texts(&vocab, &merges) ||
        ps_tokenizer_from_gpt2(&tok, vocab, strlen(vocab), merges, strlen(merges), NULL))
        abort();
    free(vocab);
    free(merges);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    if (!text)
        return 0;
    ps_tokens t = {0};
    ps_error err;
    int rc = ps_tokenizer_encode(tok, text, &t, &err);
    FUZZ_CHECK(rc == 0 || rc == PS_ERR_NOMEM);
    if (rc == 0) {
        FUZZ_CHECK(t.n_unknown == 0);
        for (int i = 0; i < t.n; i++)
            FUZZ_CHECK(t.ids[i] >= 0 && t.ids[i] < FUZZ_BPE_VOCAB);
        char *back = ps_tokenizer_decode(tok, t.ids, t.n);
        FUZZ_CHECK(!back || strcmp(back, text) == 0);
        free(back);
        ps_tokens_free(&t);
    }
    free(text);
    return 0;
}
