# The lesson of docs/guide.md, run by the tests so that the guide stays true.
predict The sky is
baseline
show h.0.attn.q[1][0:4,0:6]
stats h.0.attn.c_attn.weight
scale h.0.attn.q[1] 0
predict The sky is
undo
ablate head 0.1
predict The sky is
undo
ablate neuron 2.7
predict The sky is
undo
noise h.1.mlp.c_fc.weight 0.05
predict The sky is
diff
reset
predict The sky is
train set lr 0.0003
train phase
train phase
train phase
grad h.0.ln_1.weight[0:4]
train phase
update h.0.ln_1.weight[0:4]
train step 3
loss
