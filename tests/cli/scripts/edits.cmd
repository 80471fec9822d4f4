# Changing parameters and taking it back: compared with edits.out
h.0.ln_1.bias[0:3]
h.0.ln_1.bias[0:3] = 0.5
h.0.ln_1.bias[0:3]
scale h.0.ln_1.bias 2
h.0.ln_1.bias[0:3]
history
undo
undo
h.0.ln_1.bias[0:3]
redo
diff
reset
h.0.ln_1.bias[0:3]
