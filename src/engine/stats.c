/* engine/stats: being written */
