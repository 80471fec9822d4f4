#!/usr/bin/env bash
# End-to-end tests of the subcommands: predict, generate, info, eval, train,
# and every kind of bad input the commands must turn into a one-line error.
. "$(dirname "$0")/lib.sh"

# ---- predict ----
run "$PS" predict "The sky is"
check "predict the sky" 0
first=$(sed -n 3p "$OUT" | awk '{print $1}')
[ "$first" = blue ] && ok || bad "predict: first token is '$first', not blue"
expect_out "predict tokens line" "tokens: the sky is"

run "$PS" predict --json --top 3 "The sky is"
check "predict --json" 0
expect_out "json prompt" '"prompt": "The sky is"'
expect_out "json tokens" '"tokens": ["the", "sky", "is"]'
expect_out "json top blue" '"token": "blue"'
[ "$(grep -o '"id":' "$OUT" | wc -l)" -eq 3 ] && ok || bad "predict --json --top 3: not 3 entries"

run "$PS" predict --temperature 0 --json --top 2 "The sky is"
check "temperature 0" 0
expect_out "temperature 0: all on the argmax" '"prob": 1.0'
expect_out "temperature 0: the rest is zero" '"prob": 0.0'

run "$PS" predict --temperature -1 "The sky is"
check "negative temperature" 2 "negative"
run "$PS" predict --temperature abc "The sky is"
check "malformed temperature" 2 "'abc' is not a number"
run "$PS" predict --top 5x "The sky is"
check "malformed top" 2 "'5x' is not a whole number"
run "$PS" predict
check "no prompt" 2 "no prompt given"
run "$PS" predict --bogus x
check "unknown option" 2 "unknown option '--bogus'"

run "$PS" predict --top 100000 "The sky is"
check "top larger than the vocabulary" 0 "more than the vocabulary"
rows=$(($(wc -l <"$OUT") - 2))
vocab=$("$PS" info --json | grep -o '"vocab_size": [0-9]*' | grep -o '[0-9]*$')
[ "$rows" -eq "$vocab" ] && ok || bad "top > vocabulary: $rows rows for a vocabulary of $vocab"

run "$PS" predict xyzzy plugh
check "only unknown words" 2 "outside the vocabulary"
run "$PS" predict "the sky is xyzzy"
check "some unknown words" 0
expect_out "unknown marked" "[xyzzy]?"

long=$(for i in $(seq 1 50); do printf 'the cat is black . '; done)
run "$PS" predict "$long"
check "prompt longer than n_ctx" 0
expect_out "truncation said" "only its last 64 tokens"

run "$PS" predict -m "$WORK/missing.safetensors" "The sky is"
check "missing model" 2 "missing.safetensors: cannot open"
printf 'not a model at all, just text' >"$WORK/corrupt.safetensors"
run "$PS" predict -m "$WORK/corrupt.safetensors" "The sky is"
check "corrupt model" 2 "corrupt.safetensors"
head -c 3000 "$MODEL" >"$WORK/truncated.safetensors"
run "$PS" predict -m "$WORK/truncated.safetensors" "The sky is"
check "truncated model" 2 "truncated.safetensors"
PARAMSCOPE_MODEL="$WORK/missing.safetensors" run "$PS" predict "The sky is"
check "PARAMSCOPE_MODEL is used" 2 "missing.safetensors"

# ---- generate ----
run "$PS" generate --seed 7 -n 12 "a cat says"
check "generate" 0 "seed 7"
cp "$OUT" "$WORK/gen1"
run "$PS" generate --seed 7 -n 12 "a cat says"
cmp -s "$OUT" "$WORK/gen1" && ok || bad "generate: the same seed gave different text"
grep -q '^a cat says ' "$WORK/gen1" && [ "$(wc -w <"$WORK/gen1")" -ge 10 ] && ok || bad "generate: not the prompt and 12 more tokens"
run "$PS" generate --seed 8 -n 30 "a cat says"
cmp -s "$OUT" "$WORK/gen1" && bad "generate: another seed gave the same text" || ok
run "$PS" generate --temperature 0 -n 1 "a cat says"
check "greedy generate" 0
expect_out "greedy continues with meow" "a cat says meow"
run "$PS" generate --top-p 2 x
check "top-p out of range" 2 "not in"

# ---- info ----
run "$PS" info
check "info" 0
expect_out "info total" "total"
expect_out "info scale" "GPT-3"
expect_out "info tensor" "h.0.attn.c_attn.weight"
run "$PS" info --json
check "info --json" 0
expect_out "info json params" '"params":'
expect_out "info json tensors" '"name": "wte.weight"'

# ---- eval ----
run "$PS" eval --data "$SRC/models/corpus.txt"
check "eval" 0
expect_out "eval perplexity" "perplexity"
: >"$WORK/empty.txt"
run "$PS" eval --data "$WORK/empty.txt"
check "eval empty corpus" 2 "corpus is empty"
echo "zyxw qwvut plmk" >"$WORK/unknown.txt"
run "$PS" eval --data "$WORK/unknown.txt"
check "eval corpus of unknown words" 2 "no token of the corpus"
run "$PS" eval --data "$WORK/nothere.txt"
check "eval missing corpus" 2 "nothere.txt: cannot open"
run "$PS" eval
check "eval without data" 2 "--data FILE is required"

# ---- train ----
head -n 300 "$SRC/models/corpus.txt" >"$WORK/small.txt"
T=(--data "$WORK/small.txt" --layers 1 --heads 2 --embd 16 --ctx 16 --batch 4 --eval-every 5)
run "$PS" train "${T[@]}" --steps 10 --out "$WORK/a.safetensors"
check "train from scratch" 0 "saved"
[ -s "$WORK/a.safetensors" ] && [ -s "$WORK/a.safetensors.state" ] && ok || bad "train: no model or state file"
run "$PS" predict -m "$WORK/a.safetensors" "the sky is"
check "the trained model predicts" 0

# resume is exact: 20 steps == 10 steps + 10 resumed
run "$PS" train "${T[@]}" --steps 10 --decay-steps 20 --out "$WORK/half.safetensors"
check "train first half" 0
run "$PS" train --data "$WORK/small.txt" --eval-every 5 --steps 10 --resume "$WORK/half.safetensors" --out "$WORK/resumed.safetensors"
check "train resumed" 0
run "$PS" train "${T[@]}" --steps 20 --decay-steps 20 --out "$WORK/full.safetensors"
check "train full" 0
cmp -s "$WORK/resumed.safetensors" "$WORK/full.safetensors" && ok || bad "resume: 10 + 10 steps differ from 20 steps"

run "$PS" train "${T[@]}" --steps 2 --out "$WORK/no/such/folder/m.safetensors"
check "train into a missing folder" 2 "cannot write there"
run "$PS" train "${T[@]}" --data "$WORK/empty.txt" --steps 2 --out "$WORK/e.safetensors"
check "train on an empty corpus" 2 "corpus is empty"
run "$PS" train --init "$WORK/a.safetensors" --data "$WORK/unknown.txt" --steps 2 --out "$WORK/u.safetensors"
check "train on a corpus of unknown words" 2 "no token of the corpus"
run "$PS" train "${T[@]}" --optimizer adagrad
check "unknown optimizer" 2 "unknown optimizer 'adagrad'"
run "$PS" train "${T[@]}" --lr fast
check "malformed learning rate" 2 "'fast' is not a number"
run "$PS" train "${T[@]}" --steps 1 --seq 17 --out "$WORK/s.safetensors"
check "sequence longer than n_ctx" 2 "n_ctx 16"

# a failed save (a file-size limit stands in for a full disk) keeps the old file
cp "$WORK/a.safetensors" "$WORK/keep.safetensors"
cp "$WORK/keep.safetensors" "$WORK/keep.orig"
( trap '' XFSZ; ulimit -f 8; "$PS" train --init "$WORK/keep.safetensors" --data "$WORK/small.txt" --steps 1 \
    --out "$WORK/keep.safetensors" >"$OUT" 2>"$ERR" </dev/null ); rc=$?
check "save onto a full disk" 1 "keep.safetensors"
cmp -s "$WORK/keep.safetensors" "$WORK/keep.orig" && ok || bad "a failed save changed the previous file"
ls "$WORK" | grep -q 'keep.safetensors.tmp' && bad "a failed save left a temporary file" || ok

# a diverging run stops with an error instead of looping
run "$PS" train --data "$WORK/small.txt" --layers 1 --heads 1 --embd 8 --ctx 8 --steps 30 --lr 100 \
    --optimizer sgd --clip 0 --schedule constant --out "$WORK/div.safetensors"
check "a diverging run stops" 1 "in a row had a non-finite loss"
# settings given with --resume are named as ignored
run "$PS" train --data "$WORK/small.txt" --steps 1 --lr 0.5 --resume "$WORK/half.safetensors" --out "$WORK/r2.safetensors"
check "resume ignores new settings, and says so" 0 "--lr is ignored with --resume"
run "$PS" generate xyzzy plugh
check "generate from only unknown words" 2 "outside the vocabulary"
mkdir -p "$WORK/we\"ird"
cp "$SRC/models/corpus.txt" "$WORK/we\"ird/c.txt"
run "$PS" eval --json --data "$WORK/we\"ird/c.txt"
check "eval --json with a quote in the path" 0
grep -qF '"data": "'"$WORK"'/we\"ird/c.txt"' "$OUT" && ok || bad "eval --json: the path is not escaped"

# ---- the program ----
printf 'help\n' | "$PS" >"$OUT" 2>"$ERR"; rc=$?
check "no arguments, commands on standard input" 0
expect_out "help on standard input" "Commands (help COMMAND for more)"
run "$PS" --version
check "--version" 0
run "$PS" frobnicate
check "unknown command" 2 "unknown command 'frobnicate'"
for c in predict generate info train eval bench; do
    run "$PS" "$c" --help
    check "$c --help" 0
    expect_out "$c --help shows usage" "usage: paramscope $c"
done

# ---- output that lines up; write errors; numbers out of range ----
run "$PS" predict --json --top 2 "The sky is"
check "predict --json keys" 0
expect_out "json finite flag" '"finite": true'
expect_out "json nothing non-finite" '"nonfinite_logits": 0'
"$PS" predict --json "The sky is" >/dev/full 2>"$ERR"; rc=$?
check "predict --json to a full device" 1 "paramscope: standard output: write error"
"$PS" info >/dev/full 2>"$ERR"; rc=$?
check "info to a full device" 1 "write error"
run "$PS" predict --temperature 1e999 "The sky is"
check "a temperature above the range" 2 "'1e999' is above the range of numbers"
run "$PS" predict --temperature inf "The sky is"
check "an infinite temperature" 2 "'inf' is infinite"

finish
