/* paramscope — status codes and error messages.
 *
 * Every public function that can fail returns an int: 0 (PS_OK) or a negative
 * PS_ERR_* code, and fills a caller-owned ps_error with one line meant for a
 * person: the file or item first, then the reason.  A NULL ps_error is allowed
 * everywhere and means "the caller only wants the code". */
#ifndef PARAMSCOPE_ERROR_H
#define PARAMSCOPE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* One table yields the enum and the messages. */
#define PS_STATUS_TABLE(X)                                        \
    X(PS_OK,              0,  "ok")                                \
    X(PS_ERR_NOMEM,      -1,  "out of memory")                     \
    X(PS_ERR_INVALID,    -2,  "invalid argument")                  \
    X(PS_ERR_IO,         -3,  "input/output error")                \
    X(PS_ERR_FORMAT,     -4,  "malformed file")                    \
    X(PS_ERR_RANGE,      -5,  "value out of range")                \
    X(PS_ERR_NOT_FOUND,  -6,  "not found")                         \
    X(PS_ERR_NUMERIC,    -7,  "non-finite value")                  \
    X(PS_ERR_STATE,      -8,  "operation not valid in this state") \
    X(PS_ERR_INTERRUPTED,-9,  "interrupted")

typedef enum ps_status {
#define PS_STATUS_ENUM(name, value, text) name = value,
    PS_STATUS_TABLE(PS_STATUS_ENUM)
#undef PS_STATUS_ENUM
} ps_status;

#define PS_ERROR_MSG_MAX 512

typedef struct ps_error {
    int code;                       /* last status, 0 when none */
    char msg[PS_ERROR_MSG_MAX];     /* one line, no trailing newline */
} ps_error;

/* The generic text of a status code ("out of memory"); never NULL. */
const char *ps_status_str(int code);

/* Fills err (if not NULL) with code and a printf-style message; returns code,
 * so that `return ps_error_set(err, PS_ERR_RANGE, "...")` reads naturally.
 * The message is made one line here: control bytes (C0 and DEL) that the
 * arguments brought in are written as \n, \r, \t or \xNN (ESC: \x1b), so
 * that text from a file or a token can never move the cursor or split the
 * line.  ps_error_vset is the same with a va_list. */
int ps_error_vset(ps_error *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
int ps_error_set(ps_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts "prefix: " in front of the message already in err (for adding a file
 * name at a higher level), escaped as above.  Returns err->code. */
int ps_error_prefix(ps_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void ps_error_clear(ps_error *err);

/* s made safe for a one-line message: control bytes escaped as ps_escape
 * does, and a string whose escaped form is longer than cap - 4 cut (between
 * escapes) and ended with "...".  Returns buf (cap >= 8). */
const char *ps_printable(const char *s, char *buf, size_t cap);

/* ---- escaping bytes for people and for the parser ---- */

enum {
    PS_ESCAPE_QUOTED = 1 << 0,   /* also '"' -> \" and '\' -> \\ (inside quotes) */
    PS_ESCAPE_UTF8   = 1 << 1,   /* also bytes that are not valid UTF-8 -> \xNN */
};

/* Writes the n bytes of s (NULs included) to buf with \n, \r, \t for those
 * bytes, \xNN (two lower-case hex digits) for the other C0 bytes and DEL,
 * and what flags add; everything else as it is.  Writes whole escapes only
 * and always NUL-terminates when cap > 0.  Returns the length of the whole
 * escaped text (as snprintf does: >= cap means it was cut).  The escapes are
 * the ones quoted tokens in addresses accept, so a token written with
 * PS_ESCAPE_QUOTED | PS_ESCAPE_UTF8 reads back as the same bytes. */
size_t ps_escape(const char *s, size_t n, int flags, char *buf, size_t cap);

/* Whether the n bytes of s are valid UTF-8 (shortest forms, no surrogates). */
int ps_utf8_valid(const char *s, size_t n);

#endif
