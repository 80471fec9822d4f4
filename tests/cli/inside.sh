#!/usr/bin/env bash
# The views inside the forward pass, end to end: each as a command of the
# language (through --plain, as a script does) and as a --json subcommand,
# which must print what the command prints; and every bad input as one line.
. "$(dirname "$0")/lib.sh"

repl() { printf '%s\n' "$@" | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?; }

# ---- each view in the language ----
repl 'attention 0.1 the sky is'
check "attention in the language" 0
expect_out "attention: is looks at sky" "is             0.007  0.987  0.006"
expect_out "attention: where each looks" "is -> sky 0.99"
repl 'attention 0 the sky is'
check "a block's heads side by side" 0
expect_out "attention: four heads" "0.0     0.1     0.2     0.3"
repl 'lens the sky is'
check "lens" 0
expect_out "lens: blue rises in block 2" "block 2     blue                 61.21%"
expect_out "lens: the last stage is predict's" "block 3     blue                 95.19%"
repl 'attribute the sky is'
check "attribute" 0
expect_out "attribute: head 0.1 pushes blue" "head 0.1                +5.340"
expect_out "attribute: the parts add up" "the parts add up to 14.1501; the logit is 14.1501"
repl 'attribute "grass" the sky is'
check "attribute a named token" 0
expect_out "attribute grass" 'the logit of "grass"'
repl 'neuron 1.5 the sky is'
check "neuron" 0
expect_out "neuron: activations per token" "sky              -0.053"
expect_out "neuron: strongest contexts" "dry[,] and that"
repl 'patch the sky is | the grass is'
check "patch" 0
expect_out "patch: the differing token restores all at block 0" "block 0             0%    100%      0%"
expect_out "patch: the last residual restores all" "ln_f                0%      0%    100%"
repl 'saliency the sky is'
check "saliency" 0
expect_out "saliency: sky matters most" "sky            |grad|   0.8525"
# a bare view uses the last prompt
repl 'predict the sky is' 'lens'
expect_out "lens without text: the last prompt" 'logit lens at "is"'

# a token typed back with the escapes of addresses
repl 'attribute "\x62lue" the sky is'
check "attribute: escapes in the token" 0
expect_out "attribute: \\x62lue is blue" 'the logit of "blue"'
# numbers that are not numbers: no view, and where they start
repl 'h.0.ln_1.bias[0] = 3e38' 'lens the sky is'
check "lens of a non-finite forward" 1 "the forward pass is not finite"
grep -qF "block 0 (attention)" "$ERR" && ok || bad "lens: the first non-finite stage is not named"
# the neuron's contexts follow the training text
tac "$SRC/models/corpus.txt" > "$WORK/reversed.txt"
repl 'neuron 0.1' "train data $WORK/reversed.txt" 'neuron 0.1'
check "neuron after train data" 0
# (a scan kept from the old text would show the same activations at
# positions of the new one)
first=$(grep -A3 'strongest over the training text (the bundled' "$OUT" | tail -n 3 | awk '{print $1}' | tr '\n' ' ')
second=$(grep -A3 "strongest over the training text ($WORK/reversed.txt" "$OUT" | tail -n 3 | awk '{print $1}' | tr '\n' ' ')
[ -n "$second" ] && [ "$first" != "$second" ] && ok || bad "neuron: the scan did not follow the new text ('$first' / '$second')"

# ---- the same as subcommands, --json ----
run "$PS" attention --json 0.1 "The sky is"
check "attention --json" 0
expect_out "attention json" '{"tokens": ["the", "sky", "is"], "layer": 0, "head": 1, "pattern": [[1.0], [0.652611375, 0.347388625], [0.00742848078, 0.987009764, 0.00556172896]]}'
run "$PS" attention -m "$MODEL" 0 the sky is
check "attention -m" 0
printf '%s\n' 'attention 0 the sky is' | "$PS" --plain >"$WORK/repl.txt" 2>/dev/null
cmp -s "$OUT" "$WORK/repl.txt" && ok || bad "attention: the subcommand and the command differ"
run "$PS" lens --json the sky is
check "lens --json" 0
expect_out "lens json: embeddings first" '"after": "embeddings"'
expect_out "lens json: blue at the end" '"answer": "blue"'
run "$PS" attribute --json '"blue"' the sky is
check "attribute --json" 0
expect_out "attribute json" '"token": "blue", "id": '
expect_out "attribute json parts" '"part": "head 0.1", "layer": 0, "head": 1'
run "$PS" neuron --json 1.5 the sky is
check "neuron --json" 0
expect_out "neuron json" '"layer": 1, "neuron": 5'
run "$PS" patch --json the sky is '|' the grass is
check "patch --json" 0
expect_out "patch json" '"answer": "blue", "wrong": "green"'
run "$PS" saliency --json the sky is
check "saliency --json" 0
expect_out "saliency json" '"gradient_norm": ['

# ---- bad input: one line each ----
run "$PS" attention 4.0 the sky is
check "a block out of range" 2 "block 4: the model has blocks 0..3"
run "$PS" attention 0.4 the sky is
check "a head out of range" 2 "head 4 of block 0: block 0 has heads 0..3"
run "$PS" attention x.1 the sky is
check "not a head" 2 "'x.1' is not a head"
run "$PS" neuron 0.512 the sky
check "a neuron out of range" 2 "neuron 512 of block 0: block 0 has neurons 0..511"
run "$PS" neuron 0 the sky
check "a block is not a neuron" 2 "name one neuron"
run "$PS" patch the sky is '|' the grass
check "prompts of different lengths" 2 "the prompts have 3 and 2 tokens"
run "$PS" patch the sky is
check "patch without a second prompt" 2 "usage: patch CLEAN | CORRUPT"
run "$PS" attribute '"bluee"' the sky is
check "a token not in the vocabulary" 2 'no token "bluee" in the vocabulary'
run "$PS" lens xyzzy plugh
check "only unknown words" 2 "every word of the prompt is unknown"
run "$PS" lens
check "an empty prompt" 2 "no prompt"
run "$PS" attention --bogus 0.1 x
check "an unknown option" 2 "unknown option '--bogus'"
finish
