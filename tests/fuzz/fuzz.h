/* tests/fuzz: what every libFuzzer target shares.
 *
 * A target defines LLVMFuzzerTestOneInput (and, when it needs a model or a
 * vocabulary, LLVMFuzzerInitialize).  The same file links two ways:
 * with -fsanitize=fuzzer in the clang fuzz build (-Dfuzz=true), where
 * libFuzzer supplies main(); and with driver.c in every build, where main()
 * feeds it the files of tests/fuzz/regressions/TARGET/ and corpus/TARGET/,
 * so that every crash found stays a test under gcc too.
 *
 * A target aborts (abort(), via FUZZ_CHECK) when the code under test breaks
 * a promise its header makes; sanitizers report everything else. */
#ifndef PARAMSCOPE_FUZZ_H
#define PARAMSCOPE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* With FUZZ_VERBOSE=1 in the environment, prints what the code under test
 * said about the input (rc and message), to see which checks seeds reach. */
void fuzz_note(const char *target, int rc, const char *msg);

/* The promise of ps_tokenizer_decode: encoding probe with tok and decoding
 * the ids gives probe back (when it encodes at all).  Frees tok. */
struct ps_tokenizer;
void fuzz_check_round_trip(struct ps_tokenizer *tok, const char *probe);

/* The input as a NUL-terminated copy (malloc'd), or NULL when out of memory
 * (the target then returns: nothing to test). */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* A fresh folder under $TMPDIR for the run's files; "" on failure.  Removed
 * (with the files a target registered by fuzz_tmp_file) at exit. */
const char *fuzz_tmp_dir(void);

/* DIR/NAME in a static buffer of the folder above, registered for removal. */
const char *fuzz_tmp_file(const char *name);

/* Writes size bytes to path (replacing it); 0 or -1. */
int fuzz_write_file(const char *path, const void *data, size_t size);

/* The tiny model the targets share: 1 layer, 2 heads, n_embd 8, n_ctx 8,
 * the words vocabulary below, weights from seed 5.  fuzz_tiny_save writes it
 * once to the folder above and returns its path ("" on failure). */
#define FUZZ_TINY_VOCAB 8
extern const char *const fuzz_tiny_words[FUZZ_TINY_VOCAB];
struct ps_model;
struct ps_tokenizer;
int fuzz_tiny_model(struct ps_model **m, struct ps_tokenizer **tok);
const char *fuzz_tiny_save(void);

/* A tiny GPT-2 BPE vocabulary: the 256 byte tokens in GPT-2's alphabet,
 * FUZZ_BPE_MERGES merged tokens ("Ġthe", "Ġsky", ...) and "<|endoftext|>",
 * as the texts of vocab.json and merges.txt (malloc'd; free both).  0 or -1. */
#define FUZZ_BPE_MERGES 8
#define FUZZ_BPE_VOCAB (256 + FUZZ_BPE_MERGES + 1)
int fuzz_gpt2_texts(char **vocab_json, char **merges);

/* A Hugging Face GPT-2 folder for that vocabulary (model.safetensors with
 * n_layer 1, n_embd 8, n_ctx 8; vocab.json; merges.txt), written once; its
 * path, or "" on failure. */
const char *fuzz_hf_folder(void);

#endif
