/* Test support: small file chores the tests share. */
#ifndef PARAMSCOPE_TESTS_SUPPORT_FILES_H
#define PARAMSCOPE_TESTS_SUPPORT_FILES_H

/* Copies the file from to to (created or truncated); 0, or -1 on any error. */
int support_copy_file(const char *from, const char *to);

#endif
