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

int ps_error_set(ps_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
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
    return err->code;
}

void ps_error_clear(ps_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *ps_printable(const char *s, char *buf, size_t cap)
{
    size_t n = 0, max = cap - 4;
    for (; s[n] && n < max; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[n]) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}
