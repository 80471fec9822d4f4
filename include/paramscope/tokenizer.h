/* paramscope — tokenizers.  One interface; two kinds:
 *
 *  words     the bundled models' tokenizer.  Rule: the text is lowercased
 *            (ASCII); a token is a run of letters (an apostrophe between
 *            letters stays inside: "don't"), a run of digits, or one
 *            punctuation character; white space separates and is dropped.
 *            Id 0 is "<unk>", which stands for any word outside the
 *            vocabulary.  Decoding joins tokens with single spaces, with no
 *            space before , . ! ? ; : ' ) or after (.
 *  gpt2-bpe  GPT-2's byte-level BPE (a later issue).
 */
#ifndef PARAMSCOPE_TOKENIZER_H
#define PARAMSCOPE_TOKENIZER_H

#include <stddef.h>

#include "paramscope/error.h"

typedef struct ps_tokenizer ps_tokenizer;   /* opaque */

typedef enum ps_tokenizer_kind {
    PS_TOKENIZER_KIND_WORDS,
    PS_TOKENIZER_KIND_GPT2_BPE,
} ps_tokenizer_kind;

/* The result of encoding: ids and, per token, the piece of input it came from
 * and whether it was unknown. */
typedef struct ps_tokens {
    int n;
    int *ids;                 /* [n] */
    char **pieces;            /* [n] the normalised text of each token */
    unsigned char *unknown;   /* [n] 1 where the piece is not in the vocabulary */
    int n_unknown;
} ps_tokens;

void ps_tokens_free(ps_tokens *t);   /* frees the members, not t */

/* Builds a words vocabulary from a corpus: "<unk>" first, then every token
 * occurring at least min_count times, most frequent first (ties in byte
 * order), so the result depends only on the text. */
int ps_tokenizer_build_words(ps_tokenizer **out, const char *text, size_t len,
                             int min_count, ps_error *err);

/* A words tokenizer from a list; tokens[0] must be "<unk>"; no duplicates. */
int ps_tokenizer_from_list(ps_tokenizer **out, const char *const *tokens,
                           int n, ps_error *err);

/* The words vocabulary as a JSON array string (malloc'd), and back. */
char *ps_tokenizer_to_json(const ps_tokenizer *tok);
int ps_tokenizer_from_json(ps_tokenizer **out, const char *json, ps_error *err);

void ps_tokenizer_free(ps_tokenizer *tok);

ps_tokenizer_kind ps_tokenizer_kind_of(const ps_tokenizer *tok);
const char *ps_tokenizer_kind_name(const ps_tokenizer *tok);   /* "words" */
int ps_tokenizer_vocab_size(const ps_tokenizer *tok);

/* Id of an exact token string, or -1. */
int ps_tokenizer_find(const ps_tokenizer *tok, const char *piece);

/* A token's text for display, or NULL if id is out of range. */
const char *ps_tokenizer_token(const ps_tokenizer *tok, int id);

/* Encodes text; out is overwritten (free with ps_tokens_free). */
int ps_tokenizer_encode(const ps_tokenizer *tok, const char *text,
                        ps_tokens *out, ps_error *err);

/* Decodes ids to a malloc'd string; ids out of range become "<?>". */
char *ps_tokenizer_decode(const ps_tokenizer *tok, const int *ids, int n);

/* Splits text by the words rule without a vocabulary: calls fn for each piece
 * (NUL-terminated, lowercased).  Used for vocabulary building and corpora. */
void ps_words_split(const char *text, size_t len,
                    void (*fn)(const char *piece, void *ctx), void *ctx);

#endif
