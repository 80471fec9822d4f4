/* paramscope — parses the command line and hands over.  Nothing below this
 * file exits the process. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "ps_config.h"
#include "repl/subcommands.h"

static const char usage[] =
    "usage: paramscope [--version] [--help] COMMAND [ARGS]\n"
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
    "\n"
    "Run 'paramscope COMMAND --help' for a command's options.\n";

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
};

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? PS_EXIT_USAGE : PS_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("paramscope %s\n", PS_VERSION);
        return PS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "paramscope: unknown command '%s' (see paramscope --help)\n", argv[1]);
    return PS_EXIT_USAGE;
}
