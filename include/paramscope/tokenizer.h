/* paramscope — tokenizers.  One interface; two kinds:
 *
 *  words     the bundled models' tokenizer.  Rule: the text is lowercased
 *            (ASCII); a token is a run of letters (an apostrophe between
 *            letters stays inside: "don't"), a run of digits, or one
 *            punctuation character; white space separates and is dropped.
 *            Id 0 is "<unk>", which stands for any word outside the
 *            vocabulary.  Decoding joins tokens with single spaces, with no
 *            space before , . ! ? ; : ' ) or after (.
 *  gpt2-bpe  GPT-2's byte-level BPE, loaded from GPT-2's vocabulary files
 *            (ps_tokenizer_load_gpt2 below; docs/tokenizer-gpt2.md).
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

/* ---- gpt2-bpe ----
 * GPT-2's encoder exactly: the text is split by GPT-2's pre-tokenization
 * pattern and each piece's bytes are merged by rank.  Every byte string
 * encodes (bytes that are not valid UTF-8 are characters of their own; there
 * are no unknown tokens), and decoding returns exactly the bytes encoded.
 * One difference from GPT-2's reference encoder: the literal text
 * "<|endoftext|>" (any vocabulary entry of the form "<|...|>") encodes as its
 * special id (50256), not as ordinary tokens.  For this kind:
 *   ps_tokenizer_token    the token's bytes, NUL-terminated, leading space
 *                         and all (" the"); a token holding part of a UTF-8
 *                         character is not valid UTF-8 by itself; the token
 *                         of byte 0 reads as "".
 *   ps_tokenizer_find     the id of the vocabulary's spelling ("Ġthe") or,
 *                         if there is none, of the bytes (" the").
 *   ps_tokens             pieces are each token's bytes; unknown is all 0.
 *   ps_tokenizer_decode   the ids' bytes joined; out of range: "<?>".
 *   ps_tokenizer_to_json  NULL: the vocabulary lives in its two files.
 * Encoding, decoding and lookups may run on several threads at once. */

/* Loads encoder.json (Hugging Face's vocab.json: a JSON object of token
 * spelling to id, ids 0 .. n-1 each once, every spelling in GPT-2's byte
 * alphabet, every byte a token) and vocab.bpe (merges.txt: an optional
 * "#version" first line, then one merge "a b" a line, best first; both parts
 * and their join must be tokens).  On failure *out is NULL and err names the
 * file and the entry or line. */
int ps_tokenizer_load_gpt2(ps_tokenizer **out, const char *vocab_json_path,
                           const char *merges_path, ps_error *err);

/* The same from the two files' contents (lengths given, no NUL needed);
 * messages say "vocabulary" and "merges" where they would name the files. */
int ps_tokenizer_from_gpt2(ps_tokenizer **out, const char *vocab_json,
                           size_t vocab_len, const char *merges,
                           size_t merges_len, ps_error *err);

/* gpt2-bpe: the vocabulary and the merges as the texts of vocab.json and
 * merges.txt (malloc'd, NUL-terminated; free both), from which
 * ps_tokenizer_from_gpt2 builds the same tokenizer: what a model file stores.
 * PS_ERR_INVALID for a tokenizer of another kind, PS_ERR_NOMEM. */
int ps_tokenizer_gpt2_text(const ps_tokenizer *tok, char **vocab_json,
                           char **merges, ps_error *err);

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
