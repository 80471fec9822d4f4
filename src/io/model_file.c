/* io/model_file: being written */
