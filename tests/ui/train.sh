#!/usr/bin/env bash
# Training from the explorer: one step moves the counter and adds a point to
# the loss curve; a run goes on while the keys keep working, and pauses.
. "$(dirname "$0")/lib.sh"

start 100 30
type_text "The sky is"
wait_for "blue" >/dev/null
keys Tab Tab Tab
check "the Train pane" wait_for "Train"
check "no steps yet" wait_for "no steps yet"
keys s
check "one step: the counter says 1" wait_for "step 1 "
check "the loss curve has a point" wait_for "(1 point)"
check "the log reports the step" wait_re 'step 1: loss [0-9.]+'
check "the phases are shown, forward next" wait_re 'next: forward .* loss .* backward .* update'

# one phase at a time: forward, then loss is next
keys p
check "one phase: loss is next" wait_re 'forward .*next: loss'
keys p p p
check "the step completes after update" wait_for "(2 points)"

# a run, and the keys keep working while it runs
keys r
check "running" wait_for "running (r pauses)"
s1=$(title_step)
sleep 1.5
s2=$(title_step)
check "steps go on while running ($s1 -> $s2)" test "${s2:-0}" -gt "${s1:-0}"
keys F4
sleep 0.1
type_text " and"
check "the prompt takes keys while training runs" wait_for "tokens the sky is and"
keys F7
check "F7 pauses" wait_for "paused"
p1=$(title_step)
sleep 1
p2=$(title_step)
check "paused: the counter stays ($p1 = $p2)" test "$p1" = "$p2"
keys BSpace BSpace BSpace BSpace
# ten steps with F8, then ten more from the command line
keys F8
target=$(( p2 + 10 ))
check "F8: ten steps, to step $target" wait_for "step $target " 30
check "then it stops" wait_for "paused"
keys Escape
sleep 0.3
type_text "train step 10"
keys Enter
target=$(( target + 10 ))
check "train step 10 reaches step $target" wait_for "step $target " 30
keys F4 Tab
sleep 0.2
keys q
check "q quits" wait_file "$WORK/status"
check "with status 0" grep -qx 0 "$WORK/status"
finish
