/* Status strings and the message buffer helpers. */
#include "paramscope/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ps_status_str(int code)
{
    switch (code) {
#define PS_STATUS_CASE(name, value, text) case value: return text;
        PS_STATUS_TABLE(PS_STATUS_CASE)
#undef PS_STATUS_CASE
    }
    return "unknown error";
}

/* Messages take text from files, tokens and typed input; escaping here, once,
 * keeps every message one line whatever a caller formatted into it. */
static void escape_in_place(char *msg, size_t cap)
{
    char tmp[PS_ERROR_MSG_MAX];
    size_t n = strlen(msg);
    if (n >= sizeof tmp)
        n = sizeof tmp - 1;
    int dirty = 0;
    for (size_t i = 0; i < n && !dirty; i++)
        dirty = (unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] == 0x7f;
    if (!dirty)
        return;
    memcpy(tmp, msg, n);
    tmp[n] = '\0';
    ps_escape(tmp, n, 0, msg, cap);
}

int ps_error_vset(ps_error *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        escape_in_place(err->msg, sizeof err->msg);
    }
    return code;
}

int ps_error_set(ps_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ps_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int ps_error_prefix(ps_error *err, const char *fmt, ...)
{
    if (!err)
        return 0;
    char head[PS_ERROR_MSG_MAX], old[PS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", head, old);
    escape_in_place(err->msg, sizeof err->msg);
    return err->code;
}

void ps_error_clear(ps_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none:
 * shortest forms only, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

int ps_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(u + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

size_t ps_escape(const char *s, size_t n, int flags, char *buf, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = 0, room = cap;       /* room: bytes we may still write, NUL included */
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        char piece[8];
        size_t k = 1;
        if (c == '\n' || c == '\r' || c == '\t') {
            snprintf(piece, sizeof piece, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(piece, sizeof piece, "\\x%02x", c);
        } else if ((flags & PS_ESCAPE_QUOTED) && (c == '"' || c == '\\')) {
            snprintf(piece, sizeof piece, "\\%c", c);
        } else if (c >= 0x80 && (flags & PS_ESCAPE_UTF8) && (k = utf8_len(u + i, n - i)) == 0) {
            snprintf(piece, sizeof piece, "\\x%02x", c);
            k = 1;
        } else {
            memcpy(piece, s + i, k);
            piece[k] = '\0';
        }
        size_t pl = strlen(piece);
        /* whole pieces only: a cut escape would read as something else */
        if (pl < room) {
            memcpy(buf + len, piece, pl + 1);
            room -= pl;
        } else {
            room = 0;
        }
        len += pl;
        i += k;
    }
    return len;
}

const char *ps_printable(const char *s, char *buf, size_t cap)
{
    size_t max = cap - 4, n = strlen(s);
    size_t len = ps_escape(s, n, 0, buf, max + 1);
    if (len > max) {
        size_t at = strlen(buf);
        memcpy(buf + at, "...", 4);
    }
    return buf;
}
