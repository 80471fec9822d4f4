/* io/safetensors: being written */
