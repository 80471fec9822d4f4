#!/usr/bin/env bash
# The docs move with the code: docs/commands.md is what the command table
# says, and every command has help text.
. "$(dirname "$0")/lib.sh"

run "$PS" commands --markdown
check "commands --markdown" 0
if diff -u "$SRC/docs/commands.md" "$OUT" >"$WORK/diff"; then ok; else
    bad "docs/commands.md differs from 'paramscope commands --markdown' (regenerate it)"; head -20 "$WORK/diff"; fi
# every command has a one-line summary
run "$PS" commands
check "commands" 0
awk 'NF == 1 && /^  /' "$OUT" | grep -q . && bad "a command without a summary: $(awk 'NF == 1 && /^  /' "$OUT")" || ok
# the man page names every subcommand
for c in predict generate info train eval bench commands attention lens attribute neuron patch saliency; do
    grep -q "^\\.SS $c\|^\\.BI\? $c\|^\\.TP.*$c\|\\\\fB$c\\\\fR\|^$c" "$SRC/docs/paramscope.1" && ok || bad "docs/paramscope.1 does not describe '$c'"
done
finish
