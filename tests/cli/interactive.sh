#!/usr/bin/env bash
# The line REPL on a real terminal (tmux): the prompt, completion, history,
# Ctrl-C stopping a long command with everything intact, and leaving by a
# second Ctrl-C at an empty prompt.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || { echo "tmux is not installed"; echo "0 passed, 1 failed"; exit 1; }
T="tmux -L ps-repl-$$"
export XDG_STATE_HOME="$WORK/state"
cleanup() { $T kill-server 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

screen() { $T capture-pane -p -t s; }
# wait_for TEXT [SECONDS]: until the screen shows TEXT
wait_for() {
    local i
    for i in $(seq 1 $((${2:-30} * 10))); do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
expect_screen() { if wait_for "$2" "${3:-30}"; then ok; else bad "$1: the screen lacks '$2'"; screen | tail -8 | sed 's/^/  | /'; fi; }

$T new-session -d -s s -x 100 -y 30 "env TERM=xterm-256color PARAMSCOPE_THREADS=1 $PS --plain; echo EXITED \$?; sleep 30"
expect_screen "prompt" "paramscope>"

# completion: a command, then a tensor name
$T send-keys -t s 'pred' Tab
expect_screen "command completion" "paramscope> predict"
$T send-keys -t s ' The sky is' Enter
expect_screen "predict on the terminal" "blue"
$T send-keys -t s 'stats h.0.attn.c_at' Tab
expect_screen "tensor completion" "stats h.0.attn.c_attn."

$T send-keys -t s C-u 'h.0.ln_1.bias[0] = 0.5' Enter
expect_screen "an edit" "to 0.5"

# Ctrl-C stops a long command and returns to the prompt; the edit is still undoable
$T send-keys -t s 'train run' Enter
expect_screen "training runs" "step 2:" 60
$T send-keys -t s C-c
expect_screen "Ctrl-C stops the run" "stopped after step" 60
$T send-keys -t s 'set top 2' Enter
expect_screen "the prompt works after Ctrl-C" "top = 2"

# history: the up arrow brings back the last line
$T send-keys -t s Up
expect_screen "history" "paramscope> set top 2"
$T send-keys -t s C-u

# a Ctrl-C at an empty prompt warns, a second one leaves with status 0
$T send-keys -t s C-c
expect_screen "first Ctrl-C at an empty prompt" "press Ctrl-C again"
$T send-keys -t s C-c
expect_screen "second Ctrl-C leaves" "EXITED 0"

# the history file was written
[ -s "$XDG_STATE_HOME/paramscope/history" ] && grep -q 'set top 2' "$XDG_STATE_HOME/paramscope/history" && ok ||
    bad "history was not saved to \$XDG_STATE_HOME/paramscope/history"

finish
