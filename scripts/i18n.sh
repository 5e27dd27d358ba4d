#!/usr/bin/env bash
# Extract the UI strings and merge them into the fr and en catalogs (then translate the new ones).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
"${UV[@]}" run pybabel extract -F babel.cfg -k _ -k N_ -k gettext -k ngettext:1,2 \
  --no-location --sort-output -o app/translations/messages.pot .
for locale in fr en; do
  "${UV[@]}" run pybabel update -i app/translations/messages.pot -d app/translations \
    -l "$locale" --no-fuzzy-matching --ignore-obsolete
done
