import Foundation
import TriplineCore

/// A synthetic but realistic workload for the engine benchmark: a mix of automation kinds as data teams write
/// them, and a stream in which most events interest no trigger and the rest interest one or a few.
struct EngineWorkload {
    var automations: [Automation] = []
    private var random: Random
    private var perKind: [Int] = []
    private var runs: [String] = (0..<64).map { "prefect.flow-run.\($0)" }
    private var produced = 0
    private let spacing: TimeSpan
    private let seed: UInt64
    private let start = Instant(rfc3339: "2026-01-01T00:00:00Z")!

    /// A deterministic generator (SplitMix64), so that every run measures the same workload.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    }

    /// Builds `automationCount` automations; events come from ``nextEvents(_:)``, `spacing` apart in event time.
    init(automationCount: Int, spacing: TimeSpan = TimeSpan(microseconds: 10_000), seed: UInt64 = 42) {
        self.random = Random(state: seed)
        self.spacing = spacing
        self.seed = seed
        // Automation kinds, by share of the total.
        let kinds: [(share: Int, make: (Int) -> Automation)] = [
            (30, Self.flowFailedTwice), (20, Self.pushToMain), (10, Self.s3Prefix), (10, Self.runSLA), (10, Self.heartbeat),
            (10, Self.stripeFailures), (10, Self.anyFailureWildcard),
        ]
        var counts: [Int] = kinds.map { max(1, automationCount * $0.share / 100) }
        while counts.reduce(0, +) > automationCount, let index = counts.firstIndex(where: { $0 > 1 }) { counts[index] -= 1 }
        while counts.reduce(0, +) < automationCount { counts[0] += 1 }
        for (kind, count) in zip(kinds, counts) {
            for index in 0..<count { automations.append(kind.make(index)) }
        }
        self.perKind = counts
    }

    /// The next `count` events of the stream.
    mutating func nextEvents(_ count: Int) -> [Event] {
        var events: [Event] = []
        events.reserveCapacity(count)
        for number in produced..<(produced + count) {
            let occurred = start + spacing * Int64(number)
            let id = UUID(stableName: "bench-event-\(seed)-\(number)")
            let roll = random.below(100)
            var event: Event
            switch roll {
            case 0..<60:
                // Noise: application metrics and logs no automation asks for.
                event = Event(
                    id: id, occurred: occurred, event: "app.service\(random.below(500)).metric.reported",
                    resource: Resource(["prefect.resource.id": "app.service.\(random.below(500))"]), payload: ["value": .int(Int64(random.below(1000)))])
            case 60..<75:
                let deployment = random.below(perKind[0] + perKind[3])
                if random.chance(5) { runs[random.below(runs.count)] = "prefect.flow-run.\(UUID(stableName: "run-\(number)"))" }
                let run = runs[random.below(runs.count)]
                let state = ["Pending", "Running", "Completed", "Failed", "Running", "Completed"][random.below(6)]
                event = Event(
                    id: id, occurred: occurred, event: "prefect.flow-run.\(state)", resource: Resource(["prefect.resource.id": run]),
                    related: [
                        Resource(["prefect.resource.id": "prefect.deployment.d\(deployment)", "prefect.resource.role": "deployment"]),
                        Resource(["prefect.resource.id": "prefect.flow.f\(deployment % 50)", "prefect.resource.role": "flow"]),
                    ])
            case 75..<85:
                let repository = random.below(perKind[1])
                let branch = random.chance(50) ? "main" : "feature-\(random.below(9))"
                event = Event(
                    id: id, occurred: occurred, event: random.chance(80) ? "github.push" : "github.pull_request.opened",
                    resource: Resource(["prefect.resource.id": "github.repository.acme/repo\(repository)"]),
                    payload: ["ref": .string("refs/heads/\(branch)"), "repository": ["full_name": .string("acme/repo\(repository)")]])
            case 85..<90:
                let bucket = random.below(perKind[2])
                let prefix = random.chance(50) ? "incoming" : "archive"
                event = Event(
                    id: id, occurred: occurred, event: "aws.s3.ObjectCreated:Put",
                    resource: Resource([
                        "prefect.resource.id": "aws.s3.bucket.lake\(bucket)", "aws.s3.key": "\(prefix)/2026/\(number).parquet",
                    ]), payload: ["size": .int(Int64(random.below(1 << 20)))])
            case 90..<96:
                let host = random.below(perKind[4])
                event = Event(
                    id: id, occurred: occurred, event: "host.heartbeat", resource: Resource(["prefect.resource.id": "host.h\(host)"]))
            default:
                let account = random.below(perKind[5])
                event = Event(
                    id: id, occurred: occurred, event: "stripe.charge.failed",
                    resource: Resource(["prefect.resource.id": "stripe.charge.ch\(number)", "stripe.account": "acct\(account)"]),
                    related: [Resource(["prefect.resource.id": "stripe.customer.cus\(random.below(40))", "prefect.resource.role": "customer"])],
                    payload: ["data": ["object": ["amount": .int(Int64(random.below(5000)))]]])
            }
            events.append(event)
        }
        produced += count
        return events
    }

    static func trigger(_ body: (inout EventTrigger) -> Void) -> Trigger {
        var trigger = EventTrigger()
        body(&trigger)
        return .event(trigger)
    }

    static func flowFailedTwice(_ index: Int) -> Automation {
        Automation(
            name: "deployment d\(index) failed twice in 10 minutes",
            trigger: trigger {
                $0 = EventTrigger(
                    matchRelated: [ResourceSpecification(["prefect.resource.id": ["prefect.deployment.d\(index)"], "prefect.resource.role": ["deployment"]])],
                    expect: ["prefect.flow-run.Failed"], forEach: ["related:deployment:prefect.resource.id"], threshold: 2, within: .minutes(10))
            })
    }

    static func pushToMain(_ index: Int) -> Automation {
        Automation(
            name: "build repo\(index) on push to main",
            trigger: trigger {
                $0 = EventTrigger(
                    match: ResourceSpecification(["prefect.resource.id": ["github.repository.acme/repo\(index)"]]), expect: ["github.push"],
                    matchPayload: PayloadPredicate([
                        .init(path: "ref", condition: .patterns([LabelPattern("refs/heads/main")], writtenAsList: false))
                    ]))
            })
    }

    static func s3Prefix(_ index: Int) -> Automation {
        Automation(
            name: "ingest lake\(index)/incoming",
            trigger: trigger {
                $0 = EventTrigger(
                    match: ResourceSpecification(["prefect.resource.id": ["aws.s3.bucket.lake\(index)"], "aws.s3.key": ["incoming/*"]]),
                    expect: ["aws.s3.ObjectCreated:*"])
            })
    }

    static func runSLA(_ index: Int) -> Automation {
        Automation(
            name: "runs of d\(index) stuck in Running",
            trigger: trigger {
                $0 = EventTrigger(
                    match: ResourceSpecification(["prefect.resource.id": ["prefect.flow-run.*"]]),
                    matchRelated: [ResourceSpecification(["prefect.resource.id": ["prefect.deployment.d\(index)"]])],
                    after: ["prefect.flow-run.Running"], expect: ["prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
                    forEach: ["prefect.resource.id"], posture: .proactive, threshold: 1, within: .minutes(60))
            })
    }

    static func heartbeat(_ index: Int) -> Automation {
        Automation(
            name: "host h\(index) heartbeat lost",
            trigger: trigger {
                $0 = EventTrigger(
                    match: ResourceSpecification(["prefect.resource.id": ["host.h\(index)"]]), after: ["host.heartbeat"], expect: ["host.heartbeat"],
                    forEach: ["prefect.resource.id"], posture: .proactive, threshold: 1, within: .minutes(15))
            })
    }

    static func stripeFailures(_ index: Int) -> Automation {
        Automation(
            name: "acct\(index): two failed payments per customer in an hour",
            trigger: trigger {
                $0 = EventTrigger(
                    match: ResourceSpecification(["stripe.account": ["acct\(index)"]]), expect: ["stripe.charge.failed"],
                    forEach: ["related:customer:prefect.resource.id"], threshold: 2, within: .minutes(60))
            })
    }

    static func anyFailureWildcard(_ index: Int) -> Automation {
        Automation(
            name: "crashes of flow f\(index)",
            trigger: trigger {
                $0 = EventTrigger(
                    matchRelated: [ResourceSpecification(["prefect.resource.id": ["prefect.flow.f\(index)"], "prefect.resource.role": ["flow"]])],
                    expect: ["prefect.flow-run.Crash*"], within: .zero)
            })
    }
}
