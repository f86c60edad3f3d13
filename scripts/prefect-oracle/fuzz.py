#!/usr/bin/env python3
"""Random differential testing: Prefect 3.9.1's engine (oracle.py) vs `tripline replay`.

    venv/bin/python fuzz.py --n 300 --seed 1            # run, shrink and save mismatches
    venv/bin/python fuzz.py --recheck mismatches/*.json  # re-run saved cases on both sides

Generates cases only inside the subset where Tripline must equal Prefect (see README.md).
"""
import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import traceback
import uuid
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compare import same  # noqa: E402

TRIPLINE = os.environ.get("TRIPLINE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.build/debug/tripline"))
BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

NAMES = ["a.x", "a.y", "b.x", "b.y"]
NAME_PATTERNS = NAMES * 3 + ["a.*", "*.x", "*", "b.*"]
RIDS = ["r.1", "r.2", "s.1"]
RELATED_IDS = ["f.1", "f.2", "g.1"]
ROLES = ["flow", "tag"]


def ts(dt):
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        s += f".{dt.microsecond // 1000:03d}"
    return s + "Z"


def parse(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# ------------------------------------------------------------------ generation
def gen_match(r):
    c = r.random()
    if c < 0.45:
        return {}
    spec = {}
    if r.random() < 0.7:
        spec["prefect.resource.id"] = r.choice(
            ["r.*", "r.1", "!r.1", "[rs].1", "r.?", ["r.1", "s.*"], ["!r.1", "!s.1"], "*"]
        )
    if r.random() < 0.4:
        spec["env"] = r.choice(["prod", "!prod", ["prod", "dev"], "d*"])
    return spec


def gen_related_spec(r):
    spec = {}
    if r.random() < 0.8:
        spec["prefect.resource.role"] = r.choice(ROLES)
    if r.random() < 0.5:
        spec["prefect.resource.id"] = r.choice(["f.1", "f.*", "!f.1", ["f.2", "g.1"]])
    return spec


def gen_match_related(r):
    c = r.random()
    if c < 0.55:
        return {} if r.random() < 0.9 else []
    if c < 0.85:
        return gen_related_spec(r)
    return [gen_related_spec(r) for _ in range(r.randint(1, 2))]


def gen_for_each(r):
    c = r.random()
    if c < 0.4:
        return []
    opts = ["prefect.resource.id", "env", "related:flow:prefect.resource.id",
            "related:tag:prefect.resource.id", "related:flow:name"]
    k = 1 if r.random() < 0.8 else 2
    return sorted(set(r.sample(opts, k)))


def pick_names(r, lo, hi):
    return sorted(set(r.choice(NAME_PATTERNS) for _ in range(r.randint(lo, hi))))


def gen_reactive(r):
    expect = pick_names(r, 0, 2) if r.random() < 0.9 else []
    after = []
    if r.random() < 0.35:
        if expect and r.random() < 0.35:
            after = sorted(set(r.sample(expect, 1)))  # same event in both
        else:
            after = pick_names(r, 1, 2)
    within = r.choice([0, 0, 0, 5, 10, 30, 60, 120])
    threshold = r.choice([0, 1, 1, 1, 2, 3])
    if within == 0 and threshold > 1:
        threshold = 1
    return {
        "type": "event",
        "match": gen_match(r),
        "match_related": gen_match_related(r),
        "after": after,
        "expect": expect,
        "for_each": gen_for_each(r),
        "posture": "Reactive",
        "threshold": threshold,
        "within": within,
    }


def gen_proactive(r):
    # only the D2/D3/D4-free shape: `after` AND `for_each`
    if r.random() < 0.4:
        # heartbeat: after is also expected
        hb = r.choice(NAMES)
        after = [hb]
        expect = sorted(set([hb] + pick_names(r, 1, 2)))
    else:
        after = pick_names(r, 1, 2)
        expect = pick_names(r, 1, 2) if r.random() < 0.9 else []
    fe = gen_for_each(r) or ["prefect.resource.id"]
    return {
        "type": "event",
        "match": gen_match(r) if r.random() < 0.5 else {},
        "match_related": gen_match_related(r) if r.random() < 0.3 else {},
        "after": after,
        "expect": expect,
        "for_each": fe,
        "posture": "Proactive",
        "threshold": r.choice([1, 1, 2, 3]),
        "within": r.choice([10, 15, 30, 60]) if MODE != "hard" else r.choice([10, 15, 30, 60, 120, 300]),
    }


def gen_composite(r):
    n = r.randint(2, 3)
    children = [gen_reactive(r) for _ in range(n)]
    within = r.choice([None, None, 5, 10, 30, 60])
    if r.random() < 0.5:
        t = {"type": "sequence", "triggers": children}
    else:
        req = r.choice(["any", "all", r.randint(1, n)])
        t = {"type": "compound", "require": req, "triggers": children}
    if within is not None:
        t["within"] = within
    else:
        t["within"] = None
    return t


MODE = "mixed"


def gen_automations(r):
    out = []
    for i in range(r.randint(1, 3)):
        c = r.random()
        if MODE == "extra":
            c = r.random()
            c = c if c < 0.75 else 0.75 + 0.25 * r.random()
        if MODE in ("proactive",):
            c = 0.5 + 0.25 * r.random()
        elif MODE == "hard":
            c = r.random()
        elif MODE == "composite":
            c = 0.75 + 0.25 * r.random()
        elif MODE == "reactive":
            c = 0.5 * r.random()
        if c < 0.5:
            trig = gen_reactive(r)
        elif c < 0.75:
            trig = gen_proactive(r)
        else:
            trig = gen_composite(r)
        out.append({"name": f"A{i}", "enabled": True, "trigger": trig,
                    "actions": [{"type": "do-nothing"}]})
    return out


def gen_resource(r):
    res = {"prefect.resource.id": r.choice(RIDS)}
    if r.random() < 0.6:
        res["env"] = r.choice(["prod", "dev", "staging"])
    return res


def gen_related(r):
    rel = []
    for _ in range(r.choice([0, 0, 1, 1, 2])):
        d = {"prefect.resource.id": r.choice(RELATED_IDS),
             "prefect.resource.role": r.choice(ROLES)}
        if r.random() < 0.4:
            d["name"] = r.choice(["n1", "n2"])
        rel.append(d)
    return rel


def gen_events(r):
    n = r.randint(3, 12) if MODE != "hard" else r.randint(6, 20)
    # unique millisecond fractions so that no event can tie with a proactive
    # deadline (deadlines inherit the fraction of the event they derive from)
    fracs = r.sample(range(1, 999), n)
    fracs = [f for f in fracs if f != 500] + [777] * 0
    t = 0.0
    events = []
    for i in range(n):
        t += r.choice([0, 1, 2, 3, 5, 8, 12, 20, 40, 70])
        occ = BASE + timedelta(seconds=int(t), milliseconds=fracs[i % len(fracs)])
        if MODE == "hard" and events and r.random() < 0.15:
            occ = parse(events[-1]["occurred"])  # two events at the same instant
        events.append({
            "id": str(uuid.UUID(int=r.getrandbits(128), version=4)),
            "occurred": ts(occ),
            "event": r.choice(NAMES) if r.random() > 0.03 else "prefect.log.write",
            "resource": gen_resource(r),
            "related": gen_related(r),
            "payload": {},
        })
    # out-of-order arrival: move some events later in the arrival order (they
    # stay well within the 15-minute lookback)
    for _ in range(r.choice([0, 0, 1, 2] if MODE not in ("ooo", "hard") else [1, 2, 3, 4])):
        i = r.randrange(len(events))
        j = r.randrange(len(events))
        ev = events.pop(i)
        events.insert(max(i, j), ev)
    if MODE == "hard" and r.random() < 0.5:
        # a late event, occurred up to 10 minutes before the current clock
        last = max(parse(e["occurred"]) for e in events)
        k = r.randrange(len(events))
        late = copy.deepcopy(events[k])
        late["id"] = str(uuid.UUID(int=r.getrandbits(128), version=4))
        late["occurred"] = ts(last - timedelta(seconds=r.randint(1, 600), milliseconds=r.choice([1, 3, 7, 11])))
        events.append(late)
    # follows: point at an event that arrives later (so it is parked) or earlier
    ids_without_follows = set(e["id"] for e in events)
    for _ in range(r.choice([0, 0, 0, 1, 2] if MODE != "ooo" else [1, 2, 3])):
        i = r.randrange(len(events))
        cands = [e["id"] for e in events if e["id"] != events[i]["id"]
                 and e["id"] in ids_without_follows and "follows" not in e]
        if not cands or "follows" in events[i]:
            continue
        leader = r.choice(cands)
        events[i]["follows"] = leader
        ids_without_follows.discard(events[i]["id"])
    # duplicates: the same event delivered again later
    for _ in range(r.choice([0, 0, 1])):
        i = r.randrange(len(events))
        dup = copy.deepcopy(events[i])
        events.insert(r.randint(i + 1, len(events)), dup)
    return events


def _isoify(t, r):
    if isinstance(t.get("within"), (int, float)) and r.random() < 0.6:
        t["within"] = f"PT{int(t['within'])}S" if r.random() < 0.5 else float(t["within"])
    for c in t.get("triggers", []):
        _isoify(c, r)


def gen_case(r):
    autos = gen_automations(r)
    if MODE == "extra":
        for a in autos:
            t = a["trigger"]
            if t["type"] != "event" and r.random() < 0.3:
                t["within"] = 0
            if t["type"] != "event" and r.random() < 0.4:
                # nest: replace one child by a composite of reactive children
                t["triggers"][0] = gen_composite(r)
            if r.random() < 0.1:
                a["enabled"] = False
            _isoify(t, r)
    events = gen_events(r)
    last = max(parse(e["occurred"]) for e in events)
    until = last.replace(microsecond=500000) + timedelta(seconds=r.choice([5, 30, 90, 150, 240]))
    return {"automations": autos, "events": events, "until": ts(until)}


# ------------------------------------------------------------------ validity
def _walk_event_triggers(t, top=True):
    if t["type"] == "event":
        yield t, top
    else:
        for c in t["triggers"]:
            yield from _walk_event_triggers(c, False)


def _secs(w):
    if isinstance(w, str):
        return float(w[2:-1])
    return float(w)


def valid(case):
    """Constraints of the must-match subset (also used while shrinking)."""
    if not case["automations"] or not case["events"]:
        return False
    for a in case["automations"]:
        t = a["trigger"]
        if t["type"] != "event":
            n = len(t["triggers"])
            if n < 1:
                return False
            req = t.get("require")
            if isinstance(req, int) and not (1 <= req <= n):
                return False
        for et, top in _walk_event_triggers(t):
            for n in et["expect"] + et["after"]:
                if n.startswith("!"):
                    return False
            if et["posture"] == "Proactive":
                if not top or not et["after"] or not et["for_each"]:
                    return False
                if _secs(et["within"]) < 10:
                    return False
            else:
                if _secs(et["within"]) == 0 and et["threshold"] > 1:
                    return False
    ids = [e["id"] for e in case["events"]]
    followers = {e["id"] for e in case["events"] if "follows" in e}
    for e in case["events"]:
        if "follows" in e:
            if e["follows"] not in ids or e["follows"] in followers or e["follows"] == e["id"]:
                return False
    return True


# ------------------------------------------------------------------ running
_ORACLE = None


def oracle():
    global _ORACLE
    if _ORACLE is None:
        from oracle import Oracle
        _ORACLE = Oracle()
    return _ORACLE


def run_prefect(case):
    import oracle as om
    om.ERRORS.clear()
    res = oracle().run(case, "forward")
    if not om.INDETERMINATE:
        res2 = oracle().run(case, "reverse")
        if not same(res, res2):
            raise Indeterminate("result depends on the order Prefect evaluates one event's triggers in")
    if om.ERRORS:
        raise RuntimeError("prefect engine logged errors: " + "; ".join(om.ERRORS[:3]))
    if om.INDETERMINATE:
        raise Indeterminate(om.INDETERMINATE[0])
    return res


class Indeterminate(Exception):
    pass


def run_tripline(case):
    with tempfile.TemporaryDirectory(prefix="fz-") as d:
        a = os.path.join(d, "automations.json")
        e = os.path.join(d, "events.jsonl")
        with open(a, "w") as f:
            json.dump(case["automations"], f)
        with open(e, "w") as f:
            for ev in case["events"]:
                f.write(json.dumps(ev) + "\n")
        for attempt in range(30):
            if os.path.exists(TRIPLINE):
                break
            import time
            time.sleep(10)
        p = subprocess.run([TRIPLINE, "replay", "--automations", a, "--events", e,
                            "--until", case["until"]], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            return {"error": p.returncode, "stderr": p.stderr[-2000:]}
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def differs(case):
    exp = run_prefect(case)
    act = run_tripline(case)
    if isinstance(act, dict):
        return True, exp, act
    return (not same(exp, act)), exp, act


# ------------------------------------------------------------------ shrinking
def _event_trigger_paths(t, path=()):
    if t["type"] == "event":
        yield path
    else:
        for i, c in enumerate(t["triggers"]):
            yield from _event_trigger_paths(c, path + (i,))


def _get(t, path):
    for i in path:
        t = t["triggers"][i]
    return t


def candidates(case):
    # 1. drop automations
    for i in range(len(case["automations"])):
        c = copy.deepcopy(case)
        del c["automations"][i]
        yield c
    # 2. drop events (from the end first, then from the start)
    n = len(case["events"])
    for i in list(range(n - 1, -1, -1)):
        c = copy.deepcopy(case)
        gone = c["events"].pop(i)["id"]
        if gone in [e["id"] for e in c["events"]]:
            yield c  # a duplicate removed
            continue
        for e in c["events"]:
            if e.get("follows") == gone:
                del e["follows"]
        yield c
    # 3. simplify composite structure
    for ai, a in enumerate(case["automations"]):
        t = a["trigger"]
        if t["type"] != "event":
            for ci in range(len(t["triggers"])):
                c = copy.deepcopy(case)
                c["automations"][ai]["trigger"] = copy.deepcopy(t["triggers"][ci])
                yield c
            if len(t["triggers"]) > 2:
                for ci in range(len(t["triggers"])):
                    c = copy.deepcopy(case)
                    ct = c["automations"][ai]["trigger"]
                    del ct["triggers"][ci]
                    if isinstance(ct.get("require"), int):
                        ct["require"] = min(ct["require"], len(ct["triggers"]))
                    yield c
            if t.get("within") is not None:
                c = copy.deepcopy(case)
                c["automations"][ai]["trigger"]["within"] = None
                yield c
            if t["type"] == "compound" and t["require"] not in ("any", "all"):
                for req in ("any", "all"):
                    c = copy.deepcopy(case)
                    c["automations"][ai]["trigger"]["require"] = req
                    yield c
    # 4. simplify event triggers
    for ai, a in enumerate(case["automations"]):
        for path in _event_trigger_paths(a["trigger"]):
            et = _get(a["trigger"], path)

            def mod(f):
                c = copy.deepcopy(case)
                f(_get(c["automations"][ai]["trigger"], path))
                return c

            if et["match"]:
                yield mod(lambda x: x.__setitem__("match", {}))
                for k in list(et["match"]):
                    yield mod(lambda x, k=k: x["match"].pop(k))
            if et["match_related"]:
                yield mod(lambda x: x.__setitem__("match_related", {}))
                if isinstance(et["match_related"], list):
                    for k in range(len(et["match_related"])):
                        yield mod(lambda x, k=k: x["match_related"].pop(k))
                    yield mod(lambda x: x.__setitem__("match_related", x["match_related"][0]))
                else:
                    for k in list(et["match_related"]):
                        yield mod(lambda x, k=k: x["match_related"].pop(k))
            for k in range(len(et["for_each"])):
                yield mod(lambda x, k=k: x["for_each"].pop(k))
            for k in range(len(et["after"])):
                yield mod(lambda x, k=k: x["after"].pop(k))
            for k in range(len(et["expect"])):
                yield mod(lambda x, k=k: x["expect"].pop(k))
            if et["threshold"] > 1:
                yield mod(lambda x: x.__setitem__("threshold", x["threshold"] - 1))
            if et["posture"] == "Reactive" and _secs(et["within"]) > 0:
                yield mod(lambda x: x.__setitem__("within", 0))
            for w in (5, 10, 30, 60):
                if w < _secs(et["within"]) and not (et["posture"] == "Proactive" and w < 10):
                    yield mod(lambda x, w=w: x.__setitem__("within", w))
    # 5. simplify events
    for i, e in enumerate(case["events"]):
        def emod(f, i=i):
            c = copy.deepcopy(case)
            # apply to every copy (duplicates share the id)
            eid = c["events"][i]["id"]
            for ev in c["events"]:
                if ev["id"] == eid:
                    f(ev)
            return c
        if e["related"]:
            yield emod(lambda x: x.__setitem__("related", []))
            for k in range(len(e["related"])):
                yield emod(lambda x, k=k: x["related"].pop(k))
        for k in list(e["resource"]):
            if k != "prefect.resource.id":
                yield emod(lambda x, k=k: x["resource"].pop(k))
        if "follows" in e:
            yield emod(lambda x: x.pop("follows"))
    # 6. pull `until` in
    u = parse(case["until"])
    last = max(parse(e["occurred"]) for e in case["events"])
    for d in (0, 5, 15, 30, 60, 120):
        nu = last.replace(microsecond=500000) + timedelta(seconds=d)
        if nu <= last:
            continue
        if nu < u:
            c = copy.deepcopy(case)
            c["until"] = ts(nu)
            yield c


def shrink(case):
    cur = case
    progress = True
    while progress:
        progress = False
        for c in candidates(cur):
            if not valid(c):
                continue
            try:
                d, _, _ = differs(c)
            except Exception:
                continue
            if d:
                cur = c
                progress = True
                break
    return tidy(cur)


def tidy(case):
    """Renumber event ids to readable ones (only if the case still differs)."""
    c = copy.deepcopy(case)
    mapping = {}
    for e in c["events"]:
        if e["id"] not in mapping:
            mapping[e["id"]] = f"00000000-0000-4000-8000-{len(mapping) + 1:012d}"
    for e in c["events"]:
        e["id"] = mapping[e["id"]]
        if "follows" in e:
            e["follows"] = mapping[e["follows"]]
    try:
        if differs(c)[0]:
            return c
    except Exception:
        pass
    return case


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=os.path.join(HERE, "found"))
    p.add_argument("--no-shrink", action="store_true")
    p.add_argument("--recheck", nargs="*")
    p.add_argument("--mode", default="mixed", choices=["mixed", "proactive", "composite", "reactive", "ooo", "hard", "extra"])
    args = p.parse_args()
    global MODE
    MODE = args.mode

    if args.recheck:
        for fn in args.recheck:
            case = json.load(open(fn))
            exp = run_prefect(case)
            act = run_tripline(case)
            ok_exp = same(case["expected"], exp)
            ok_act = not isinstance(act, dict) and same(case["expected"], act)
            print(f"{os.path.basename(fn)}: prefect {'==' if ok_exp else '!='} expected; "
                  f"tripline {'==' if ok_act else '!='} expected")
        return

    os.makedirs(args.out, exist_ok=True)
    r = random.Random(args.seed)
    ran = matched = errors = indeterminate = 0
    for k in range(args.n):
        case = gen_case(r)
        if not valid(case):
            continue
        ran += 1
        try:
            d, exp, act = differs(case)
        except Indeterminate as exc:
            ran -= 1
            indeterminate += 1
            continue
        except Exception as exc:
            errors += 1
            print(f"case {k}: oracle error {exc!r}")
            traceback.print_exc()
            continue
        nfire = len(exp)
        fired_cases = globals().setdefault("_FIRED", [0, 0])
        fired_cases[0] += 1 if nfire else 0
        fired_cases[1] += nfire
        if not d:
            matched += 1
            continue
        print(f"case {k}: MISMATCH prefect={json.dumps(exp)} tripline={json.dumps(act)}", flush=True)
        raw = dict(case, expected=exp, tripline=act, seed=args.seed, index=k)
        with open(os.path.join(args.out, f"raw-{args.mode}-{args.seed}-{k:04d}.json"), "w") as f:
            json.dump(raw, f, indent=2)
        if not args.no_shrink:
            small = shrink(case)
            _, exp, act = differs(small)
            small = dict(small, expected=exp, tripline=act, seed=args.seed, index=k)
            with open(os.path.join(args.out, f"min-{args.mode}-{args.seed}-{k:04d}.json"), "w") as f:
                json.dump(small, f, indent=2)
            print(f"   shrunk to {len(small['automations'])} automations, {len(small['events'])} events: "
                  f"prefect={json.dumps(exp)} tripline={json.dumps(act)}", flush=True)
    fc = globals().get("_FIRED", [0, 0])
    print(f"cases with >=1 Prefect firing: {fc[0]}, total Prefect firings: {fc[1]}")
    print(f"discarded (Prefect result indeterminate: sequence tie or trigger-order dependent): {indeterminate}")
    print(f"seed {args.seed}: ran {ran}, matched {matched}, mismatched {ran - matched - errors}, oracle errors {errors}")


if __name__ == "__main__":
    main()
