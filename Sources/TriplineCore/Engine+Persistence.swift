public import Foundation

/// Where a bucket lives: its trigger and bucketing key.
public struct BucketAddress: Sendable, Hashable {
    /// The trigger.
    public var trigger: UUID
    /// The bucketing key.
    public var key: BucketingKey

    /// Creates an address.
    public init(trigger: UUID, key: BucketingKey) {
        self.trigger = trigger
        self.key = key
    }
}

/// A bucket store that remembers which buckets changed since the last ``drainChanges()``, so that a durable owner
/// can write exactly those in the transaction that also stores the events that changed them.
public struct JournalingBucketStore: BucketStore {
    private var base = InMemoryBucketStore()
    private var dirty: Set<BucketAddress> = []

    /// Creates an empty store.
    public init() {}

    /// Creates a store holding `buckets` (loaded from durable storage), with nothing to write.
    public init(loading buckets: [Bucket]) {
        for bucket in buckets { base.save(bucket.compacted()) }
    }

    public func bucket(trigger: UUID, key: BucketingKey) -> Bucket? { base.bucket(trigger: trigger, key: key) }

    public mutating func save(_ bucket: Bucket) {
        base.save(bucket)
        dirty.insert(BucketAddress(trigger: bucket.triggerID, key: bucket.key))
    }

    public mutating func remove(trigger: UUID, key: BucketingKey) {
        base.remove(trigger: trigger, key: key)
        dirty.insert(BucketAddress(trigger: trigger, key: key))
    }

    public func buckets(trigger: UUID) -> [Bucket] { base.buckets(trigger: trigger) }

    public mutating func takeEnded(trigger: UUID, by time: Instant) -> [Bucket] { base.takeEnded(trigger: trigger, by: time) }

    public func earliestEnd(trigger: UUID, after time: Instant) -> Instant? { base.earliestEnd(trigger: trigger, after: time) }

    public func buckets(trigger: UUID, countedAtLeast count: Int) -> [Bucket] { base.buckets(trigger: trigger, countedAtLeast: count) }

    /// The number of open buckets.
    public var count: Int { base.count }

    /// Every bucket changed since the last call: the bucket now stored there, or `nil` where it was removed. The
    /// buckets returned (and kept) hold their last event as the JSON they are stored with (``Bucket/compacted()``).
    public mutating func drainChanges() -> [(address: BucketAddress, bucket: Bucket?)] {
        defer { dirty.removeAll(keepingCapacity: true) }
        return dirty.map { address in
            guard let bucket = base.bucket(trigger: address.trigger, key: address.key) else { return (address, nil) }
            let compacted = bucket.compacted()
            // Same window and count: the store's indexes are unchanged, only the event's form is.
            base.save(compacted)
            return (address, compacted)
        }
    }
}

extension Bucket {
    /// The bucket as stored: `trigger`, `key`, `start` and `end` (microseconds), `count`, and `last_event` in the
    /// event's wire format with `received` (copied when the bucket keeps it as text), or null.
    public var storageText: String {
        var output: [UInt8] = []
        output.reserveCapacity(320)
        output.append(contentsOf: #"{"trigger":""#.utf8)
        output.append(contentsOf: triggerID.lowercasedText.utf8)
        output.append(contentsOf: #"","key":["#.utf8)
        for (index, part) in key.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONValue.writeString(part, to: &output)
        }
        output.append(contentsOf: #"],"start":"#.utf8)
        output.append(contentsOf: String(start.microseconds).utf8)
        output.append(contentsOf: #","end":"#.utf8)
        output.append(contentsOf: String(end.microseconds).utf8)
        output.append(contentsOf: #","count":"#.utf8)
        output.append(contentsOf: String(count).utf8)
        output.append(contentsOf: #","last_event":"#.utf8)
        if let lastEventBox {
            lastEventBox.writeJSON(to: &output)
        } else {
            output.append(contentsOf: "null".utf8)
        }
        output.append(UInt8(ascii: "}"))
        return String(decoding: output, as: UTF8.self)
    }

    /// Reads a bucket written by ``storageText``.
    public init(json: JSONValue) throws(TriplineError) {
        guard case .string(let trigger)? = json["trigger"], let triggerID = UUID(text: trigger), case .array(let key)? = json["key"],
            case .int(let start)? = json["start"], case .int(let end)? = json["end"], case .int(let count)? = json["count"]
        else { throw TriplineError(.invalidValue, "not a stored bucket: \(json.jsonText.prefix(200))") }
        var lastEvent: Event?
        if let event = json["last_event"], event != .null { lastEvent = try Event.decode(event, limits: .unlimited) }
        self.init(
            triggerID: triggerID, key: key.compactMap(\.stringValue), start: Instant(microseconds: start), end: Instant(microseconds: end),
            count: Int(count), lastEvent: lastEvent)
    }
}

extension Engine {
    /// The state besides buckets that must survive a restart: held `expect` events, stored child firings of
    /// compound and sequence triggers, and events parked behind their `follows` leader.
    public var auxiliaryState: JSONValue {
        var heldJSON: [JSONValue] = []
        for (key, events) in held {
            heldJSON.append(
                .object([
                    "trigger": .string(key.trigger.lowercasedText), "key": .array(key.key.map(JSONValue.string)),
                    "events": .array(events.map { .array([.string($0.id.lowercasedText), .int($0.occurred.microseconds)]) }),
                ]))
        }
        var slotsJSON: [JSONValue] = []
        for (composite, entries) in slots {
            slotsJSON.append(
                .object([
                    "composite": .string(composite.lowercasedText),
                    "slots": .array(
                        entries.map {
                            .object([
                                "child": .string($0.child.lowercasedText), "triggered": .int($0.triggered.microseconds),
                                "event": $0.triggeringEvent?.jsonValue ?? .null,
                            ])
                        }),
                ]))
        }
        var parkedJSON: [JSONValue] = []
        for (id, entry) in waitlist {
            guard let event = parked[entry.leader]?[id] else { continue }
            var object = event.jsonValue
            if case .object(var fields) = object {
                fields["received"] = .string(entry.received.rfc3339)
                object = .object(fields)
            }
            parkedJSON.append(object)
        }
        return .object(["held": .array(heldJSON), "slots": .array(slotsJSON), "parked": .array(parkedJSON)])
    }

    /// Restores state written by ``auxiliaryState``. Entries for triggers that no longer exist are dropped.
    public mutating func restoreAuxiliaryState(_ json: JSONValue) {
        let knownTriggers = Set(eventTriggers.map(\.trigger.id))
        let knownComposites = Set(composites.map(\.id))
        if case .array(let entries)? = json["held"] {
            for entry in entries {
                guard let trigger = entry["trigger"]?.stringValue.flatMap(UUID.init(uuidString:)), knownTriggers.contains(trigger),
                    case .array(let key)? = entry["key"], case .array(let events)? = entry["events"]
                else { continue }
                held[HeldKey(trigger: trigger, key: key.compactMap(\.stringValue))] = events.compactMap { pair in
                    guard case .array(let parts) = pair, parts.count == 2, let id = parts[0].stringValue.flatMap(UUID.init(uuidString:)),
                        case .int(let occurred) = parts[1]
                    else { return nil }
                    return HeldEvent(id: id, occurred: Instant(microseconds: occurred))
                }
            }
        }
        if case .array(let entries)? = json["slots"] {
            for entry in entries {
                guard let composite = entry["composite"]?.stringValue.flatMap(UUID.init(uuidString:)), knownComposites.contains(composite),
                    case .array(let list)? = entry["slots"]
                else { continue }
                slots[composite] = list.compactMap { slot in
                    guard let child = slot["child"]?.stringValue.flatMap(UUID.init(uuidString:)), case .int(let triggered)? = slot["triggered"]
                    else { return nil }
                    let event = slot["event"].flatMap { $0 == .null ? nil : try? Event.decode($0) }
                    return ChildSlot(child: child, triggered: Instant(microseconds: triggered), triggeringEvent: event)
                }
            }
        }
        if case .array(let entries)? = json["parked"] {
            for entry in entries {
                guard let event = try? Event.decode(entry), let leader = event.follows else { continue }
                let received = event.received ?? event.occurred
                parked[leader, default: [:]][event.id] = event
                waitlist[event.id] = (received, leader)
                insertRelease(received + configuration.precedingEventLookback, event.id)
            }
        }
    }

    /// Builds an engine for `automations` that keeps the state of `previous` for the triggers that still exist:
    /// buckets (by trigger id), held events, composite slots and parked events. Used when rules change.
    public static func replacing(_ previous: Engine<Store>, with automations: [Automation], configuration: EngineConfiguration? = nil) -> Engine<Store> {
        var engine = Engine(automations: automations, store: previous.store, configuration: configuration ?? previous.configuration)
        engine.restoreAuxiliaryState(previous.auxiliaryState)
        engine.clock = previous.clock
        return engine
    }

    /// The ids of every event trigger, for pruning stored state of removed triggers.
    public var eventTriggerIDs: Set<UUID> { Set(eventTriggers.map(\.trigger.id)) }
}

extension Engine where Store == JournalingBucketStore {
    /// Every bucket changed since the last call (`nil` where removed), for writing in the current transaction.
    public mutating func drainBucketChanges() -> [(address: BucketAddress, bucket: Bucket?)] {
        store.drainChanges()
    }
}
