/* Small file chores for tests (files.h). */
#include "support/files.h"

#include <stdio.h>

int support_copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    int bad = !a || !b;
    char buf[4096];
    size_t n;
    while (!bad && (n = fread(buf, 1, sizeof buf, a)) > 0)
        bad = fwrite(buf, 1, n, b) != n;
    bad |= a && ferror(a);
    if (a)
        fclose(a);
    if (b && fclose(b))
        bad = 1;
    return bad ? -1 : 0;
}
