predict The sky is
baseline
scale h.0.mlp.c_fc.weight 0
predict The sky is
undo
predict The sky is
stats wte.weight
h.0.ln_1.bias[0] = 0.5
undo
train step 3
loss
quit
