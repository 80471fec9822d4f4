#!/usr/bin/env bash
# Resizing between sizes relayouts at once, without a crash or a broken frame;
# below 80x24 the explorer says so instead of drawing a broken layout.
. "$(dirname "$0")/lib.sh"

start 100 30
type_text "The sky is"
check "100x30 blue" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +95\.19%'
for size in "80 24" "120 40" "160 48" "60 20" "100 30" "80 24" "200 60" "80 24"; do
    set -- $size
    tm resize-window -x "$1" -y "$2"
    if [ "$1" -lt 80 ] || [ "$2" -lt 24 ]; then
        check "${1}x$2: a clear message" wait_for "needs a terminal of at least 80x24"
        check "${1}x$2: it says the size" wait_for "this one is ${1}x$2"
    else
        check "${1}x$2: relayout" wait_re " blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +95\.19%"
        sleep 0.3
        check "${1}x$2: a whole frame" frame_whole "$1" "$2"
    fi
done
tm resize-window -x 160 -y 48
check "160x48: predict, tensors and train at once" wait_for "Train"
check "160x48: the tensor list too" wait_for "Tensors"
check "still running" test ! -e "$WORK/status"
keys F10
check "quits" wait_file "$WORK/status"
check "with status 0" grep -qx 0 "$WORK/status"
finish
