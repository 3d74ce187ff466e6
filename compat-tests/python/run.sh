#!/usr/bin/env bash
# Python Kafka clients (confluent-kafka, kafka-python, aiokafka; pinned in requirements.txt) against real Ferrite
# brokers, one per test. The clients live in a virtualenv under target/, rebuilt when requirements.txt changes.
#
#   run.sh [pytest args...]
# Environment: FERRITE_BIN (default target/debug/ferrite, built if needed), PYTHON (default python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

venv="$root/target/compat-python/venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "==> Python clients into ${venv#"$root"/}"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

if [[ -z "${FERRITE_BIN:-}" ]]; then
    cargo build --quiet -p ferrite --bin ferrite
    export FERRITE_BIN="$root/target/debug/ferrite"
fi

cd "$here"
rc=0
"$venv/bin/python" -m pytest -p no:cacheprovider "$@" || rc=$?
if ((rc == 5)); then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
