/* engine/rng: being written */
