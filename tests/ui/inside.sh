#!/usr/bin/env bash
# The Inside pane: the attention pattern of one head follows the prompt as it
# is typed and the head as the arrows move; ablating the head from there
# moves the pattern and the bars, and undo brings both back.  At 100x30 the
# pane sits beside the bars, at 80x24 it is a page of its own.
. "$(dirname "$0")/lib.sh"

# from the prompt to the Inside pane: Esc to the command line, Esc back,
# Tab out of the text field, then i
to_inside() {
    keys Escape
    wait_for "to type a command" 5 >/dev/null
    keys Escape
    sleep 0.3
    keys Tab
    sleep 0.2
    keys i
}

for size in "100 30" "80 24"; do
    set -- $size
    cols=$1 rows=$2
    start "$cols" "$rows"
    type_text "the sky"
    check "${cols}x$rows: the prompt is read" wait_for "tokens the sky"
    to_inside
    check "${cols}x$rows: the Inside pane opens" wait_re "Inside .*head 0\.0"
    check "${cols}x$rows: the pattern has the prompt's tokens as rows" wait_re "sky +0\.[0-9][0-9] 0\.[0-9][0-9]"
    keys Right
    check "${cols}x$rows: Right moves to head 0.1" wait_for "head 0.1: row"
    check "${cols}x$rows: head 0.1 from sky: the 0.65, sky 0.35" wait_re "sky +0\.65 0\.35"
    check "${cols}x$rows: the lens knows the tokens so far" wait_re "block 3 +[a-z]+"
    keys F4
    sleep 0.2
    type_text " is"
    to_inside
    check "${cols}x$rows: typing adds a row: is looks at sky" wait_re "is +0\.01 0\.99 0\.01"
    check "${cols}x$rows: the lens ends in blue" wait_re "block 3 +blue +95\.2%"
    check "${cols}x$rows: the attribution names head 0.1" wait_re "head 0\.1 +\+5\.34"
    keys a
    check "${cols}x$rows: ablating the head is logged" wait_for "ablated head 0.1"
    check "${cols}x$rows: the ablated head attends evenly" wait_re "is +0\.33 0\.33 0\.33"
    check "${cols}x$rows: the lens no longer ends in blue" wait_re "block 3 +wet"
    if [ "$cols" -ge 100 ]; then
        check "${cols}x$rows: the bars beside it move: blue down to 8%" wait_re ' blue [█▉▊▋▌▍▎▏│ ]* +8\.08% +-87\.10'
    fi
    check "${cols}x$rows: the title counts the edit" wait_for "edits 1"
    keys u
    check "${cols}x$rows: undo brings the pattern back" wait_re "is +0\.01 0\.99 0\.01"
    check "${cols}x$rows: and blue" wait_re "block 3 +blue +95\.2%"
    if [ "$cols" -ge 100 ]; then
        check "${cols}x$rows: and the bars" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +95\.19% +='
    fi
    check "${cols}x$rows: no edits left" wait_for "edits 0"
    check "${cols}x$rows: a whole frame" frame_whole "$cols" "$rows"
    keys q
    check "${cols}x$rows: q quits" wait_file "$WORK/status"
done
finish
