/* Fuzz target: whole command lines through the session's dispatcher
 * (ps_repl_exec), as the REPL, scripts and the explorer's command line run
 * them, on a fresh session of the tiny model per input.  The input is up to
 * MAX_LINES lines, so that sequences (baseline, then predict; an edit, then
 * undo) are reached.
 *
 * The sandbox: lines whose command touches files or the process (save, load,
 * source, export, train data, quit, exit) are skipped, as are those that run
 * without a bound (train run) or change the thread count (set threads), and
 * counts are capped (train step N, generate N) so that an input runs in
 * milliseconds.  Training uses a tiny corpus written at start. */
#include "fuzz.h"

#include <string.h>

#include "repl/command.h"
#include "repl/repl.h"

#define MAX_LINES 12
#define MAX_STEPS 3
#define MAX_GENERATE 16
#define MAX_BATCH 8

static const char *model_path;
static const char *corpus_path;
static FILE *sink;

static const char corpus[] =
    "the sky is blue. the sky is blue. is the sky blue? the blue sky is the sky.\n"
    "the sky is the sky. blue is blue. the sky's blue (the sky) is blue.\n"
    "is the blue sky the sky? the sky is blue. blue, the sky is. the sky is.\n"
    "the blue is the sky's. the sky is blue. is it blue? the sky is blue.\n"
    "the sky is blue. the sky is blue. is the sky blue? the blue sky is the sky.\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    model_path = fuzz_tiny_save();
    corpus_path = fuzz_tmp_file("corpus.txt");
    sink = fopen("/dev/null", "w");
    if (!*model_path || !*corpus_path || !sink ||
        fuzz_write_file(corpus_path, corpus, sizeof corpus - 1)) {
        fprintf(stderr, "fuzz_repl: cannot make the tiny model\n");
        abort();
    }
    return 0;
}

static const char *const denied[] = {
    "save", "load", "source", "export", "train data", "train run", "quit", "exit", NULL};

static int is_training(const char *name)
{
    return !strcmp(name, "train step") || !strcmp(name, "train phase") ||
           !strcmp(name, "eval") || !strcmp(name, "loss") || !strcmp(name, "grad") ||
           !strcmp(name, "update") || !strcmp(name, "adam");
}

/* A count argument at most cap ("train step" alone counts as 1). */
static int small_count(char **words, int n, int at, long cap)
{
    if (n <= at)
        return 1;
    char *end;
    double v = strtod(words[at], &end);
    return end != words[at] && v <= (double)cap;
}

/* 1 when the line may run in the sandbox. */
static int allowed(const ps_session *s, const char *line)
{
    char **words = NULL;
    int n = ps_split_line(line, &words, NULL);
    if (n <= 0) {
        if (n == 0)
            ps_words_free(words, 0);
        return 1;   /* empty or a syntax error: the dispatcher reports it */
    }
    const ps_command *c = NULL;
    int used = 1;
    if (n >= 2) {
        char two[128];
        snprintf(two, sizeof two, "%s %s", words[0], words[1]);
        if ((c = ps_command_find(two)))
            used = 2;
    }
    if (!c)
        c = ps_command_find(words[0]);
    int ok = 1;
    if (c) {
        for (int i = 0; denied[i]; i++)
            if (!strcmp(c->name, denied[i]))
                ok = 0;
        if (!strcmp(c->name, "set") && n >= 2 && !strcmp(words[1], "threads"))
            ok = 0;
        if (!strcmp(c->name, "train step") && !small_count(words, n, used, MAX_STEPS))
            ok = 0;
        if (!strcmp(c->name, "generate") && !small_count(words, n, used, MAX_GENERATE))
            ok = 0;
        if (is_training(c->name) &&
            (s->tcfg.batch > MAX_BATCH || s->tcfg.seq > MAX_BATCH ||
             (s->trainer && (s->trainer->cfg.batch > MAX_BATCH || s->trainer->cfg.seq > MAX_BATCH))))
            ok = 0;
    }
    ps_words_free(words, n);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    if (!text)
        return 0;
    ps_session s;
    ps_error err;
    if (ps_session_open(&s, model_path, &err)) {
        fprintf(stderr, "fuzz_repl: %s\n", err.msg);
        abort();
    }
    s.data_path = strdup(corpus_path);
    ps_out out = {.f = sink, .utf8 = 1, .width = 80};
    char *line = text;
    for (int i = 0; line && i < MAX_LINES && !s.quit; i++) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (allowed(&s, line)) {
            int rc = ps_repl_exec(&s, line, &out);
            fuzz_note(line, rc, out.err.msg);
        }
        line = next;
    }
    ps_session_close(&s);
    free(text);
    return 0;
}
