#!/usr/bin/env bash
# Changing a weight: through the command line and through the heatmap's
# keys; the bars move, marked with signed changes, and undo brings them back.
. "$(dirname "$0")/lib.sh"

start 100 30
type_text "The sky is"
check "blue at the start" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +95\.19% +='
before=$(screen | grep -E ' blue ' | head -n 1 | grep -oE '[0-9]+\.[0-9]+%' | head -n 1)

# blue's own embedding row is also its output row (the LM head is tied)
command_line 'wte["blue"][0] = 3'
check "the command is echoed in the log" wait_for '> wte["blue"][0] = 3'
check "the journal says what it set" wait_for 'set wte["blue"][0] to 3'
check "blue's bar moved down, signed" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +[0-9]+\.[0-9][0-9]% +-[0-9]+\.[0-9][0-9]'
after=$(screen | grep -E ' blue ' | head -n 1 | grep -oE '[0-9]+\.[0-9]+%' | head -n 1)
check "the percentage changed ($before -> $after)" test "$before" != "$after"
check "the title counts the edit" wait_for "edits 1"

command_line 'undo'
check "undo is logged" wait_for 'undid: wte["blue"][0] = 3'
check "blue is back, unchanged" wait_re " blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +${before%\%}% +="
check "no edits left" wait_for "edits 0"

# the heatmap: open layer 0's attention weights, raise one weight, undo
keys F4
sleep 0.2
keys Tab
sleep 0.2
keys Down Enter Enter Enter
check "the heatmap shows c_attn" wait_re "Heatmap ─+h\.0\.attn\.c_attn\.weight"
check "the cursor on [0, 0]" wait_for "[0, 0] = "
keys z z z z z z
keys Right Down
check "the cursor moves to [1, 1]" wait_for "[1, 1] = "
keys + +
check "+ twice: two edits" wait_for "edits 2"
check "the log shows the assignment" wait_for "> h.0.attn.c_attn.weight[1, 1] = "
check "the change from the file is shown" wait_re '\[1, 1\] = .*file \+'
keys u u
check "u u: no edits" wait_for "edits 0"
check "the weight is as in the file" wait_for "as in the file"
keys 0
check "0 zeroes it" wait_re '\[1, 1\] = 0 '
keys u
check "and u undoes that" wait_for "edits 0"
keys q
check "q quits" wait_file "$WORK/status"
check "with status 0" grep -qx 0 "$WORK/status"
finish
