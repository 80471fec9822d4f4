/* The views inside the forward pass as subcommands: `paramscope attention
 * -m MODEL --json 0.1 "The sky is"` opens the model into a session and runs
 * the same line through the command language, so that the subcommand and
 * the REPL cannot drift apart: same handler, same output, same errors. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "repl/command.h"
#include "repl/repl.h"
#include "repl/subcommands.h"

static const char view_usage[] =
    "usage: paramscope VIEW [-m MODEL] [--json] [--threads N] [--heads N] ARGS...\n"
    "\n"
    "Runs one view of the forward pass on MODEL (default: the bundled model), exactly\n"
    "as the command of the same name does in the REPL:\n"
    "  attention BLOCK[.HEAD] TEXT   lens TEXT   attribute [\"TOKEN\"] TEXT\n"
    "  neuron BLOCK.NEURON [TEXT]    patch CLEAN | CORRUPT   saliency TEXT\n"
    "`paramscope` then `help VIEW` explains each; --json prints one JSON object.\n";

static ps_session *g_view;

static void on_sigint(int sig)
{
    (void)sig;
    if (g_view)
        atomic_store(&g_view->interrupt, 1);
}

int ps_cmd_view(int argc, char **argv)
{
    const char *name = argv[0];
    enum { O_JSON = 256, O_THREADS, O_HEADS, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"json", no_argument, 0, O_JSON},
        {"threads", required_argument, 0, O_THREADS}, {"heads", required_argument, 0, O_HEADS},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0},
    };
    const char *model = NULL;
    int json = 0;
    long threads = 0, heads;
    int c;
    optind = 1;
    opterr = 0;
    /* '+': options end at the first argument, so a prompt may hold "-" */
    while ((c = getopt_long(argc, argv, "+:m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case O_JSON: json = 1; break;
        case O_THREADS:
            if (ps_arg_int(name, "--threads", optarg, 1, 256, &threads)) return PS_EXIT_USAGE;
            break;
        case O_HEADS:
            if (ps_arg_int(name, "--heads", optarg, 1, 4096, &heads)) return PS_EXIT_USAGE;
            ps_loaded_set_heads((int)heads);
            break;
        case O_HELP: fputs(view_usage, stdout); return PS_EXIT_OK;
        case ':':
            fprintf(stderr, "paramscope %s: %s needs a value\n", name, argv[optind - 1]);
            return PS_EXIT_USAGE;
        default:
            fprintf(stderr, "paramscope %s: unknown option '%s' (see paramscope %s --help)\n", name,
                    argv[optind - 1], name);
            return PS_EXIT_USAGE;
        }
    }
    char *args = ps_join_args(argc, argv, optind);
    size_t n = strlen(name) + (args ? strlen(args) : 0) + 16;
    char *line = malloc(n);
    if (!args || !line) {
        free(args);
        free(line);
        fprintf(stderr, "paramscope %s: out of memory\n", name);
        return PS_EXIT_FAIL;
    }
    snprintf(line, n, "%s %s%s", name, json ? "--json " : "", args);
    free(args);

    ps_error err = {0};
    char path[4096];
    ps_session s;
    if (ps_resolve_model(model, path, sizeof path, &err) || ps_blas_init((int)threads, &err) ||
        ps_session_open(&s, path, &err)) {
        fprintf(stderr, "paramscope %s: %s\n", name, err.msg);
        free(line);
        return PS_EXIT_USAGE;
    }
    g_view = &s;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    ps_out out = {.f = stdout, .utf8 = ps_utf8_output(), .width = 80};
    int rc = ps_repl_exec(&s, line, &out);
    sigaction(SIGINT, &old, NULL);
    g_view = NULL;
    int status = PS_EXIT_OK;
    if (rc) {
        fprintf(stderr, "paramscope %s: %s\n", name, out.err.msg);
        status = rc == PS_ERR_NOMEM || rc == PS_ERR_IO ? PS_EXIT_FAIL : PS_EXIT_USAGE;
    }
    free(line);
    ps_session_close(&s);
    return status;
}
