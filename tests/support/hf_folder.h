/* Test support: a Hugging Face GPT-2 folder written from a model's values by
 * an independent raw writer (not paramscope's), with a tiny byte-level BPE
 * vocabulary: the 256 bytes, "Ġt", "he", "Ġthe" and <|endoftext|>.  Tests of
 * code that reads such folders use it instead of copying a writer. */
#ifndef PARAMSCOPE_TESTS_SUPPORT_HF_FOLDER_H
#define PARAMSCOPE_TESTS_SUPPORT_HF_FOLDER_H

#include "paramscope/model.h"

#define SUPPORT_BPE_VOCAB 260     /* vocab_size a model needs for the vocabulary */

/* Writes config.json, model.safetensors (F32; names with "transformer." in
 * front when prefix is set), vocab.json and merges.txt into the existing
 * folder dir.  Returns 0, or -1 if a file could not be written. */
int support_write_hf_folder(const char *dir, const ps_model *m, int prefix);

/* Only the vocabulary (vocab_name, e.g. "vocab.json" or "encoder.json") and
 * the merges (merges_name, "merges.txt" or "vocab.bpe"); NULL leaves that file
 * out.  Returns 0 or -1. */
int support_write_bpe_tokenizer(const char *dir, const char *vocab_name, const char *merges_name);

#endif
