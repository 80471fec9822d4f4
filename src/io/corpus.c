/* io/corpus: reading a training text and encoding it into one stream of ids.
 *
 * The text is encoded in pieces of about a megabyte, each ending at a line
 * break, so that the per-token strings ps_tokenizer_encode makes for display
 * never exist for the whole corpus at once.  A line break is white space to
 * the words rule, so the pieces give the same ids as the whole text would. */
#include "paramscope/corpus.h"

#include "paramscope/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_BYTES ((size_t)1 << 20)

/* ---- reading ---- */

static int is_blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v'
            && c != '\f')
            return 0;
    }
    return 1;
}

/* Checks what every corpus must be: text (no NUL byte) with something in it. */
static int check_text(const char *name, const char *text, size_t len,
                      ps_error *err)
{
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return ps_error_set(err, PS_ERR_FORMAT,
                            "%s: NUL byte at offset %zu: not a text file",
                            name, (size_t)(nul - text));
    if (is_blank(text, len))
        return ps_error_set(err, PS_ERR_FORMAT, "%s: corpus is empty", name);
    return PS_OK;
}

/* Why read in pieces and look for NUL in each: a 1 GB sparse file of zeros
 * must be refused after its first megabyte, not after reading all of it. */
int ps_corpus_read_text(char **text, size_t *len, const char *path,
                        ps_error *err)
{
    char *buf = NULL;
    int fd = -1, rc;

    if (!text || !len || !path)
        return ps_error_set(err, PS_ERR_INVALID, "corpus: no %s",
                            path ? "output" : "path");
    struct stat st;
    if ((rc = ps_file_open_read(path, &fd, &st, err)) < 0)
        return rc;
    if ((unsigned long long)st.st_size > PS_CORPUS_MAX) {
        rc = ps_error_set(err, PS_ERR_RANGE, "%s: %lld bytes, over the limit of %zu "
                          "bytes for a corpus", path, (long long)st.st_size,
                          (size_t)PS_CORPUS_MAX);
        goto fail;
    }
    /* the size is a first guess: the file may change while we read */
    size_t cap = (size_t)st.st_size + 2, n = 0;
    buf = malloc(cap);
    if (!buf)
        goto nomem;
    for (;;) {
        if (n + 1 == cap) {
            if (cap > PS_CORPUS_MAX) {
                rc = ps_error_set(err, PS_ERR_RANGE, "%s: grew past the limit of %zu "
                                  "bytes for a corpus while being read", path,
                                  (size_t)PS_CORPUS_MAX);
                goto fail;
            }
            char *nb = realloc(buf, cap + CHUNK_BYTES);
            if (!nb)
                goto nomem;
            buf = nb;
            cap += CHUNK_BYTES;
        }
        size_t want = cap - 1 - n;
        ssize_t got = read(fd, buf + n, want > CHUNK_BYTES ? CHUNK_BYTES : want);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = ps_error_set(err, PS_ERR_IO, "%s: cannot read: %s", path,
                              strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        const char *nul = memchr(buf + n, '\0', (size_t)got);
        if (nul) {
            rc = ps_error_set(err, PS_ERR_FORMAT, "%s: NUL byte at offset %zu: not a text file",
                              path, (size_t)(nul - buf));
            goto fail;
        }
        n += (size_t)got;
    }
    close(fd);
    fd = -1;
    buf[n] = '\0';
    if ((rc = check_text(path, buf, n, err)) < 0)
        goto fail;
    *text = buf;
    *len = n;
    return PS_OK;

nomem:
    rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while reading it", path);
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* ---- encoding ---- */

static int append_ids(ps_corpus *c, size_t *cap, const ps_tokens *t)
{
    size_t add = (size_t)t->n;
    if (add == 0)
        return PS_OK;   /* a chunk of white space: memcpy must not see NULL */
    if (c->n + add > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < c->n + add)
            ncap *= 2;
        int *ids = realloc(c->ids, ncap * sizeof *ids);
        if (!ids)
            return PS_ERR_NOMEM;
        c->ids = ids;
        *cap = ncap;
    }
    memcpy(c->ids + c->n, t->ids, add * sizeof *t->ids);
    c->n += add;
    c->n_unknown += (size_t)t->n_unknown;
    return PS_OK;
}

static int encode_all(ps_corpus *c, const char *text, size_t len,
                      const ps_tokenizer *tok, ps_error *err)
{
    char *chunk = NULL;
    size_t chunk_cap = 0, ids_cap = 0;
    int rc = PS_OK;

    for (size_t start = 0; start < len;) {
        size_t end = len;
        if (len - start > CHUNK_BYTES) {
            const char *nl = memchr(text + start + CHUNK_BYTES, '\n',
                                    len - start - CHUNK_BYTES);
            if (nl)
                end = (size_t)(nl - text) + 1;
        }
        size_t m = end - start;
        if (m + 1 > chunk_cap) {
            char *nb = realloc(chunk, m + 1);
            if (!nb) {
                rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while encoding it", c->path);
                break;
            }
            chunk = nb;
            chunk_cap = m + 1;
        }
        memcpy(chunk, text + start, m);
        chunk[m] = '\0';

        ps_tokens t;
        if ((rc = ps_tokenizer_encode(tok, chunk, &t, err)) < 0) {
            ps_error_prefix(err, "%s", c->path);
            break;
        }
        rc = append_ids(c, &ids_cap, &t);
        ps_tokens_free(&t);
        if (rc < 0) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while encoding it", c->path);
            break;
        }
        start = end;
    }
    free(chunk);
    if (rc == PS_OK && c->n > 0 && c->n < ids_cap) {
        int *ids = realloc(c->ids, c->n * sizeof *ids);   /* give back the slack */
        if (ids)
            c->ids = ids;
    }
    return rc;
}

int ps_corpus_from_text(ps_corpus **out, const char *name, const char *text,
                        size_t len, const ps_tokenizer *tok, ps_error *err)
{
    ps_corpus *c = NULL;
    int rc;

    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "corpus: no output pointer");
    *out = NULL;
    if (!name)
        name = "corpus";
    if (!tok || (!text && len > 0))
        return ps_error_set(err, PS_ERR_INVALID, "%s: no %s", name,
                            tok ? "text" : "tokenizer");
    if ((rc = check_text(name, text ? text : "", len, err)) < 0)
        return rc;
    c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(name))) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory while encoding it", name);
        goto fail;
    }
    if ((rc = encode_all(c, text, len, tok, err)) < 0)
        goto fail;
    if (c->n == 0) {
        rc = ps_error_set(err, PS_ERR_FORMAT, "%s: corpus is empty", name);
        goto fail;
    }
    if (c->n_unknown == c->n) {
        rc = ps_error_set(err, PS_ERR_INVALID,
                          "%s: no token of the corpus is in the model's vocabulary",
                          name);
        goto fail;
    }
    *out = c;
    return PS_OK;

fail:
    ps_corpus_free(c);
    return rc;
}

int ps_corpus_load(ps_corpus **out, const char *path, const ps_tokenizer *tok,
                   ps_error *err)
{
    char *text = NULL;
    size_t len = 0;

    if (!out)
        return ps_error_set(err, PS_ERR_INVALID, "corpus: no output pointer");
    *out = NULL;
    int rc = ps_corpus_read_text(&text, &len, path, err);
    if (rc < 0)
        return rc;
    rc = ps_corpus_from_text(out, path, text, len, tok, err);
    free(text);
    return rc;
}

void ps_corpus_free(ps_corpus *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->ids);
    free(c);
}
