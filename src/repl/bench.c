/* `paramscope bench`: train on random weights and tokens and report speed next
 * to this machine's own sgemm ceiling, measured in the same run at the shapes
 * the model multiplies. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "paramscope/blas.h"
#include "paramscope/probe.h"
#include "paramscope/infer.h"
#include "paramscope/kernels.h"
#include "paramscope/rng.h"
#include "paramscope/trainer.h"
#include "repl/subcommands.h"

static const char bench_usage[] =
    "usage: paramscope bench [--preset tiny|gpt2-124m] [--layers L --heads H --embd C --vocab V --ctx N]\n"
    "                        [--batch B] [--seq T] [--steps N] [--threads N] [--predict] [--json]\n"
    "\n"
    "Trains a model of the given shape on random weights and random tokens and reports\n"
    "the sgemm GFLOP/s this machine reaches at the model's shapes (the ceiling), the\n"
    "forward, backward and update times, the median step time over N steps, tokens/s,\n"
    "achieved GFLOP/s (6 x params x tokens + attention) and MFU = achieved / ceiling.\n"
    "\n"
    "  --preset NAME   tiny: 2 layers, 4 heads, n_embd 64, vocab 1000, n_ctx 64, B 16, T 32 (default)\n"
    "                  gpt2-124m: 12 layers, 12 heads, n_embd 768, vocab 50257, n_ctx 1024, B 4, T 64\n"
    "  --steps N       steps to time after one warm-up step (default 10 for tiny, 3 for gpt2-124m)\n"
    "  --predict       time inference instead of training (nothing is trained): an 8-token\n"
    "                  prompt to next-token probabilities from an empty cache (predict_ms),\n"
    "                  one more token with the prompt's cache kept (keystroke_ms), the same\n"
    "                  prompt through the training forward (forward_predict_ms), and 32\n"
    "                  tokens generated after the prompt with the key/value cache\n"
    "                  (gen_tokens_per_s), and what the Inside pane computes (inside_ms: the\n"
    "                  forward keeping activations, the logit lens and the attribution);\n"
    "                  --seq N sets the prompt's length; medians of N repeats (--steps,\n"
    "                  default 10 for tiny, 5 for gpt2-124m).  --json prints these keys\n"
    "  --threads N     BLIS threads (default: one per core)\n"
    "  --json          print one JSON object\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seconds per call of C[m,n] = A[m,k] B[k,n], best of a few timed batches. */
static double time_sgemm(int m, int n, int k, int transb)
{
    float *A = calloc((size_t)m * k, sizeof(float));
    float *B = calloc((size_t)k * n, sizeof(float));
    float *C = calloc((size_t)m * n, sizeof(float));
    if (!A || !B || !C) {
        free(A); free(B); free(C);
        return NAN;
    }
    for (size_t i = 0; i < (size_t)m * k; i++) A[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < (size_t)k * n; i++) B[i] = (float)(i % 5) * 0.01f;
    int ldb = transb ? k : n;
    ps_sgemm(0, transb, m, n, k, 1.0f, A, k, B, ldb, 0.0f, C, n);
    double flops = 2.0 * m * n * k, best = INFINITY;
    int reps = (int)fmin(200.0, fmax(1.0, 2e9 / flops));   /* ~ 10 ms a batch */
    for (int trial = 0; trial < 3; trial++) {
        double t0 = now_s();
        for (int r = 0; r < reps; r++)
            ps_sgemm(0, transb, m, n, k, 1.0f, A, k, B, ldb, 0.0f, C, n);
        double dt = (now_s() - t0) / reps;
        best = dt < best ? dt : best;
    }
    free(A); free(B); free(C);
    return best;
}

/* GFLOP/s over one forward pass's products, each weighted by how often the
 * forward runs it. */
static double model_ceiling(const ps_config *c, int BT)
{
    int C = c->n_embd;
    int shapes[4][3] = {{BT, 3 * C, C}, {BT, C, C}, {BT, 4 * C, C}, {BT, C, 4 * C}};
    double flops = 0, secs = 0;
    for (int i = 0; i < 4; i++) {
        double f = 2.0 * shapes[i][0] * shapes[i][1] * shapes[i][2];
        flops += c->n_layer * f;
        secs += c->n_layer * time_sgemm(shapes[i][0], shapes[i][1], shapes[i][2], 0);
    }
    flops += 2.0 * BT * c->vocab_size * C;
    secs += time_sgemm(BT, c->vocab_size, C, 1);
    return flops / secs / 1e9;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* ---- inference ---- */

#define PREDICT_PROMPT 8
#define PREDICT_GEN 32

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        best = v[i] > v[best] ? i : best;
    return best;
}

/* `bench --predict`: prompt latency and generation speed on random weights,
 * as `predict` and `generate` run them (infer.h). */
static int bench_predict(const char *preset, const ps_config *cfg, int prompt, long reps, int json)
{
    ps_error err = {0};
    ps_model *m = NULL;
    ps_infer *inf = NULL;
    int status = PS_EXIT_FAIL, V = cfg->vocab_size;
    int np = cfg->n_ctx < prompt ? cfg->n_ctx : prompt;
    int n_ids = np + PREDICT_GEN + 1;
    int *ids = malloc(sizeof(int) * (size_t)n_ids);
    float *probs = malloc(sizeof(float) * (size_t)V);
    double *t_pred = calloc((size_t)reps, sizeof(double)), *t_key = calloc((size_t)reps, sizeof(double));
    double *t_full = calloc((size_t)reps, sizeof(double)), *t_gen = calloc((size_t)reps, sizeof(double));
    double *t_inside = calloc((size_t)reps, sizeof(double));
    float *lens = malloc(sizeof(float) * (size_t)V * (size_t)(cfg->n_layer + 1));
    if (!ids || !probs || !t_pred || !t_key || !t_full || !t_gen || !t_inside || !lens) {
        ps_error_set(&err, PS_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (ps_model_init(&m, cfg, &err))
        goto done;
    ps_model_init_random(m, 1);
    if (ps_infer_init(&inf, m, &err))
        goto done;
    ps_rng rng;
    ps_rng_seed(&rng, 2);
    for (int i = 0; i < n_ids; i++)
        ids[i] = (int)ps_rng_below(&rng, (uint32_t)V);
    /* warm-up: the cache grows and BLIS allocates its buffers */
    if (ps_infer_prompt(inf, ids, np, &err) || ps_model_forward(m, ids, 1, np, &err))
        goto done;
    int nk = np < cfg->n_ctx ? np + 1 : np;    /* the keystroke prompt */
    for (long r = 0; r < reps; r++) {
        ps_infer_reset(inf);
        double t0 = now_s();
        if (ps_infer_prompt(inf, ids, np, &err))
            goto done;
        ps_softmax(probs, ps_infer_logits(inf), V, 1.0f);
        t_pred[r] = (now_s() - t0) * 1e3;

        t0 = now_s();
        if (ps_infer_prompt(inf, ids, nk, &err))
            goto done;
        ps_softmax(probs, ps_infer_logits(inf), V, 1.0f);
        t_key[r] = (now_s() - t0) * 1e3;

        t0 = now_s();
        if (ps_model_forward(m, ids, 1, np, &err))
            goto done;
        ps_softmax(probs, ps_model_logits(m, 0, np - 1), V, 1.0f);
        t_full[r] = (now_s() - t0) * 1e3;

        /* what the Inside pane computes: the forward that keeps every
         * activation (attention patterns are read from it), the logit lens
         * and the top token's attribution */
        t0 = now_s();
        ps_attribution at;
        if (ps_model_forward(m, ids, 1, np, &err) || ps_probe_lens(m, 0, np - 1, lens, &err) ||
            ps_probe_attribute(m, 0, np - 1, argmax(ps_model_logits(m, 0, np - 1), V), &at, &err))
            goto done;
        ps_attribution_clear(&at);
        t_inside[r] = (now_s() - t0) * 1e3;

        /* generation as `generate` does it: greedy, the window of the last
         * n_ctx tokens, the prompt's cache ready when the clock starts */
        if (ps_infer_prompt(inf, ids, np, &err))
            goto done;
        int len = np;
        t0 = now_s();
        for (int g = 0; g < PREDICT_GEN; g++) {
            int first = len > cfg->n_ctx ? len - cfg->n_ctx : 0;
            if (ps_infer_prompt(inf, ids + first, len - first, &err))
                goto done;
            ids[len++] = argmax(ps_infer_logits(inf), V);
        }
        t_gen[r] = PREDICT_GEN / (now_s() - t0);
    }
    double pred = median(t_pred, (int)reps), key = median(t_key, (int)reps);
    double full = median(t_full, (int)reps), gen = median(t_gen, (int)reps);
    double in_ms = median(t_inside, (int)reps);
    double loadavg[1] = {-1};
    if (getloadavg(loadavg, 1) < 1)
        loadavg[0] = -1;
    if (json) {
        printf("{\"preset\": \"%s\", \"layers\": %d, \"heads\": %d, \"embd\": %d, \"vocab\": %d, \"ctx\": %d, "
               "\"threads\": %d, \"params\": %zu, \"repeats\": %ld, \"prompt_tokens\": %d, \"gen_tokens\": %d, "
               "\"predict_ms\": %.3f, \"keystroke_ms\": %.3f, \"forward_predict_ms\": %.3f, \"inside_ms\": %.3f, "
               "\"gen_tokens_per_s\": %.2f, \"cache_mb\": %.1f, \"peak_rss_mb\": %.1f, \"load_average\": %.2f, "
               "\"blis_arch\": \"%s\", \"blis_arch_reason\": \"%s\"}\n",
               preset, cfg->n_layer, cfg->n_head, cfg->n_embd, V, cfg->n_ctx, ps_blas_threads(),
               m->n_floats, reps, np, PREDICT_GEN, pred, key, full, in_ms, gen, ps_infer_bytes(inf) / 1048576.0,
               peak_rss_mb(), loadavg[0], ps_blas_arch(), ps_blas_arch_reason());
    } else {
        printf("paramscope bench --predict: %s — %d layers, %d heads, n_embd %d, vocab %d, n_ctx %d\n",
               preset, cfg->n_layer, cfg->n_head, cfg->n_embd, V, cfg->n_ctx);
        printf("  parameters       %zu\n", m->n_floats);
        printf("  threads          %d, BLIS kernels %s (%s)\n", ps_blas_threads(), ps_blas_arch(), ps_blas_arch_reason());
        printf("  prompt           %d tokens to next-token probabilities, median of %ld\n", np, reps);
        printf("  predict          %9.2f ms   (empty cache)\n", pred);
        printf("  keystroke        %9.2f ms   (one more token, the prompt cached)\n", key);
        printf("  training forward %9.2f ms   (the same prompt without the cache)\n", full);
        printf("  inside views     %9.2f ms   (forward with activations + logit lens + attribution, %.2f x predict)\n",
               in_ms, pred > 0 ? in_ms / pred : 0);
        printf("  generation       %9.1f tokens/s (%d tokens after the prompt)\n", gen, PREDICT_GEN);
        printf("  cache + scratch  %9.1f MB\n", ps_infer_bytes(inf) / 1048576.0);
        printf("  peak memory      %9.0f MB\n", peak_rss_mb());
        printf("  load average     %9.2f (other work on the machine slows the figures)\n", loadavg[0]);
    }
    status = PS_EXIT_OK;
done:
    if (status != PS_EXIT_OK)
        fprintf(stderr, "paramscope bench: %s\n", err.msg);
    ps_infer_free(inf);
    ps_model_free(m);
    free(ids);
    free(probs);
    free(t_pred);
    free(t_key);
    free(t_full);
    free(t_gen);
    free(t_inside);
    free(lens);
    return status;
}

int ps_cmd_bench(int argc, char **argv)
{
    enum { O_PRESET = 256, O_LAYERS, O_HEADS, O_EMBD, O_VOCAB, O_CTX, O_BATCH, O_SEQ, O_STEPS, O_THREADS, O_JSON, O_HELP, O_PREDICT };
    static const struct option opts[] = {
        {"preset", required_argument, 0, O_PRESET}, {"layers", required_argument, 0, O_LAYERS},
        {"heads", required_argument, 0, O_HEADS},   {"embd", required_argument, 0, O_EMBD},
        {"vocab", required_argument, 0, O_VOCAB},   {"ctx", required_argument, 0, O_CTX},
        {"batch", required_argument, 0, O_BATCH},   {"seq", required_argument, 0, O_SEQ},
        {"steps", required_argument, 0, O_STEPS},   {"threads", required_argument, 0, O_THREADS},
        {"json", no_argument, 0, O_JSON},           {"help", no_argument, 0, O_HELP},
        {"predict", no_argument, 0, O_PREDICT},
        {0, 0, 0, 0},
    };
    const char *preset = "tiny";
    ps_config cfg = {.n_layer = 2, .n_head = 4, .n_embd = 64, .n_ctx = 64, .vocab_size = 1000};
    long B = 16, T = 32, steps = -1, threads = 0, v;
    long over[5] = {-1, -1, -1, -1, -1};
    long overB = -1, overT = -1;
    int json = 0, predict = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_PRESET:
            preset = optarg;
            if (strcmp(preset, "tiny") && strcmp(preset, "gpt2-124m")) {
                fprintf(stderr, "paramscope bench: --preset: unknown preset '%s' (tiny, gpt2-124m)\n", preset);
                return PS_EXIT_USAGE;
            }
            break;
        case O_LAYERS: case O_HEADS: case O_EMBD: case O_VOCAB: case O_CTX:
            if (ps_arg_int("bench", opts[c - O_PRESET].name, optarg, 1, 1 << 24, &v))
                return PS_EXIT_USAGE;
            over[c - O_LAYERS] = v;
            break;
        case O_BATCH:
            if (ps_arg_int("bench", "--batch", optarg, 1, 4096, &overB)) return PS_EXIT_USAGE;
            break;
        case O_SEQ:
            if (ps_arg_int("bench", "--seq", optarg, 1, 65536, &overT)) return PS_EXIT_USAGE;
            break;
        case O_STEPS:
            if (ps_arg_int("bench", "--steps", optarg, 1, 100000, &steps)) return PS_EXIT_USAGE;
            break;
        case O_THREADS:
            if (ps_arg_int("bench", "--threads", optarg, 1, 256, &threads)) return PS_EXIT_USAGE;
            break;
        case O_JSON: json = 1; break;
        case O_PREDICT: predict = 1; break;
        case O_HELP: fputs(bench_usage, stdout); return PS_EXIT_OK;
        case ':':
            fprintf(stderr, "paramscope bench: %s needs a value\n", argv[optind - 1]);
            return PS_EXIT_USAGE;
        default:
            fprintf(stderr, "paramscope bench: unknown option '%s' (see paramscope bench --help)\n", argv[optind - 1]);
            return PS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "paramscope bench: unexpected argument '%s'\n", argv[optind]);
        return PS_EXIT_USAGE;
    }
    if (!strcmp(preset, "gpt2-124m")) {
        cfg = (ps_config){.n_layer = 12, .n_head = 12, .n_embd = 768, .n_ctx = 1024, .vocab_size = 50257};
        B = 4;
        T = 64;
    }
    int custom = 0;
    if (over[0] > 0) { cfg.n_layer = (int)over[0]; custom = 1; }
    if (over[1] > 0) { cfg.n_head = (int)over[1]; custom = 1; }
    if (over[2] > 0) { cfg.n_embd = (int)over[2]; custom = 1; }
    if (over[3] > 0) { cfg.vocab_size = (int)over[3]; custom = 1; }
    if (over[4] > 0) { cfg.n_ctx = (int)over[4]; custom = 1; }
    if (overB > 0) B = overB;
    if (overT > 0) T = overT;
    if (T > cfg.n_ctx && !predict) {   /* --predict uses no batch */
        if (over[4] > 0) {
            fprintf(stderr, "paramscope bench: --seq %ld is longer than n_ctx %d\n", T, cfg.n_ctx);
            return PS_EXIT_USAGE;
        }
        cfg.n_ctx = (int)T;
    }
    if (steps < 0)
        steps = cfg.n_embd >= 512 ? (predict ? 5 : 3) : 10;
    if (custom)
        preset = "custom";

    ps_error err = {0};
    if (ps_config_check(&cfg, &err)) {
        fprintf(stderr, "paramscope bench: %s\n", err.msg);
        return PS_EXIT_USAGE;
    }
    if (ps_blas_init((int)threads, &err)) {
        fprintf(stderr, "paramscope bench: %s\n", err.msg);
        return PS_EXIT_USAGE;
    }
    if (predict)
        return bench_predict(preset, &cfg, overT > 0 ? (int)overT : PREDICT_PROMPT, steps, json);

    ps_model *m = NULL;
    ps_trainer *tr = NULL;
    int *tokens = NULL;
    int status = PS_EXIT_FAIL;
    size_t n_tokens = (size_t)B * T * 4 + 1;
    if (ps_model_init(&m, &cfg, &err))
        goto fail;
    ps_model_init_random(m, 1);
    tokens = malloc(n_tokens * sizeof *tokens);
    if (!tokens) {
        ps_error_set(&err, PS_ERR_NOMEM, "tokens: out of memory");
        goto fail;
    }
    ps_rng rng;
    ps_rng_seed(&rng, 2);
    for (size_t i = 0; i < n_tokens; i++)
        tokens[i] = (int)ps_rng_below(&rng, (uint32_t)cfg.vocab_size);
    ps_train_config tc = ps_train_defaults(m);
    tc.batch = (int)B;
    tc.seq = (int)T;
    tc.val_fraction = 0.0f;
    if (ps_trainer_init(&tr, m, tokens, n_tokens, &tc, &err))
        goto fail;

    double ceiling = model_ceiling(&cfg, (int)(B * T));
    double square = 2.0 * 1024 * 1024 * 1024 / time_sgemm(1024, 1024, 1024, 0) / 1e9;

    double *fw = calloc((size_t)steps, sizeof *fw), *bw = calloc((size_t)steps, sizeof *bw);
    double *up = calloc((size_t)steps, sizeof *up), *st = calloc((size_t)steps, sizeof *st);
    if (!fw || !bw || !up || !st) {
        free(fw); free(bw); free(up); free(st);
        ps_error_set(&err, PS_ERR_NOMEM, "timings: out of memory");
        goto fail;
    }
    for (long s = -1; s < steps; s++) {   /* step -1 warms caches and allocates */
        double t0 = now_s();
        if (ps_trainer_step(tr, &err)) {
            free(fw); free(bw); free(up); free(st);
            goto fail;
        }
        double dt = now_s() - t0;
        if (s >= 0) {
            fw[s] = tr->phase_ms[PS_PHASE_FORWARD] + tr->phase_ms[PS_PHASE_LOSS];
            bw[s] = tr->phase_ms[PS_PHASE_BACKWARD];
            up[s] = tr->phase_ms[PS_PHASE_UPDATE];
            st[s] = dt * 1e3;
        }
    }
    double fwd_ms = median(fw, (int)steps), bwd_ms = median(bw, (int)steps);
    double upd_ms = median(up, (int)steps), step_ms = median(st, (int)steps);
    free(fw); free(bw); free(up); free(st);

    double tokens_step = (double)B * T;
    double flops = tokens_step * (6.0 * (double)m->n_floats +
                                  12.0 * cfg.n_layer * cfg.n_embd * (double)T);
    double gflops = flops / (step_ms * 1e-3) / 1e9;
    double mfu = gflops / ceiling;
    double tps = tokens_step / (step_ms * 1e-3);

    if (json) {
        printf("{\"preset\": \"%s\", \"layers\": %d, \"heads\": %d, \"embd\": %d, \"vocab\": %d, \"ctx\": %d, "
               "\"threads\": %d, \"batch\": %ld, \"seq\": %ld, \"steps\": %ld, \"params\": %zu, "
               "\"forward_ms\": %.3f, \"backward_ms\": %.3f, \"update_ms\": %.3f, \"step_ms\": %.3f, "
               "\"tokens_per_s\": %.1f, \"gflops\": %.2f, \"peak_gflops\": %.2f, \"mfu\": %.4f, "
               "\"sgemm_1024_gflops\": %.2f, \"peak_rss_mb\": %.1f, \"blis_arch\": \"%s\", \"blis_arch_reason\": \"%s\"}\n",
               preset, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.n_ctx,
               ps_blas_threads(), B, T, steps, m->n_floats, fwd_ms, bwd_ms, upd_ms, step_ms,
               tps, gflops, ceiling, mfu, square, peak_rss_mb(), ps_blas_arch(), ps_blas_arch_reason());
    } else {
        printf("paramscope bench: %s — %d layers, %d heads, n_embd %d, vocab %d, n_ctx %d\n",
               preset, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.n_ctx);
        printf("  parameters       %zu\n", m->n_floats);
        printf("  batch x seq      %ld x %ld, %ld timed steps, %d threads\n", B, T, steps, ps_blas_threads());
        printf("  BLIS kernels     %s (%s)\n", ps_blas_arch(), ps_blas_arch_reason());
        printf("  sgemm ceiling    %.1f GFLOP/s at the model's shapes (1024^3: %.1f)\n", ceiling, square);
        printf("  forward + loss   %9.2f ms\n", fwd_ms);
        printf("  backward         %9.2f ms\n", bwd_ms);
        printf("  update (AdamW)   %9.2f ms\n", upd_ms);
        printf("  step (median)    %9.2f ms\n", step_ms);
        printf("  tokens/s         %9.0f\n", tps);
        printf("  achieved         %9.1f GFLOP/s, MFU %.1f%%\n", gflops, 100 * mfu);
        printf("  peak memory      %9.0f MB\n", peak_rss_mb());
    }
    status = PS_EXIT_OK;
fail:
    if (status != PS_EXIT_OK)
        fprintf(stderr, "paramscope bench: %s\n", err.msg);
    ps_trainer_free(tr);
    free(tokens);
    ps_model_free(m);
    return status;
}
