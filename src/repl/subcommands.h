/* paramscope — the non-interactive subcommands.  Each takes the arguments
 * after its name (argv[0] is the subcommand's name) and returns the process
 * exit status: 0 success, 2 bad usage or bad input, 1 other failures.
 * Errors are one line on stderr. */
#ifndef PARAMSCOPE_REPL_SUBCOMMANDS_H
#define PARAMSCOPE_REPL_SUBCOMMANDS_H

#define PS_EXIT_OK 0
#define PS_EXIT_FAIL 1
#define PS_EXIT_USAGE 2

int ps_cmd_bench(int argc, char **argv);
int ps_cmd_predict(int argc, char **argv);
int ps_cmd_generate(int argc, char **argv);
int ps_cmd_info(int argc, char **argv);
int ps_cmd_eval(int argc, char **argv);
int ps_cmd_train(int argc, char **argv);
int ps_cmd_commands(int argc, char **argv);
/* attention, lens, attribute, neuron, patch, saliency: argv[0] names the
 * view; the rest becomes that command's line in a session on the model. */
int ps_cmd_view(int argc, char **argv);

/* Parsing helpers shared by the subcommands: whole-string numbers in a range;
 * on failure print "paramscope CMD: OPTION: 'TEXT' is not ..." and return -1. */
int ps_arg_int(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out);
int ps_arg_float(const char *cmd, const char *opt, const char *text, double lo, double hi, double *out);

#endif
