/* engine/tokenizer_internal: how tokenizer_words.c (which owns the
 * ps_tokenizer object and the dispatch on its kind) reaches the GPT-2 BPE
 * kind in tokenizer_bpe.c.  Not part of the public API. */
#ifndef PARAMSCOPE_TOKENIZER_INTERNAL_H
#define PARAMSCOPE_TOKENIZER_INTERNAL_H

#include <stddef.h>

#include "paramscope/tokenizer.h"

typedef struct ps_bpe ps_bpe;   /* GPT-2's vocabulary, merges and cache */

/* tokenizer_words.c: a tokenizer of kind PS_TOKENIZER_KIND_GPT2_BPE that
 * owns bpe, or NULL when out of memory (bpe is then not freed). */
ps_tokenizer *ps_tokenizer_wrap_bpe(ps_bpe *bpe);

/* tokenizer_bpe.c: the BPE kind's side of each dispatch in tokenizer_words.c;
 * each has the contract of the public function of the same suffix. */
void ps_bpe_free(ps_bpe *bpe);
int ps_bpe_vocab_size(const ps_bpe *bpe);
int ps_bpe_find(const ps_bpe *bpe, const char *piece);
const char *ps_bpe_token(const ps_bpe *bpe, int id);
int ps_bpe_encode(const ps_bpe *bpe, const char *text, size_t len,
                  ps_tokens *out, ps_error *err);
char *ps_bpe_decode(const ps_bpe *bpe, const int *ids, int n);

/* tokenizer_bpe_load.c: vocab.json's and merges.txt's texts (malloc'd). */
int ps_bpe_to_text(const ps_bpe *bpe, char **vocab_json, char **merges,
                   ps_error *err);

#endif
