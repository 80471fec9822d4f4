/* repl/bench: being written */
