#!/usr/bin/env bash
# The command language end to end: scripts fed to `paramscope --plain` on
# standard input, --script/--batch/--bail, FILE:LINE errors, exit statuses.
. "$(dirname "$0")/lib.sh"
S="$SRC/tests/cli/scripts"

# ---- the issue's acceptance script ----
"$PS" --plain <"$S/acceptance.cmd" >"$OUT" 2>"$ERR"; rc=$?
check "acceptance script runs without error" 0
[ ! -s "$ERR" ] && ok || bad "acceptance script wrote to stderr"
# the three predictions: each bar's token and percentage, block by block
awk '/^tokens:/{n++} n>0 && n<=3 && /%/{for(i=2;i<=NF;i++) if ($i ~ /%$/) print n": "$1" "$i}' "$OUT" >"$WORK/preds"
p1=$(grep '^1: ' "$WORK/preds" | cut -c4-)
p2=$(grep '^2: ' "$WORK/preds" | cut -c4-)
p3=$(grep '^3: ' "$WORK/preds" | cut -c4-)
[ -n "$p1" ] && [ "$p1" = "$p3" ] && ok || bad "the first and third predictions differ"
[ "$p1" != "$p2" ] && ok || bad "scaling c_fc to 0 did not change the prediction"
[ "$(awk '/^tokens:/{n++} n==3 && /%/' "$OUT" | grep -c ' =$')" -eq 10 ] && ok || bad "after undo the bars are not all marked unchanged (=)"
awk '/^tokens:/{n++} n==2 && /%/' "$OUT" | grep -qE ' -[0-9.]+$' && ok || bad "after the edit no bar shows a signed fall"
[ "$(grep -c '^step [123]: loss [0-9.]*' "$OUT")" -eq 3 ] && ok || bad "train step 3 did not print three steps with losses"
expect_out "loss chart" "training loss, 3 points"
expect_out "stats" "mean"

# ---- scripts with expected output (regenerate: see tests/cli/scripts/README) ----
for cmd in "$S"/*.cmd; do
    want="${cmd%.cmd}.out"
    if [ ! -f "$want" ]; then   # no fixed output (timings): it must run cleanly
        "$PS" --plain --bail <"$cmd" >"$OUT" 2>"$ERR" && [ ! -s "$ERR" ] && ok ||
            bad "$(basename "$cmd") did not run cleanly"
        continue
    fi
    "$PS" --plain <"$cmd" >"$OUT" 2>&1
    if diff -u "$want" "$OUT" >"$WORK/diff"; then ok; else
        bad "$(basename "$cmd"): output differs from $(basename "$want")"; head -30 "$WORK/diff"; fi
done

# ---- batch mode errors: FILE:LINE and exit status ----
printf 'set top 3\nfrobnicate\nset top 4\n' >"$WORK/bad.cmd"
"$PS" --plain <"$WORK/bad.cmd" >"$OUT" 2>"$ERR"; rc=$?
check "a failing line in batch mode" 1 "stdin:2: unknown command 'frobnicate'"
"$PS" --script "$WORK/bad.cmd" --batch >"$OUT" 2>"$ERR" </dev/null; rc=$?
check "--script --batch" 1 "bad.cmd:2: unknown command"
"$PS" --script "$WORK/bad.cmd" --batch --bail >"$OUT" 2>"$ERR" </dev/null; rc=$?
check "--bail stops at the first error" 1 "bad.cmd:2:"
grep -q 'top = 4' "$OUT" && bad "--bail went on after the error" || ok
printf 'set top 2\n' >"$WORK/good.cmd"
printf 'set\n' | "$PS" --script "$WORK/good.cmd" >"$OUT" 2>"$ERR"; rc=$?
check "--script then standard input" 0
grep -q '^top  *2' "$OUT" && ok || bad "--script's setting did not carry into standard input"

# ---- source, and errors inside it ----
printf 'source %s\nset\n' "$WORK/bad.cmd" | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
[ $rc -eq 1 ] && grep -q "bad.cmd:2: unknown command" "$ERR" && grep -q "stdin:1: .*1 command failed" "$ERR" && ok ||
    bad "source: errors inside are not FILE:LINE (status $rc)"

# ---- suggestions and a failed command changes nothing ----
printf 'predcit the sky is\n' | "$PS" --plain >"$OUT" 2>"$ERR"
grep -q "did you mean 'predict'?" "$ERR" && ok || bad "no suggestion for predcit"
printf 'h.0.attn.c_atn.weight\n' | "$PS" --plain >"$OUT" 2>"$ERR"
grep -q "did you mean 'h.0.attn.c_attn.weight'?" "$ERR" && ok || bad "no suggestion for a misspelt tensor"
printf 'h.0.attn.c_attn.weight[999,0]\n' | "$PS" --plain >"$OUT" 2>"$ERR"
grep -q "out of range" "$ERR" && ok || bad "no range message for a bad index"
printf 'predict the sky is\nscale h.0.mlp.c_fc.weight abc\npredict the sky is\n' | "$PS" --plain >"$OUT" 2>"$ERR"
[ "$(grep -c 'blue' "$OUT")" -eq 2 ] && [ "$(grep '%' "$OUT" | sort | uniq -d | wc -l)" -ge 5 ] && ok ||
    bad "a failed scale changed the predictions"

# ---- save and load round trip, and a failed save keeps the old file ----
printf 'h.0.ln_1.bias[0] = 0.25\nsave %s/edited.safetensors\nload %s/edited.safetensors\nh.0.ln_1.bias[0]\n' "$WORK" "$WORK" |
    "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "save and load" 0
expect_out "the saved edit is there after load" "0.25"
printf 'save %s/no/such/dir/x.safetensors\n' "$WORK" | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "save into a missing folder" 1 "x.safetensors"

# ---- undo is bit-exact through the language ----
{
    for i in $(seq 0 7); do
        echo "scale h.$((i % 4)).attn.c_attn.weight[$i:$((i + 5)),:] 1.37"
        echo "noise h.$((i % 4)).mlp.c_fc.weight $((i + 1))e-3"
        echo "add wte[\"sky\"] -0.$i"
        echo "zero h.1.attn.q[$((i % 4))]"
        echo "prune h.2.mlp.c_proj.weight $((i * 10))"
        echo "quantize h.3.attn.c_proj.weight $((i + 2))"
        echo "ablate head $((i % 4)).$((i % 4))"
        echo "ablate neuron $((i % 4)).$((i * 7))"
        echo "h.0.ln_2.weight[$i] = -$i.5"
    done
    for i in $(seq 1 72); do echo undo; done
    echo "save $WORK/undone.safetensors"
} | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "72 edits and 72 undos" 0
"$PS" info --json -m "$WORK/undone.safetensors" | grep -o '"tensors".*' >"$WORK/undone.json"
"$PS" info --json -m "$MODEL" | grep -o '"tensors".*' >"$WORK/orig.json"
cmp -s "$WORK/undone.json" "$WORK/orig.json" && ok || bad "after undoing everything the tensors' statistics differ from the file"
# byte comparison of the tensor data: same header length, same bytes after it
python_free_cmp() { tail -c +"$(( $(od -An -t u8 -N 8 "$1" | tr -d ' ') + 9 ))" "$1"; }
cmp -s <(python_free_cmp "$WORK/undone.safetensors") <(python_free_cmp "$MODEL") && ok ||
    bad "after undoing everything the parameters' bytes differ from the file's"

# ---- predictions after a baseline; non-finite values; prompts as typed ----
printf 'baseline the sky is\npredict\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "baseline then a bare predict" 0
grep -q "the baseline is for" "$OUT" && bad "a bare predict after baseline claims another prompt" || ok
[ "$(grep -c '%   =$' "$OUT")" -eq 10 ] && ok || bad "a bare predict after baseline lost the = marks"
printf 'predict the sky is \nbaseline\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "a prompt ending in a space" 0
expect_out "the prompt keeps its space" 'baseline: the predictions for "the sky is " as they are now'

printf 'h.0.ln_1.bias[0] = inf\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "setting inf is refused" 1 "stdin:1: VALUE: 'inf' is infinite; parameters are kept finite"
printf 'h.0.ln_1.bias[0] = 3e38\nscale h.0.ln_1.bias 10\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "a scale that overflows is refused" 1 "stdin:2: scale would make 1 finite value infinite (the first: h.0.ln_1.bias[0] would be inf)"
printf 'h.0.ln_1.bias[0] = 3e38\npredict the sky is\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "predict with logits that overflow" 0
expect_out "non-finite logits said plainly" "no prediction: the logits are not finite"
expect_out "where they first appear" "the first non-finite value appears in block 0 (attention)"
grep -q '%' "$OUT" && bad "non-finite logits still show a bar" || ok
printf 'h.0.ln_1.bias[0] = 3e38\ngenerate 5 the sky is\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "generate with non-finite logits" 1 "stdin:2: generate: after 0 tokens, the logits are not finite"
printf 'h.0.ln_1.bias[0] = 3e38\neval\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
check "eval with a non-finite loss" 1 "stdin:2: eval: the validation loss is not finite (-nan) (the first non-finite value appears in block 0 (attention))"
printf 'set temperature 1e-400\nset temperature 1e999\n' | "$PS" --plain >"$OUT" 2>"$ERR"; rc=$?
grep -qF "stdin:1: temperature: '1e-400' is below the range of numbers" "$ERR" && ok || bad "1e-400 not called below the range"
grep -qF "stdin:2: temperature: '1e999' is above the range of numbers" "$ERR" && ok || bad "1e999 not called above the range"

# ---- training settings follow the optimizer, whatever the order ----
wd() { awk '$1 == "weight-decay" {print $2}' "$OUT" | tail -1; }
b2() { grep '^optimizer ' "$OUT" | tail -1 | sed 's/.*beta2 \([^,]*\),.*/\1/'; }
printf 'train set optimizer adam\ntrain set\n' | "$PS" --plain >"$OUT" 2>"$ERR"
[ "$(wd)" = 0 ] && [ "$(b2)" = 0.999 ] && ok || bad "adamw -> adam: weight decay $(wd), beta2 $(b2) (want 0, 0.999)"
expect_out "what followed is said" "optimizer = adam (beta2 0.95 -> 0.999, weight-decay 0.1 -> 0: adam's defaults)"
printf 'train set optimizer sgd\ntrain set optimizer adamw\ntrain set\n' | "$PS" --plain >"$OUT" 2>"$ERR"
[ "$(wd)" = 0.1 ] && [ "$(b2)" = 0.95 ] && ok || bad "sgd -> adamw: weight decay $(wd), beta2 $(b2) (want 0.1, 0.95)"
printf 'train set weight-decay 0.05\ntrain set optimizer adam\ntrain set optimizer sgd\ntrain set\n' | "$PS" --plain >"$OUT" 2>"$ERR"
[ "$(wd)" = 0.05 ] && ok || bad "a weight decay set by hand did not stay: $(wd)"
expect_out "a setting set by hand stays, and says so" "optimizer = sgd (weight-decay 0.05 stays as set)"
printf 'train set weight-decay 0.05\ntrain set weight-decay default\ntrain set optimizer adamw\ntrain set\n' | "$PS" --plain >"$OUT" 2>"$ERR"
[ "$(wd)" = 0.1 ] && ok || bad "weight-decay default did not follow adamw: $(wd)"
for k in sgd momentum adam adamw; do
    printf 'train set optimizer momentum\ntrain set optimizer %s\ntrain set\n' "$k" | "$PS" --plain >"$OUT" 2>"$ERR"
    got="$(wd) $(b2)"
    case $k in adamw) want="0.1 0.95" ;; *) want="0 0.999" ;; esac
    [ "$got" = "$want" ] && ok || bad "momentum -> $k: weight decay and beta2 '$got', want '$want'"
done

finish
