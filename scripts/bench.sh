#!/usr/bin/env bash
# Reproduces creditd's benchmark comparison on one machine, in one run:
#
#   1. the baseline: the naive row-lock-per-request ledger of
#      ../shared/bench/naive-ledger, driven by pgbench over 10,000 accounts and
#      over one hot account;
#   2. creditd on a fresh SQLite file and on a fresh PostgreSQL database of the
#      same throwaway PostgreSQL server, driven by "creditd bench": usage over
#      10,000 customers and over one, batches of 1,000 events, entitlement
#      checks, and usage at half of its peak rate (for p99 under load that the
#      server can sustain);
#
# and prints every figure beside its ratio to the baseline measured in this
# same run (absolute figures swing with the machine's load; ratios much less).
#
# PostgreSQL runs with its defaults (fsync on, synchronous_commit on) on a unix
# socket in a temporary directory, as the postgres user when run as root; the
# server binaries are found via pg_config --bindir or /usr/lib/postgresql/*/bin.
# Everything started here is stopped on exit, also on failure or Ctrl-C.
#
# Knobs: DURATION (default 10s; whole seconds, "10" or "10s") and CLIENTS
# (default 32): each measured run's length and its concurrency, the same for
# pgbench and creditd. SCALE=1 adds the data-size runs (the same 100
# customers debited with 100 and with SCALE_CUSTOMERS, default 100,000,
# customers in the database). STORES (default "sqlite postgres") picks the
# stores creditd is measured on. KEEP=1 keeps the working directory (logs,
# the PostgreSQL data directory, each run's JSON) instead of removing it.
#
# Usage: scripts/bench.sh            DURATION=3s CLIENTS=16 scripts/bench.sh
set -euo pipefail

DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-32}
ACCOUNTS=10000 # the many-customers case; the hot case is 1

die() { echo "bench.sh: $*" >&2; exit 1; }

[[ $DURATION =~ ^([0-9]+)s?$ ]] && ((BASH_REMATCH[1] > 0)) ||
  die "DURATION must be whole seconds such as 10s, not \"$DURATION\" (pgbench -T takes seconds)"
secs=${BASH_REMATCH[1]}
[[ $CLIENTS =~ ^[1-9][0-9]*$ ]] || die "CLIENTS must be a positive integer, not \"$CLIENTS\""

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
baseline=$root/../shared/bench/naive-ledger
for f in schema.sql debit.sql; do
  [[ -f $baseline/$f ]] || die "no $f in $baseline: the shared directory must sit beside the repository as ../shared"
done
command -v curl >/dev/null || die "curl is needed to wait for creditd's /healthz"

# --- PostgreSQL binaries ------------------------------------------------------

bindir=
if command -v pg_config >/dev/null && [[ -x $(pg_config --bindir)/initdb ]]; then
  bindir=$(pg_config --bindir)
else
  # Debian keeps the server binaries off PATH; take the newest version.
  for d in /usr/lib/postgresql/*/bin; do [[ -x $d/initdb ]] && bindir=$d; done
fi
[[ -n $bindir ]] || die "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin)"
for p in initdb pg_ctl psql pgbench; do [[ -x $bindir/$p ]] || die "no $p in $bindir"; done

# as_pg runs a server program as the postgres user when we are root (initdb
# and postgres refuse to run as root), from a directory that user may read.
as_pg() {
  local prog=$bindir/$1
  shift
  if ((EUID == 0)); then
    (cd "$pgdir" && runuser -u postgres -- "$prog" "$@")
  else
    (cd "$pgdir" && "$prog" "$@")
  fi
}

# --- cleanup --------------------------------------------------------------------

# A short path under /tmp keeps the unix socket's path under its length limit.
work=$(mktemp -d /tmp/creditd-bench.XXXXXX)
chmod 755 "$work"
pgdir=$work/pg
server_pid=

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -f $pgdir/data/postmaster.pid ]]; then
    as_pg pg_ctl stop -D "$pgdir/data" -m fast -w >/dev/null 2>&1 || true
  fi
  if [[ -n ${KEEP:-} ]]; then echo "bench.sh: kept $work" >&2; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ----------------------------------------------------------------------

echo "== building creditd"
(cd "$root" && go build -o "$work/creditd" ./cmd/creditd)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$root" status --porcelain 2>/dev/null) ]] || commit="$commit + uncommitted changes"

# --- PostgreSQL -----------------------------------------------------------------

echo "== starting a throwaway PostgreSQL ($bindir)"
mkdir -p "$pgdir"
chmod 755 "$pgdir"
((EUID != 0)) || chown postgres "$pgdir"
as_pg initdb -D "$pgdir/data" -U postgres -A trust -E UTF8 --no-instructions >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log" >&2; die "initdb failed"; }
# Defaults stand (fsync, synchronous_commit, WAL); only where it listens, and
# room for pgbench's clients beside creditd's pool, are set.
as_pg pg_ctl start -w -t 60 -D "$pgdir/data" -l "$pgdir/log" \
  -o "-k $pgdir -c listen_addresses='' -c max_connections=$((CLIENTS + 100))" >/dev/null ||
  { cat "$pgdir/log" >&2; die "pg_ctl start failed"; }

export PGHOST=$pgdir PGUSER=postgres PGOPTIONS='-c client_min_messages=warning'
sql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql -d postgres -c 'CREATE DATABASE naive' -c 'CREATE DATABASE creditd'
pgversion=$(sql -d postgres -At -c 'SHOW server_version')
pgsettings=$(sql -d postgres -At -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')")

# --- baseline -----------------------------------------------------------------

# pgbench_tps N prints the baseline's transactions/s over N accounts.
pgbench_tps() {
  local n=$1 out=$work/pgbench-$1.out
  sql -d naive -v naccounts="$n" -f "$baseline/schema.sql" >/dev/null
  "$bindir/pgbench" -n -c "$CLIENTS" -j $((CLIENTS < 2 ? CLIENTS : 2)) -T "$secs" \
    -D naccounts="$n" -f "$baseline/debit.sql" naive >"$out" 2>&1 ||
    { cat "$out" >&2; die "pgbench over $n accounts failed"; }
  awk '/^tps = / { print $3; exit }' "$out"
}

echo "== baseline: naive ledger, pgbench -c $CLIENTS -T $secs, $ACCOUNTS accounts"
tps_many=$(pgbench_tps "$ACCOUNTS")
echo "== baseline: naive ledger, pgbench -c $CLIENTS -T $secs, 1 account"
tps_one=$(pgbench_tps 1)

# --- creditd --------------------------------------------------------------------

export CREDITD_API_KEY=qs_test_$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')

# start_creditd NAME DATABASE_URL starts "creditd serve" on a free port and
# sets server_pid and CREDITD_BENCH_URL once /healthz answers.
start_creditd() {
  local out=$work/serve-$1.out
  CREDITD_ADDR=127.0.0.1:0 CREDITD_DATABASE_URL=$2 CREDITD_BOOTSTRAP_KEY=$CREDITD_API_KEY \
    "$work/creditd" serve >"$out" 2>"$work/serve-$1.log" &
  server_pid=$!
  local url= i
  for ((i = 0; i < 300; i++)); do
    url=$(sed -n 's/^creditd: listening on \(http:[^ ]*\)$/\1/p' "$out")
    [[ -n $url ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve-$1.log" >&2; die "creditd serve ($1) exited"; }
    sleep 0.1
  done
  [[ -n $url ]] || die "creditd serve ($1) did not print its address within 30s"
  for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "$url/healthz" || die "creditd serve ($1): /healthz does not answer 200"
  export CREDITD_BENCH_URL=$url
}

stop_creditd() {
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
}

# num FIELD FILE reads a number from bench's one-line JSON result.
# A missing field reads as empty, never as a failure that set -e would act on.
num() { { grep -o "\"$1\":[-0-9.e+]*" "$2" 2>/dev/null || true; } | head -n 1 | cut -d: -f2; }

failed=0
results=$work/results.txt
last= # the JSON result of the latest measure

# measure STORE LABEL BASELINE_TPS FIELD ARGS... runs one measured bench and
# appends a row: FIELD (events_per_sec or requests_per_sec) is the figure
# divided by BASELINE_TPS for the ratio ("-": none).
measure() {
  local store=$1 label=$2 base=$3 field=$4
  shift 4
  local json=$work/$store-${label//[^a-z0-9]/_}.json
  last=$json
  echo "   $store: $label"
  if ! "$work/creditd" bench --setup=false --concurrency "$CLIENTS" --duration "${secs}s" --json "$@" \
    >"$json" 2>"$json.log"; then
    echo "   ! creditd bench failed ($store, $label):" >&2
    tail -n 5 "$json.log" >&2
    failed=1
  fi
  [[ -s $json ]] || { printf '%-8s %-30s %s\n' "$store" "$label" "no result" >>"$results"; return; }
  local fig ratio=- errs
  fig=$(num "$field" "$json")
  [[ $base == - ]] || ratio=$(awk -v a="$fig" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
  errs=$(num errors "$json")
  ((errs == 0)) || errs="$errs $(grep -o '"errors_by_status":{[^}]*}' "$json" | cut -d: -f2-)"
  local abandoned
  abandoned=$(num abandoned "$json")
  ((abandoned == 0)) || errs="$errs; $abandoned still in flight 10s after the end, cancelled"
  awk -v s="$store" -v l="$label" -v rps="$(num requests_per_sec "$json")" -v eps="$(num events_per_sec "$json")" \
    -v p50="$(num p50_ms "$json")" -v p95="$(num p95_ms "$json")" -v p99="$(num p99_ms "$json")" \
    -v max="$(num max_ms "$json")" -v r="$ratio" -v e="$errs" \
    'BEGIN { printf "%-8s %-30s %9.1f %10.0f %8.1f %8.1f %8.1f %8.1f %8s  %s\n", s, l, rps, eps, p50, p95, p99, max, r, e }' >>"$results"
}

# analyze STORE DATABASE: on PostgreSQL, gives the planner statistics of the
# database the setup just filled, as autovacuum does within a minute or so
# of a table's growth in a running system. Measured without them, the
# planner took the customers and blocks tables for nearly empty and served
# each key lookup by a scan of the tenant's rows (200 debits/s instead of
# 1,700): a window a fresh database filling up passes through, not the
# steady state this measures.
analyze() {
  [[ $1 == postgres ]] || return 0
  sql -d "$2" -c ANALYZE
}

# audit STORE DATABASE: after the runs, on PostgreSQL, every account's balance
# must equal what its blocks hold and the sum of its ledger (no expiries
# here); a benchmark that broke money is no benchmark.
audit() {
  [[ $1 == postgres ]] || return 0
  local bad
  bad=$(sql -d "$2" -At -c "SELECT count(*) FROM customers c
    WHERE c.balance <> (SELECT coalesce(sum(remaining_amount), 0) FROM blocks b
                        WHERE b.tenant_id = c.tenant_id AND b.env = c.env AND b.customer_id = c.id)
       OR c.balance <> (SELECT coalesce(sum(delta), 0) FROM ledger_entries l
                        WHERE l.tenant_id = c.tenant_id AND l.env = c.env AND l.customer_id = c.id)")
  if [[ $bad != 0 ]]; then
    echo "   ! $1: $bad accounts whose balance differs from their blocks or ledger" >&2
    failed=1
  else
    echo "   $1: audit: every balance equals its blocks and its ledger"
  fi
}

# run_creditd STORE DATABASE_URL runs every measured run against one store.
run_creditd() {
  local store=$1
  echo "== creditd on $store: setup ($ACCOUNTS customers)"
  start_creditd "$store" "$2"
  "$work/creditd" bench --customers "$ACCOUNTS" --concurrency "$CLIENTS" --duration 0 >/dev/null 2>"$work/setup-$store.log" ||
    { tail -n 5 "$work/setup-$store.log" >&2; die "creditd bench setup on $store failed"; }
  analyze "$store" creditd
  echo "== creditd on $store: measured runs, ${secs}s each"
  measure "$store" "usage, $ACCOUNTS customers" "$tps_many" events_per_sec --mode usage --customers "$ACCOUNTS"
  local peak
  peak=$(num requests_per_sec "$last")
  measure "$store" "usage, 1 customer" "$tps_one" events_per_sec --mode usage --customers 1
  measure "$store" "batch of 1000, $ACCOUNTS cust." "$tps_many" events_per_sec --mode batch --batch-size 1000 --customers "$ACCOUNTS"
  measure "$store" "check, $ACCOUNTS customers" "$tps_many" requests_per_sec --mode check --customers "$ACCOUNTS"
  # The hot path's latency at a gate's concurrency: 4 clients.
  measure "$store" "check, 4 clients" - requests_per_sec --mode check --customers "$ACCOUNTS" --concurrency 4
  local half
  half=$(awk -v p="${peak:-0}" 'BEGIN { printf "%d", p / 2 }')
  if ((half > 0)); then
    measure "$store" "usage at half peak ($half/s)" - events_per_sec --mode usage --customers "$ACCOUNTS" --rate "$half"
  fi
  stop_creditd
  audit "$store" creditd
}

STORES=${STORES:-sqlite postgres}
[[ $STORES == *sqlite* ]] && run_creditd sqlite "sqlite:$work/creditd.db"
[[ $STORES == *postgres* ]] && run_creditd postgres "postgres:///creditd?host=$pgdir&user=postgres&sslmode=disable"

# run_scale STORE DATABASE_URL: does a debit's cost grow with the data? The
# same 100 customers are debited on a database that holds 100 customers, then
# on the same database grown to SCALE_CUSTOMERS; the two figures should
# match. Off unless SCALE=1: growing the database takes a while.
run_scale() {
  local store=$1
  start_creditd "$store" "$2"
  echo "== creditd on $store: scale, 100 customers"
  "$work/creditd" bench --customers 100 --concurrency "$CLIENTS" --duration 0 >/dev/null 2>"$work/setup-scale-$store.log" ||
    die "creditd bench setup on $store failed"
  analyze "$store" "$3"
  measure "$store" "usage, 100 of 100 customers" - events_per_sec --mode usage --customers 100
  echo "== creditd on $store: growing to $SCALE_CUSTOMERS customers"
  "$work/creditd" bench --customers "$SCALE_CUSTOMERS" --concurrency "$CLIENTS" --duration 0 >/dev/null 2>>"$work/setup-scale-$store.log" ||
    die "creditd bench setup on $store failed"
  analyze "$store" "$3"
  measure "$store" "usage, 100 of $SCALE_CUSTOMERS customers" - events_per_sec --mode usage --customers 100
  measure "$store" "usage, $SCALE_CUSTOMERS customers" - events_per_sec --mode usage --customers "$SCALE_CUSTOMERS"
  stop_creditd
  audit "$store" "$3"
}

if [[ ${SCALE:-0} == 1 ]]; then
  SCALE_CUSTOMERS=${SCALE_CUSTOMERS:-100000}
  [[ $STORES == *sqlite* ]] && run_scale sqlite "sqlite:$work/scale.db" -
  if [[ $STORES == *postgres* ]]; then
    sql -d postgres -c "CREATE DATABASE creditd_scale"
    run_scale postgres "postgres:///creditd_scale?host=$pgdir&user=postgres&sslmode=disable" creditd_scale
  fi
fi

# --- report ---------------------------------------------------------------------

cat <<EOF

== Results ($(date -u +%FT%TZ), creditd $commit)
machine     $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load before runs: $(cut -d' ' -f1-3 /proc/loadavg)
postgres    $pgversion ($pgsettings), one server for the baseline and creditd
runs        ${secs}s each (creditd: after 1s warmup), $CLIENTS clients

baseline    naive row-lock ledger on PostgreSQL (pgbench tps)
            $ACCOUNTS accounts: $tps_many tps
            1 account:      $tps_one tps

creditd     ratio = debits/s (events/s for batches, checks/s for checks) ÷ baseline tps, same account count
EOF
printf '%-8s %-30s %9s %10s %8s %8s %8s %8s %8s  %s\n' store run req/s debits/s p50_ms p95_ms p99_ms max_ms ratio errors
cat "$results"
exit "$failed"
