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
    fuzz_check_round_trip(tok, probe);
    return 0;
}
