/* engine/trainer: being written */
