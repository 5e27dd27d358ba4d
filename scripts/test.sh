#!/usr/bin/env bash
# Install what the tests need (Python packages, PostgreSQL, Chromium, R, Java, axe-core) and run
# the whole suite: lint, types, then pytest on SQLite and PostgreSQL and in headless Chromium.
#   scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
# R: the mystery-channel pooled variances are checked against base R's anova(lm(...)).
command -v Rscript >/dev/null || missing+=(r-base-core)
# R haven reads every SPSS and Stata export back (ReadStat, as in pyreadstat, but R's side).
[[ "$(dpkg-query -W -f='${Status}' r-cran-haven 2>/dev/null)" == *" ok installed" ]] || missing+=(r-cran-haven)
# Java: ODK Validate (the jar in the pyxform wheel) checks every exported XLSForm.
command -v java >/dev/null || missing+=(default-jre-headless)
# WeasyPrint (PDF posters) loads Pango and HarfBuzz's subsetter at run time; DejaVu is the poster font.
# poppler-utils: the scorecard PDF test turns page 1 into a PNG with pdftoppm.
for package in libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils; do
  [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" == *" ok installed" ]] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

AXE_VERSION=4.11.0
if [ ! -f tests/.assets/axe.min.js ] || ! grep -q "axe v$AXE_VERSION" tests/.assets/axe.min.js; then
  echo "Fetching axe-core $AXE_VERSION from npm…"
  workdir=$(mktemp -d)
  (cd "$workdir" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null && tar xzf "axe-core-$AXE_VERSION.tgz" package/axe.min.js)
  mkdir -p tests/.assets
  mv "$workdir/package/axe.min.js" tests/.assets/axe.min.js
  rm -rf "$workdir"
fi

"${UV[@]}" sync --frozen
echo "== ruff"; "${UV[@]}" run ruff check .
"${UV[@]}" run ruff format --check .
echo "== mypy"; "${UV[@]}" run mypy
# One xdist worker per core; each has its own databases and PostgreSQL cluster. loadscope keeps a
# module's tests on one worker so module fixtures (a built demo, a registry) are built once.
echo "== pytest"; "${UV[@]}" run pytest -n auto --dist loadscope "$@"
