import Synchronization
public import TriplineCore

/// Token buckets per key (one per destination): a request takes a token; tokens come back at the limit's rate up to
/// its burst.
public final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: Instant
    }

    let buckets = Mutex<[String: Bucket]>([:])

    /// Creates a limiter with full buckets.
    public init() {}

    /// Takes a token for `key` at `now`.
    /// - Returns: `nil` when a token was taken; otherwise when the next token will be there.
    public func acquire(_ key: String, limit: RateLimit, now: Instant) -> Instant? {
        let rate = Double(limit.count) / Double(limit.per.microseconds)  // tokens per microsecond
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: Double(limit.burst), updated: now)
            let elapsed = Double(max(0, now.microseconds - bucket.updated.microseconds))
            bucket.tokens = min(Double(limit.burst), bucket.tokens + elapsed * rate)
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return now + TimeSpan(microseconds: Int64(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }

    /// The interval between tokens of `limit`.
    public static func interval(_ limit: RateLimit) -> TimeSpan {
        TimeSpan(microseconds: limit.per.microseconds / Int64(max(1, limit.count)))
    }
}
