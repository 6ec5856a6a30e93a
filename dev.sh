#!/usr/bin/env bash
# classprobe's two commands. Both do all setup on a fresh machine (a virtualenv in .venv
# with classprobe and its dependencies from PyPI), then:
#   ./dev.sh demo [options]   collector on SQLite + a local agent + a readiness report
#   ./dev.sh test [pytest args]   ruff + mypy + the whole test suite (or the given
#                                  pytest arguments)
set -euo pipefail
cd "$(dirname "$0")"

VENV="${CLASSPROBE_VENV:-.venv}"

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "classprobe needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$(find_python)" -m venv "$VENV"
    fi
    local stamp="$VENV/.classprobe-installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "Installing classprobe and its dependencies into $VENV ..." >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[all]' \
            2> >(grep -v "^WARNING: Location" >&2)
        touch "$stamp"
    fi
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
    demo)
        setup
        exec "$VENV/bin/classprobe" demo "$@"
        ;;
    test)
        setup
        echo "== ruff ==" && "$VENV/bin/ruff" check .
        echo "== mypy ==" && "$VENV/bin/mypy"
        if [ $# -gt 0 ]; then  # a chosen subset: as asked, in one process
            echo "== pytest ==" && exec "$VENV/bin/pytest" "$@"
        fi
        # The whole suite in two parts. Unit, API, e2e and fault tests run on two
        # processes (pytest-xdist); the network lab (it measures rates and delays against
        # the truth) and the browser tests run alone afterwards, so no other test competes
        # with them for the cores.
        status=0
        echo "== pytest: everything but the lab and the browser, 2 processes =="
        "$VENV/bin/pytest" -n 2 --ignore=tests/lab --ignore=tests/browser || status=$?
        echo "== pytest: the lab and the browser tests, alone =="
        "$VENV/bin/pytest" tests/lab tests/browser || status=$?
        exit "$status"
        ;;
    *)
        echo "usage: ./dev.sh demo [options] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
