/* io/corpus: being written */
