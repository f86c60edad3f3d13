#!/usr/bin/env python3
"""Three `tripline serve` processes on one PostgreSQL database, under load, with the leader killed (-9) midway.

Checks afterwards, in the database and at an idempotent webhook sink:
  - every acknowledged event is stored exactly once;
  - every threshold firing happened exactly once (the expected number, no duplicate bucket);
  - every action ran, once per idempotency key at the sink;
  - proactive firings kept happening after the leader died (the next leader took the deadlines over).

Usage: scripts/cluster-test.py --binary .build/debug/tripline [--database-url postgres://...] [--events 50000]
Without --database-url it starts a throwaway PostgreSQL (initdb + pg_ctl; as the postgres user when run as root).

With --bench (use a release build) it measures instead, --runs times each: one process on SQLite, then one, two and
three processes on PostgreSQL, each loaded with --events events by eight clients in batches of --batch; it reports
ingest (acknowledged events/s), evaluation (events/s until the last one was evaluated and its firing recorded) and
the time until the last of the firings' actions was delivered, as medians.
"""

import argparse
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

EVENTS_PER_RESOURCE = 25  # each resource (a threshold bucket) gets 25 events: it fires once (later ones fall in its cooldown)
THRESHOLD = 25            # the threshold automation fires on a resource's 25th event within the hour
HEARTBEATS = 5            # resources that send heartbeats until the kill, then fall silent
PROACTIVE_WITHIN = 10     # seconds without a heartbeat before the proactive automation fires (the least Tripline accepts)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message):
    print(f"[cluster-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_postgres(folder):
    bins = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(p) for p in v.split(".") if p.isdigit()])
    pgbin = f"/usr/lib/postgresql/{bins[-1]}/bin"
    data = os.path.join(folder, "pg")
    os.makedirs(data)
    prefix = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(data, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(prefix + [f"{pgbin}/initdb", "-D", f"{data}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    subprocess.run(prefix + [f"{pgbin}/pg_ctl", "-D", f"{data}/data", "-l", f"{data}/log", "-w", "-o",
                             f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    stop = prefix + [f"{pgbin}/pg_ctl", "-D", f"{data}/data", "-m", "immediate", "stop"]
    restart = prefix + [f"{pgbin}/pg_ctl", "-D", f"{data}/data", "-l", f"{data}/log", "-w", "-m", "fast", "restart"]
    return f"postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable", stop, restart


def psql_binary():
    """PostgreSQL's own psql, not Debian's Perl wrapper in front of it (which costs more CPU than the query)."""
    candidates = sorted((v for v in os.listdir("/usr/lib/postgresql") if os.path.exists(f"/usr/lib/postgresql/{v}/bin/psql")),
                        key=lambda v: [int(p) for p in v.split(".") if p.isdigit()]) if os.path.isdir("/usr/lib/postgresql") else []
    return f"/usr/lib/postgresql/{candidates[-1]}/bin/psql" if candidates else "psql"


PSQL = psql_binary()


def psql(url, sql):
    out = subprocess.run([PSQL, url.split("?")[0], "-Atc", sql], check=True, capture_output=True, text=True).stdout
    return out.strip()


class Sink(http.server.BaseHTTPRequestHandler):
    """An idempotent target: remembers every Idempotency-Key it was sent and how often."""
    keys = {}
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        key = self.headers.get("Idempotency-Key", "")
        with Sink.lock:
            Sink.keys[key] = Sink.keys.get(key, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def write_rules(folder, sink_url):
    os.makedirs(f"{folder}/rules/destinations")
    os.makedirs(f"{folder}/rules/automations")
    with open(f"{folder}/rules/destinations/sink.yaml", "w") as f:
        f.write(f"destinations:\n  sink:\n    type: webhook\n    url: env:CLUSTER_SINK_URL\n    allow_private_network: true\n")
    with open(f"{folder}/rules/automations/threshold.yaml", "w") as f:
        f.write(f"""name: load threshold
trigger:
  type: event
  posture: Reactive
  expect: [cluster.load]
  for_each: [prefect.resource.id]
  threshold: {THRESHOLD}
  within: 3600
actions:
  - type: call-webhook
    destination: sink
    payload: "{{{{ event.resource.id }}}}"
""")
    with open(f"{folder}/rules/automations/heartbeat.yaml", "w") as f:
        f.write(f"""name: heartbeat lost
trigger:
  type: event
  posture: Proactive
  after: [cluster.heartbeat]
  expect: [cluster.heartbeat]
  for_each: [prefect.resource.id]
  threshold: 1
  within: {PROACTIVE_WITHIN}
actions:
  - type: call-webhook
    destination: sink
    payload: lost
""")


def post(port, events, timeout=30):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/events", data=json.dumps(events).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def start_servers(binary, folder, ports, database_args, env):
    """Starts one `tripline serve` per port, each once the previous one is ready; returns the processes."""
    processes = []
    for index, port in enumerate(ports):
        logfile = open(f"{folder}/serve-{index}.log", "a")
        processes.append(subprocess.Popen([binary, "serve", "--port", str(port), "--rules", f"{folder}/rules"] + database_args,
                                          env=env, stdout=logfile, stderr=subprocess.STDOUT))
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except Exception:
                time.sleep(0.1)
        else:
            for process in processes:
                process.kill()
            raise SystemExit(f"process {index} did not become ready; see {folder}/serve-{index}.log")
    return processes


def stop_servers(processes):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def bench(args):
    folder = tempfile.mkdtemp(prefix="tripline-cluster-bench-")
    stop_postgres = None
    try:
        base_url = args.database_url
        if base_url is None:
            base_url, stop_postgres, _ = start_postgres(folder)
        sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        write_rules(folder, "")
        env = dict(os.environ, CLUSTER_SINK_URL=f"http://127.0.0.1:{sink.server_port}/hook", TRIPLINE_LOG_LEVEL="warning")
        resources = max(1, args.events // EVENTS_PER_RESOURCE)
        expected_firings = resources if args.events // resources >= THRESHOLD else 0
        results = {}
        for name, count in [("sqlite", 1), ("postgres", 1), ("postgres", 2), ("postgres", 3)]:
            for run in range(args.runs):
                with Sink.lock:
                    Sink.keys.clear()
                ports = [free_port() for _ in range(count)]
                if name == "sqlite":
                    database_args = ["--database", f"{folder}/bench-{run}-{uuid.uuid4().hex[:6]}.sqlite"]
                    url = None
                else:
                    database = f"bench_{uuid.uuid4().hex[:10]}"
                    psql(base_url, f"CREATE DATABASE {database}")
                    url = base_url.replace("/postgres?", f"/{database}?")
                    database_args = ["--database-url", url]
                processes = start_servers(args.binary, folder, ports, database_args, env)
                base = time.time()
                events = [{"id": str(uuid.uuid4()), "event": "cluster.load",
                           "occurred": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base)) + f".{n % 1000:03d}Z",
                           "resource": {"prefect.resource.id": f"cluster.resource.{n % resources}"}} for n in range(args.events)]
                batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]

                def client(mine, offset):
                    for i, batch in enumerate(mine):
                        post(ports[(offset + i) % len(ports)], batch)

                started = time.time()
                threads = [threading.Thread(target=client, args=(batches[i::8], i)) for i in range(8)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                acknowledged = time.time() - started
                while True:
                    if url is None:
                        evaluated = acknowledged
                        break
                    if psql(url, "SELECT count(*) FROM evaluation_queue") == "0" and \
                            int(psql(url, "SELECT count(*) FROM firings")) >= expected_firings:
                        evaluated = time.time() - started
                        break
                    # Polled ten times a second: often enough for the figure, rarely enough not to compete for the CPU.
                    time.sleep(0.1)
                deadline = time.time() + 120
                while time.time() < deadline:
                    with Sink.lock:
                        delivered = len(Sink.keys)
                    if delivered >= expected_firings:
                        break
                    time.sleep(0.05)
                actions = time.time() - started
                stop_servers(processes)
                key = f"{name} x{count}"
                results.setdefault(key, []).append((args.events / acknowledged, args.events / evaluated, delivered, actions))
                log(f"{key} run {run + 1}: ingest {args.events / acknowledged:,.0f} events/s, evaluated {args.events / evaluated:,.0f} events/s, "
                    f"{delivered}/{expected_firings} actions delivered after {actions:.1f} s")
        print()
        print(f"| setup | ingest (events/s) | evaluated (events/s) | all {expected_firings} actions delivered after (s) |")
        print(f"|---|---|---|---|")
        for key, rows in results.items():
            median = lambda values: sorted(values)[len(values) // 2]
            print(f"| {key} | {median([r[0] for r in rows]):,.0f} | {median([r[1] for r in rows]):,.0f} | {median([r[3] for r in rows]):.1f} |")
        return 0
    finally:
        if stop_postgres:
            subprocess.run(stop_postgres, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/debug/tripline")
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.bench:
        return bench(args)
    resources = max(1, args.events // EVENTS_PER_RESOURCE)
    folder = tempfile.mkdtemp(prefix="tripline-cluster-")
    stop_postgres = None
    restart_postgres = None
    processes = {}
    try:
        url = args.database_url
        if url is None:
            url, stop_postgres, restart_postgres = start_postgres(folder)
        database = f"cluster_{uuid.uuid4().hex[:10]}"
        psql(url, f"CREATE DATABASE {database}")
        url = url.replace("/postgres?", f"/{database}?")
        log(f"database ready")

        sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        write_rules(folder, f"http://127.0.0.1:{sink.server_port}/hook")
        env = dict(os.environ, CLUSTER_SINK_URL=f"http://127.0.0.1:{sink.server_port}/hook", TRIPLINE_LOG_LEVEL="info")
        ports = [free_port() for _ in range(3)]

        # One at a time (start_servers waits for each to be ready), so that the first one applies the migrations and leads.
        processes.update(enumerate(start_servers(args.binary, folder, ports, ["--database-url", url], env)))
        log(f"3 processes ready on ports {ports}")

        def leader_index():
            for index in processes:
                with open(f"{folder}/serve-{index}.log") as f:
                    if "now leads the evaluation" in f.read():
                        return index
            return None

        base = time.time()
        events = []
        for n in range(args.events):
            resource = n % resources
            events.append({"id": str(uuid.UUID(int=n + 1)), "event": "cluster.load", "occurred": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base)) + f".{n % 1000:03d}Z",
                           "resource": {"prefect.resource.id": f"cluster.resource.{resource}"}, "payload": {"n": n}})
        batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]
        acknowledged = set()
        alive = [0, 1, 2]
        killed = {"index": None, "at": None}
        lock = threading.Lock()

        heartbeat_stop = threading.Event()

        def heartbeats():
            count = 0
            while not heartbeat_stop.is_set():
                batch = [{"id": str(uuid.uuid4()), "event": "cluster.heartbeat",
                          "occurred": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z",
                          "resource": {"prefect.resource.id": f"cluster.heart.{h}"}} for h in range(HEARTBEATS)]
                with lock:
                    targets = list(alive)
                try:
                    post(ports[random.choice(targets)], batch, timeout=5)
                    count += 1
                except Exception:
                    pass
                heartbeat_stop.wait(0.5)

        threading.Thread(target=heartbeats, daemon=True).start()
        time.sleep(1)

        def worker(worker_batches):
            for batch in worker_batches:
                for attempt in range(50):
                    with lock:
                        targets = list(alive)
                    port = ports[random.choice(targets)]
                    try:
                        if post(port, batch) in (200, 201, 204):
                            with lock:
                                acknowledged.update(e["id"] for e in batch)
                            break
                    except Exception:
                        time.sleep(0.2)
                else:
                    raise SystemExit("a batch was refused 50 times")

        started = time.time()
        threads = [threading.Thread(target=worker, args=(batches[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        # Kill the leader once about half of the events are in.
        while len(acknowledged) < args.events // 2:
            time.sleep(0.05)
        victim = leader_index()
        if victim is None:
            victim = 0
        with lock:
            alive.remove(victim)
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait()
        killed["index"], killed["at"] = victim, time.time()
        log(f"killed process {victim} (the leader) with {len(acknowledged)} events acknowledged")
        heartbeat_stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.time() - started
        log(f"{len(acknowledged)} events acknowledged in {elapsed:.1f} s ({len(acknowledged) / elapsed:.0f}/s over the cluster)")

        def quiesce(proactive_expected):
            """Waits until every queued event was evaluated, every action ran and the silent heartbeats fired."""
            deadline = time.time() + 300
            while time.time() < deadline:
                try:
                    queued = int(psql(url, "SELECT count(*) FROM evaluation_queue"))
                    pending = int(psql(url, "SELECT count(*) FROM outbox WHERE status = 'pending'"))
                    proactive = int(psql(url, "SELECT count(*) FROM firings WHERE automation_name = 'heartbeat lost'"))
                except subprocess.CalledProcessError:
                    time.sleep(1)
                    continue
                if queued == 0 and pending == 0 and proactive >= proactive_expected and time.time() - killed["at"] > PROACTIVE_WITHIN + 2:
                    return
                time.sleep(1)

        quiesce(HEARTBEATS)
        extra_resources = 0
        if restart_postgres:
            # PostgreSQL restarts under the survivors: their sessions reconnect, the leadership is taken again, and
            # events posted afterwards are stored and fire once like the others.
            subprocess.run(restart_postgres, check=True, stdout=subprocess.DEVNULL)
            log("restarted PostgreSQL")
            extra_resources = 100
            extra = []
            for n in range(extra_resources * EVENTS_PER_RESOURCE):
                extra.append({"id": str(uuid.UUID(int=10_000_000 + n)), "event": "cluster.load",
                              "occurred": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base)) + ".500Z",
                              "resource": {"prefect.resource.id": f"cluster.after-restart.{n % extra_resources}"}})
            worker([extra[i:i + args.batch] for i in range(0, len(extra), args.batch)])
            log(f"{len(extra)} more events acknowledged after the restart")
            quiesce(HEARTBEATS)
        new_leader = [i for i in alive if "now leads the evaluation" in open(f"{folder}/serve-{i}.log").read()]

        failures = []
        stored = int(psql(url, "SELECT count(*) FROM events WHERE event = 'cluster.load'"))
        distinct = int(psql(url, "SELECT count(DISTINCT id) FROM events WHERE event = 'cluster.load'"))
        stored_ids = set(psql(url, "SELECT id FROM events WHERE event = 'cluster.load'").split())
        lost = acknowledged - stored_ids
        if lost:
            failures.append(f"{len(lost)} acknowledged events are not stored, e.g. {sorted(lost)[:3]}")
        if distinct != stored:
            failures.append(f"{stored} events stored but only {distinct} distinct ids")
        missing = int(psql(url, "SELECT count(*) FROM evaluation_queue"))
        if missing:
            failures.append(f"{missing} events still wait for evaluation")
        expected_firings = (resources if args.events // resources >= THRESHOLD else 0) + extra_resources
        firings = int(psql(url, "SELECT count(*) FROM firings WHERE automation_name = 'load threshold'"))
        if firings != expected_firings:
            failures.append(f"threshold firings: expected exactly {expected_firings}, found {firings}")
        per_bucket = psql(url, "SELECT max(c) FROM (SELECT labels, count(*) c FROM firings WHERE automation_name = 'load threshold' GROUP BY labels) x")
        outbox = psql(url, "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
        actions = int(psql(url, "SELECT count(*) FROM outbox"))
        delivered = int(psql(url, "SELECT count(*) FROM outbox WHERE status = 'delivered'"))
        if delivered != actions:
            failures.append(f"{actions} actions, {delivered} delivered ({outbox})")
        with Sink.lock:
            keys = dict(Sink.keys)
        repeated = sum(1 for c in keys.values() if c > 1)
        if len(keys) != actions:
            failures.append(f"the sink saw {len(keys)} idempotency keys for {actions} actions")
        proactive_after = int(psql(url, f"SELECT count(*) FROM firings WHERE automation_name = 'heartbeat lost' AND at > {int(killed['at'] * 1e6)}"))
        proactive_all = int(psql(url, "SELECT count(*) FROM firings WHERE automation_name = 'heartbeat lost'"))
        proactive_keys = int(psql(url, "SELECT count(DISTINCT labels) FROM firings WHERE automation_name = 'heartbeat lost'"))
        if not (proactive_after == proactive_all == proactive_keys == HEARTBEATS):
            failures.append(f"proactive firings: {proactive_all} in all, {proactive_after} after the leader died, for {proactive_keys} hearts; "
                            f"expected exactly one for each of the {HEARTBEATS} silent hearts, after the kill")
        log(f"stored {stored} load events ({distinct} distinct), threshold firings {firings}/{expected_firings} (at most {per_bucket} per bucket label set), "
            f"actions {actions} ({outbox.replace(chr(10), ', ')}), sink keys {len(keys)} ({repeated} sent more than once), "
            f"proactive firings after the kill {proactive_after}, new leader {new_leader}")
        if failures:
            for failure in failures:
                log("FAIL: " + failure)
            for index in processes:
                log(f"--- serve-{index}.log (tail)")
                print(open(f"{folder}/serve-{index}.log").read()[-3000:])
            return 1
        log("PASS")
        return 0
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if stop_postgres:
            subprocess.run(stop_postgres, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.environ.get("CLUSTER_TEST_KEEP") != "1":
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
