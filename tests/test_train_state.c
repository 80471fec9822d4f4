/* Saving and resuming a training run: every saved number range-checked, and
 * the model and its .state saved so that they always match, including the
 * moment between the two renames that a kill -9 rarely hits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paramscope/blas.h"
#include "paramscope/model_file.h"
#include "repl/train_state.h"
#include "support/files.h"

static const ps_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 16, .n_ctx = 8, .vocab_size = 6};
static const char *const vocab[6] = {"<unk>", "a", "b", "c", "d", "e"};
static char dir[64];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ps_ts_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

typedef struct run {
    ps_model *m;
    ps_tokenizer *tok;
    ps_trainer *t;
    int ids[200];
} run;

static void run_start(run *r, uint64_t seed)
{
    assert_int_equal(ps_model_init(&r->m, &cfg, NULL), 0);
    ps_model_init_random(r->m, seed);
    assert_int_equal(ps_tokenizer_from_list(&r->tok, vocab, 6, NULL), 0);
    for (int i = 0; i < 200; i++)
        r->ids[i] = 1 + (i * 7 + (int)seed) % 5;
    ps_train_config c = ps_train_defaults(r->m);
    c.batch = 2;
    c.seq = 8;
    c.seed = seed;
    assert_int_equal(ps_trainer_init(&r->t, r->m, r->ids, 200, &c, NULL), 0);
}

static void run_steps(run *r, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(ps_trainer_step(r->t, NULL), 0);
}

static void run_save(run *r, const char *path)
{
    ps_meta meta = {0};
    ps_error err = {0};
    assert_int_equal(ps_train_state_to_meta(r->t, &meta, &err), 0);
    if (ps_train_save_run(r->t, r->tok, &meta, path, &err))
        fail_msg("save: %s", err.msg);
    ps_meta_free(&meta);
}

static void run_end(run *r)
{
    ps_trainer_free(r->t);
    ps_model_free(r->m);
    ps_tokenizer_free(r->tok);
}

static char *path_in(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void copy(const char *from, const char *to)
{
    assert_int_equal(support_copy_file(from, to), 0);
}

/* The model file's train.state_id and step. */
static void saved_id(const char *path, char id[32], long *step)
{
    ps_model *m = NULL;
    ps_meta meta = {0};
    assert_int_equal(ps_model_load(&m, NULL, &meta, path, NULL), 0);
    snprintf(id, 32, "%s", ps_meta_get(&meta, "train.state_id"));
    *step = atol(ps_meta_get(&meta, "train.step"));
    ps_meta_free(&meta);
    ps_model_free(m);
}

/* ---- range checks ---- */

static void test_metadata_ranges(void **state)
{
    (void)state;
    run r = {0};
    run_start(&r, 1);
    ps_meta good = {0};
    assert_int_equal(ps_train_state_to_meta(r.t, &good, NULL), 0);
    static const char *const bad[][2] = {
        {"train.lr", "-1"}, {"train.clip", "-1"}, {"train.seed", "1e300"},
        {"train.warmup", "-1e30"}, {"train.decay_steps", "nan"}, {"train.batch", "-2147483648"},
        {"train.seq", "2.5"}, {"train.step", "inf"}, {"train.beta1", "1.5"},
        {"train.seed", "9223372036854775808"}, {"train.val_fraction", "0.9"},
        {"train.step_size", "0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ps_meta m = {0};
        for (int k = 0; k < good.n; k++)
            assert_int_equal(ps_meta_set(&m, good.keys[k], good.vals[k]), 0);
        assert_int_equal(ps_meta_set(&m, bad[i][0], bad[i][1]), 0);
        ps_train_config c = ps_train_defaults(r.m);
        long step;
        uint64_t rng[4];
        ps_error err = {0};
        assert_int_equal(ps_train_state_from_meta(&m, "m.safetensors", &c, &step, rng, &err),
                         PS_ERR_FORMAT);
        char want[160];
        snprintf(want, sizeof want, "m.safetensors: metadata '%s' is '%s': must be", bad[i][0],
                 bad[i][1]);
        if (strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("%s = %s: \"%s\"", bad[i][0], bad[i][1], err.msg);
        ps_meta_free(&m);
    }
    /* the good values read back */
    ps_train_config c = ps_train_defaults(r.m);
    long step;
    uint64_t rng[4];
    assert_int_equal(ps_train_state_from_meta(&good, "m.safetensors", &c, &step, rng, NULL), 0);
    assert_int_equal(c.batch, 2);
    ps_meta_free(&good);
    run_end(&r);
}

/* ---- the pair ---- */

/* Killed between the model's rename and the state's: the model names the
 * new id, PATH.state is the old one, PATH.state.ID the new: loading takes
 * the new one and finishes the save; without it, the mismatch is refused. */
static void test_pair_between_renames(void **state)
{
    (void)state;
    char path[256], sp[256], old[256];
    snprintf(path, sizeof path, "%s", path_in("m.safetensors"));
    snprintf(sp, sizeof sp, "%s", path_in("m.safetensors.state"));
    snprintf(old, sizeof old, "%s", path_in("old.state"));
    run r = {0};
    run_start(&r, 3);
    run_steps(&r, 2);
    run_save(&r, path);
    copy(sp, old);
    run_steps(&r, 1);
    run_save(&r, path);
    char id[32];
    long step;
    saved_id(path, id, &step);
    assert_int_equal(step, 3);
    char pending[300];
    snprintf(pending, sizeof pending, "%s.%s", sp, id);
    assert_int_equal(access(pending, F_OK), -1);          /* a finished save leaves none */

    /* as a kill between the renames leaves it */
    copy(sp, pending);
    copy(old, sp);
    run r2 = {0};
    run_start(&r2, 3);
    ps_error err = {0};
    if (ps_train_state_load(r2.t, path, step, id, &err))
        fail_msg("resume after a kill between the renames: %s", err.msg);
    assert_int_equal(r2.t->opt->step, r.t->opt->step);
    assert_memory_equal(r2.t->opt->m, r.t->opt->m, r.m->n_floats * sizeof(float));
    assert_int_equal(access(pending, F_OK), -1);           /* moved into place */

    /* the old state alone does not match the new model */
    copy(old, sp);
    int mrc = ps_train_state_load(r2.t, path, step, id, &err);
    if (mrc != PS_ERR_FORMAT)
        fail_msg("mismatch: status %d, \"%s\"", mrc, err.msg);
    if (!strstr(err.msg, "belongs to another save") || strchr(err.msg, '\n'))
        fail_msg("mismatch: \"%s\"", err.msg);
    run_end(&r2);

    /* a stray PATH.state.ID of a save killed before its commit is removed by
     * the next save, and the same run saves the same id */
    char stray[300];
    snprintf(stray, sizeof stray, "%s.0123456789abcdef", sp);
    copy(sp, stray);
    run_save(&r, path);
    char id2[32];
    saved_id(path, id2, &step);
    assert_string_equal(id2, id);
    assert_int_equal(access(stray, F_OK), -1);
    run_end(&r);
}

/* A target that is not a regular file, or a name without room for the
 * temporary names, is refused before anything is written. */
static void test_check_target(void **state)
{
    (void)state;
    ps_error err = {0};
    assert_int_equal(ps_train_check_target(dir, &err), PS_ERR_IO);
    assert_non_null(strstr(err.msg, "is a directory"));
    char longname[300];
    memset(longname, 'n', 240);
    longname[240] = '\0';
    assert_int_equal(ps_train_check_target(path_in(longname), &err), PS_ERR_IO);
    assert_non_null(strstr(err.msg, "too long for its temporary file"));
    const char *fifo = path_in("f.safetensors.state");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(ps_train_check_target(path_in("f.safetensors"), &err), PS_ERR_IO);
    assert_non_null(strstr(err.msg, "is a FIFO"));
}

int main(void)
{
    ps_blas_init(1, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_ranges),
        cmocka_unit_test(test_pair_between_renames),
        cmocka_unit_test(test_check_target),
    };
    return cmocka_run_group_tests_name("train_state", tests, setup, teardown);
}
