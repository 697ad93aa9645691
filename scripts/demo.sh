#!/usr/bin/env bash
# The quick start without Docker: builds sweeper, migrates a local database, runs
# the sandbox (fake Interlace) and `sweeper serve`, makes a 10 USDC deposit arrive,
# and shows it swept in sweep_ledger and in the sandbox's ledger.
#   scripts/demo.sh          run the demo, then stop everything
#   KEEP=1 scripts/demo.sh   leave sandbox and serve running (Ctrl-C to stop)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/sweeper_demo?sslmode=disable}"
HTTP_PORT="${HTTP_PORT:-8080}"
SANDBOX_PORT="${SANDBOX_PORT:-8090}"
SECRET="demo-webhook-secret"
LOGS="$(mktemp -d)"

if [[ "$DATABASE_URL" == *"/sweeper_demo?"* ]]; then
  psql "$ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname='sweeper_demo'" | grep -q 1 \
    || psql "$ADMIN_URL" -qc "CREATE DATABASE sweeper_demo"
fi

echo "==> building"
go build -o bin/sweeper ./cmd/sweeper

echo "==> migrating $DATABASE_URL"
bin/sweeper migrate

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "==> starting the sandbox on :$SANDBOX_PORT and sweeper on :$HTTP_PORT (logs in $LOGS)"
SWEEPER_SANDBOX_ADDR="127.0.0.1:$SANDBOX_PORT" SANDBOX_WEBHOOK_SECRET="$SECRET" SANDBOX_TIME_SCALE=10 \
  SANDBOX_WEBHOOK_URL="http://127.0.0.1:$HTTP_PORT/webhooks/interlace" \
  bin/sweeper sandbox >"$LOGS/sandbox.log" 2>&1 &
pids+=($!)
SWEEPER_HTTP_ADDR="127.0.0.1:$HTTP_PORT" INTERLACE_BASE_URL="http://127.0.0.1:$SANDBOX_PORT" \
  INTERLACE_CLIENT_ID=demo INTERLACE_CLIENT_SECRET=demo-client-secret INTERLACE_WEBHOOK_SECRET="$SECRET" \
  INTERLACE_ACCOUNT_ID=b27c8873-e400-47cd-adc1-035cfa0d5347 SWEEPER_ADMIN_TOKEN=demo-admin-token \
  SWEEPER_LOG_FORMAT=console bin/sweeper serve >"$LOGS/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && curl -fsS "http://127.0.0.1:$SANDBOX_PORT/sandbox/faults" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "==> a 10 USDC deposit arrives in the master wallet"
deposit="$(curl -fsS -X POST "http://127.0.0.1:$SANDBOX_PORT/sandbox/deposits" -H 'Content-Type: application/json' \
  -d '{"currency":"USDC","chain":"ETH","amount":"10"}')"
id="$(printf '%s' "$deposit" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
echo "deposit id: $id"

for _ in $(seq 1 100); do
  status="$(psql "$DATABASE_URL" -tAc "SELECT sweep_status FROM sweep_ledger WHERE deposit_id='$id'")"
  [ "$status" = "succeeded" ] && break
  sleep 0.1
done
echo "==> sweep_ledger"
psql "$DATABASE_URL" -xc "SELECT deposit_id, currency, amount, deposit_status, sweep_status, client_transaction_id,
  interlace_transfer_id, credited_amount, credited_currency, fee_amount, fee_currency, attempts
  FROM sweep_ledger WHERE deposit_id='$id'"
echo "==> the sandbox's Infinity balance"
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/sandbox/ledger" | sed -E 's/.*"infinity":(\{[^}]*\}).*/\1/'
echo
[ "$status" = "succeeded" ] || { echo "not swept: see $LOGS"; exit 1; }
if [ -n "${KEEP:-}" ]; then echo "running; Ctrl-C to stop"; wait; fi
