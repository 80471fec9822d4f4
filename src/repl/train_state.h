/* paramscope — saving and restoring a training run: the settings and the data
 * position go into the model file's train.* metadata, the optimizer's moments
 * into a companion file PATH.state (safetensors: m.NAME and v.NAME tensors),
 * so that a resumed run continues exactly where the saved one stopped. */
#ifndef PARAMSCOPE_REPL_TRAIN_STATE_H
#define PARAMSCOPE_REPL_TRAIN_STATE_H

#include "paramscope/model_file.h"
#include "paramscope/trainer.h"

/* Writes the trainer's settings, step and generator state into meta. */
int ps_train_state_to_meta(const ps_trainer *t, ps_meta *meta, ps_error *err);

/* Reads the settings saved by ps_train_state_to_meta into cfg, and the
 * step and generator state.  Every number is range-checked before it is
 * converted; errors name the file, the key and the value:
 *   "m.safetensors: metadata 'train.lr' is '-1': must be a number in [0, 100]" */
int ps_train_state_from_meta(const ps_meta *meta, const char *path, ps_train_config *cfg,
                             long *step, uint64_t rng[4], ps_error *err);

/* Checks before any training that model_path and model_path.state can be
 * written (ps_file_check_target, with room for the longer names a save
 * uses).  PS_ERR_IO naming the file and the reason. */
int ps_train_check_target(const char *model_path, ps_error *err);

/* Saves t's model (with tok and meta, to which train.state_id is added) at
 * path and the optimizer's moments at path.state, so that a failure or a
 * kill at any moment leaves the previous pair intact and matching (see
 * train_state.c for how).  Nothing but a regular file or a new name is
 * replaced. */
int ps_train_save_run(const ps_trainer *t, const ps_tokenizer *tok, ps_meta *meta,
                      const char *path, ps_error *err);

/* Loads the optimizer moments saved with the model at model_path, whose
 * metadata said step and train.state_id id (NULL for files saved before
 * ids).  A state of another save is refused naming both ids. */
int ps_train_state_load(ps_trainer *t, const char *model_path, long step, const char *id,
                        ps_error *err);

/* FNV-1a over the token ids: ties a run to its data. */
unsigned long long ps_tokens_digest(const int *ids, size_t n);

#endif
