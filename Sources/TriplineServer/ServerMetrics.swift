public import CoreMetrics

/// The server's metrics, created from an injected factory (the executable bootstraps Prometheus; tests pass their
/// own).
public struct ServerMetrics: Sendable {
    let factory: any MetricsFactory
    let eventsReceived: Counter
    let eventsStored: Counter
    let eventsDuplicate: Counter
    let commits: Counter
    let triggersEvaluated: Counter
    let firings: Counter
    let evaluationLatency: Timer
    let commitLatency: Timer
    let proactiveLateness: Timer
    let pendingEvents: Gauge
    /// Event API and webhook requests that waited for the ingest budget (``ServerConfiguration/ingestBudget``) before decoding.
    let ingestBudgetWaits: Counter
    /// What the engine holds in memory, read when metrics are scraped: open windows, and event ids remembered for
    /// deduplication and `follows`.
    let openBuckets: Gauge
    let rememberedEvents: Gauge
    let liveSubscribers: Gauge
    /// Events a live feed subscriber lost because it fell too far behind (see ``LiveFeed``).
    let liveFeedDropped: Counter
    let authenticationFailures: Counter
    let rulesReloads: Counter
    /// With a shared database: 1 while this process leads the evaluation, else 0.
    let leading: Gauge
    /// With a shared database: events stored by any process and not evaluated yet.
    let evaluationQueueDepth: Gauge
    /// With a shared database: how often this process took the leadership.
    let leadershipTakeovers: Counter

    /// Creates the metrics with `factory`.
    public init(factory: any MetricsFactory) {
        self.factory = factory
        eventsReceived = Counter(label: "tripline_events_received_total", factory: factory)
        eventsStored = Counter(label: "tripline_events_stored_total", factory: factory)
        eventsDuplicate = Counter(label: "tripline_events_duplicate_total", factory: factory)
        commits = Counter(label: "tripline_commits_total", factory: factory)
        triggersEvaluated = Counter(label: "tripline_trigger_evaluations_total", factory: factory)
        firings = Counter(label: "tripline_firings_total", factory: factory)
        // Engine time per committed group of events.
        evaluationLatency = Timer(label: "tripline_evaluation_seconds", factory: factory)
        commitLatency = Timer(label: "tripline_commit_seconds", factory: factory)
        proactiveLateness = Timer(label: "tripline_proactive_lateness_seconds", factory: factory)
        pendingEvents = Gauge(label: "tripline_pending_events", factory: factory)
        ingestBudgetWaits = Counter(label: "tripline_ingest_budget_waits_total", factory: factory)
        openBuckets = Gauge(label: "tripline_engine_open_buckets", factory: factory)
        rememberedEvents = Gauge(label: "tripline_engine_remembered_events", factory: factory)
        liveSubscribers = Gauge(label: "tripline_live_subscribers", factory: factory)
        liveFeedDropped = Counter(label: "tripline_live_feed_dropped_total", factory: factory)
        authenticationFailures = Counter(label: "tripline_authentication_failures_total", factory: factory)
        rulesReloads = Counter(label: "tripline_rules_reloads_total", factory: factory)
        leading = Gauge(label: "tripline_evaluation_leader", factory: factory)
        evaluationQueueDepth = Gauge(label: "tripline_evaluation_queue_depth", factory: factory)
        leadershipTakeovers = Counter(label: "tripline_evaluation_takeovers_total", factory: factory)
    }

    /// Counts a webhook delivery by endpoint and outcome (`accepted`, `ignored`, `rejected`) and records its latency.
    func webhookDelivery(slug: String, outcome: String, seconds: Double) {
        Counter(label: "tripline_webhook_deliveries_total", dimensions: [("slug", slug), ("outcome", outcome)], factory: factory).increment()
        Timer(label: "tripline_webhook_seconds", dimensions: [("slug", slug)], factory: factory).recordNanoseconds(Int64(seconds * 1e9))
    }

    /// Counts a rejected webhook delivery by endpoint and reason code (`bad_signature`, `stale_timestamp`…).
    func webhookRejected(slug: String, reason: String) {
        Counter(label: "tripline_webhook_rejections_total", dimensions: [("slug", slug), ("reason", reason)], factory: factory).increment()
    }

    /// Counts an event rejected for `reason` (a short fixed word such as `invalid` or `too_large`).
    func rejected(_ reason: String, count: Int = 1) {
        Counter(label: "tripline_events_rejected_total", dimensions: [("reason", reason)], factory: factory).increment(by: count)
    }
}
