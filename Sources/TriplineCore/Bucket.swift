public import Foundation

/// The values of a trigger's `for_each` labels for one event, in sorted label order; empty without `for_each`.
public typealias BucketingKey = [String]

/// One time window of one trigger for one bucketing key: Prefect's `automation_bucket` row.
public struct Bucket: Sendable, Hashable {
    /// The trigger the window belongs to.
    public var triggerID: UUID
    /// The bucketing key.
    public var key: BucketingKey
    /// The window's start (inclusive).
    public var start: Instant
    /// The window's end (exclusive).
    public var end: Instant
    /// Expected events counted in the window (may start at -1 for an `after` event that is also expected).
    public var count: Int
    /// The last event counted (or the event that opened the window).
    public var lastEvent: Event? {
        get { lastEventBox?.event }
        set { lastEventBox = newValue.map(DecodedEvent.init) }
    }
    /// The event behind a reference: a bucket is copied whenever the engine reads or saves it, and a trigger with
    /// `for_each` keeps one per key in a hash table whose free slots are as wide as a bucket. Inline, the event made a
    /// bucket 152 bytes wide (every copy retaining each of its fields); boxed, 64. Once the bucket is stored, the
    /// box holds the event's JSON instead of its dictionaries (see ``compacted()``).
    var lastEventBox: (any BucketEventBox)?

    /// Creates a bucket.
    public init(triggerID: UUID, key: BucketingKey, start: Instant, end: Instant, count: Int, lastEvent: Event?) {
        self.init(triggerID: triggerID, key: key, start: start, end: end, count: count, lastEventBox: lastEvent.map(DecodedEvent.init))
    }

    init(triggerID: UUID, key: BucketingKey, start: Instant, end: Instant, count: Int, lastEventBox: (any BucketEventBox)?) {
        self.triggerID = triggerID
        self.key = key
        self.start = start
        self.end = end
        self.count = count
        self.lastEventBox = lastEventBox
    }

    /// The bucket with its last event kept as the JSON it is stored as: about 370 bytes for a small event instead of
    /// about 520 as an event with its resource and payload dictionaries. The engine reads only the event's name and
    /// time on its hot path; the whole event is decoded again when a firing or a template needs it.
    public func compacted() -> Bucket {
        guard let box = lastEventBox as? DecodedEvent else { return self }
        var bucket = self
        bucket.lastEventBox = StoredEvent(box.event)
        return bucket
    }

    public static func == (lhs: Bucket, rhs: Bucket) -> Bool {
        lhs.triggerID == rhs.triggerID && lhs.key == rhs.key && lhs.start == rhs.start && lhs.end == rhs.end && lhs.count == rhs.count
            && lhs.lastEvent == rhs.lastEvent
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(triggerID)
        hasher.combine(key)
        hasher.combine(start)
        hasher.combine(end)
        hasher.combine(count)
        hasher.combine(lastEventBox?.id)
    }
}

/// A bucket's last event, immutable, behind a reference (see ``Bucket/lastEventBox``).
protocol BucketEventBox: AnyObject, Sendable {
    /// The whole event.
    var event: Event { get }
    /// Its id.
    var id: EventID { get }
    /// Its name.
    var name: String { get }
    /// When it occurred.
    var occurred: Instant { get }
    /// Appends its JSON, `received` included.
    func writeJSON(to output: inout [UInt8])
}

/// An event as the engine received it.
final class DecodedEvent: BucketEventBox {
    let event: Event
    init(_ event: Event) { self.event = event }
    var id: EventID { event.id }
    var name: String { event.event }
    var occurred: Instant { event.occurred }
    func writeJSON(to output: inout [UInt8]) { event.writeJSON(to: &output, includeReceived: true) }
}

/// An event kept as its JSON, with the fields the engine compares.
final class StoredEvent: BucketEventBox {
    let id: EventID
    let name: String
    let occurred: Instant
    let text: [UInt8]

    init(_ event: Event) {
        id = event.id
        name = event.event
        occurred = event.occurred
        var scratch: [UInt8] = []
        scratch.reserveCapacity(512)
        event.writeJSON(to: &scratch, includeReceived: true)
        // Exactly as long as the text (the scratch buffer's growth would otherwise stay with every bucket).
        text = [UInt8](unsafeUninitializedCapacity: scratch.count) { buffer, count in
            count = buffer.initialize(fromContentsOf: scratch)
        }
    }

    /// Decoded from its JSON without Prefect's limits (it was accepted once, by a route that may allow more).
    var event: Event {
        do {
            let value = try text.withUnsafeBufferPointer { buffer throws(TriplineError) in try JSONValue.parse(bytes: buffer) }
            return try Event.decode(value, limits: .unlimited)
        } catch {
            // Unreachable for JSON the event wrote itself; the event's identity is all that is left to give.
            return Event(id: id, occurred: occurred, event: name, resource: Resource([Resource.idLabel: "unknown"]))
        }
    }

    func writeJSON(to output: inout [UInt8]) { output.append(contentsOf: text) }
}

/// Where the engine keeps its buckets. The engine is the only writer; implementations only store.
///
/// - Important: Exactly one bucket exists per (trigger, key); `save` replaces it.
public protocol BucketStore: Sendable {
    /// The bucket of `trigger` for `key`, if one is open.
    func bucket(trigger: UUID, key: BucketingKey) -> Bucket?
    /// Stores `bucket`, replacing any bucket with the same trigger and key.
    mutating func save(_ bucket: Bucket)
    /// Removes the bucket of `trigger` for `key`, if any.
    mutating func remove(trigger: UUID, key: BucketingKey)
    /// Every bucket of `trigger`, ordered by start.
    func buckets(trigger: UUID) -> [Bucket]
    /// The buckets of `trigger` whose window ended at or before `time`, ordered by start then key. A bucket is
    /// returned once: again only after it is saved again.
    mutating func takeEnded(trigger: UUID, by time: Instant) -> [Bucket]
    /// The earliest end after `time` among the buckets of `trigger`.
    func earliestEnd(trigger: UUID, after time: Instant) -> Instant?
    /// The buckets of `trigger` that counted at least `count` events (`count` ≥ 1), in no particular order.
    func buckets(trigger: UUID, countedAtLeast count: Int) -> [Bucket]
}

/// The in-memory bucket store: per trigger, the buckets by key with an index of their ends (so that a proactive pass
/// visits only the windows that ended, not every key) and of the ones that counted events.
public struct InMemoryBucketStore: BucketStore {
    struct Key: Comparable, Sendable {
        let key: BucketingKey
        static func < (lhs: Key, rhs: Key) -> Bool { lhs.key.lexicographicallyPrecedes(rhs.key) }
    }

    struct TriggerBuckets: Sendable {
        var byKey: [BucketingKey: Bucket] = [:]
        /// Each bucket's end, plus stale entries of buckets since replaced or removed (skipped, and dropped when the
        /// heap has grown to twice the buckets).
        var ends = DeadlineHeap<Key>()
        /// Keys of the buckets with a positive count.
        var counted: Set<BucketingKey> = []

        mutating func save(_ bucket: Bucket) {
            let previous = byKey.updateValue(bucket, forKey: bucket.key)
            if previous?.end != bucket.end { ends.push(bucket.end, Key(key: bucket.key)) }
            if bucket.count > 0 {
                counted.insert(bucket.key)
            } else if (previous?.count ?? 0) > 0 {
                counted.remove(bucket.key)
            }
            if ends.count > 2 * byKey.count + 64 {
                ends.removeAll()
                for (key, bucket) in byKey { ends.push(bucket.end, Key(key: key)) }
            }
        }

        mutating func remove(_ key: BucketingKey) {
            byKey.removeValue(forKey: key)
            counted.remove(key)
        }

        func isCurrent(_ entry: (time: Instant, id: Key)) -> Bool { byKey[entry.id.key]?.end == entry.time }
    }

    private var storage: [UUID: TriggerBuckets] = [:]

    /// Creates an empty store.
    public init() {}

    public func bucket(trigger: UUID, key: BucketingKey) -> Bucket? { storage[trigger]?.byKey[key] }

    public mutating func save(_ bucket: Bucket) { storage[bucket.triggerID, default: TriggerBuckets()].save(bucket) }

    public mutating func remove(trigger: UUID, key: BucketingKey) {
        storage[trigger]?.remove(key)
    }

    public func buckets(trigger: UUID) -> [Bucket] {
        guard let buckets = storage[trigger]?.byKey else { return [] }
        return Self.ordered(buckets.values)
    }

    public mutating func takeEnded(trigger: UUID, by time: Instant) -> [Bucket] {
        guard storage[trigger] != nil else { return [] }
        var ended: [BucketingKey: Bucket] = [:]
        while let top = storage[trigger]!.ends.first, top.time <= time {
            storage[trigger]!.ends.pop()
            if let bucket = storage[trigger]!.byKey[top.id.key], bucket.end == top.time { ended[bucket.key] = bucket }
        }
        return Self.ordered(ended.values)
    }

    public func earliestEnd(trigger: UUID, after time: Instant) -> Instant? {
        guard let buckets = storage[trigger] else { return nil }
        return buckets.ends.first(after: time, where: buckets.isCurrent)
    }

    public func buckets(trigger: UUID, countedAtLeast count: Int) -> [Bucket] {
        guard let buckets = storage[trigger] else { return [] }
        return buckets.counted.compactMap { key in buckets.byKey[key].flatMap { $0.count >= count ? $0 : nil } }
    }

    private static func ordered(_ buckets: some Collection<Bucket>) -> [Bucket] {
        buckets.sorted { a, b in a.start != b.start ? a.start < b.start : a.key.lexicographicallyPrecedes(b.key) }
    }

    /// The number of open buckets over all triggers.
    public var count: Int { storage.values.reduce(0) { $0 + $1.byKey.count } }
}
