#!/usr/bin/env bash
# Install, build the demo barometer on the embedded SQLite database, and serve it.
#   scripts/run.sh [--host 127.0.0.1] [--port 8000] [--workers N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

missing=()
# WeasyPrint (PDF posters) loads Pango and HarfBuzz's subsetter at run time; DejaVu is the poster font.
for package in libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do
  [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" == *" ok installed" ]] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

"${UV[@]}" sync --frozen --no-dev
"${UV[@]}" run --no-dev barometre db upgrade
"${UV[@]}" run --no-dev barometre demo
echo "Baromètre: http://127.0.0.1:8000 (Ctrl-C to stop)"
exec "${UV[@]}" run --no-dev barometre serve "$@"
