/* paramscope — GPT-2 checkpoints as Hugging Face publishes them (gpt2,
 * gpt2-medium, gpt2-large, gpt2-xl, distilgpt2), opened as they are.
 *
 * A checkpoint is a directory holding
 *   model.safetensors          the weights (required)
 *   vocab.json, merges.txt     GPT-2's byte-level BPE (required; the names of
 *                              OpenAI's release, encoder.json and vocab.bpe,
 *                              are accepted too)
 *   config.json                the sizes (optional): n_layer, n_head, n_embd,
 *                              n_positions (or n_ctx), vocab_size
 * or the path of a .safetensors file whose directory holds the rest.  Any
 * of these names that is there but not a regular file (a folder, a FIFO)
 * is refused naming it ("DIR/config.json: is a FIFO, not a regular file"),
 * never taken for absent and never opened.
 *
 * Tensor names may carry the "transformer." prefix (GPT2LMHeadModel) or not
 * (GPT2Model).  "h.N.attn.bias" and "h.N.attn.masked_bias" are the causal
 * mask buffers: ignored.  "lm_head.weight" may be absent (tied) or present;
 * paramscope's model ties the head to wte, so a present head must be
 * bitwise equal to wte.weight, else the checkpoint is refused.
 *
 * Without config.json the sizes come from the tensors: vocab_size and n_embd
 * from wte.weight, n_ctx from wpe.weight's rows, n_layer from the highest
 * "h.N." index, and n_head from the width as in GPT-2's releases (768: 12,
 * 1024: 16, 1280: 20, 1600: 25) unless the options give it.  With
 * config.json, every size it gives must agree with the tensors.
 *
 * Parameters stored as F32 (at 4-byte aligned offsets, as every writer
 * produces) are not copied: the model's arena is the file's data area,
 * mapped privately and writable (ps_st_map_private), so opening costs about
 * the header and an edit copies only the pages it touches.  The mapping is
 * released by ps_model_free.  F16, BF16 and F64 parameters are converted
 * into an arena of the model's own. */
#ifndef PARAMSCOPE_HF_GPT2_H
#define PARAMSCOPE_HF_GPT2_H

#include "paramscope/error.h"
#include "paramscope/model.h"
#include "paramscope/safetensors.h"
#include "paramscope/tokenizer.h"

typedef struct ps_hf_options {
    int heads;                /* n_head; 0: from config.json or the width.
                                 Must agree with config.json when it has one. */
} ps_hf_options;

/* What was opened, for `info` and messages.  Strings are malloc'd. */
typedef struct ps_hf_info {
    char *weights;            /* the .safetensors file */
    char *vocab;              /* vocab.json or encoder.json */
    char *merges;             /* merges.txt or vocab.bpe */
    char *config;             /* config.json, or NULL when there was none */
    long long weights_bytes;  /* size of the weights file */
    ps_dtype dtype;           /* of wte.weight */
    int mapped;               /* 1: parameters live in the file's mapping */
    int has_lm_head;          /* 1: lm_head.weight was stored (equal to wte) */
    int prefixed;             /* 1: names carried "transformer." */
} ps_hf_info;

/* Frees the strings and zeroes info; NULL does nothing. */
void ps_hf_info_free(ps_hf_info *info);

/* 1 when path should be opened by ps_hf_gpt2_load rather than as a native
 * model file: a directory, or a safetensors file whose metadata 'format' is
 * not "paramscope" and whose directory holds vocab.json or encoder.json.
 * 0 otherwise, including when path cannot be read (the native loader then
 * says why). */
int ps_hf_gpt2_probe(const char *path);

/* Opens the checkpoint at path (a directory or a .safetensors file).
 *
 * On success *model (free with ps_model_free) holds the parameters and *tok
 * (free with ps_tokenizer_free) the GPT-2 BPE tokenizer; tok may be NULL when
 * it is not wanted (it is still loaded and checked against vocab_size).
 * info (may be NULL) is filled on success and zeroed on failure.  opt may be
 * NULL.  On failure the out-pointers are NULL and err holds one line naming
 * the file and the item:
 *   PS_ERR_IO      the directory, the weights or a tokenizer file cannot be
 *                  read or is missing ("DIR: no model.safetensors")
 *   PS_ERR_FORMAT  the contents: not a valid safetensors file, a missing
 *                  parameter, a shape that contradicts the sizes, an
 *                  unexpected tensor, a dtype that is not a float, an
 *                  lm_head.weight that is not wte.weight, a config.json that
 *                  is not JSON or disagrees with the tensors, a width with no
 *                  known head count and no config.json or option, a
 *                  vocabulary whose size is not wte.weight's rows
 *   PS_ERR_INVALID opt->heads negative or not dividing n_embd
 *   PS_ERR_NOMEM */
int ps_hf_gpt2_load(ps_model **model, ps_tokenizer **tok, ps_hf_info *info,
                    const char *path, const ps_hf_options *opt, ps_error *err);

#endif
