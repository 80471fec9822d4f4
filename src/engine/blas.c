/* engine/blas: being written */
