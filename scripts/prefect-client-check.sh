#!/usr/bin/env bash
# Drives a running `tripline serve` with Prefect's own client (a client we did not write):
#   - `prefect automation ls` / `inspect` list the shipped rules,
#   - events emitted with prefect.events.emit_event arrive over /api/events/in and are stored,
#   - `prefect event stream` receives them on /api/events/out.
# Usage: scripts/prefect-client-check.sh [path-to-tripline]   (PREFECT_VENV to reuse a virtualenv)
set -euo pipefail
cd "$(dirname "$0")/.."
tripline="${1:-$PWD/.build/debug/tripline}"
venv="${PREFECT_VENV:-$PWD/.build/prefect-venv}"
if [ ! -x "$venv/bin/prefect" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "prefect==3.8.8"
fi
work=$(mktemp -d)
port=$(( 20000 + RANDOM % 30000 ))
"$tripline" serve --port "$port" --database "$work/tripline.sqlite" --rules rules > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
# Prefect's CLI wraps its output at the terminal's width (80 columns without a terminal), even --json, which would
# break long strings inside the JSON.
export COLUMNS=500
export PREFECT_API_URL="http://127.0.0.1:$port/api" PREFECT_HOME="$work/prefect-home" PREFECT_CLIENT_CSRF_SUPPORT_ENABLED=false
fail() { echo "FAIL: $*"; echo "--- server log"; tail -30 "$work/server.log"; exit 1; }

"$venv/bin/prefect" automation ls > "$work/ls.txt" 2>&1 || fail "prefect automation ls exited $?: $(tail -5 "$work/ls.txt")"
grep -q "worker heartbeat lost" "$work/ls.txt" || fail "prefect automation ls does not list the shipped rules"
echo "ok: prefect automation ls lists the rules"

COLUMNS=10000 "$venv/bin/prefect" automation inspect "worker heartbeat lost for 15 minutes" --json > "$work/inspect.json" 2>&1 || fail "prefect automation inspect failed"
python3 -c "import json,sys; a=json.load(open(sys.argv[1])); a=a[0] if isinstance(a,list) else a; assert a['trigger']['posture']=='Proactive', a" "$work/inspect.json" \
    || fail "prefect automation inspect did not return the automation"
echo "ok: prefect automation inspect returns the automation"

timeout 30 "$venv/bin/prefect" event stream --format json > "$work/stream.txt" 2>&1 &
stream=$!
sleep 4
id=$("$venv/bin/python" -c "
from prefect.events import emit_event
event = emit_event(event='ci.prefect-client.check', resource={'prefect.resource.id': 'ci.check'}, payload={'n': 1})
# An object landing under incoming/ fires the shipped S3 automation at once.
emit_event(event='aws.s3.ObjectCreated:Put', resource={'prefect.resource.id': 'aws.s3.bucket.acme-lake', 'aws.s3.key': 'incoming/ci.parquet'}, payload={'size': 10})
print(event.id)" | tail -1)
[ -n "$id" ] || fail "emit_event returned no event"
for _ in $(seq 1 50); do
    total=$(curl -fs -X POST "http://127.0.0.1:$port/api/events/filter" -d "{\"filter\": {\"id\": {\"id\": [\"$id\"]}}}" | python3 -c "import json,sys; print(json.load(sys.stdin)['total'])")
    [ "$total" = "1" ] && break
    sleep 0.2
done
[ "$total" = "1" ] || fail "the event emitted by Prefect's client was not stored"
echo "ok: an event emitted by Prefect's client over /api/events/in is stored"
for _ in $(seq 1 50); do
    grep -q "$id" "$work/stream.txt" && grep -q '"prefect.automation.triggered"' "$work/stream.txt" && break
    sleep 0.2
done
kill $stream 2>/dev/null || true
grep -q "$id" "$work/stream.txt" || fail "prefect event stream did not receive the event: $(tail -3 "$work/stream.txt")"
echo "ok: prefect event stream receives it over /api/events/out"
grep -q '"prefect.automation.triggered"' "$work/stream.txt" || fail "prefect event stream did not receive the automation's triggered event"
grep -q 'ingest objects landing in s3://acme-lake/incoming/' "$work/stream.txt" || fail "the triggered event does not name the automation"
echo "ok: the firing's prefect.automation.triggered event reaches prefect event stream"

# A live-feed subscriber asking for backfill receives every stored event of the last 15 minutes that its filter
# matches, more than one page of Prefect's 250.
"$venv/bin/python" - "$port" <<'PY' || fail "the backfill of /api/events/out is incomplete"
import asyncio, datetime, json, sys, urllib.request, uuid
import websockets

port = sys.argv[1]
tag = uuid.uuid4().hex[:8]
now = datetime.datetime.now(datetime.timezone.utc)
for batch in range(6):
    events = [{"id": str(uuid.uuid4()), "occurred": (now - datetime.timedelta(seconds=600 - batch * 100 - n)).isoformat(),
               "event": f"backfill.check.{tag}", "resource": {"prefect.resource.id": f"backfill.{n}"}} for n in range(100)]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/events", data=json.dumps(events).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    assert urllib.request.urlopen(request).status == 204

async def main():
    async with websockets.connect(f"ws://127.0.0.1:{port}/api/events/out", subprotocols=["prefect"]) as socket:
        await socket.send(json.dumps({"type": "auth", "token": None}))
        assert json.loads(await socket.recv())["type"] == "auth_success"
        await socket.send(json.dumps({"type": "filter", "backfill": True,
                                      "filter": {"event": {"prefix": [f"backfill.check.{tag}"]}}}))
        seen = set()
        while len(seen) < 600:
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            seen.add(message["event"]["id"])
        return len(seen)

received = asyncio.run(main())
assert received == 600, received
PY
echo "ok: /api/events/out backfills all 600 events"

# A client that sends faster than the server commits is held back by the socket, not dropped: 10,000 events written
# to one /api/events/in socket as fast as the client can, then every one of them stored.
"$venv/bin/python" - "$port" <<'PY' || fail "events sent quickly over /api/events/in were lost"
import asyncio, datetime, json, sys, time, urllib.request, uuid
import websockets

port = sys.argv[1]
tag = uuid.uuid4().hex[:8]
count = 10_000
occurred = datetime.datetime.now(datetime.timezone.utc).isoformat()

async def main():
    async with websockets.connect(f"ws://127.0.0.1:{port}/api/events/in", subprotocols=["prefect"]) as socket:
        await socket.send(json.dumps({"type": "auth", "token": None}))
        assert json.loads(await socket.recv())["type"] == "auth_success"
        for n in range(count):
            await socket.send(json.dumps({"id": str(uuid.uuid4()), "occurred": occurred, "event": f"flood.check.{tag}",
                                          "resource": {"prefect.resource.id": f"flood.{n}"}}))
    # A client that sends its events right behind the auth message, without waiting for the answer.
    async with websockets.connect(f"ws://127.0.0.1:{port}/api/events/in", subprotocols=["prefect"]) as socket:
        await socket.send(json.dumps({"type": "auth", "token": None}))
        for n in range(100):
            await socket.send(json.dumps({"id": str(uuid.uuid4()), "occurred": occurred, "event": f"flood.eager.{tag}",
                                          "resource": {"prefect.resource.id": f"eager.{n}"}}))
        assert json.loads(await socket.recv())["type"] == "auth_success"

def stored(name="check"):
    body = json.dumps({"filter": {"event": {"name": [f"flood.{name}.{tag}"]}}, "limit": 0}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/events/filter", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    return json.load(urllib.request.urlopen(request))["total"]

started = time.time()
asyncio.run(main())
deadline = time.time() + 60
total = stored()
while total < count and time.time() < deadline:
    time.sleep(0.05)
    total = stored()
assert total == count, f"{total} of {count} stored"
print(f"   ({count:,} events stored {time.time() - started:.2f} s after the first was sent)")
assert stored("eager") == 100, f"{stored('eager')} of 100 events sent right behind the auth message stored"
PY
echo "ok: 10,000 events sent at full speed over /api/events/in are all stored, and events sent right behind the auth message too"
