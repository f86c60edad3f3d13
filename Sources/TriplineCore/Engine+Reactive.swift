internal import Foundation

extension Engine {
    /// The name of Prefect's log events, which automations never see.
    static var logWriteEvent: String { "prefect.log.write" }

    /// Evaluates one event against every interested trigger (Prefect's `reactive_evaluation`, preceded by its
    /// consumer filters and causal ordering).
    ///
    /// - Parameters:
    ///   - event: The event.
    ///   - now: The time used to decide whether an event that `follows` an unseen leader has waited long enough
    ///     (against its `received`, which defaults to `occurred`). Defaults to the event's `occurred`. Reactive
    ///     evaluation itself always happens at the event's `occurred` (event time).
    /// - Returns: The firings, in order.
    public mutating func process(_ event: Event, now: Instant? = nil) -> [Firing] {
        if event.event == Self.logWriteEvent {
            note(event, nil, "ignored: \(Self.logWriteEvent) events never reach automations")
            return []
        }
        if seen.contains(event.id) {
            note(event, nil, "ignored: an event with id \(event.id.lowercasedText) was already processed (duplicate)")
            return []
        }
        if clock.map({ event.occurred > $0 }) ?? true { clock = event.occurred }
        processConfirmingLeader(event, now: now ?? event.occurred, depth: 0)
        return takeFirings()
    }

    /// Prefect's `preceding_event_confirmed`: park an event whose leader has not been processed yet, evaluate it
    /// otherwise, then evaluate the events that were waiting for it.
    mutating func processConfirmingLeader(_ event: Event, now: Instant, depth: Int) {
        if depth > configuration.maximumFollowerDepth {
            note(event, nil, "not evaluated: more than \(configuration.maximumFollowerDepth) events follow one another in a chain")
            return
        }
        if let leader = event.follows, leader != event.id, !seen.contains(leader) {
            let received = event.received ?? event.occurred
            if now - received < configuration.precedingEventLookback {
                parked[leader, default: [:]][event.id] = event
                waitlist[event.id] = (received, leader)
                auxiliaryStateVersion &+= 1
                insertRelease(received + configuration.precedingEventLookback, event.id)
                note(
                    event, nil,
                    "parked: it follows \(leader.lowercasedText), which has not been processed yet; it is evaluated right after that event, or at \(received + configuration.precedingEventLookback) at the latest")
                return
            }
        }
        evaluateReactively(event)
        markSeen(event)
        if let followers = parked.removeValue(forKey: event.id) {
            auxiliaryStateVersion &+= 1
            for follower in followers.values.sorted(by: { ($0.occurred, $0.id.uuidString) < ($1.occurred, $1.id.uuidString) }) {
                waitlist[follower.id] = nil
                note(follower, nil, "evaluated now that its leader \(event.id.lowercasedText) was processed")
                processConfirmingLeader(follower, now: follower.received ?? follower.occurred, depth: depth + 1)
            }
        }
        if let leader = event.follows, waitlist.removeValue(forKey: event.id) != nil {
            parked[leader]?[event.id] = nil
            if parked[leader]?.isEmpty == true { parked[leader] = nil }
        }
    }

    /// Keeps `releaseQueue` ordered by time.
    mutating func insertRelease(_ time: Instant, _ id: EventID) {
        var index = releaseQueue.count
        while index > 0, releaseQueue[index - 1].time > time { index -= 1 }
        releaseQueue.insert((time, id), at: index)
    }

    mutating func markSeen(_ event: Event) {
        seen.insert(event.id)
        guard let horizon = configuration.deduplicationHorizon else { return }
        seenOrder.push(event.occurred, SeenID(event.id))
        guard let clock else { return }
        // Forget every id whose event occurred before the horizon, whatever order the events arrived in (a recent
        // event must not hold back the forgetting of older ones behind it).
        let cutoff = clock - horizon
        while let first = seenOrder.first, first.time < cutoff {
            seenOrder.pop()
            seen.remove(first.id.id)
        }
    }

    /// The interested triggers for `event`, in declaration order.
    mutating func interestedTriggers(_ event: Event) -> [Int32] {
        candidateBuffer.removeAll(keepingCapacity: true)
        index.candidates(name: event.event, resource: event.resource, related: event.related, into: &candidateBuffer)
        if candidateBuffer.isEmpty { return [] }
        stamp &+= 1
        if stamp == 0 {
            for index in candidateStamp.indices { candidateStamp[index] = 0 }
            stamp = 1
        }
        var result: [Int32] = []
        for candidate in candidateBuffer where candidateStamp[Int(candidate)] != stamp {
            candidateStamp[Int(candidate)] = stamp
            let compiled = eventTriggers[Int(candidate)]
            if compiled.nameFilter.admits(event.event), compiled.coversResourcesAndPayload(event) { result.append(candidate) }
        }
        if result.count > 1 { result.sort() }
        return result
    }

    /// Prefect's `reactive_evaluation` for one event, over the interested triggers.
    mutating func evaluateReactively(_ event: Event) {
        let interested = interestedTriggers(event)
        if interested.isEmpty {
            note(event, nil, "no trigger is interested in this event")
            return
        }
        let now = event.occurred
        triggerEvaluations &+= interested.count
        for position in interested {
            let compiled = eventTriggers[Int(position)]
            let trigger = compiled.trigger
            let key = compiled.bucketingKey(event)
            let expected = compiled.expects(event.event)
            var bucket: Bucket?
            if !trigger.after.isEmpty, compiled.startsAfter(event.event) {
                bucket = ensureBucket(
                    compiled, key: key, start: event.occurred, end: event.occurred + trigger.within, lastEvent: event,
                    initialCount: expected ? -1 : 0)
                note(event, compiled.automation, "an `after` event: window [\(bucket!.start), \(bucket!.end)) is open")
            }
            if bucket == nil, trigger.after.isEmpty, expected {
                bucket = ensureBucket(
                    compiled, key: key, start: event.occurred - configuration.precedingEventLookback, end: event.occurred + trigger.within,
                    lastEvent: event, initialCount: 0)
            }
            guard expected else {
                if trigger.after.isEmpty || !compiled.startsAfter(event.event) {
                    note(event, compiled.automation, "not counted: the event name is not in expect")
                }
                continue
            }
            if bucket == nil {
                if compiled.holdsExpectEvents {
                    bucket = holdExpectEvent(compiled, key: key, event: event)
                } else {
                    bucket = store.bucket(trigger: trigger.id, key: key)
                }
                guard bucket != nil else {
                    note(
                        event, compiled.automation,
                        "not counted: no window is open for \(describe(key, of: compiled)); an `after` event (\(trigger.after.joined(separator: ", "))) must come first")
                    continue
                }
            }
            _ = evaluate(compiled, bucket: bucket!, now: now, triggeringEvent: event)
        }
    }

    func describe(_ key: BucketingKey, of compiled: CompiledEventTrigger) -> String {
        if key.isEmpty { return "this trigger" }
        return zip(compiled.trigger.forEach, key).map { "\($0)=\"\($1)\"" }.joined(separator: ", ")
    }

    // MARK: - Buckets

    /// Prefect's `ensure_bucket`: an existing bucket is returned unchanged; a new one counts the held events inside it.
    mutating func ensureBucket(
        _ compiled: CompiledEventTrigger, key: BucketingKey, start: Instant, end: Instant, lastEvent: Event?, initialCount: Int
    ) -> Bucket {
        if let existing = store.bucket(trigger: compiled.trigger.id, key: key) { return existing }
        var count = initialCount
        if compiled.holdsExpectEvents { count += heldEvents(compiled, key: key, from: start, to: end) }
        let bucket = Bucket(triggerID: compiled.trigger.id, key: key, start: start, end: end, count: count, lastEvent: lastEvent)
        store.save(bucket)
        scheduleWindowEnd(compiled, end)
        return bucket
    }

    /// With ``EngineConfiguration/evaluateAtEveryWindowEnd``, brings a proactive trigger's next evaluation forward
    /// to the end of a window that ends before it.
    mutating func scheduleWindowEnd(_ compiled: CompiledEventTrigger, _ end: Instant) {
        guard configuration.evaluateAtEveryWindowEnd, compiled.trigger.posture == .proactive, proactiveScheduled,
            let position = compiled.position, let next = nextProactiveRun[position], end < next
        else { return }
        nextProactiveRun[position] = end
        proactiveQueue.push(end, position)
        // Each reschedule leaves the trigger's previous entry behind; keep the queue near one entry per trigger so
        // that it neither grows with the event rate nor slows ``nextDeadline``.
        if proactiveQueue.count > 2 * proactiveTriggers.count + 16 {
            proactiveQueue.removeAll()
            for (trigger, time) in nextProactiveRun { proactiveQueue.push(time, trigger) }
        }
    }

    /// Prefect's `start_new_bucket`: replaces the key's bucket; counts held events inside the new window.
    mutating func startNewBucket(
        _ compiled: CompiledEventTrigger, key: BucketingKey, start: Instant, end: Instant, count: Int, lastEvent: (any BucketEventBox)?
    ) -> Bucket {
        var total = count
        if compiled.holdsExpectEvents { total += heldEvents(compiled, key: key, from: start, to: end) }
        let bucket = Bucket(triggerID: compiled.trigger.id, key: key, start: start, end: end, count: total, lastEventBox: lastEvent)
        store.save(bucket)
        scheduleWindowEnd(compiled, end)
        return bucket
    }

    /// Prefect's `evaluate`: counts the event into the bucket (or not), fires when due, and rolls the window over.
    /// - Returns: The key's bucket afterwards, if one remains.
    mutating func evaluate(_ compiled: CompiledEventTrigger, bucket initial: Bucket, now: Instant, triggeringEvent: Event?) -> Bucket? {
        let trigger = compiled.trigger
        var bucket = initial
        var count = triggeringEvent == nil ? 0 : 1
        if now < bucket.start {
            note(
                triggeringEvent, compiled.automation,
                "not counted: the event occurred at \(now), before the current window [\(bucket.start), \(bucket.end)) (a late event, or a reactive trigger cooling down after firing)")
            return bucket
        }
        let previousLastEvent = bucket.lastEventBox
        if count > 0, trigger.immediate || (bucket.start <= now && now < bucket.end) {
            bucket.count += count
            if let triggeringEvent { bucket.lastEvent = triggeringEvent }
            store.save(bucket)
            count = 0
            note(
                triggeringEvent, compiled.automation,
                "counted: \(bucket.count) of \(trigger.threshold) in window [\(bucket.start), \(bucket.end))\(describeKey(bucket.key, compiled))")
        }
        let ready = trigger.posture == .reactive || bucket.end <= now
        let meets = trigger.posture == .reactive ? bucket.count >= trigger.threshold : bucket.count < trigger.threshold
        if ready, meets {
            var labels: [String: String] = [:]
            for (label, value) in zip(trigger.forEach, bucket.key) { labels[label] = value }
            store.remove(trigger: trigger.id, key: bucket.key)
            fire(
                TriggerFiring(trigger: trigger.id, triggered: now, triggeringEvent: triggeringEvent ?? bucket.lastEvent, labels: labels),
                parent: compiled.parent, automation: compiled.automation, now: now)
            if compiled.tiles, !trigger.forEach.isEmpty {
                // D3: one alert per silence per key; the key is forgotten until its next event.
                return nil
            }
        } else if now < bucket.end {
            if let event = triggeringEvent, trigger.posture == .proactive, !meets, compiled.startsAfter(event.event), compiled.expects(event.event) {
                // Heartbeat: the event both satisfies the window and opens the next one at its own time.
                store.remove(trigger: trigger.id, key: bucket.key)
                var lastEvent: any BucketEventBox = DecodedEvent(event)
                if let previous = previousLastEvent, compiled.expects(previous.name), !compiled.startsAfter(previous.name),
                    previous.occurred >= event.occurred
                {
                    lastEvent = previous
                }
                let restarted = startNewBucket(
                    compiled, key: bucket.key, start: event.occurred, end: event.occurred + trigger.within, count: 0, lastEvent: lastEvent)
                note(event, compiled.automation, "window restarted by this event: [\(restarted.start), \(restarted.end))")
                return restarted
            }
            if !ready || !meets {
                if trigger.posture == .reactive {
                    note(triggeringEvent, compiled.automation, "waiting: \(bucket.count) of \(trigger.threshold) events until \(bucket.end)")
                }
            }
            return bucket
        }
        // The window is over (or fired): start the next one, unless an `after` event must open it.
        if !trigger.after.isEmpty {
            store.remove(trigger: trigger.id, key: bucket.key)
            return nil
        }
        if trigger.within == .zero { return nil }
        let start = max(bucket.end, now)
        let end = start + trigger.within
        // D2/D3: a window inherits the last event of the window before it.
        let inherited = compiled.tiles ? bucket.lastEventBox : nil
        if trigger.posture == .reactive, count > 0 {
            let next = startNewBucket(compiled, key: bucket.key, start: start, end: end, count: 0, lastEvent: nil)
            return evaluate(compiled, bucket: next, now: now, triggeringEvent: triggeringEvent)
        }
        return startNewBucket(compiled, key: bucket.key, start: start, end: end, count: count, lastEvent: inherited)
    }

    func describeKey(_ key: BucketingKey, _ compiled: CompiledEventTrigger) -> String {
        key.isEmpty ? "" : " for \(describe(key, of: compiled))"
    }

    // MARK: - Held events (Prefect 3.9)

    /// Holds an `expect`-only event for windows that open later over it, and returns the key's current bucket for
    /// the caller to evaluate the event against (nil when there is none).
    mutating func holdExpectEvent(_ compiled: CompiledEventTrigger, key: BucketingKey, event: Event) -> Bucket? {
        let heldKey = HeldKey(trigger: compiled.trigger.id, key: key)
        var events = held[heldKey] ?? []
        if events.contains(where: { $0.id == event.id }) { return nil }
        events.append(HeldEvent(id: event.id, occurred: event.occurred))
        // Drop events no window can reach any more: older than the newest by more than twice the lookback (or `within`).
        let newest = events.map(\.occurred).max()!
        let lookback2 = TimeSpan(microseconds: configuration.precedingEventLookback.microseconds * 2)
        let horizon = newest - max(lookback2, compiled.trigger.within)
        events.removeAll { $0.occurred < horizon }
        // Within one epoch-aligned slot `within` wide, only the first and last `threshold` events can change an outcome.
        let width = max(compiled.trigger.within.microseconds, 1)
        let slotStart = Instant(microseconds: (event.occurred.microseconds / width - (event.occurred.microseconds < 0 ? 1 : 0)) * width)
        let slotEnd = Instant(microseconds: slotStart.microseconds + width)
        let inSlot = events.enumerated().filter { $0.element.occurred >= slotStart && $0.element.occurred < slotEnd }
        let threshold = max(compiled.trigger.threshold, 0)
        if inSlot.count > 2 * threshold {
            let ordered = inSlot.sorted { ($0.element.occurred, $0.element.id.uuidString) < ($1.element.occurred, $1.element.id.uuidString) }
            let keep = Set(ordered.prefix(threshold).map(\.offset) + ordered.suffix(threshold).map(\.offset))
            let drop = Set(inSlot.map(\.offset)).subtracting(keep)
            events = events.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        }
        held[heldKey] = events
        auxiliaryStateVersion &+= 1
        note(event, compiled.automation, "held: counts toward any window that opens later over \(event.occurred)")
        return store.bucket(trigger: compiled.trigger.id, key: key)
    }

    func heldEvents(_ compiled: CompiledEventTrigger, key: BucketingKey, from start: Instant, to end: Instant) -> Int {
        guard let events = held[HeldKey(trigger: compiled.trigger.id, key: key)] else { return 0 }
        return events.reduce(0) { $0 + ($1.occurred >= start && $1.occurred < end ? 1 : 0) }
    }
}
