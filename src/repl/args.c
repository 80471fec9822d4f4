/* Strict number parsing for command-line options: the whole string must be
 * a number and in range, so that "--steps 10x" is an error, not 10. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "repl/common.h"
#include "repl/subcommands.h"

int ps_arg_int(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end, shown[128];
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno) {
        fprintf(stderr, "paramscope %s: %s: '%s' is not a whole number\n", cmd, opt,
                ps_printable(text, shown, sizeof shown));
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "paramscope %s: %s: %ld is not in [%ld, %ld]\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int ps_arg_float(const char *cmd, const char *opt, const char *text, double lo, double hi, double *out)
{
    double v = 0;
    const char *why = ps_number_read(text, &v);
    if (!why && isinf(v))
        why = "is infinite; give a finite number";
    if (why) {
        char shown[128];
        fprintf(stderr, "paramscope %s: %s: '%s' %s\n", cmd, opt, ps_printable(text, shown, sizeof shown), why);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "paramscope %s: %s: %g is not in [%g, %g]\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}
