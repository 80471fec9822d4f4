/* engine/kernels: being written */
