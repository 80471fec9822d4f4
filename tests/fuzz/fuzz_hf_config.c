/* Fuzz target: config.json of a Hugging Face GPT-2 folder.  The folder (a
 * tiny model.safetensors, vocab.json and merges.txt) is made once; each
 * input becomes its config.json and the whole folder is opened with
 * ps_hf_gpt2_load, whose sizes must then agree with the tensors. */
#include "fuzz.h"

#include "paramscope/hf_gpt2.h"

static const char *dir;
static const char *config_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dir = fuzz_hf_folder();
    config_path = fuzz_tmp_file("config.json");
    if (!*dir || !*config_path) {
        fprintf(stderr, "fuzz_hf_config: cannot make the folder\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_write_file(config_path, data, size))
        return 0;
    ps_model *m = NULL;
    ps_tokenizer *tok = NULL;
    ps_hf_info info;
    ps_error err;
    int rc = ps_hf_gpt2_load(&m, &tok, &info, dir, NULL, &err);
    fuzz_note("hf_config", rc, err.msg);
    if (rc == 0) {
        FUZZ_CHECK(m->cfg.vocab_size == FUZZ_BPE_VOCAB && m->cfg.n_embd == 8);
        FUZZ_CHECK(m->cfg.n_embd % m->cfg.n_head == 0);
        ps_model_free(m);
        ps_tokenizer_free(tok);
        ps_hf_info_free(&info);
    } else {
        FUZZ_CHECK(m == NULL && tok == NULL);
    }
    return 0;
}
