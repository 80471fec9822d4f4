/* Fuzz target: the words tokenizer.  Each input is encoded with the tiny
 * model's vocabulary and decoded again, and is also used as a corpus to
 * build a vocabulary from and as the JSON vocabulary a model file stores. */
#include "fuzz.h"

#include <string.h>

#include "paramscope/tokenizer.h"

static ps_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (ps_tokenizer_from_list(&tok, (const char *const *)fuzz_tiny_words,
                               FUZZ_TINY_VOCAB, NULL))
        abort();
    return 0;
}

/* Every piece encodes to its id, or to <unk> and is marked unknown. */
static void check_tokens(const ps_tokenizer *t, const ps_tokens *toks)
{
    int unknown = 0;
    for (int i = 0; i < toks->n; i++) {
        FUZZ_CHECK(toks->ids[i] >= 0 && toks->ids[i] < ps_tokenizer_vocab_size(t));
        if (toks->unknown[i]) {
            FUZZ_CHECK(toks->ids[i] == 0);
            unknown++;
        } else {
            FUZZ_CHECK(strcmp(ps_tokenizer_token(t, toks->ids[i]), toks->pieces[i]) == 0);
        }
    }
    FUZZ_CHECK(unknown == toks->n_unknown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    if (!text)
        return 0;
    ps_error err;
    ps_tokens t = {0};
    if (ps_tokenizer_encode(tok, text, &t, &err) == 0) {
        check_tokens(tok, &t);
        free(ps_tokenizer_decode(tok, t.ids, t.n));
        ps_tokens_free(&t);
    }

    /* a vocabulary built from the text knows every piece of it */
    ps_tokenizer *built = NULL;
    if (ps_tokenizer_build_words(&built, text, strlen(text), 1, &err) == 0) {
        ps_tokens bt = {0};
        if (ps_tokenizer_encode(built, text, &bt, &err) == 0) {
            check_tokens(built, &bt);
            FUZZ_CHECK(bt.n_unknown == 0);
            ps_tokens_free(&bt);
        }
        char *json = ps_tokenizer_to_json(built);
        ps_tokenizer *again = NULL;
        if (json && ps_tokenizer_from_json(&again, json, &err) == 0) {
            FUZZ_CHECK(ps_tokenizer_vocab_size(again) == ps_tokenizer_vocab_size(built));
            ps_tokenizer_free(again);
        }
        free(json);
        ps_tokenizer_free(built);
    }

    ps_tokenizer *parsed = NULL;
    if (ps_tokenizer_from_json(&parsed, text, &err) == 0)
        ps_tokenizer_free(parsed);
    free(text);
    return 0;
}
