# Helpers for the end-to-end tests: each test script sources this, runs
# paramscope as a user would and checks the exit status, standard output and
# standard error.  The runner prints "N passed, N failed" and exits 1 on any
# failure.
set -u
PS="${PS_BUILD_ROOT:?}/src/paramscope"
SRC="${PS_SOURCE_ROOT:?}"
MODEL="$SRC/models/classroom.safetensors"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PARAMSCOPE_ASCII=1 LC_ALL=C.UTF-8
unset PARAMSCOPE_MODEL PARAMSCOPE_DATA
passed=0
failed=0
OUT="$WORK/stdout"
ERR="$WORK/stderr"

# run CMD...: runs it, keeps stdout/stderr in $OUT/$ERR and the status in $rc
run() {
    "$@" >"$OUT" 2>"$ERR" </dev/null
    rc=$?
}

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*"
    echo "  --- stdout:"; head -n 20 "$OUT" | sed 's/^/  /'
    echo "  --- stderr:"; head -n 10 "$ERR" | sed 's/^/  /'
}

# check NAME STATUS [PATTERN-IN-STDERR]: the last run's status, and its
# stderr containing a fixed string when given
check() {
    local name=$1 want=$2 pat=${3:-}
    if [ "$rc" -ne "$want" ]; then bad "$name: exit status $rc, wanted $want"; return; fi
    if [ -n "$pat" ] && ! grep -qF -- "$pat" "$ERR"; then bad "$name: stderr lacks '$pat'"; return; fi
    # one error line: "paramscope CMD: ..." from a subcommand, "FILE:LINE: ..." from the language
    if [ "$want" -ne 0 ] && [ "$(grep -cE '^paramscope|^[^ ]+:[0-9]+: ' "$ERR")" -ne 1 ]; then bad "$name: not exactly one error line"; return; fi
    ok
}

# expect_out NAME PATTERN: the last run's stdout contains a fixed string
expect_out() {
    if grep -qF -- "$2" "$OUT"; then ok; else bad "$1: stdout lacks '$2'"; fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
