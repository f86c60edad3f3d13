internal import CoreMetrics
internal import Foundation
internal import Logging
internal import ServiceLifecycle
internal import TriplineCore

/// With a database shared by several processes: takes the evaluation leadership when no process holds it, evaluates
/// the queued events while it leads, and notices automations that other processes changed through their API.
///
/// The leader evaluates in transactions that commit only while it still holds the leadership (a PostgreSQL advisory
/// lock tied to its connection), so a process that lost it — killed, partitioned — cannot record a firing twice;
/// the next process to take the lock loads the committed engine state and goes on from the queue.
struct ClusterService: Service {
    let store: any SharedStore
    let pipeline: EventPipeline
    let catalog: AutomationCatalog
    let metrics: ServerMetrics
    let logger: Logger
    /// How often a follower tries to take the leadership, and how often anyone checks for changed automations.
    var checkInterval: Duration = .seconds(1)
    /// Events evaluated per leader transaction.
    var batchSize = 2_000

    func run() async throws {
        try await ignoringCancellation { await cancelWhenGracefulShutdown { await loop() } }
        if await pipeline.leading {
            await pipeline.resignLeadership()
            await store.resign()
            logger.info("gave up the evaluation leadership (shutdown)")
        }
    }

    private func loop() async {
        var lastCheck = ContinuousClock.now - checkInterval
        var automationsVersion = (try? await store.automationsVersion()) ?? 0
        while !Task.isCancelled {
            if ContinuousClock.now - lastCheck >= checkInterval {
                lastCheck = ContinuousClock.now
                await checkLeadership()
                metrics.leading.record(await pipeline.leading ? 1 : 0)
                if let depth = try? await store.queuedEventCount() { metrics.evaluationQueueDepth.record(depth) }
                if let version = try? await store.automationsVersion(), version != automationsVersion {
                    automationsVersion = version
                    do {
                        try await catalog.reloadStored()
                    } catch {
                        logger.error("reloading automations changed by another process failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            guard await pipeline.leading else {
                try? await Task.sleep(for: checkInterval)
                continue
            }
            do {
                let taken = try await pipeline.evaluateQueued(limit: batchSize)
                if taken == batchSize { continue }
            } catch {
                logger.error("evaluating queued events failed", metadata: ["error": "\(error)"])
                await checkLeadership()
            }
            await store.waitForQueuedEvents(timeout: .milliseconds(250))
        }
    }

    private func checkLeadership() async {
        let leads = await store.tryLead()
        let leading = await pipeline.leading
        if leads, !leading {
            do {
                try await pipeline.becomeLeader()
                metrics.leadershipTakeovers.increment()
                metrics.leading.record(1)
            } catch {
                logger.error("taking over the evaluation failed; retrying", metadata: ["error": "\(error)"])
                await store.resign()
            }
        } else if !leads, leading {
            await pipeline.resignLeadership()
            metrics.leading.record(0)
            logger.warning("this process lost the evaluation leadership; another process takes over")
        }
    }
}
