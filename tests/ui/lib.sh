# Helpers for the explorer's terminal tests: each script sources this, runs
# the real program in a private tmux server and reads the screen with
# capture-pane, as a person would look at it.  Waits are bounded: a test polls
# the screen until the text it wants appears, or fails after a timeout.  The
# script prints "N passed, N failed" and exits 1 on any failure (77, skipped,
# when tmux is missing).
set -u
PS="${PS_BUILD_ROOT:?}/src/paramscope"
SRC="${PS_SOURCE_ROOT:?}"
MODEL="$SRC/models/classroom.safetensors"
if ! command -v tmux >/dev/null 2>&1; then
    echo "tmux is not installed (./quickstart installs it): skipped"
    exit 77
fi
WORK=$(mktemp -d)
SOCK="pstest-$$"
starts=0
passed=0
failed=0
unset PARAMSCOPE_MODEL PARAMSCOPE_DATA NO_COLOR PARAMSCOPE_ASCII TMUX
export LC_ALL=C.UTF-8    # ${#line} counts characters

tm() { tmux -L "$SOCK" "$@"; }

cleanup() {
    tm kill-server >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

# start COLS ROWS [VAR=VALUE...]: paramscope on the bundled model in a new
# tmux server, the terminal as the shell left it recorded before and after,
# the exit status in $WORK/status and the process id in $WORK/pid.
start() {
    local cols=$1 rows=$2
    shift 2
    tm kill-server >/dev/null 2>&1
    # a server of its own for each start: a new server on the socket of one
    # still shutting down can die with it ("server exited unexpectedly")
    starts=$((starts + 1))
    SOCK="pstest-$$-$starts"
    rm -f "$WORK/status" "$WORK/pid" "$WORK/stty.before" "$WORK/stty.after"
    mkdir -p "$WORK/state"
    cat >"$WORK/run.sh" <<EOF
stty -g >"$WORK/stty.before"
env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_STATE_HOME="$WORK/state" PARAMSCOPE_THREADS=1 $* \
    bash -c 'echo \$\$ >"$WORK/pid"; exec "$PS" "$MODEL"'
echo \$? >"$WORK/status"
stty -g >"$WORK/stty.after"
exec sleep 600
EOF
    tm -f /dev/null new-session -d -x "$cols" -y "$rows" "bash $WORK/run.sh"
    wait_for "paramscope" 10
}

screen() { tm capture-pane -p; }

# wait_for TEXT [SECONDS]: polls the screen until it shows the fixed string
wait_for() {
    local text=$1 tries=$(( ${2:-${PS_UI_WAIT:-30}} * 10 ))
    while [ "$tries" -gt 0 ]; do
        screen | grep -qF -- "$text" && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}

# wait_re REGEX [SECONDS]: the same for an extended regular expression
wait_re() {
    local re=$1 tries=$(( ${2:-${PS_UI_WAIT:-30}} * 10 ))
    while [ "$tries" -gt 0 ]; do
        screen | grep -qE -- "$re" && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}

# wait_gone TEXT [SECONDS]: until the screen no longer shows it
wait_gone() {
    local text=$1 tries=$(( ${2:-${PS_UI_WAIT:-30}} * 10 ))
    while [ "$tries" -gt 0 ]; do
        screen | grep -qF -- "$text" || return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}

# wait_file FILE [SECONDS]
wait_file() {
    local f=$1 tries=$(( ${2:-${PS_UI_WAIT:-30}} * 10 ))
    while [ "$tries" -gt 0 ]; do
        [ -s "$f" ] && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}

keys() { tm send-keys "$@"; }
type_text() { tm send-keys -l -- "$1"; }

# command LINE: from any pane, to the command line (Esc from the prompt,
# then Tab would complete, so Esc goes straight there), run LINE, come back
command_line() {
    keys F4
    sleep 0.2
    keys Escape
    sleep 0.3
    type_text "$1"
    keys Enter
}

ok() { passed=$((passed + 1)); echo "ok - $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $1"
    screen | sed 's/^/    | /'
}

# check NAME CMD...: passes when CMD succeeds
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# The step counter in the title bar.
title_step() { screen | head -n 1 | sed -n 's/.* step \([0-9][0-9]*\) .*/\1/p'; }

# A frame is whole: the title bar on the first row, the key hints on the
# last, no row wider than the terminal, and the panes' title rows present.
frame_whole() {
    local cols=$1 rows=$2
    local s
    s=$(screen)
    [ "$(printf '%s\n' "$s" | wc -l)" -eq "$rows" ] || return 1
    printf '%s\n' "$s" | head -n 1 | grep -q '^ paramscope ' || return 1
    printf '%s\n' "$s" | grep -q 'Command line and log' || return 1
    local line
    while IFS= read -r line; do
        [ "${#line}" -le "$cols" ] || return 1
    done <<<"$s"
    printf '%s\n' "$s" | tail -n 1 | grep -q 'F1 help' || return 1
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
