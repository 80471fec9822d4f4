/* paramscope — the native model file: a safetensors file holding a GPT-2
 * model, its configuration and its tokenizer.
 *
 * The header's __metadata__ carries
 *   format        "paramscope"
 *   architecture  "gpt2"
 *   n_layer, n_head, n_embd, n_ctx, vocab_size   decimal integers
 *   tokenizer     "words" or "gpt2-bpe"
 *   vocab         words: the vocabulary as a JSON array, index = id
 *   bpe_vocab     gpt2-bpe: the text of GPT-2's vocab.json (encoder.json)
 *   bpe_merges    gpt2-bpe: the text of GPT-2's merges.txt (vocab.bpe)
 * and any other keys (by convention "train.step", "train.seed", ...), which
 * are handed to the caller as a ps_meta and written back unchanged.
 *
 * The tensors are the model's parameters, named and shaped as in GPT-2's own
 * safetensors files (see design.md), written as F32 in the order of the
 * model's parameter table.  Loading also accepts F16, BF16 and F64 tensors,
 * converted to float32.
 *
 * A file of at most PS_ST_COPY_MAX bytes (256 MiB; the bundled model is
 * 3.4 MB) is read into memory of its own when loaded, so that another
 * program truncating or rewriting it later changes nothing here.  A larger
 * file whose parameters are all F32 at 4-byte aligned offsets (every file
 * ps_model_save writes) is not copied: the model's arena is the file's data
 * area, mapped privately and writable (ps_st_map_private), so loading costs
 * about the header, pages are read when first touched, an edit copies only
 * the pages it changes, and the file itself never changes.  The mapping is
 * released by ps_model_free.  Such a file must not be truncated or
 * rewritten in place while the model is open (replacing it by rename, as
 * ps_model_save does, is safe); ps_model_file_check tells whether it was. */
#ifndef PARAMSCOPE_MODEL_FILE_H
#define PARAMSCOPE_MODEL_FILE_H

#include "paramscope/error.h"
#include "paramscope/model.h"
#include "paramscope/tokenizer.h"

/* Extra metadata: ordered key -> value pairs, all strings owned by the
 * struct.  A zeroed ps_meta ({0}) is empty and ready to use. */
typedef struct ps_meta {
    int n;
    char **keys;              /* [n] */
    char **vals;              /* [n] */
} ps_meta;

/* Value for key, or NULL.  meta may be NULL. */
const char *ps_meta_get(const ps_meta *meta, const char *key);

/* Sets key to a copy of val, replacing an existing value in place or
 * appending.  PS_ERR_INVALID for a NULL key or value, PS_ERR_NOMEM. */
int ps_meta_set(ps_meta *meta, const char *key, const char *val);

/* Frees the members and leaves meta empty; NULL does nothing. */
void ps_meta_free(ps_meta *meta);

/* 1 when key is one the file format sets itself (format, architecture, the
 * five sizes, tokenizer, vocab, bpe_vocab, bpe_merges): such keys never
 * appear in a ps_meta. */
int ps_meta_key_reserved(const char *key);

/* Loads and validates a model file.
 *
 * On success *model (free with ps_model_free) holds the parameters, *tok
 * (free with ps_tokenizer_free) the tokenizer, and *meta every metadata key
 * that is not reserved.  tok and meta may be NULL when the caller does not
 * want them (the vocabulary is still checked).  *meta is overwritten: its
 * previous contents are not freed.  On failure the out-pointers are NULL,
 * *meta is empty, and err holds one line naming the file and the item:
 *   PS_ERR_IO      the file cannot be read
 *   PS_ERR_FORMAT  anything wrong with its contents: not a safetensors
 *                  file, wrong format/architecture, a missing or garbled
 *                  size, an inconsistent config (n_embd % n_head), a
 *                  vocabulary that disagrees with vocab_size or with
 *                  wte.weight's rows, a missing parameter, one whose shape
 *                  contradicts the config, an unexpected tensor, a dtype
 *                  that is not a float
 *   PS_ERR_NOMEM
 * Files whose config asks for far more parameters than the file's tensors
 * hold are refused before the model is allocated. */
int ps_model_load(ps_model **model, ps_tokenizer **tok, ps_meta *meta,
                  const char *path, ps_error *err);

/* PS_OK when m does not depend on a file that changed since it was loaded:
 * always for a model in memory of its own (a copied file, a new model);
 * for a mapped file, when its size and modification time are those it had.
 * PS_ERR_STATE "PATH: changed on disk since it was opened (...)" when not:
 * values not yet edited may then no longer be the ones loaded, so a caller
 * must not call them "the file's values" (diff, reset). */
int ps_model_file_check(const ps_model *m, ps_error *err);

/* Saves m's parameters (F32), its config, tok's vocabulary (words) or
 * vocabulary and merges (gpt2-bpe) and the pairs in meta (may be NULL)
 * atomically to path (see ps_st_write: an existing file is replaced only
 * when the new one is complete).  Saving over the file m is mapped from is
 * safe: the mapping keeps the old file's pages.
 *   PS_ERR_INVALID  tok's vocabulary size is not m's vocab_size, meta uses a
 *                   reserved key, or tok is of a kind this build cannot
 *                   write
 *   PS_ERR_IO       the file cannot be written; PS_ERR_NOMEM */
int ps_model_save(const ps_model *m, const ps_tokenizer *tok, const ps_meta *meta,
                  const char *path, ps_error *err);

/* What ps_model_save would refuse without writing anything: the arguments,
 * and a header over PS_ST_HEADER_MAX (a vocabulary of millions of tokens),
 * for checking before hours of training rather than after.  The target
 * itself is ps_file_check_target's business. */
int ps_model_check_savable(const ps_model *m, const ps_tokenizer *tok, const ps_meta *meta,
                           const char *path, ps_error *err);

#endif
