public import TriplineCore

/// How often and how far apart a failing action is tried: exponential backoff with full jitter (each wait is random
/// between 0 and `backoff · 2^(attempt-1)`, capped at `maximumBackoff`), and a target's `Retry-After` is honoured
/// when it asks for longer.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included.
    public var maximumAttempts: Int
    /// The base wait.
    public var backoff: TimeSpan
    /// The longest wait.
    public var maximumBackoff: TimeSpan
    /// The longest `Retry-After` honoured.
    public var maximumRetryAfter: TimeSpan = .seconds(3600)

    /// Creates a policy; the defaults are 8 attempts, 1 s base, 5 min cap.
    public init(maximumAttempts: Int = 8, backoff: TimeSpan = .seconds(1), maximumBackoff: TimeSpan = .seconds(300)) {
        self.maximumAttempts = maximumAttempts
        self.backoff = backoff
        self.maximumBackoff = maximumBackoff
    }

    /// This policy with an action's `retry: {max_attempts, backoff, max_backoff}` applied.
    public func overridden(by value: JSONValue?) -> RetryPolicy {
        guard let object = value?.objectValue else { return self }
        var policy = self
        if let count = object["max_attempts"]?.number { policy.maximumAttempts = max(1, Int(count)) }
        if let seconds = object["backoff"]?.number { policy.backoff = TimeSpan(seconds: seconds) }
        if let seconds = object["max_backoff"]?.number { policy.maximumBackoff = TimeSpan(seconds: seconds) }
        return policy
    }

    /// The wait before the attempt after attempt `attempt` (1-based), given the target's `Retry-After`.
    /// - Parameter random: A number in [0, 1), for the jitter.
    public func delay(after attempt: Int, retryAfter: TimeSpan?, random: Double) -> TimeSpan {
        let exponent = min(max(attempt - 1, 0), 40)
        let ceiling = min(Double(backoff.microseconds) * Double(1 << min(exponent, 40)), Double(maximumBackoff.microseconds))
        let jittered = TimeSpan(microseconds: Int64(ceiling * min(max(random, 0), 1)))
        if let retryAfter { return max(jittered, min(retryAfter, maximumRetryAfter)) }
        return jittered
    }
}
