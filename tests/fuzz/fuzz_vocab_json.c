/* Fuzz target: vocab.json (encoder.json) of GPT-2's BPE.  Each input is the
 * vocabulary, with merges.txt holding only its version line, so that every
 * check of the vocabulary is reached; what loads must then encode and decode
 * a fixed text back to its bytes. */
#include "fuzz.h"

#include <string.h>

#include "paramscope/tokenizer.h"

static const char merges[] = "#version: 0.2\n";
static const char probe[] = "The sky is blue, isn't it? 123 \xe6\x9d\xb1\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ps_tokenizer *tok = NULL;
    ps_error err;
    int rc = ps_tokenizer_from_gpt2(&tok, (const char *)data, size, merges,
                                    sizeof merges - 1, &err);
    fuzz_note("vocab_json", rc, err.msg);
    if (rc) {
        FUZZ_CHECK(tok == NULL);
        return 0;
    }
    fuzz_check_round_trip(tok, probe);
    return 0;
}
