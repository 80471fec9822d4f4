/* engine/optim: being written */
