#!/usr/bin/env bash
# A real Prefect 3.8.8 server: an automation in Tripline creates a flow run for a real deployment there through the
# run-deployment action, and running the same outbox entry again (as after a crash between the call and its record)
# creates no second run, because the idempotency key is the same.
# Usage: scripts/prefect-run-deployment-check.sh [path-to-tripline]   (PREFECT_VENV to reuse a virtualenv)
set -euo pipefail
cd "$(dirname "$0")/.."
tripline="${1:-$PWD/.build/debug/tripline}"
venv="${PREFECT_VENV:-$PWD/.build/prefect-venv}"
if [ ! -x "$venv/bin/prefect" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "prefect==3.8.8"
fi
# Prefect 3.8.8's server passes `min_items` to FastAPI's Body(), which FastAPI releases after 0.152 no longer accept
# (the server then fails at import); pin a FastAPI that still does. Its client does not need this.
"$venv/bin/pip" install -q "fastapi==0.152.0"
work=$(mktemp -d)
pport=$(( 20000 + RANDOM % 20000 ))
tport=$(( pport + 1 ))
export PREFECT_HOME="$work/prefect-home" PREFECT_UI_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false
"$venv/bin/prefect" server start --host 127.0.0.1 --port "$pport" > "$work/prefect.log" 2>&1 &
prefect_pid=$!
tripline_pid=""
cleanup() {
    [ -n "$tripline_pid" ] && kill "$tripline_pid" 2>/dev/null || true
    kill "$prefect_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- prefect log"; tail -20 "$work/prefect.log"; echo "--- tripline log"; tail -30 "$work/tripline.log" 2>/dev/null; exit 1; }
api="http://127.0.0.1:$pport/api"
for _ in $(seq 1 120); do curl -fs "$api/health" >/dev/null 2>&1 && break; sleep 1; done
curl -fs "$api/health" >/dev/null || fail "the Prefect server did not start"
echo "ok: Prefect server up"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# /api/health answers before the server has finished setting up its database: retry the first write for a while.
flow=""
for _ in $(seq 1 60); do
    flow=$(curl -fs -X POST "$api/flows/" -H 'Content-Type: application/json' -d '{"name": "tripline-ci-flow"}' 2>/dev/null | json "['id']" 2>/dev/null) && break
    sleep 1
done
[ -n "$flow" ] || fail "the Prefect server did not accept a flow"
deployment=$(curl -fs -X POST "$api/deployments/" -H 'Content-Type: application/json' \
    -d "{\"name\": \"tripline-ci-deployment\", \"flow_id\": \"$flow\"}" | json "['id']")
echo "ok: deployment $deployment created"

mkdir -p "$work/rules/destinations" "$work/rules/automations"
cat > "$work/rules/destinations/prefect.yaml" <<YAML
destinations:
  ci-prefect:
    type: prefect
    api_url: $api
YAML
cat > "$work/rules/automations/run.yaml" <<'YAML'
name: run the CI deployment on request
trigger: {type: event, posture: Reactive, expect: [ci.run.requested], threshold: 1, within: 0}
actions:
  - type: run-deployment
    destination: ci-prefect
    deployment: tripline-ci-flow/tripline-ci-deployment
    parameters: {}
YAML
start_tripline() {
    "$tripline" serve --port "$tport" --database "$work/tripline.sqlite" --rules "$work/rules" >> "$work/tripline.log" 2>&1 &
    tripline_pid=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$tport/readyz" >/dev/null && return 0; sleep 0.1; done
    fail "tripline did not start"
}
count_runs() {
    curl -fs -X POST "$api/flow_runs/filter" -H 'Content-Type: application/json' \
        -d "{\"deployments\": {\"id\": {\"any_\": [\"$deployment\"]}}}" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"
}
delivery() {
    curl -fs "http://127.0.0.1:$tport/api/deliveries" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d[0]['status'], d[0]['attempt_count'], d[0]['id']) if d else print('none 0 -')"
}

start_tripline
curl -fs -X POST "http://127.0.0.1:$tport/api/events" -H 'Content-Type: application/json' \
    -d '[{"id": "6f1c2f0e-8d1b-4e0a-9b7e-1c2d3e4f5a60", "occurred": "2026-01-01T00:00:00Z", "event": "ci.run.requested", "resource": {"prefect.resource.id": "ci.request"}}]' \
    || fail "posting the event failed"
for _ in $(seq 1 100); do [ "$(delivery | cut -d' ' -f1)" = delivered ] && break; sleep 0.1; done
read -r status attempts id <<< "$(delivery)"
[ "$status" = delivered ] || fail "the run-deployment delivery is $status after 10 s"
[ "$(count_runs)" = 1 ] || fail "expected one flow run of the deployment, found $(count_runs)"
echo "ok: the automation created one flow run in Prefect (delivery $id)"

# As after a crash between Prefect's answer and Tripline's record of it: the entry is pending again.
kill "$tripline_pid"; wait "$tripline_pid" 2>/dev/null || true; tripline_pid=""
python3 - "$work/tripline.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE outbox SET status = 'pending', available_at = 0")
db.commit()
PY
start_tripline
for _ in $(seq 1 100); do read -r status attempts id <<< "$(delivery)"; [ "$status" = delivered ] && [ "$attempts" = 2 ] && break; sleep 0.1; done
[ "$status" = delivered ] && [ "$attempts" = 2 ] || fail "the re-run entry is $status after $attempts attempts"
[ "$(count_runs)" = 1 ] || fail "the repeated idempotency key created another flow run ($(count_runs) runs)"
echo "ok: running the entry again with the same idempotency key created no second flow run"
