# Looking at parameters: the output is compared with inspect.out
tensors h.3.mlp
count
h.0.attn.c_attn.weight[0:3,0:4]
stats ln_f.weight
hist h.0.ln_1.weight 5
show wte["sky"][0:6]
