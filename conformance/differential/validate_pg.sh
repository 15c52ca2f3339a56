#!/bin/bash
# Re-check the corpus against a real PostgreSQL: setup.sql must run cleanly, every query
# before the `-- errors` line must succeed, every query after it must fail.
# Prints "<line> <SQLSTATE> <message>" for each error. Usage: ./validate_pg.sh [port] [db]
set -u
export PGOPTIONS="-c client_min_messages=warning"
PORT=${1:-5499}; DB=${2:-diffcheck}; PG="-h 127.0.0.1 -p $PORT -U postgres"
cd "$(dirname "$0")"
dropdb $PG --if-exists "$DB" && createdb $PG "$DB" || exit 1
psql -X -q -v ON_ERROR_STOP=1 $PG -d "$DB" -f setup.sql >/dev/null || exit 1
tmp=$(mktemp -d)
{ echo '\set VERBOSITY verbose'; cat queries.sql; } > "$tmp/q.sql"
psql -X -v ON_ERROR_STOP=0 $PG -d "$DB" -f "$tmp/q.sql" >/dev/null 2>"$tmp/err"
errs=$(grep -n '^-- errors' queries.sql | cut -d: -f1)
sed -nE 's/^psql:[^:]*:([0-9]+): ERROR:  ([0-9A-Z]{5}): (.*)/\1 \2 \3/p' "$tmp/err" |
  awk '{ $1 = $1 - 1; print }' > "$tmp/codes"
cat "$tmp/codes"
bad=$(awk -v e="$errs" '$1 < e' "$tmp/codes" | wc -l)
want=$(awk -v e="$errs" 'NR > e && !/^--/ && NF' queries.sql | wc -l)
got=$(awk -v e="$errs" '$1 > e' "$tmp/codes" | wc -l)
echo "unexpected errors: $bad; error-section queries: $want, failed: $got"
rm -rf "$tmp"
[ "$bad" -eq 0 ] && [ "$want" -eq "$got" ]
