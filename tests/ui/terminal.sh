#!/usr/bin/env bash
# The terminal is given back as it was: after q, after SIGTERM, after SIGINT;
# the help overlay lists keys and commands; NO_COLOR and a non-UTF-8 locale
# still give a readable screen.
. "$(dirname "$0")/lib.sh"

restored() {
    wait_file "$WORK/stty.after" 10 && cmp -s "$WORK/stty.before" "$WORK/stty.after" &&
        [ "$(tm display-message -p '#{alternate_on}')" = 0 ] &&
        [ "$(tm display-message -p '#{cursor_flag}')" = 1 ]
}

start 80 24
check "opens" wait_for "Predict"
keys F1
check "help: first steps" wait_for "First steps"
check "help: the keys" wait_for "Everywhere"
# page down until the training commands show (the help grows with the table)
for _ in $(seq 1 30); do
    screen | grep -qE 'train step \[N\] +run N' && break
    keys NPage
    sleep 0.1
done
check "help: commands from the command table" wait_re 'train step \[N\] +run N'
keys Escape
check "help closes" wait_gone "First steps"
keys Tab q
check "q: exit status 0" wait_file "$WORK/status"
check "q: status is 0" grep -qx 0 "$WORK/status"
check "q: terminal restored" restored

start 80 24
wait_for "Predict" >/dev/null
kill -TERM "$(cat "$WORK/pid")"
check "SIGTERM: exits" wait_file "$WORK/status"
check "SIGTERM: status 143" grep -qx 143 "$WORK/status"
check "SIGTERM: terminal restored" restored

# a FIFO given to `load` is refused at once: nothing blocks, q still quits
mkfifo "$WORK/fifo"
start 80 24
wait_for "Predict" >/dev/null
command_line "load $WORK/fifo"
check "load of a FIFO: refused at once" wait_for "is a FIFO, not a regular file"
keys Escape
sleep 0.3
keys Tab
sleep 0.2
keys q
check "load of a FIFO: q still quits" wait_file "$WORK/status"
check "load of a FIFO: status 0" grep -qx 0 "$WORK/status"

start 80 24
wait_for "Predict" >/dev/null
kill -INT "$(cat "$WORK/pid")"
check "SIGINT: exits" wait_file "$WORK/status"
check "SIGINT: status 130" grep -qx 130 "$WORK/status"
check "SIGINT: terminal restored" restored

# a crash (here a forced abort) still gives the terminal back
start 80 24
wait_for "Predict" >/dev/null
kill -ABRT "$(cat "$WORK/pid")"
check "SIGABRT: exits" wait_file "$WORK/status"
check "SIGABRT: terminal restored" restored

start 80 24 NO_COLOR=1
type_text "The sky is"
check "NO_COLOR: bars with signs" wait_re ' blue [█▉▊▋▌▍▎▏│][█▉▊▋▌▍▎▏│ ]* +95\.19% +='
keys F10
wait_file "$WORK/status" >/dev/null

start 80 24 LC_ALL=C LANG=C
type_text "The sky is"
check "C locale: ASCII bars" wait_re ' blue #+ +95\.19% +='
check "C locale: no block characters" sh -c "! tmux -L $SOCK capture-pane -p | grep -q '[█▉▊▋▌▍▎▏⠁-⣿]'"
keys F10
wait_file "$WORK/status" >/dev/null
finish
