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
 * step and generator state; errors name the key. */
int ps_train_state_from_meta(const ps_meta *meta, const char *path, ps_train_config *cfg,
                             long *step, uint64_t rng[4], ps_error *err);

/* Saves or loads the optimizer moments at model_path + ".state". */
int ps_train_state_save(const ps_trainer *t, const char *model_path, ps_error *err);
int ps_train_state_load(ps_trainer *t, const char *model_path, long step, ps_error *err);

/* FNV-1a over the token ids: ties a run to its data. */
unsigned long long ps_tokens_digest(const int *ids, size_t n);

#endif
