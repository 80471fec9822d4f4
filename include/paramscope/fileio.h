/* paramscope — opening files to read and replacing files safely.
 *
 * Reading: a path is opened with O_NONBLOCK and checked with fstat before a
 * byte is read, so a FIFO, a device, a socket or a directory given as a
 * model, corpus or script is refused at once instead of blocking or reading
 * forever; then O_NONBLOCK is cleared for the ordinary reads.
 *
 * Writing: a file is written under a temporary name in the target's folder
 * (an unnamed O_TMPFILE file where the file system has them, so that a kill
 * during the write leaves nothing behind; else NAME.tmp.XXXXXX), flushed to
 * the disk with fsync, then renamed over the target.  Only a regular file or
 * a new name is ever replaced: a FIFO, a device, a directory or a symlink to
 * one is refused before anything is written, and checked again just before
 * the rename.  A symlink to a regular file is followed: the file it points
 * to is replaced and the link stays.
 *
 * Messages are one line, "PATH: reason", e.g.
 *   "x: cannot open: No such file or directory"
 *   "x: is a FIFO, not a regular file"
 *   "x: is a directory, not a file"
 *   "x: 20000000 bytes, over the limit of 16777216 bytes for a script"
 *   "x: cannot write there: Permission denied"
 *   "x: the name is too long for its temporary file (250 + 34 bytes, limit 255)" */
#ifndef PARAMSCOPE_FILEIO_H
#define PARAMSCOPE_FILEIO_H

#include <stddef.h>
#include <sys/stat.h>

#include "paramscope/error.h"

/* The largest command script read (--script, source): far more than any
 * lesson, small enough that a wrong file is refused rather than read. */
#define PS_SCRIPT_MAX ((size_t)16 << 20)

/* "a FIFO", "a character device", ... for st_mode; "a regular file". */
const char *ps_file_kind(mode_t mode);

/* PS_OK when path does not exist or is a regular file (or a symlink to
 * one); PS_ERR_IO "PATH: is a FIFO, not a regular file" otherwise, so that
 * an optional file of the wrong kind is named rather than taken as absent. */
int ps_file_regular_or_absent(const char *path, ps_error *err);

/* The folder part of path, malloc'd: "." for a bare name, "/" for "/x".
 * NULL when out of memory. */
char *ps_file_dir(const char *path);

/* Opens path read-only without blocking and refuses anything but a regular
 * file.  On success *fd is open (blocking mode, close-on-exec; the caller
 * closes it) and *st, when not NULL, is its fstat.  PS_ERR_IO on failure,
 * with *fd = -1. */
int ps_file_open_read(const char *path, int *fd, struct stat *st, ps_error *err);

/* Reads all of the regular file path into *out (malloc'd, NUL-terminated;
 * *len without the NUL).  A file over max bytes is refused before it is
 * read, and one that grows past max while being read is refused too:
 * PS_ERR_RANGE "PATH: N bytes, over the limit of MAX bytes for WHAT".  what names
 * the kind of file for that message ("a script").  PS_ERR_IO, PS_ERR_NOMEM
 * ("PATH: out of memory while reading it"). */
int ps_file_read_all(const char *path, size_t max, const char *what, char **out,
                     size_t *len, ps_error *err);

/* Checks, without writing anything, that path may be replaced: it is a new
 * name in an existing folder that this process may write, or a regular file
 * (or a symlink to one) there; and that its name leaves room for extra
 * bytes of temporary suffix within the folder's name limit.  PS_ERR_IO with
 * the reason. */
int ps_file_check_target(const char *path, size_t extra, ps_error *err);

/* A file being written in place of another. */
typedef struct ps_atomic_file {
    int fd;                   /* write here; -1 once finished */
    char *path;               /* the target (a symlink resolved) */
    char *tmp;                /* the temporary name, or NULL while unnamed */
    int committed;
} ps_atomic_file;

/* Checks path as ps_file_check_target(path, 0) does and creates the
 * temporary file, with the mode of the file it replaces or else 0644.
 * On failure *a is cleared (ps_atomic_abort on it does nothing). */
int ps_atomic_open(ps_atomic_file *a, const char *path, ps_error *err);

/* write(2) until done; PS_ERR_IO "PATH: cannot write: <strerror>". */
int ps_atomic_write(ps_atomic_file *a, const void *buf, size_t len, ps_error *err);

/* fsync, close, check the target again, rename over it, fsync the folder.
 * With no_replace the target must not exist (a new name, for a file that is
 * later renamed into place itself).  On failure the temporary file is
 * removed and the target is untouched. */
int ps_atomic_commit(ps_atomic_file *a, int no_replace, ps_error *err);

/* Removes the temporary file if not committed and frees *a; idempotent. */
void ps_atomic_abort(ps_atomic_file *a);

/* rename(from, to), refusing a target that is not a regular file or a new
 * name; the folder is fsync'ed afterwards. */
int ps_file_rename(const char *from, const char *to, ps_error *err);

#endif
