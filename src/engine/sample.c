/* engine/sample: being written */
