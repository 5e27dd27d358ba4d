#!/usr/bin/env bash
# Install, build the demo barometer on the embedded SQLite database, and serve it.
#   scripts/run.sh [--host 127.0.0.1] [--port 8000] [--workers N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

"${UV[@]}" sync --frozen --no-dev
"${UV[@]}" run --no-dev barometre db upgrade
"${UV[@]}" run --no-dev barometre demo
echo "Baromètre: http://127.0.0.1:8000 (Ctrl-C to stop)"
exec "${UV[@]}" run --no-dev barometre serve "$@"
