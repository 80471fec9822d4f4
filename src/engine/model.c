/* engine/model: being written */
