/* Helpers shared by the fuzz targets (fuzz.h): temporary files and the tiny
 * model.  Files go to one folder per process, removed at exit, so that a
 * long fuzzing run leaves nothing behind. */
#include "fuzz.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "paramscope/blas.h"
#include "paramscope/model.h"
#include "paramscope/model_file.h"
#include "paramscope/safetensors.h"
#include "paramscope/tokenizer.h"

#define MAX_TMP_FILES 16

static char tmp_dir[256];
static char tmp_files[MAX_TMP_FILES][320];
static int n_tmp_files;

void fuzz_note(const char *target, int rc, const char *msg)
{
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = getenv("FUZZ_VERBOSE");
        verbose = v && *v == '1';
    }
    if (verbose)
        fprintf(stderr, "%s: %d %s\n", target, rc, rc ? msg : "accepted");
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return NULL;
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static void remove_tmp(void)
{
    for (int i = 0; i < n_tmp_files; i++)
        unlink(tmp_files[i]);
    if (tmp_dir[0])
        rmdir(tmp_dir);
}

const char *fuzz_tmp_dir(void)
{
    if (tmp_dir[0])
        return tmp_dir;
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/ps-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        tmp_dir[0] = '\0';
        return tmp_dir;
    }
    atexit(remove_tmp);
    return tmp_dir;
}

const char *fuzz_tmp_file(const char *name)
{
    const char *dir = fuzz_tmp_dir();
    for (int i = 0; i < n_tmp_files; i++) {
        const char *slash = strrchr(tmp_files[i], '/');
        if (slash && strcmp(slash + 1, name) == 0)
            return tmp_files[i];
    }
    if (!*dir || n_tmp_files == MAX_TMP_FILES)
        return "";
    snprintf(tmp_files[n_tmp_files], sizeof tmp_files[0], "%s/%s", dir, name);
    return tmp_files[n_tmp_files++];
}

int fuzz_write_file(const char *path, const void *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        size -= (size_t)n;
    }
    return close(fd);
}

/* "the" and "sky" make the quoted-token views (wte["sky"]) reachable; "'"
 * and "(" exercise the decoder's spacing rules. */
const char *const fuzz_tiny_words[FUZZ_TINY_VOCAB] = {
    "<unk>", "the", "sky", "is", "blue", ".", "'", "("};

int fuzz_tiny_model(ps_model **m, ps_tokenizer **tok)
{
    ps_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 8, .n_ctx = 8,
                     .vocab_size = FUZZ_TINY_VOCAB};
    *m = NULL;
    *tok = NULL;
    ps_blas_init(1, NULL);
    if (ps_model_init(m, &cfg, NULL) ||
        ps_tokenizer_from_list(tok, (const char *const *)fuzz_tiny_words,
                               FUZZ_TINY_VOCAB, NULL))
        goto fail;
    ps_model_init_random(*m, 5);
    return 0;
fail:
    ps_model_free(*m);
    ps_tokenizer_free(*tok);
    *m = NULL;
    *tok = NULL;
    return -1;
}

const char *fuzz_tiny_save(void)
{
    static int saved;
    const char *path = fuzz_tmp_file("tiny.safetensors");
    if (saved || !*path)
        return path;
    ps_model *m;
    ps_tokenizer *tok;
    if (fuzz_tiny_model(&m, &tok))
        return "";
    int rc = ps_model_save(m, tok, NULL, path, NULL);
    ps_model_free(m);
    ps_tokenizer_free(tok);
    saved = rc == 0;
    return saved ? path : "";
}

/* ---- a tiny GPT-2 vocabulary and folder ---- */

/* GPT-2's alphabet: printable Latin-1 bytes stand for themselves, the rest
 * for 256, 257, ... in byte order. */
static unsigned byte_char(unsigned b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae))
        return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || (c >= 0xae)))
            n++;
    return 256 + n;
}

/* Appends cp as JSON-safe UTF-8 (escaping '"' and '\\'). */
static size_t put_char(char *p, unsigned cp)
{
    if (cp == '"' || cp == '\\') {
        p[0] = '\\';
        p[1] = (char)cp;
        return 2;
    }
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    p[0] = (char)(0xc0 | (cp >> 6));
    p[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

static const char *const merge_pairs[FUZZ_BPE_MERGES][2] = {
    {"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"s", "k"},
    {"Ġ", "sk"}, {"Ġsk", "y"}, {"i", "s"}, {"Ġ", "is"}};

int fuzz_gpt2_texts(char **vocab_json, char **merges)
{
    size_t vcap = 64 * FUZZ_BPE_VOCAB, mcap = 32 * FUZZ_BPE_MERGES + 32;
    char *v = malloc(vcap), *mg = malloc(mcap);
    if (!v || !mg)
        goto fail;
    size_t n = 0;
    v[n++] = '{';
    for (unsigned b = 0; b < 256; b++) {
        v[n++] = '"';
        n += put_char(v + n, byte_char(b));
        n += (size_t)snprintf(v + n, vcap - n, "\": %u, ", b);
    }
    size_t m = (size_t)snprintf(mg, mcap, "#version: 0.2\n");
    for (int i = 0; i < FUZZ_BPE_MERGES; i++) {
        n += (size_t)snprintf(v + n, vcap - n, "\"%s%s\": %d, ", merge_pairs[i][0],
                              merge_pairs[i][1], 256 + i);
        m += (size_t)snprintf(mg + m, mcap - m, "%s %s\n", merge_pairs[i][0],
                              merge_pairs[i][1]);
    }
    snprintf(v + n, vcap - n, "\"<|endoftext|>\": %d}", 256 + FUZZ_BPE_MERGES);
    *vocab_json = v;
    *merges = mg;
    return 0;
fail:
    free(v);
    free(mg);
    return -1;
}

const char *fuzz_hf_folder(void)
{
    static int made;
    const char *dir = fuzz_tmp_dir();
    if (made || !*dir)
        return made ? dir : "";
    ps_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 8, .n_ctx = 8,
                     .vocab_size = FUZZ_BPE_VOCAB};
    ps_model *m = NULL;
    char *vocab = NULL, *merges = NULL;
    ps_st_out *outs = NULL;
    ps_blas_init(1, NULL);
    if (ps_model_init(&m, &cfg, NULL) || fuzz_gpt2_texts(&vocab, &merges))
        goto fail;
    ps_model_init_random(m, 7);
    if (!(outs = calloc((size_t)m->n_params, sizeof *outs)))
        goto fail;
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = &m->params[i];
        outs[i] = (ps_st_out){.name = p->name, .ndim = p->ndim, .data = p->data,
                              .shape = {p->shape[0], p->shape[1]}};
    }
    if (ps_st_write(fuzz_tmp_file("model.safetensors"), outs, m->n_params,
                    NULL, NULL, 0, NULL) ||
        fuzz_write_file(fuzz_tmp_file("vocab.json"), vocab, strlen(vocab)) ||
        fuzz_write_file(fuzz_tmp_file("merges.txt"), merges, strlen(merges)))
        goto fail;
    made = 1;
fail:
    ps_model_free(m);
    free(vocab);
    free(merges);
    free(outs);
    return made ? dir : "";
}

void fuzz_check_round_trip(ps_tokenizer *tok, const char *probe)
{
    ps_tokens t = {0};
    ps_error err;
    if (ps_tokenizer_encode(tok, probe, &t, &err) == 0) {
        char *back = ps_tokenizer_decode(tok, t.ids, t.n);
        FUZZ_CHECK(!back || strcmp(back, probe) == 0);
        free(back);
        ps_tokens_free(&t);
    }
    ps_tokenizer_free(tok);
}
