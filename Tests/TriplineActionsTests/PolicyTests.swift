import Testing
import TriplineActions
import TriplineCore

/// Retry delays and rate limits, without IO.
@Suite struct PolicyTests {
    @Test func backoffIsExponentialWithFullJitterAndACap() {
        let policy = RetryPolicy(maximumAttempts: 8, backoff: .seconds(1), maximumBackoff: .seconds(60))
        #expect(policy.delay(after: 1, retryAfter: nil, random: 0.999_999) <= .seconds(1))
        #expect(policy.delay(after: 3, retryAfter: nil, random: 0.999_999) > .seconds(3))
        #expect(policy.delay(after: 3, retryAfter: nil, random: 0.999_999) <= .seconds(4))
        #expect(policy.delay(after: 3, retryAfter: nil, random: 0) == .zero, "full jitter reaches down to zero")
        #expect(policy.delay(after: 30, retryAfter: nil, random: 0.999_999) <= .seconds(60), "capped")
        #expect(policy.delay(after: 1, retryAfter: .seconds(30), random: 0.5) == .seconds(30), "Retry-After asking for longer is honoured")
        #expect(policy.delay(after: 1, retryAfter: .seconds(86_400), random: 0.5) == .seconds(3600), "but not beyond an hour")
        let overridden = policy.overridden(by: ["max_attempts": 3, "backoff": 0.5, "max_backoff": 2])
        #expect(overridden.maximumAttempts == 3)
        #expect(overridden.backoff == TimeSpan(seconds: 0.5))
        #expect(overridden.maximumBackoff == .seconds(2))
    }

    @Test func theTokenBucketAllowsItsBurstThenItsRate() {
        let limiter = RateLimiter()
        let limit = RateLimit(count: 120, per: .seconds(60), burst: 2)
        let start = Instant(seconds: 1_000)
        #expect(limiter.acquire("pd", limit: limit, now: start) == nil)
        #expect(limiter.acquire("pd", limit: limit, now: start) == nil)
        let next = limiter.acquire("pd", limit: limit, now: start)
        #expect(next == start + TimeSpan(seconds: 0.5), "the third waits for the next token: 120/min is one per 0.5 s")
        #expect(limiter.acquire("other", limit: limit, now: start) == nil, "buckets are per destination")
        #expect(limiter.acquire("pd", limit: limit, now: start + TimeSpan(seconds: 0.5)) == nil)
        #expect(RateLimiter.interval(RateLimit(count: 1, per: .seconds(1))) == .seconds(1))
    }

    @Test func destinationsHaveTheDocumentedDefaultLimits() {
        #expect(Destination(name: "s", kind: .slack).effectiveRateLimit == RateLimit(count: 1, per: .seconds(1), burst: 1))
        #expect(Destination(name: "p", kind: .pagerduty).effectiveRateLimit?.count == 120)
        #expect(Destination(name: "p", kind: .pagerduty).effectiveRateLimit?.per == .seconds(60))
        #expect(Destination(name: "w", kind: .webhook).effectiveRateLimit == nil)
        #expect(Destination(name: "s", kind: .slack, rateLimit: RateLimit(count: 0, per: .seconds(1))).effectiveRateLimit == nil, "rate_limit: none")
    }

    @Test func retryAfterIsReadAsSecondsOrADate() {
        let now = Instant(seconds: 1_445_412_480)  // Wed, 21 Oct 2015 07:28:00 GMT
        #expect(HTTPTarget.retryAfter("120", now: now) == .seconds(120))
        #expect(HTTPTarget.retryAfter("Wed, 21 Oct 2015 07:29:00 GMT", now: now) == .seconds(60))
        #expect(HTTPTarget.retryAfter("soon", now: now) == nil)
    }
}
