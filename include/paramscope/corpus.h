/* paramscope — training corpora.
 *
 * A corpus is a plain text file read as one stream of sentences: each line
 * holds one or more sentences and a line break is only white space, so the
 * token ids run on from one line to the next with nothing marking the break.
 * The text is encoded with the model's tokenizer; words outside its
 * vocabulary become id 0 ("<unk>") and are counted.
 *
 * Errors name the file first, e.g.
 *   "data/x.txt: cannot open: No such file or directory"   PS_ERR_IO
 *   "data/x.txt: is a directory, not a file"               PS_ERR_IO
 *   "data/x.txt: is a FIFO, not a regular file"            PS_ERR_IO
 *     (FIFOs, devices and sockets are refused before a byte is read)
 *   "data/x.txt: 2000000000 bytes, over the limit of 536870912 bytes for a corpus"
 *                                                          PS_ERR_RANGE
 *   "data/x.txt: cannot read: Input/output error"          PS_ERR_IO
 *   "data/x.txt: corpus is empty"                          PS_ERR_FORMAT
 *   "data/x.txt: NUL byte at offset 17: not a text file"   PS_ERR_FORMAT
 *   "data/x.txt: no token of the corpus is in the model's vocabulary"
 *                                                          PS_ERR_INVALID */
#ifndef PARAMSCOPE_CORPUS_H
#define PARAMSCOPE_CORPUS_H

#include <stddef.h>

#include "paramscope/error.h"
#include "paramscope/tokenizer.h"

/* The largest corpus read: 512 MiB of text is about 100 million tokens,
 * whose ids alone take 400 MB. */
#define PS_CORPUS_MAX ((size_t)512 << 20)

typedef struct ps_corpus {
    char *path;               /* as given to ps_corpus_load (or the name) */
    int *ids;                 /* [n] the whole corpus, in order */
    size_t n;                 /* number of tokens, > 0 */
    size_t n_unknown;         /* tokens that are id 0 because the word is
                                 outside the vocabulary; < n */
} ps_corpus;

/* Reads path and encodes it with tok.  On success *out is a new corpus (free
 * with ps_corpus_free); on failure *out is NULL and err names the file. */
int ps_corpus_load(ps_corpus **out, const char *path, const ps_tokenizer *tok,
                   ps_error *err);

/* The same from text already in memory (len bytes, need not be
 * NUL-terminated); name stands for the file in messages and in ->path. */
int ps_corpus_from_text(ps_corpus **out, const char *name, const char *text,
                        size_t len, const ps_tokenizer *tok, ps_error *err);

void ps_corpus_free(ps_corpus *c);   /* NULL does nothing */

/* Reads a whole text file, for building a vocabulary.  *text is malloc'd and
 * NUL-terminated, *len its length without the NUL; both are untouched on
 * failure.  A file with no byte other than white space is "corpus is empty";
 * a file with a NUL byte is not text. */
int ps_corpus_read_text(char **text, size_t *len, const char *path,
                        ps_error *err);

#endif
