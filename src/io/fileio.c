/* Opening files to read without blocking, and replacing files without ever
 * destroying anything but a regular file.
 *
 * Why O_NONBLOCK: open(2) of a FIFO for reading blocks until a writer comes,
 * before fstat could tell us what it is.  Why stat before open as well: some
 * devices act when opened; a device is refused without being opened unless
 * it replaces the file between the two calls, and fstat catches that.
 *
 * Why O_TMPFILE: a file written unnamed and linked into the folder only when
 * complete cannot be left behind half-written by a kill -9; only the instant
 * between the link and the rename leaves a NAME.tmp.XXXXXX. */
#include "paramscope/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)1 << 20)
#define TMP_SUFFIX ".tmp.XXXXXX"
#define TMP_SUFFIX_LEN (sizeof TMP_SUFFIX - 1)

const char *ps_file_kind(mode_t mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symlink";
    return "not a regular file";
}

static int refuse_kind(const char *path, mode_t mode, ps_error *err)
{
    if (S_ISDIR(mode))
        return ps_error_set(err, PS_ERR_IO, "%s: is a directory, not a file", path);
    return ps_error_set(err, PS_ERR_IO, "%s: is %s, not a regular file", path,
                        ps_file_kind(mode));
}

/* ---- reading ---- */

int ps_file_regular_or_absent(const char *path, ps_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return refuse_kind(path, st.st_mode, err);
    return PS_OK;
}

int ps_file_open_read(const char *path, int *fd, struct stat *st, ps_error *err)
{
    struct stat pre, got;
    *fd = -1;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode))
        return refuse_kind(path, pre.st_mode, err);
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0)
        return ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(f, &got) < 0) {
        int e = errno;
        close(f);
        return ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(got.st_mode)) {
        close(f);
        return refuse_kind(path, got.st_mode, err);
    }
    int flags = fcntl(f, F_GETFL);
    if (flags < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(f);
        return ps_error_set(err, PS_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *fd = f;
    if (st)
        *st = got;
    return PS_OK;
}

int ps_file_read_all(const char *path, size_t max, const char *what, char **out,
                     size_t *len, ps_error *err)
{
    struct stat st;
    int fd, rc;
    char *buf = NULL;
    if ((rc = ps_file_open_read(path, &fd, &st, err)) < 0)
        return rc;
    if ((unsigned long long)st.st_size > max) {
        rc = ps_error_set(err, PS_ERR_RANGE, "%s: %lld bytes, over the limit of %zu bytes for %s",
                          path, (long long)st.st_size, max, what);
        goto fail;
    }
    /* the size is a first guess: the file may change while we read; room
     * for one byte more lets the read that finds the end happen without
     * growing, and one more holds the NUL */
    size_t cap = (size_t)st.st_size + 2, n = 0;
    if (!(buf = malloc(cap)))
        goto nomem;
    for (;;) {
        if (n + 1 == cap) {
            size_t ncap = cap + (cap < READ_CHUNK ? cap : READ_CHUNK);
            if (ncap > max + 2)
                ncap = max + 2;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (ncap <= cap) {
                rc = ps_error_set(err, PS_ERR_RANGE, "%s: grew past the limit of %zu "
                                  "bytes for %s while being read", path, max, what);
                goto fail;
            }
            if (!nb)
                goto nomem;
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - 1 - n;
        ssize_t got = read(fd, buf + n, want > READ_CHUNK ? READ_CHUNK : want);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = ps_error_set(err, PS_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max) {
            rc = ps_error_set(err, PS_ERR_RANGE, "%s: grew past the limit of %zu "
                              "bytes for %s while being read", path, max, what);
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return PS_OK;
nomem:
    rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while reading it", path);
fail:
    close(fd);
    free(buf);
    return rc;
}

/* ---- the target of a write ---- */

char *ps_file_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static const char *base_part(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The file a write to path replaces (path itself, or what its symlink points
 * to), checked as ps_file_check_target says; *mode gets the mode to give the
 * new file.  *resolved is malloc'd. */
static int resolve_target(const char *path, size_t extra, char **resolved,
                          mode_t *mode, ps_error *err)
{
    struct stat st;
    char *target = NULL, *dir = NULL;
    int rc;
    *resolved = NULL;
    if (mode)
        *mode = 0644;
    if (!*path)
        return ps_error_set(err, PS_ERR_IO, "(empty name): cannot write: %s", strerror(ENOENT));
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            struct stat to;
            if (stat(path, &to) != 0)
                return ps_error_set(err, PS_ERR_IO, "%s: is a symlink to nothing (%s); "
                                    "not replacing it", path, strerror(errno));
            if (!S_ISREG(to.st_mode))
                return ps_error_set(err, PS_ERR_IO, "%s: is a symlink to %s, not a "
                                    "regular file; not replacing it", path,
                                    ps_file_kind(to.st_mode));
            target = realpath(path, NULL);
            st = to;
        } else if (!S_ISREG(st.st_mode)) {
            if (S_ISDIR(st.st_mode))
                return ps_error_set(err, PS_ERR_IO, "%s: is a directory; give a file "
                                    "name to save to", path);
            return ps_error_set(err, PS_ERR_IO, "%s: is %s, not a regular file; not "
                                "replacing it", path, ps_file_kind(st.st_mode));
        } else {
            target = strdup(path);
        }
        if (mode)
            *mode = st.st_mode & 07777;
    } else if (errno != ENOENT) {
        return ps_error_set(err, PS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    } else {
        target = strdup(path);
    }
    if (!target || !(dir = ps_file_dir(target))) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while preparing to write it", path);
        goto fail;
    }
    struct stat ds;
    int sr = stat(dir, &ds);
    if (sr != 0 || !S_ISDIR(ds.st_mode)) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot write there: folder %s: %s", path,
                          dir, strerror(sr != 0 ? errno : ENOTDIR));
        goto fail;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot write there: %s", path, strerror(errno));
        goto fail;
    }
    long name_max = pathconf(dir, _PC_NAME_MAX);
    if (name_max <= 0)
        name_max = NAME_MAX;
    size_t blen = strlen(base_part(target)), need = extra + TMP_SUFFIX_LEN;
    if (blen == 0) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: is a folder name; give a file name", path);
        goto fail;
    }
    if (blen + need > (size_t)name_max || strlen(target) + need >= PATH_MAX) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: the name is too long for its temporary "
                          "file (%zu + %zu bytes, limit %ld)", path, blen, need, name_max);
        goto fail;
    }
    free(dir);
    *resolved = target;
    return PS_OK;
fail:
    free(dir);
    free(target);
    return rc;
}

int ps_file_check_target(const char *path, size_t extra, ps_error *err)
{
    char *t = NULL;
    int rc = resolve_target(path, extra, &t, NULL, err);
    free(t);
    return rc;
}

/* ---- atomic replacement ---- */

static void sync_folder(const char *path)
{
    char *dir = ps_file_dir(path);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int ps_atomic_open(ps_atomic_file *a, const char *path, ps_error *err)
{
    mode_t mode;
    memset(a, 0, sizeof *a);
    a->fd = -1;
    int rc = resolve_target(path, 0, &a->path, &mode, err);
    if (rc < 0)
        return rc;
    char *dir = ps_file_dir(a->path);
    if (!dir)
        goto nomem;
    /* naming an unnamed file later goes through /proc/self/fd: without
     * /proc (a chroot, a container) take the named temporary file at once */
    a->fd = access("/proc/self/fd", X_OK) == 0 ? open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600) : -1;
    free(dir);
    if (a->fd < 0) {
        /* no O_TMPFILE here (older kernels, some network file systems, no /proc) */
        size_t n = strlen(a->path);
        if (!(a->tmp = malloc(n + sizeof TMP_SUFFIX)))
            goto nomem;
        memcpy(a->tmp, a->path, n);
        memcpy(a->tmp + n, TMP_SUFFIX, sizeof TMP_SUFFIX);
        a->fd = mkstemp(a->tmp);
        if (a->fd < 0) {
            rc = ps_error_set(err, PS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
            free(a->tmp);
            a->tmp = NULL;
            goto fail;
        }
    }
    /* a model file is for sharing: keep the replaced file's mode, else 0644
     * (reading the umask would change it process-wide for a moment) */
    if (fchmod(a->fd, mode) < 0) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        goto fail;
    }
    return PS_OK;
nomem:
    rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while preparing to write it", path);
fail:
    ps_atomic_abort(a);
    return rc;
}

int ps_atomic_write(ps_atomic_file *a, const void *buf, size_t len, ps_error *err)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(a->fd, p, len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ps_error_set(err, PS_ERR_IO, "%s: cannot write: %s", a->path,
                                strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return PS_OK;
}

/* Gives the unnamed file a name: `name` itself when no_replace (linkat
 * fails if it exists, which is what we want), else a fresh NAME.tmp.XXXXXX. */
static int link_unnamed(ps_atomic_file *a, int no_replace)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", a->fd);
    if (no_replace)
        return linkat(AT_FDCWD, proc, AT_FDCWD, a->path, AT_SYMLINK_FOLLOW);
    size_t n = strlen(a->path);
    if (!(a->tmp = malloc(n + sizeof TMP_SUFFIX))) {
        errno = ENOMEM;
        return -1;
    }
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int tries = 0; tries < 100; tries++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            for (int i = 0; i < 6; i++)
                r[i] = (unsigned char)((unsigned long)ts.tv_nsec >> (4 * i)) ^ (unsigned char)tries;
        }
        snprintf(a->tmp, n + sizeof TMP_SUFFIX, "%s.tmp.", a->path);
        for (int i = 0; i < 6; i++)
            a->tmp[n + 5 + i] = abc[r[i] % (sizeof abc - 1)];
        a->tmp[n + 11] = '\0';
        if (linkat(AT_FDCWD, proc, AT_FDCWD, a->tmp, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    free(a->tmp);
    a->tmp = NULL;
    return -1;
}

int ps_atomic_commit(ps_atomic_file *a, int no_replace, ps_error *err)
{
    int rc;
    struct stat st;
    if (fsync(a->fd) < 0)
        goto io_fail;
    if (!a->tmp) {
        if (link_unnamed(a, no_replace) < 0)
            goto io_fail;
        if (no_replace) {
            close(a->fd);
            a->fd = -1;
            a->committed = 1;
            sync_folder(a->path);
            return PS_OK;
        }
    }
    int fd = a->fd;
    a->fd = -1;
    if (close(fd) < 0)
        goto io_fail;
    /* something may have taken the name while we wrote */
    if (lstat(a->path, &st) == 0 && (no_replace || !S_ISREG(st.st_mode))) {
        rc = no_replace ? ps_error_set(err, PS_ERR_IO, "%s: appeared while being "
                                       "written; not replacing it", a->path)
                        : refuse_kind(a->path, st.st_mode, err);
        goto fail;
    }
    if (no_replace ? (link(a->tmp, a->path) < 0 || unlink(a->tmp) < 0)
                   : rename(a->tmp, a->path) < 0)
        goto io_fail;
    a->committed = 1;
    sync_folder(a->path);
    return PS_OK;
io_fail:
    rc = ps_error_set(err, PS_ERR_IO, "%s: cannot write: %s", a->path, strerror(errno));
fail:
    ps_atomic_abort(a);
    return rc;
}

void ps_atomic_abort(ps_atomic_file *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    if (a->tmp && !a->committed)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
    a->fd = -1;
}

int ps_file_rename(const char *from, const char *to, ps_error *err)
{
    char *target = NULL;
    int rc = resolve_target(to, 0, &target, NULL, err);
    if (rc < 0)
        return rc;
    if (rename(from, target) < 0)
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot rename %s to it: %s", to, from,
                          strerror(errno));
    else
        sync_folder(target);
    free(target);
    return rc;
}
