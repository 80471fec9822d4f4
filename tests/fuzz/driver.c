/* main() for the fuzz targets outside libFuzzer: runs the target once on
 * every file named on the command line, or inside a folder named there (the
 * committed crash inputs of regressions/TARGET/ and the seeds of
 * corpus/TARGET/).  A crash or a broken promise aborts, which fails the test;
 * otherwise it prints how many inputs ran.  A missing folder counts as empty:
 * a target with no crash found yet has no regressions folder. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* libFuzzer calls it when the target defines it; so do we. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    /* Exactly the file's bytes in a block of that size, so that ASan sees a
     * read one past the end, as under libFuzzer. */
    uint8_t *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc(len ? (size_t)len : 1);
    int bad = !buf || fread(buf, 1, (size_t)len, f) != (size_t)len;
    fclose(f);
    if (bad) {
        free(buf);
        fprintf(stderr, "%s: cannot read\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    free(buf);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in dir, in name order; returns the count or -1. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, (size_t)cap * sizeof *names);
            if (!grown) {
                rc = -1;
                break;
            }
            names = grown;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            rc = -1;
            break;
        }
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (rc == 0 && n)
        qsort(names, (size_t)n, sizeof *names, cmp_names);
    int ran = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(names[i]))
                rc = -1;
            else
                ran++;
        }
        free(names[i]);
    }
    free(names);
    return rc ? -1 : ran;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int n;
        if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode))
            n = run_file(argv[i]) ? -1 : 1;
        else
            n = run_dir(argv[i]);
        if (n < 0) {
            fprintf(stderr, "%s: cannot read the inputs\n", argv[i]);
            return 1;
        }
        ran += n;
    }
    printf("%d inputs ran cleanly\n", ran);
    return 0;
}
