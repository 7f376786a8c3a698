# Sourced by train.sh and test.sh: `launch NAME COMMAND...` runs COMMAND and, when it fails, repeats the recipe's
# one-line error (written to TOOLKIT_ERROR_FILE by toolkit.cli.run_cli) as the last line, below the launcher's own
# report; it exits with COMMAND's status.
launch() {
    name=$1
    shift
    TOOLKIT_ERROR_FILE=$(mktemp)
    export TOOLKIT_ERROR_FILE
    trap 'rm -f "$TOOLKIT_ERROR_FILE"' EXIT
    status=0
    "$@" || status=$?
    if [ "$status" -ne 0 ]; then
        if [ -s "$TOOLKIT_ERROR_FILE" ]; then
            tail -n 1 "$TOOLKIT_ERROR_FILE" >&2
        else
            echo "$name: the run failed (exit $status); its error is above." >&2
        fi
    fi
    exit "$status"
}
