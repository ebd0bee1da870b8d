#!/usr/bin/env bash
# `make run`: migrate, create the first admin and demo data on an empty database, then start the
# receiver (FastAPI) and the console (Streamlit) together; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# Ports may come from the environment or from .env (the rest of .env is read by the apps).
if [ -f .env ]; then
  while IFS='=' read -r key value; do
    case "$key" in CONSOLE_PORT|RECEIVER_PORT) [ -z "${!key:-}" ] && export "$key=$value" ;; esac
  done < <(grep -E '^(CONSOLE_PORT|RECEIVER_PORT)=[0-9]+$' .env || true)
fi
CONSOLE_PORT="${CONSOLE_PORT:-8501}"
RECEIVER_PORT="${RECEIVER_PORT:-8000}"

echo "==> Migrating the database"
$PY -m core.cli migrate
echo "==> Accounts"
$PY -m core.cli ensure-admin
$PY -m core.cli seed-demo --if-empty

# The bot API needs a token. Without one configured, use a random one for this run only, so a
# bot developer can try the API right away (never a fixed default).
token_note=""
if [ -z "${BOT_API_TOKEN:-}" ] && ! grep -qs '^BOT_API_TOKEN=.\+' .env; then
  BOT_API_TOKEN="$($PY -c 'import secrets; print(secrets.token_urlsafe(24))')"
  export BOT_API_TOKEN
  token_note="  Bot API token for this run: $BOT_API_TOKEN   (set BOT_API_TOKEN in .env to keep one)"
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "==> Stopping console and receiver"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit 0
}
trap cleanup INT TERM EXIT

.venv/bin/uvicorn receiver.main:app --host 127.0.0.1 --port "$RECEIVER_PORT" --log-level warning &
pids+=($!)
.venv/bin/streamlit run app.py --server.headless true --server.port "$CONSOLE_PORT" \
  --browser.gatherUsageStats false --server.address 127.0.0.1 >/dev/null &
pids+=($!)

for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$RECEIVER_PORT/healthz" >/dev/null 2>&1 \
     && curl -fsS "http://127.0.0.1:$CONSOLE_PORT/_stcore/health" >/dev/null 2>&1; then
    break
  fi
  sleep 0.5
done

cat <<MSG

Lesplanner is running.
  Console:   http://127.0.0.1:$CONSOLE_PORT    (sign in with your account; a first run prints the admin's password above)
  Receiver:  http://127.0.0.1:$RECEIVER_PORT    (API docs: http://127.0.0.1:$RECEIVER_PORT/docs, health: /healthz)
Demo accounts (tutor, finance) were printed above the first time demo data was loaded.
$token_note
Press Ctrl-C to stop both.
MSG
wait -n "${pids[@]}"
