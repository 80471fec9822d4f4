/* Files and the rest: save, load, source, help, quit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/fileio.h"
#include "repl/repl.h"
#include "repl/train_state.h"

static int cmd_save(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_meta meta = {0};
    int rc = PS_OK;
    /* the file's metadata, but not its pairing with a .state: what is saved
     * here without a run is not the run that .state continues */
    for (int i = 0; i < s->lm.meta.n && !rc; i++)
        if (strcmp(s->lm.meta.keys[i], "train.state_id"))
            rc = ps_meta_set(&meta, s->lm.meta.keys[i], s->lm.meta.vals[i]);
    /* with a run in progress, its optimizer state is saved beside the model
     * (FILE.state), so that `paramscope train --resume FILE` continues it */
    if (!rc && s->trainer)
        rc = ps_train_state_to_meta(s->trainer, &meta, &out->err);
    if (!rc && s->trainer)
        rc = ps_train_save_run(s->trainer, s->lm.tok, &meta, argv[0], &out->err);
    else if (!rc)
        rc = ps_model_save(s->lm.model, s->lm.tok, &meta, argv[0], &out->err);
    ps_meta_free(&meta);
    if (rc)
        return out->err.code ? out->err.code : ps_fail(out, rc, "%s: out of memory while saving it", argv[0]);
    fprintf(out->f, "saved %s (%zu parameters)\n", argv[0], s->lm.model->n_values);
    return PS_OK;
}

static int cmd_load(ps_session *s, int argc, char **argv, ps_out *out)
{
    int rc = ps_session_load(s, argv[0], &out->err);
    if (rc)
        return rc;
    const ps_config *c = &s->lm.model->cfg;
    fprintf(out->f, "loaded %s: %d layers, %d heads, n_embd %d, vocabulary %d, %zu parameters\n", argv[0],
            c->n_layer, c->n_head, c->n_embd, c->vocab_size, s->lm.model->n_values);
    return PS_OK;
}

static int cmd_source(ps_session *s, int argc, char **argv, ps_out *out)
{
    if (s->depth >= 16)
        return ps_fail(out, PS_ERR_RANGE, "source %s: nested 16 deep; is a file sourcing itself?", argv[0]);
    /* read whole first: a FIFO, a device or a folder is refused at once and
     * a huge file is refused by its size, instead of blocking or reading on */
    char *text = NULL;
    size_t len = 0;
    int rc = ps_file_read_all(argv[0], PS_SCRIPT_MAX, "a script", &text, &len, &out->err);
    if (rc)
        return rc;
    FILE *f = len ? fmemopen(text, len, "r") : fopen("/dev/null", "r");
    if (!f) {
        free(text);
        return ps_fail(out, PS_ERR_NOMEM, "%s: out of memory while reading it", argv[0]);
    }
    ps_repl_opts o = {.bail = 0, .echo = 0};
    s->depth++;
    int failed = ps_repl_run_stream(s, f, argv[0], &o, out);
    s->depth--;
    fclose(f);
    free(text);
    if (failed)
        return ps_fail(out, PS_ERR_INVALID, "%s: %d command%s failed", argv[0], failed, failed == 1 ? "" : "s");
    return PS_OK;
}

typedef struct help_ctx { FILE *f; const char *group; } help_ctx;

static void help_visit(const ps_command *c, void *p)
{
    help_ctx *h = p;
    if (!h->group || strcmp(h->group, c->group)) {
        h->group = c->group;
        fprintf(h->f, "\n%s\n", c->group);
    }
    char head[96];
    snprintf(head, sizeof head, "%s%s%s", c->name, *c->args ? " " : "", c->args);
    fprintf(h->f, "  %-28s %s\n", head, c->summary);
}

static int cmd_help(ps_session *s, int argc, char **argv, ps_out *out)
{
    if (argc == 0) {
        fputs("Commands (help COMMAND for more).  A line that is just an ADDR shows it;\n"
              "ADDR = VALUE sets it.  ADDR is a tensor, view, element or slice:\n"
              "h.0.attn.c_attn.weight, h.0.attn.c_attn.weight[3,17], wte[\"sky\"],\n"
              "h.0.attn.q[2], h.1.mlp.neuron[5] (see docs/addresses.md).\n", out->f);
        help_ctx h = {out->f, NULL};
        ps_commands_each(help_visit, &h);
        return PS_OK;
    }
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
    const ps_command *c = ps_command_find(name);
    if (!c && argc > 1)
        c = ps_command_find(argv[0]);
    if (!c) {
        char sug[256];
        ps_command_suggest(argv[0], sug, sizeof sug);
        return ps_fail(out, PS_ERR_NOT_FOUND, "no command '%s'%s%s%s", name, sug[0] ? "; did you mean " : "", sug,
                       sug[0] ? "?" : "");
    }
    fprintf(out->f, "%s%s%s\n  %s\n\n%s", c->name, *c->args ? " " : "", c->args, c->summary, c->help);
    return PS_OK;
}

static int cmd_quit(ps_session *s, int argc, char **argv, ps_out *out)
{
    s->quit = 1;
    return PS_OK;
}

const ps_command ps_cmds_misc[] = {
    {"save", "FILE", "save the model as it is now (atomically)",
     "Writes the parameters, the vocabulary and the metadata to FILE through a\n"
     "temporary file in the same folder, so a failure leaves any old FILE intact.\n"
     "Only a regular file or a new name is replaced (never a device, a FIFO or a\n"
     "folder).  After training, FILE.state (the optimizer's moments and the data\n"
     "position) is saved with it, so that `paramscope train --resume FILE` goes on.\n",
     "Files and the rest", PS_COMPLETE_FILE, 1, 1, 0, cmd_save},
    {"load", "FILE", "open another model file (or a GPT-2 folder)",
     "A regular file (or a folder of a GPT-2 checkpoint) only: a FIFO or a device is\n"
     "refused at once.  On failure the current model stays.\n",
     "Files and the rest", PS_COMPLETE_FILE, 1, 1, PS_CMD_ANY_MODEL, cmd_load},
    {"source", "FILE", "run the commands in FILE", "Errors are reported as FILE:LINE: message.\n",
     "Files and the rest", PS_COMPLETE_FILE, 1, 1, PS_CMD_ANY_MODEL, cmd_source},
    {"help", "[COMMAND]", "list the commands, or explain one", "",
     "Files and the rest", PS_COMPLETE_COMMAND, 0, 2, PS_CMD_ANY_MODEL, cmd_help},
    {"quit", "", "leave paramscope (also: exit, Ctrl-D)", "",
     "Files and the rest", PS_COMPLETE_NONE, 0, 0, PS_CMD_ANY_MODEL, cmd_quit},
    {"exit", "", "leave paramscope", "",
     "Files and the rest", PS_COMPLETE_NONE, 0, 0, PS_CMD_ANY_MODEL, cmd_quit},
    {0},
};
