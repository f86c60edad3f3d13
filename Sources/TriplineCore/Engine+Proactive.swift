internal import Foundation

extension Engine {
    /// Moves the engine's clock to `now`, running every proactive evaluation and every release of a long-parked
    /// event that falls due up to and including `now`, each at its own time, in time order.
    ///
    /// Proactive triggers are evaluated when Prefect's scheduler would run them with zero polling granularity: first
    /// at the first time the engine is advanced to, then at `min(as_of + within, nearest bucket end after as_of)`.
    /// - Returns: The firings, in order.
    public mutating func advance(to now: Instant) -> [Firing] {
        for trigger in proactiveTriggers where nextProactiveRun[trigger] == nil {
            nextProactiveRun[trigger] = now
        }
        while true {
            var dueTime: Instant?
            for trigger in proactiveTriggers {
                let next = nextProactiveRun[trigger]!
                if next <= now, dueTime.map({ next < $0 }) ?? true { dueTime = next }
            }
            var releaseTime: Instant?
            for entry in waitlist.values {
                let release = entry.received + configuration.precedingEventLookback
                if release <= now, releaseTime.map({ release < $0 }) ?? true { releaseTime = release }
            }
            if let release = releaseTime, dueTime.map({ release < $0 }) ?? true {
                releaseLostFollowers(at: release)
                continue
            }
            guard let time = dueTime else { break }
            if clock.map({ time > $0 }) ?? true { clock = time }
            for trigger in proactiveTriggers where nextProactiveRun[trigger] == time {
                nextProactiveRun[trigger] = proactiveEvaluation(trigger, asOf: time)
            }
        }
        if clock.map({ now > $0 }) ?? true { clock = now }
        return takeFirings()
    }

    /// Prefect's `proactive_evaluation` for one trigger, with Tripline's D2–D4.
    /// - Returns: When the trigger should be evaluated next.
    mutating func proactiveEvaluation(_ position: Int, asOf: Instant) -> Instant {
        let compiled = eventTriggers[position]
        let trigger = compiled.trigger
        var runAgain = asOf + trigger.within
        if trigger.forEach.isEmpty, trigger.after.isEmpty {
            // D2 tiles from here; D4: a trigger with `after` waits for its `after` event instead.
            _ = ensureBucket(compiled, key: [], start: asOf, end: asOf + trigger.within, lastEvent: nil, initialCount: 0)
        }
        if !compiled.tiles {
            // Prefect deletes windows that already reached the threshold (they can no longer fire).
            for bucket in store.buckets(trigger: trigger.id) where bucket.count >= trigger.threshold {
                store.remove(trigger: trigger.id, key: bucket.key)
            }
        }
        for bucket in store.buckets(trigger: trigger.id) {
            if let next = evaluate(compiled, bucket: bucket, now: asOf, triggeringEvent: nil), asOf < next.end, next.end < runAgain {
                runAgain = next.end
            }
        }
        return runAgain
    }

    /// Evaluates, in the order they occurred, the parked events that have waited the full lookback for their leader.
    mutating func releaseLostFollowers(at time: Instant) {
        if clock.map({ time > $0 }) ?? true { clock = time }
        let lost = waitlist.filter { $0.value.received + configuration.precedingEventLookback <= time }
        var events: [Event] = []
        for (id, entry) in lost {
            waitlist[id] = nil
            if let event = parked[entry.leader]?.removeValue(forKey: id) { events.append(event) }
            if parked[entry.leader]?.isEmpty == true { parked[entry.leader] = nil }
        }
        for event in events.sorted(by: { ($0.occurred, $0.id.uuidString) < ($1.occurred, $1.id.uuidString) }) {
            guard !seen.contains(event.id) else { continue }
            note(event, nil, "evaluated without its leader \(event.follows?.uuidString.lowercased() ?? ""), which did not arrive within the lookback")
            evaluateReactively(event)
            markSeen(event)
            if let followers = parked.removeValue(forKey: event.id) {
                for follower in followers.values.sorted(by: { ($0.occurred, $0.id.uuidString) < ($1.occurred, $1.id.uuidString) }) {
                    waitlist[follower.id] = nil
                    processConfirmingLeader(follower, now: follower.received ?? follower.occurred, depth: 1)
                }
            }
        }
    }
}
