/* engine/tokenizer_words: being written */
