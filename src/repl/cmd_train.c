/* `paramscope train`: trains a model on a text file, from scratch, from an
 * existing model, or resuming a saved run exactly. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "paramscope/blas.h"
#include "paramscope/corpus.h"
#include "repl/common.h"
#include "repl/subcommands.h"
#include "repl/train_state.h"

static const char train_usage[] =
    "usage: paramscope train [--data FILE] [--out FILE] [--init MODEL | --layers L --heads H --embd C --ctx T]\n"
    "                        [--steps N] [--batch B] [--seq T] [--lr X] [--optimizer sgd|momentum|adam|adamw]\n"
    "                        [--schedule constant|cosine|step] [--warmup N] [--decay-steps N] [--min-lr X]\n"
    "                        [--weight-decay X] [--clip X] [--seed S] [--val-fraction F] [--eval-every N]\n"
    "                        [--min-lr X] [--min-count N] [--threads N] [--resume FILE]\n"
    "\n"
    "Trains a GPT-2-architecture model on a text file and saves it (atomically) with\n"
    "its training state, so that --resume continues exactly where it stopped.\n"
    "Ctrl-C ends after the current step and saves.\n"
    "\n"
    "  --data FILE        training text (default: the bundled corpus)\n"
    "  --out FILE         where to save (default: model.safetensors); the optimizer's\n"
    "                     state goes to FILE.state\n"
    "  --init MODEL       start from MODEL's weights and vocabulary\n"
    "  --layers, --heads, --embd, --ctx   a new model's shape (default 4, 4, 128, 64);\n"
    "                     its vocabulary is every word of --data seen --min-count times (default 1)\n"
    "  --steps N          steps to run now (default 1000)\n"
    "  --batch B, --seq T sequences per step and their length (default 16 x n_ctx)\n"
    "  --lr X             peak learning rate (default 3e-3)\n"
    "  --optimizer NAME   sgd, momentum, adam or adamw (default adamw)\n"
    "  --schedule NAME    constant, cosine (to --min-lr over --decay-steps) or step (default cosine)\n"
    "  --warmup N         linear warmup steps (default 0)\n"
    "  --decay-steps N    length of the cosine or step schedule (default --steps)\n"
    "  --min-lr X         where cosine ends (default lr / 10)\n"
    "  --weight-decay X   AdamW/Adam weight decay (default 0.1 for adamw, else 0)\n"
    "  --clip X           global gradient-norm limit, 0 for none (default 1)\n"
    "  --seed S           seed for the initial weights and the batches (default 1337)\n"
    "  --val-fraction F   share of the data held out for validation (default 0.1)\n"
    "  --eval-every N     validation loss every N steps (default 100)\n"
    "  --min-count N      a new vocabulary keeps words seen at least N times (default 1)\n"
    "  --threads N        BLIS threads (default: one per core)\n"
    "  --resume FILE      continue the run saved in FILE: its settings, schedule, data\n"
    "                     position and optimizer state come from FILE and FILE.state;\n"
    "                     only --steps, --out, --eval-every and --threads apply\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *val_text(float v)
{
    static char buf[32];
    if (isnan(v))
        return "-";
    snprintf(buf, sizeof buf, "%.4f", (double)v);
    return buf;
}

typedef struct train_args {
    const char *data, *out, *init, *resume;
    long layers, heads, embd, ctx, steps, batch, seq, warmup, decay_steps, eval_every, min_count, threads;
    long long seed;
    double lr, min_lr, weight_decay, clip, val_fraction;
    int optimizer, schedule;
    int have_wd, have_batch, have_seq, have_decay;
    const char *ignored;      /* a setting given with --resume, which keeps the saved ones */
} train_args;

static int parse(int argc, char **argv, train_args *a)
{
    enum { O_DATA = 256, O_OUT, O_INIT, O_LAYERS, O_HEADS, O_EMBD, O_CTX, O_STEPS, O_BATCH, O_SEQ, O_LR,
           O_OPT, O_SCHED, O_WARMUP, O_DECAY, O_MINLR, O_WD, O_CLIP, O_SEED, O_VAL, O_EVAL, O_MINC,
           O_THREADS, O_RESUME, O_HELP };
    static const struct option opts[] = {
        {"data", 1, 0, O_DATA}, {"out", 1, 0, O_OUT}, {"init", 1, 0, O_INIT}, {"layers", 1, 0, O_LAYERS},
        {"heads", 1, 0, O_HEADS}, {"embd", 1, 0, O_EMBD}, {"ctx", 1, 0, O_CTX}, {"steps", 1, 0, O_STEPS},
        {"batch", 1, 0, O_BATCH}, {"seq", 1, 0, O_SEQ}, {"lr", 1, 0, O_LR}, {"optimizer", 1, 0, O_OPT},
        {"schedule", 1, 0, O_SCHED}, {"warmup", 1, 0, O_WARMUP}, {"decay-steps", 1, 0, O_DECAY},
        {"min-lr", 1, 0, O_MINLR}, {"weight-decay", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP},
        {"seed", 1, 0, O_SEED}, {"val-fraction", 1, 0, O_VAL}, {"eval-every", 1, 0, O_EVAL},
        {"min-count", 1, 0, O_MINC}, {"threads", 1, 0, O_THREADS}, {"resume", 1, 0, O_RESUME},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0},
    };
    const char *T = "train";
    long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c >= O_LAYERS && c <= O_MINC && c != O_STEPS && c != O_EVAL)
            a->ignored = argv[optind - (optarg ? 2 : 1)];
        switch (c) {
        case O_DATA: a->data = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_INIT: a->init = optarg; break;
        case O_RESUME: a->resume = optarg; break;
        case O_LAYERS: if (ps_arg_int(T, "--layers", optarg, 1, 256, &a->layers)) return -1; break;
        case O_HEADS: if (ps_arg_int(T, "--heads", optarg, 1, 4096, &a->heads)) return -1; break;
        case O_EMBD: if (ps_arg_int(T, "--embd", optarg, 1, 65536, &a->embd)) return -1; break;
        case O_CTX: if (ps_arg_int(T, "--ctx", optarg, 1, 65536, &a->ctx)) return -1; break;
        case O_STEPS: if (ps_arg_int(T, "--steps", optarg, 0, 100000000, &a->steps)) return -1; break;
        case O_BATCH: if (ps_arg_int(T, "--batch", optarg, 1, 4096, &a->batch)) return -1; a->have_batch = 1; break;
        case O_SEQ: if (ps_arg_int(T, "--seq", optarg, 1, 65536, &a->seq)) return -1; a->have_seq = 1; break;
        case O_WARMUP: if (ps_arg_int(T, "--warmup", optarg, 0, 100000000, &a->warmup)) return -1; break;
        case O_DECAY: if (ps_arg_int(T, "--decay-steps", optarg, 1, 100000000, &a->decay_steps)) return -1; a->have_decay = 1; break;
        case O_EVAL: if (ps_arg_int(T, "--eval-every", optarg, 0, 100000000, &a->eval_every)) return -1; break;
        case O_MINC: if (ps_arg_int(T, "--min-count", optarg, 1, 1000000, &a->min_count)) return -1; break;
        case O_THREADS: if (ps_arg_int(T, "--threads", optarg, 1, 256, &a->threads)) return -1; break;
        case O_SEED: if (ps_arg_int(T, "--seed", optarg, 0, 0x7fffffffffffffffL, &v)) return -1; a->seed = v; break;
        case O_LR: if (ps_arg_float(T, "--lr", optarg, 0, 100, &a->lr)) return -1; break;
        case O_MINLR: if (ps_arg_float(T, "--min-lr", optarg, 0, 100, &a->min_lr)) return -1; break;
        case O_WD: if (ps_arg_float(T, "--weight-decay", optarg, 0, 100, &a->weight_decay)) return -1; a->have_wd = 1; break;
        case O_CLIP: if (ps_arg_float(T, "--clip", optarg, 0, 1e30, &a->clip)) return -1; break;
        case O_VAL: if (ps_arg_float(T, "--val-fraction", optarg, 0, 0.5, &a->val_fraction)) return -1; break;
        case O_OPT:
            if ((a->optimizer = ps_optim_kind_parse(optarg)) < 0) {
                fprintf(stderr, "paramscope train: --optimizer: unknown optimizer '%s' (sgd, momentum, adam, adamw)\n", optarg);
                return -1;
            }
            break;
        case O_SCHED:
            if ((a->schedule = ps_sched_kind_parse(optarg)) < 0) {
                fprintf(stderr, "paramscope train: --schedule: unknown schedule '%s' (constant, cosine, step)\n", optarg);
                return -1;
            }
            break;
        case O_HELP: fputs(train_usage, stdout); return 1;
        case ':': fprintf(stderr, "paramscope train: %s needs a value\n", argv[optind - 1]); return -1;
        default:
            fprintf(stderr, "paramscope train: unknown option '%s' (see paramscope train --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "paramscope train: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (a->resume && a->ignored)
        fprintf(stderr, "paramscope train: note: %s is ignored with --resume, which continues with the saved settings\n",
                a->ignored);
    if (a->init && a->resume) {
        fprintf(stderr, "paramscope train: --init and --resume cannot be used together\n");
        return -1;
    }
    return 0;
}

int ps_cmd_train(int argc, char **argv)
{
    train_args a = {
        .layers = 4, .heads = 4, .embd = 128, .ctx = 64, .steps = 1000, .batch = 16, .eval_every = 100,
        .min_count = 1, .seed = 1337, .lr = 3e-3, .min_lr = -1, .clip = 1.0, .val_fraction = 0.1,
        .optimizer = PS_OPTIM_KIND_ADAMW, .schedule = PS_SCHED_KIND_COSINE,
    };
    int pr = parse(argc, argv, &a);
    if (pr)
        return pr > 0 ? PS_EXIT_OK : PS_EXIT_USAGE;

    ps_error err = {0};
    ps_loaded l = {0};
    ps_corpus *corp = NULL;
    ps_trainer *tr = NULL;
    int status = PS_EXIT_USAGE;
    char data_path[4096];
    const char *out = a.out ? a.out : (a.resume ? a.resume : "model.safetensors");

    if (!a.data) {
        if (ps_find_data_file(PS_BUNDLED_CORPUS, data_path, sizeof data_path)) {
            ps_error_set(&err, PS_ERR_NOT_FOUND, "no --data given and the bundled corpus was not found");
            goto done;
        }
        a.data = data_path;
    }
    if (ps_blas_init((int)a.threads, &err) || ps_train_check_target(out, &err))
        goto done;

    /* ---- the model and its vocabulary ---- */
    if (a.resume || a.init) {
        if (ps_loaded_open(&l, a.resume ? a.resume : a.init, &err))
            goto done;
    } else {
        char *text = NULL;
        size_t len = 0;
        if (ps_corpus_read_text(&text, &len, a.data, &err))
            goto done;
        int rc = ps_tokenizer_build_words(&l.tok, text, len, (int)a.min_count, &err);
        free(text);
        if (rc)
            goto done;
        ps_config cfg = {(int)a.layers, (int)a.heads, (int)a.embd, (int)a.ctx, ps_tokenizer_vocab_size(l.tok)};
        if (ps_config_check(&cfg, &err) || ps_model_init(&l.model, &cfg, &err))
            goto done;
        ps_model_init_random(l.model, (uint64_t)a.seed);
    }
    if (ps_corpus_load(&corp, a.data, l.tok, &err))
        goto done;

    /* ---- settings ---- */
    ps_train_config tc = ps_train_defaults(l.model);
    long start_step = 0;
    uint64_t rng[4];
    if (a.resume) {
        if (ps_train_state_from_meta(&l.meta, a.resume, &tc, &start_step, rng, &err))
            goto done;
        const char *dg = ps_meta_get(&l.meta, "train.data_digest");
        char mine[32];
        snprintf(mine, sizeof mine, "%016llx", ps_tokens_digest(corp->ids, corp->n));
        if (dg && strcmp(dg, mine)) {
            char db[40];
            ps_error_set(&err, PS_ERR_INVALID, "%s was trained on other data than %s (digest %s, not %s)",
                         a.resume, a.data, ps_printable(dg, db, sizeof db), mine);
            goto done;
        }
    } else {
        tc.batch = (int)a.batch;
        tc.seq = a.have_seq ? (int)a.seq : l.model->cfg.n_ctx;
        tc.optim = ps_optim_defaults((ps_optim_kind)a.optimizer);
        if (a.have_wd)
            tc.optim.weight_decay = (float)a.weight_decay;
        tc.sched.kind = (ps_sched_kind)a.schedule;
        tc.sched.lr = (float)a.lr;
        tc.sched.warmup = (int)a.warmup;
        tc.sched.total = a.have_decay ? a.decay_steps : a.steps;
        tc.sched.min_lr = a.min_lr >= 0 ? (float)a.min_lr : (float)a.lr * 0.1f;
        tc.sched.step_size = (int)(tc.sched.total / 4 > 0 ? tc.sched.total / 4 : 1);
        tc.clip = (float)a.clip;
        tc.seed = (uint64_t)a.seed;
        tc.val_fraction = (float)a.val_fraction;
    }
    /* a model whose file could not be read back (a header over the limit)
     * is refused now, not after the training */
    if (ps_model_check_savable(l.model, l.tok, &l.meta, out, &err))
        goto done;
    if (ps_trainer_init(&tr, l.model, corp->ids, corp->n, &tc, &err)) {
        if (err.code != PS_ERR_NOMEM)
            ps_error_prefix(&err, "%s", a.data == data_path ? "the bundled corpus" : a.data);
        goto done;
    }
    if (a.resume) {
        status = PS_EXIT_FAIL;
        if (ps_train_state_load(tr, a.resume, start_step, ps_meta_get(&l.meta, "train.state_id"), &err))
            goto done;
        ps_trainer_set_rng_state(tr, rng);
    }

    /* ---- the loop ---- */
    status = PS_EXIT_FAIL;
    int tty = isatty(STDERR_FILENO);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    interrupted = 0;
    fprintf(stderr, "training %s: %zu parameters on %s (%zu tokens, %zu held out), %ld steps of %d x %d, %s, lr %g, seed %llu\n",
            out, l.model->n_values, a.data, corp->n, corp->n - tr->n_train, a.steps, tc.batch, tc.seq,
            ps_optim_kind_name(tc.optim.kind), (double)tc.sched.lr, (unsigned long long)tc.seed);
    double t0 = now_s();
    float val = NAN;
    long end = tr->step + a.steps;
    long log_every = a.steps >= 10 ? a.steps / 10 : 1;
    int abandoned = 0;
    while (tr->step < end && !interrupted) {
        int rc = ps_trainer_step(tr, &err);
        if (rc == PS_ERR_NUMERIC) {
            fprintf(stderr, "%s%s\n", tty ? "\n" : "", err.msg);
            if (++abandoned < PS_MAX_ABANDONED)
                continue;
            ps_error_set(&err, PS_ERR_NUMERIC, "%d steps in a row had a non-finite loss or gradient: "
                         "the run diverged (try a lower --lr, or --clip)", abandoned);
            goto loop_fail;
        }
        if (rc)
            goto loop_fail;
        abandoned = 0;
        long done_steps = tr->step - (end - a.steps);
        int last = tr->step == end;
        if (a.eval_every > 0 && tr->n_tokens > tr->n_train && (tr->step % a.eval_every == 0 || last)) {
            if (ps_trainer_eval(tr, 32, &val, &err))
                goto loop_fail;
        }
        double el = now_s() - t0;
        double tps = done_steps * (double)tc.batch * tc.seq / (el > 0 ? el : 1e-9);
        double left = el / done_steps * (end - tr->step);
        if (tty) {
            char bar[128] = "";
            ps_render_bar(bar, sizeof bar, (double)done_steps / a.steps, 20, ps_utf8_output());
            fprintf(stderr, "\r  step %ld/%ld %-20s loss %.4f val %s %6.0f tok/s %4.0fs left ",
                    tr->step, end, bar, (double)tr->loss, val_text(val), tps, left);
            if (last)
                fputc('\n', stderr);
        } else if (done_steps % log_every == 0 || last) {
            fprintf(stderr, "step %ld/%ld loss %.4f val %s lr %.3g tok/s %.0f\n", tr->step, end,
                    (double)tr->loss, val_text(val), (double)tr->lr, tps);
        }
    }
    sigaction(SIGINT, &old, NULL);
    if (interrupted)
        fprintf(stderr, "%sinterrupted after step %ld; saving\n", tty ? "\n" : "", tr->step);

    /* ---- save ---- */
    char buf[64];
    if (ps_train_state_to_meta(tr, &l.meta, &err))
        goto done;
    snprintf(buf, sizeof buf, "%016llx", ps_tokens_digest(corp->ids, corp->n));
    ps_meta_set(&l.meta, "train.data_digest", buf);
    ps_meta_set(&l.meta, "train.data", a.data == data_path ? "bundled corpus" : a.data);
    if (!isnan(val)) {
        snprintf(buf, sizeof buf, "%.6f", (double)val);
        ps_meta_set(&l.meta, "train.val_loss", buf);
    }
    snprintf(buf, sizeof buf, "%.6f", (double)tr->loss);
    ps_meta_set(&l.meta, "train.loss", buf);
    if (ps_train_save_run(tr, l.tok, &l.meta, out, &err))
        goto done;
    fprintf(stderr, "saved %s (step %ld, loss %.4f, validation loss %s, %.1f s)\n", out, tr->step,
            (double)tr->loss, val_text(val), now_s() - t0);
    status = PS_EXIT_OK;
    goto done;
loop_fail:
    sigaction(SIGINT, &old, NULL);
    if (tty)
        fputc('\n', stderr);
done:
    if (status != PS_EXIT_OK)
        fprintf(stderr, "paramscope train: %s\n", err.msg);
    ps_trainer_free(tr);
    ps_corpus_free(corp);
    ps_loaded_close(&l);
    return status;
}
