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
    public var lastEvent: Event?

    /// Creates a bucket.
    public init(triggerID: UUID, key: BucketingKey, start: Instant, end: Instant, count: Int, lastEvent: Event?) {
        self.triggerID = triggerID
        self.key = key
        self.start = start
        self.end = end
        self.count = count
        self.lastEvent = lastEvent
    }
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
}

/// The in-memory bucket store: a dictionary per trigger.
public struct InMemoryBucketStore: BucketStore {
    private var storage: [UUID: [BucketingKey: Bucket]] = [:]

    /// Creates an empty store.
    public init() {}

    public func bucket(trigger: UUID, key: BucketingKey) -> Bucket? { storage[trigger]?[key] }

    public mutating func save(_ bucket: Bucket) { storage[bucket.triggerID, default: [:]][bucket.key] = bucket }

    public mutating func remove(trigger: UUID, key: BucketingKey) {
        storage[trigger]?.removeValue(forKey: key)
    }

    public func buckets(trigger: UUID) -> [Bucket] {
        guard let buckets = storage[trigger] else { return [] }
        return buckets.values.sorted { a, b in a.start != b.start ? a.start < b.start : a.key.lexicographicallyPrecedes(b.key) }
    }

    /// The number of open buckets over all triggers.
    public var count: Int { storage.values.reduce(0) { $0 + $1.count } }
}
