#!/usr/bin/env python3
"""Differential oracle: runs Prefect 3.9.1's own server-side trigger engine
(prefect.server.events.triggers) on a replay case, under the clock model of
SEMANTICS.md §9, and prints the firings in the `tripline replay` format.

Usage (same CLI as tripline):
    venv/bin/python oracle.py replay --automations A.json --events E.jsonl --until TS
Library use:
    from oracle import Oracle; o = Oracle(); firings = o.run(case_dict)
"""
import asyncio
import copy
import json
import logging
import os
import sys
import tempfile
import uuid
from datetime import datetime, timezone

_TMP = tempfile.mkdtemp(prefix="prefect-oracle-")
os.environ.setdefault("PREFECT_HOME", _TMP)
os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{_TMP}/oracle.db"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pendulum  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import prefect  # noqa: E402
import prefect.types._datetime as pdt  # noqa: E402
from prefect.server.database import provide_database_interface  # noqa: E402
from prefect.server.events import triggers  # noqa: E402
from prefect.server.events.models import composite_trigger_child_firing as ctcf  # noqa: E402
from prefect.server.events.ordering import EventArrivedEarly, MaxDepthExceeded  # noqa: E402
from prefect.server.events.ordering import memory as ordering_memory  # noqa: E402
from prefect.server.events.schemas.automations import Automation, EventTrigger, Posture  # noqa: E402
from prefect.server.events.schemas.events import ReceivedEvent  # noqa: E402

assert prefect.__version__ == "3.9.1", prefect.__version__

for name in ("prefect", "prefect.server", "prefect.server.events"):
    logging.getLogger(name).setLevel(logging.ERROR)

# errors that Prefect's engine logs and swallows (e.g. in evaluate_proactive_triggers)
ERRORS = []


class _ErrorCollector(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.ERROR:
            ERRORS.append(record.getMessage() + (f" {record.exc_info[1]!r}" if record.exc_info else ""))


_collector = _ErrorCollector()
for _lg in (triggers.logger, logging.getLogger("prefect.server.events.triggers"),
            logging.getLogger("prefect.server.events.ordering.memory")):
    _lg.addHandler(_collector)

# ---------------------------------------------------------------- simulated clock
SIM_NOW = pendulum.datetime(2000, 1, 1, tz="UTC")


def _fake_now(tz="UTC"):
    return SIM_NOW


def _set_now(dt):
    global SIM_NOW
    SIM_NOW = pdt.create_datetime_instance(dt).in_timezone("UTC")


pdt.now = _fake_now
ctcf.now = _fake_now


async def _zero_offset() -> float:
    # proactive evaluations run with as_of == the simulated scheduler time (§9)
    return 0.0


triggers.get_events_clock_offset = _zero_offset

# reactive evaluation (also of parked followers released by their leader) runs
# with now() == the event's occurred
_orig_reactive = triggers.reactive_evaluation


async def _reactive_with_clock(event, depth: int = 0):
    saved = SIM_NOW
    _set_now(event.occurred)
    try:
        return await _orig_reactive(event, depth)
    finally:
        _set_now(saved)


triggers.reactive_evaluation = _reactive_with_clock

# ---------------------------------------------------------------- capture firings
FIRINGS = []


async def _capture_act(firing):
    ev = firing.triggering_event
    FIRINGS.append(
        {
            "automation": firing.trigger.automation.name,
            "state": "triggered",
            "triggering_event": str(ev.id) if ev is not None else None,
            "at": SIM_NOW.strftime("%Y-%m-%dT%H:%M:%S")
            + (f".{SIM_NOW.microsecond:06d}" if SIM_NOW.microsecond else "")
            + "Z",
        }
    )


triggers.act = _capture_act

# A sequence whose child firings share the same `triggered` time (one event fired
# several children) is ordered by Python's stable sort over the DB row order, which
# follows the random child-trigger UUIDs: Prefect's result is then not determined.
# Such evaluations are recorded so the fuzzer can discard the case.
from prefect.server.events.schemas.automations import SequenceTrigger  # noqa: E402

INDETERMINATE = []
_orig_seq_ready = SequenceTrigger.ready_to_fire


def _seq_ready(self, firings):
    times = [f.triggered for f in firings]
    if len(firings) == len(self.triggers) and len(set(times)) != len(times):
        INDETERMINATE.append(f"sequence tie at {min(times)}")
    return _orig_seq_ready(self, firings)


SequenceTrigger.ready_to_fire = _seq_ready


# Prefect evaluates the interested triggers of one event in `set` order over random
# trigger UUIDs.  When one event fires several children of the same composite
# trigger the outcome can depend on that order, so the oracle makes it explicit:
# "forward" = declaration order (automations in file order, child triggers
# depth-first), "reverse" = the opposite.  The fuzzer runs both and discards cases
# whose results differ (Prefect's own result is then not determined).
TRIGGER_POS = {}
ORDER = ["forward"]
_orig_find = triggers.find_interested_triggers


def _find_ordered(event):
    found = list(_orig_find(event))
    found.sort(key=lambda t: TRIGGER_POS.get(t.id, 0), reverse=(ORDER[0] == "reverse"))
    return found


triggers.find_interested_triggers = _find_ordered


def parse_ts(s):
    return pdt.create_datetime_instance(pendulum.parse(s)).in_timezone("UTC")


class Oracle:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.db = provide_database_interface()
        self.loop.run_until_complete(self.db.create_db())

    async def _clear(self):
        db = self.db
        async with db.session_context(begin_transaction=True) as session:
            for model in (
                db.CompositeTriggerChildFiring,
                db.AutomationHeldEvent,
                db.AutomationBucket,
                db.AutomationRelatedResource,
                db.AutomationEventFollower,
                db.Automation,
            ):
                await session.execute(sa.delete(model))
        await triggers.reset()
        ordering_memory.CausalOrdering.clear_all_scopes()
        FIRINGS.clear()
        INDETERMINATE.clear()

    async def _load(self, automations):
        db = self.db
        async with db.session_context(begin_transaction=True) as session:
            for a in automations:
                auto = Automation.model_validate({**copy.deepcopy(a), "id": str(uuid.uuid4())})
                session.add(db.Automation(**auto.model_dump()))
        await triggers.reconcile_automations(force=True)
        TRIGGER_POS.clear()
        by_name = {}
        for auto in triggers.automations_by_id.values():
            by_name.setdefault(auto.name, []).append(auto)
        pos = 0
        for a in automations:
            lst = by_name.get(a["name"]) or []
            if not lst:
                continue  # disabled
            auto = lst.pop(0)
            for t in auto.triggers_of_type(EventTrigger):
                TRIGGER_POS[t.id] = pos
                pos += 1

    def _proactive_triggers(self):
        return [t for t in triggers.triggers.values() if t.posture == Posture.Proactive]

    async def _advance(self, target):
        """Run proactive evaluations exactly when next_proactive_runs says, up to
        and including `target`."""
        while True:
            pts = self._proactive_triggers()
            if not pts:
                return
            nxt = min(triggers.next_proactive_runs.get(t.id, SIM_NOW) for t in pts)
            if nxt > target:
                return
            _set_now(max(nxt, SIM_NOW))
            before = dict(triggers.next_proactive_runs)
            await triggers.evaluate_proactive_triggers()
            if triggers.next_proactive_runs == before and nxt <= SIM_NOW and before:
                # safety: nothing advanced (should not happen)
                raise RuntimeError("proactive scheduler made no progress")

    async def _handle(self, event: ReceivedEvent):
        # mirror of triggers.consumer.message_handler
        if event.event == "prefect.log.write":
            return
        ordering = triggers.get_triggers_causal_ordering()
        if await ordering.event_has_been_seen(event.id):
            return
        try:
            await triggers.reactive_evaluation(event)
        except EventArrivedEarly:
            pass
        except MaxDepthExceeded:
            pass

    async def _run(self, case):
        await self._clear()
        await self._load(case["automations"])
        events = []
        for e in case["events"]:
            d = dict(e)
            d["received"] = d["occurred"]
            events.append(ReceivedEvent.model_validate(d))
        until = parse_ts(case["until"])
        clock = None
        for ev in events:
            occ = pdt.create_datetime_instance(ev.occurred).in_timezone("UTC")
            if clock is None:
                clock = occ
                _set_now(clock)
                # service start: every proactive trigger is evaluated once
                await triggers.evaluate_proactive_triggers()
            elif occ > clock:
                await self._advance(occ)
                clock = occ
            _set_now(clock)
            await self._handle(ev)
        if clock is None:
            clock = until
            _set_now(clock)
            await triggers.evaluate_proactive_triggers()
        if until > clock:
            await self._advance(until)
        return list(FIRINGS)

    def run(self, case, order="forward"):
        ORDER[0] = order
        return self.loop.run_until_complete(self._run(case))


def _load_automations_file(path):
    with open(path) as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        data = yaml.safe_load(text)
    return data


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("replay")
    r.add_argument("--automations", required=True)
    r.add_argument("--events", required=True)
    r.add_argument("--until", required=True)
    c = sub.add_parser("case")
    c.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    o = Oracle()
    if args.cmd == "replay":
        events = []
        with open(args.events) as f:
            for line in f:
                if line.strip():
                    events.append(json.loads(line))
        case = {
            "automations": _load_automations_file(args.automations),
            "events": events,
            "until": args.until,
        }
        for firing in o.run(case):
            print(json.dumps(firing))
    else:
        for fn in args.files:
            with open(fn) as f:
                case = json.load(f)
            print(fn)
            for firing in o.run(case):
                print("  ", json.dumps(firing))


if __name__ == "__main__":
    main()
