/* paramscope — parses the command line and hands over.  Nothing below this
 * file exits the process. */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "ps_config.h"
#include "paramscope/blas.h"
#include "paramscope/mapguard.h"
#include "paramscope/fileio.h"
#include "repl/repl.h"
#include "repl/subcommands.h"
#include "ui/explorer.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char usage[] =
    "usage: paramscope [--plain] [--script FILE [--batch]] [--bail] [-m MODEL | MODEL]\n"
    "       paramscope COMMAND [ARGS]\n"
    "       paramscope --version | --help\n"
    "\n"
    "paramscope lets you see and touch the parameters of a GPT-2-architecture\n"
    "language model: its predictions, its weights, and its training step by step.\n"
    "\n"
    "commands:\n"
    "  predict    the next-token probabilities of a prompt, as bars\n"
    "  generate   continue a prompt with sampled tokens\n"
    "  info       configuration, tensors and size of a model\n"
    "  train      train a model on a text file (or resume a run)\n"
    "  eval       loss and perplexity of a model on a text file\n"
    "  bench      measure training speed against this machine's sgemm ceiling\n"
    "  commands   list the command language (--markdown: docs/commands.md)\n"
    "\n"
    "\n"
    "Without a COMMAND, paramscope opens the model (default: the bundled one) and\n"
    "reads commands: with a readline prompt on a terminal, from standard input\n"
    "otherwise.  Type `help` there for the command language.\n"
    "\n"
    "  --plain          the line interface even on a terminal\n"
    "  --script FILE    run FILE's commands first, then go on interactively\n"
    "  --batch          with --script: exit after it\n"
    "  --bail           stop at the first error, with exit status 1\n"
    "  -m MODEL         the model file or GPT-2 folder (or give it as the last argument)\n"
    "  --heads N        heads of a GPT-2 folder without config.json\n"
    "\n"
    "Run 'paramscope COMMAND --help' for a command's options.\n";

static ps_session *g_session;

static void on_sigint(int sig)
{
    (void)sig;
    if (g_session)
        g_session->interrupt = 1;
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    return c && atoi(c) > 20 ? atoi(c) : 80;
}

static int run_session(int argc, char **argv)
{
    const char *model = NULL, *script = NULL;
    int batch = 0, bail = 0, plain = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--plain")) {
            plain = 1;
        } else if (!strcmp(a, "--batch")) {
            batch = 1;
        } else if (!strcmp(a, "--bail")) {
            bail = 1;
        } else if (!strcmp(a, "--heads")) {
            char *end;
            long h = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || h < 1 || h > 4096) {
                fprintf(stderr, "paramscope: --heads needs a whole number in [1, 4096]\n");
                return PS_EXIT_USAGE;
            }
            ps_loaded_set_heads((int)h);
            i++;
        } else if (!strcmp(a, "--script") || !strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "paramscope: %s needs a value\n", a);
                return PS_EXIT_USAGE;
            }
            if (!strcmp(a, "--script"))
                script = argv[++i];
            else
                model = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "paramscope: unknown option '%s' (see paramscope --help)\n", a);
            return PS_EXIT_USAGE;
        } else if (!model) {
            model = a;
        } else {
            fprintf(stderr, "paramscope: unexpected argument '%s' (unknown command?)\n", a);
            return PS_EXIT_USAGE;
        }
    }
    if (batch && !script) {
        fprintf(stderr, "paramscope: --batch needs --script FILE\n");
        return PS_EXIT_USAGE;
    }
    ps_error err = {0};
    char path[4096];
    ps_session s;
    if (ps_resolve_model(model, path, sizeof path, &err) || ps_blas_init(0, &err) ||
        ps_session_open(&s, path, &err)) {
        fprintf(stderr, "paramscope: %s\n", err.msg);
        return PS_EXIT_USAGE;
    }
    g_session = &s;
    ps_out out = {.f = stdout, .utf8 = ps_utf8_output(), .width = terminal_width()};
    ps_repl_opts o = {.bail = bail};
    int status = PS_EXIT_OK;
    if (script) {
        /* read whole first: a FIFO, a device or a folder is refused at once
         * and a huge file (or /dev/zero) by its size */
        char *text = NULL;
        size_t len = 0;
        FILE *f = NULL;
        if (ps_file_read_all(script, PS_SCRIPT_MAX, "a script", &text, &len, &err) == 0 &&
            !(f = len ? fmemopen(text, len, "r") : fopen("/dev/null", "r")))
            ps_error_set(&err, PS_ERR_NOMEM, "%s: out of memory while reading it", script);
        if (!f) {
            fprintf(stderr, "paramscope: %s\n", err.msg);
            free(text);
            ps_session_close(&s);
            return PS_EXIT_USAGE;
        }
        int failed = ps_repl_run_stream(&s, f, script, &o, &out);
        fclose(f);
        free(text);
        if (failed)
            status = PS_EXIT_FAIL;
        if (failed < 0 || batch || s.quit) {
            ps_session_close(&s);
            return status;
        }
    }
    if (!plain && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
        int rc = ps_ui_run(&s);
        if (rc >= 0) {
            ps_session_close(&s);
            return rc;
        }
    }
    if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, NULL);
        printf("paramscope %s: %s, %zu parameters.  Type help for the commands, quit to leave.\n",
               PS_VERSION, path, s.lm.model->n_values);
        ps_repl_interactive(&s, &out);
    } else {
        int failed = ps_repl_run_stream(&s, stdin, "stdin", &o, &out);
        if (failed)
            status = PS_EXIT_FAIL;
    }
    ps_session_close(&s);
    return status;
}

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
} subcommand;

static const subcommand subcommands[] = {
    {"predict", ps_cmd_predict},
    {"generate", ps_cmd_generate},
    {"info", ps_cmd_info},
    {"train", ps_cmd_train},
    {"eval", ps_cmd_eval},
    {"bench", ps_cmd_bench},
    {"commands", ps_cmd_commands},
    {"attention", ps_cmd_view},
    {"lens", ps_cmd_view},
    {"attribute", ps_cmd_view},
    {"neuron", ps_cmd_view},
    {"patch", ps_cmd_view},
    {"saliency", ps_cmd_view},
};

/* What was printed must have reached standard output: a full disk or a
 * closed pipe makes the run fail, with one line on stderr, rather than exit
 * 0 with the output lost (`paramscope predict --json > /dev/full`). */
static int flushed(int status)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return status;
    fprintf(stderr, "paramscope: standard output: write error: %s\n", strerror(errno));
    return status == PS_EXIT_OK ? PS_EXIT_FAIL : status;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    ps_mapguard_install();    /* a mapped model truncated by another program: no crash */
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return PS_EXIT_OK;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("paramscope %s\n", PS_VERSION);
        return PS_EXIT_OK;
    }
    for (size_t i = 0; argc >= 2 && i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return flushed(subcommands[i].run(argc - 1, argv + 1));
    if (argc >= 2 && argv[1][0] != '-' && access(argv[1], F_OK) != 0 && !strchr(argv[1], '.') &&
        !strchr(argv[1], '/')) {
        fprintf(stderr, "paramscope: unknown command '%s' (see paramscope --help)\n", argv[1]);
        return PS_EXIT_USAGE;
    }
    return flushed(run_session(argc, argv));
}
