#!/usr/bin/env bash
# The prediction pane: bars follow the prompt as it is typed, at the
# smallest supported terminal and at a larger one.
. "$(dirname "$0")/lib.sh"

for size in "100 30" "80 24"; do
    set -- $size
    cols=$1 rows=$2
    start "$cols" "$rows"
    check "${cols}x$rows: the explorer opens" wait_for "Predict"
    check "${cols}x$rows: a whole frame" frame_whole "$cols" "$rows"
    type_text "The sky is"
    # the top word's bar: token, bar, percentage, change since the baseline
    check "${cols}x$rows: blue's bar" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +9[0-9]\.[0-9][0-9]% +='
    check "${cols}x$rows: the prompt's tokens" wait_for "tokens the sky is"
    check "${cols}x$rows: entropy" wait_re 'entropy [0-9.]+ nats|temp 1 '
    # an unknown word is marked
    type_text " zqxv"
    check "${cols}x$rows: unknown word marked" wait_for "[zqxv]?"
    keys BSpace BSpace BSpace BSpace BSpace
    check "${cols}x$rows: back to blue" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +9[0-9]\.[0-9][0-9]%'
    # temperature up: the value on screen, the bar lower
    keys Up
    check "${cols}x$rows: temperature 1.2 shown" wait_for "temp 1.2 "
    check "${cols}x$rows: blue lower at 1.2" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +[0-8][0-9]\.[0-9][0-9]%'
    keys Down Down Down Down Down Down Down Down Down Down
    check "${cols}x$rows: temperature 0 is greedy" wait_re 'temp 0 \(greedy\)'
    check "${cols}x$rows: greedy puts all on blue" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +100\.00%'
    # Enter appends the top token
    keys Enter
    check "${cols}x$rows: Enter appends blue" wait_for "tokens the sky is blue"
    # a weight that overflows the forward: no bar, and where it starts
    command_line 'h.0.ln_1.bias[0] = 3e38'
    check "${cols}x$rows: non-finite logits give no prediction" wait_for 'no prediction:'
    check "${cols}x$rows: it says where the first one appears" wait_for 'block 0 (attention)'
    keys F10
    check "${cols}x$rows: F10 quits" wait_file "$WORK/status"
done
finish
