internal import Foundation

extension Engine {
    /// Moves the engine's clock to `now`, running every proactive evaluation and every release of a long-parked
    /// event that falls due up to and including `now`, each at its own time, in time order.
    ///
    /// Proactive triggers are evaluated when Prefect's scheduler would run them with zero polling granularity: first
    /// at the first time the engine is advanced to, then at `min(as_of + within, nearest bucket end after as_of)`.
    /// - Returns: The firings, in order.
    public mutating func advance(to now: Instant) -> [Firing] {
        if !proactiveScheduled {
            proactiveScheduled = true
            for trigger in proactiveTriggers {
                nextProactiveRun[trigger] = now
                proactiveQueue.push(now, trigger)
            }
        }
        while true {
            // Discard entries superseded by a later reschedule.
            while let top = proactiveQueue.first, nextProactiveRun[top.id] != top.time { proactiveQueue.pop() }
            while let top = releaseQueue.first, waitlist[top.event]?.received != top.time - configuration.precedingEventLookback {
                releaseQueue.removeFirst()
            }
            let due = proactiveQueue.first.flatMap { $0.time <= now ? $0 : nil }
            let release = releaseQueue.first.flatMap { $0.time <= now ? $0.time : nil }
            if let release, due.map({ release < $0.time }) ?? true {
                releaseLostFollowers(at: release)
                continue
            }
            guard let due else { break }
            proactiveQueue.pop()
            let asOf = configuration.evaluateOverdueRunsAtAdvanceTime ? now : due.time
            if clock.map({ asOf > $0 }) ?? true { clock = asOf }
            let next = proactiveEvaluation(due.id, asOf: asOf)
            nextProactiveRun[due.id] = next
            proactiveQueue.push(next, due.id)
        }
        if clock.map({ now > $0 }) ?? true { clock = now }
        return takeFirings()
    }

    /// Prefect's `proactive_evaluation` for one trigger, with Tripline's D2–D4.
    /// - Returns: When the trigger should be evaluated next.
    mutating func proactiveEvaluation(_ position: Int, asOf: Instant) -> Instant {
        let compiled = eventTriggers[position]
        let trigger = compiled.trigger
        triggerEvaluations &+= 1
        var runAgain = asOf + trigger.within
        if trigger.forEach.isEmpty, trigger.after.isEmpty {
            // D2 tiles from here; D4: a trigger with `after` waits for its `after` event instead.
            _ = ensureBucket(compiled, key: [], start: asOf, end: asOf + trigger.within, lastEvent: nil, initialCount: 0)
        }
        if !compiled.tiles {
            // Prefect deletes windows that already reached the threshold (they can no longer fire).
            let full = trigger.threshold > 0
                ? store.buckets(trigger: trigger.id, countedAtLeast: trigger.threshold)
                : store.buckets(trigger: trigger.id).filter { $0.count >= trigger.threshold }
            for bucket in full {
                store.remove(trigger: trigger.id, key: bucket.key)
            }
        }
        // Prefect evaluates every bucket of the trigger here; only those whose window ended can change (a proactive
        // window still open neither fires nor moves), so only those are visited, in the same order.
        for bucket in store.takeEnded(trigger: trigger.id, by: asOf) {
            _ = evaluate(compiled, bucket: bucket, now: asOf, triggeringEvent: nil)
        }
        if let end = store.earliestEnd(trigger: trigger.id, after: asOf), end < runAgain { runAgain = end }
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
            auxiliaryStateVersion &+= 1
            if parked[entry.leader]?.isEmpty == true { parked[entry.leader] = nil }
        }
        for event in events.sorted(by: { ($0.occurred, $0.id.uuidString) < ($1.occurred, $1.id.uuidString) }) {
            guard !seen.contains(event.id) else { continue }
            note(event, nil, "evaluated without its leader \(event.follows?.lowercasedText ?? ""), which did not arrive within the lookback")
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
