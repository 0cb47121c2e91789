#!/usr/bin/env bash
# Re-extract the interface messages and merge them into the ru and uk catalogues.
# New messages then appear untranslated (tests/test_i18n.py fails until they are translated).
set -euo pipefail
cd "$(dirname "$0")/.."
pot=src/saleskpi/locales/saleskpi.pot
pybabel extract -F tools/babel.cfg -k _ --no-location --sort-output --omit-header -o "$pot" .
for lang in ru uk; do
  po="src/saleskpi/locales/$lang/LC_MESSAGES/saleskpi.po"
  if [ -f "$po" ]; then
    pybabel update --no-fuzzy-matching -l "$lang" -i "$pot" -o "$po"
  else
    mkdir -p "$(dirname "$po")"
    pybabel init -l "$lang" -i "$pot" -o "$po"
  fi
done
