internal import Foundation
import Synchronization
public import Hummingbird
internal import HummingbirdWebSocket
internal import HTTPTypes
public import Logging
public import CoreMetrics
internal import NIOCore
public import Prometheus
internal import TriplineCore
internal import TriplineIngest
public import TriplineStorage
internal import TriplineActions
internal import TriplineTemplates
internal import AsyncHTTPClient
internal import NIOHTTP1

/// Builds the whole service: store, pipeline, catalog, HTTP and websocket routes, background services. `tripline
/// serve` and the tests call the same function.
public enum TriplineApplication {
    /// The parts of a built server that tests and the command need to reach.
    public struct Parts: Sendable {
        /// The event pipeline.
        public let pipeline: EventPipeline
        /// The automation catalog.
        public let catalog: AutomationCatalog
        /// The store.
        public let store: any TriplineStore
        /// The webhook endpoints.
        public let webhooks: WebhookCatalog
    }

    /// Builds the application.
    /// - Parameters:
    ///   - configuration: The settings.
    ///   - logger: The root logger.
    ///   - metricsFactory: Where metrics go.
    ///   - prometheus: The registry `/metrics` renders, when metrics go to Prometheus.
    /// - Throws: A ``TriplineError`` when the configuration is unsafe (a non-loopback address without tokens), the
    ///   database cannot be opened, or the rules folder is invalid.
    public static func build(
        configuration: ServerConfiguration, logger: Logger, metricsFactory: any MetricsFactory, prometheus: PrometheusCollectorRegistry? = nil
    ) async throws -> (application: some ApplicationProtocol, parts: Parts) {
        if configuration.tokens.isEmpty, !configuration.isLoopback {
            throw TriplineError(
                .usage, "refusing to listen on \(configuration.host) without API tokens: anyone who can reach it could post events and change automations",
                hint: "set TRIPLINE_API_TOKENS_FILE (lines of `<ingest|read|admin> <token>`), or listen on 127.0.0.1")
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let metrics = ServerMetrics(factory: metricsFactory)
        // host:port names this process among those sharing a database: unique while it runs, the same after a restart.
        let store = try configuration.storeLocation.open(logger: logger, nodeName: "\(ProcessInfo.processInfo.hostName):\(configuration.port)")
        let shared = store as? any SharedStore
        let pipeline = EventPipeline(store: store, automations: [], logger: logger, metrics: metrics, maximumPending: configuration.maximumPendingEvents)
        let templates = StencilTemplates()
        let catalog = AutomationCatalog(
            rulesPath: configuration.rulesPath, store: store, pipeline: pipeline, logger: logger, metrics: metrics, templates: templates)
        try await catalog.load()
        let pinned = try configuration.snsCertificatesPath.map { path throws(TriplineError) in try AWSMessageVerifier.pinnedCertificates(folder: path) } ?? [:]
        let kafkaSources = try KafkaSources.load(rulesPath: configuration.rulesPath, logger: logger, templates: templates)
        // One HTTP client for the action handlers and for what webhooks fetch from AWS.
        var httpConfiguration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.actionConnectionsPerHost
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        let fetch: AWSMessageVerifier.Fetch = { url in try await fetchFromAWS(url, client: httpClient) }
        let webhooks = WebhookCatalog(
            rulesPath: configuration.rulesPath, aws: AWSMessageVerifier(fetch: fetch, pinned: pinned), renderer: templates, logger: logger)
        let kafkaServices: [KafkaSourceService]
        do {
            // Anything failing from here on must not leave the HTTP client running.
            if let error = webhooks.reload(force: true).first { throw error }
            try await pipeline.start()
            kafkaServices = try KafkaSources.services(kafkaSources, sink: pipeline, logger: logger, metricsFactory: metricsFactory, templates: templates)
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
        let recorder = DeliveryRecorder(log: store, logger: logger)

        // The action layer: the local runner, and the dispatcher woken by the pipeline's commits.
        var runnerConfiguration = LocalRunner.Configuration(runsFolder: configuration.runsFolder)
        runnerConfiguration.launcher = configuration.runLauncher
        let runner = LocalRunner(
            configuration: runnerConfiguration, store: store, events: PipelineEventSink(pipeline: pipeline),
            deployments: catalog.deployments, logger: logger, metricsFactory: metricsFactory)
        let environment = ActionEnvironment(
            templates: templates, destinations: catalog.destinations, events: PipelineEventSink(pipeline: pipeline),
            automations: CatalogAutomationControl(catalog: catalog), runner: runner)
        let kafkaProducers = KafkaProducerDirectory(
            destinations: catalog.destinations.all, secrets: environment.secrets, logger: logger, metricsFactory: metricsFactory)
        var dispatcherConfiguration = configuration.dispatcher
        // On a shared database the leader's firings wake only its own dispatcher: the others look for work every second.
        if shared != nil { dispatcherConfiguration.idleWait = min(dispatcherConfiguration.idleWait, .seconds(1)) }
        let dispatcher = Dispatcher(
            outbox: store, handlers: .standard(http: HTTPTarget(client: httpClient), kafka: kafkaProducers), environment: environment, wake: pipeline.outboxSignal,
            recorder: PipelineOutboxRecorder(pipeline: pipeline, store: store), configuration: dispatcherConfiguration, logger: logger,
            metricsFactory: metricsFactory)

        let router = Router(context: TriplineRequestContext.self)
        router.middlewares.add(RequestIDMiddleware())
        router.middlewares.add(AuthenticationMiddleware(tokens: configuration.tokens, metrics: metrics))
        HealthRoutes(store: store, catalog: catalog, prometheus: prometheus, pipeline: pipeline).register(on: router)
        let ingestBudget = IngestBudget(capacity: configuration.ingestBudget, waits: metrics.ingestBudgetWaits)
        EventRoutes(pipeline: pipeline, store: store, configuration: configuration, metrics: metrics, ingestBudget: ingestBudget).register(on: router)
        AutomationRoutes(catalog: catalog).register(on: router)
        DeliveryRoutes(log: store, dispatcher: dispatcher).register(on: router)
        RunRoutes(store: store, deployments: catalog.deployments).register(on: router)
        WebhookRoutes(
            catalog: webhooks, pipeline: pipeline, recorder: recorder, log: store, configuration: configuration, metrics: metrics, ingestBudget: ingestBudget)
            .register(on: router)
        if configuration.benchmarkRoutes {
            let limit = configuration.maximumBodySize
            router.post("/api/bench/noop") { request, _ in
                var request = request
                _ = try await request.collectBody(upTo: limit)
                return Response(status: .noContent)
            }
        }

        let sockets = EventWebSockets(pipeline: pipeline, store: store, configuration: configuration, metrics: metrics, ingestBudget: ingestBudget)
        var application = Application(
            router: router,
            server: .http1WebSocketUpgrade { request, _, logger in sockets.shouldUpgrade(request, logger: logger) },
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "tripline"),
            logger: logger)
        // Graceful shutdown runs in reverse order: the dispatcher stops before the pipeline (it emits events into it),
        // and the HTTP client is shut down last.
        application.addServices(StoreService(store: store), HTTPClientService(client: httpClient))
        application.addServices(
            ProactiveScheduler(pipeline: pipeline, logger: logger),
            RulesWatcher(catalog: catalog, webhooks: webhooks, interval: configuration.rulesPollInterval, logger: logger),
            RetentionService(store: store, deliveries: store, retention: configuration.retention, logger: logger),
            PipelineService(pipeline: pipeline),
            recorder)
        if let shared { application.addServices(ClusterService(store: shared, pipeline: pipeline, catalog: catalog, metrics: metrics, logger: logger)) }
        // After the pipeline: stopped before it, so that the runs it terminates announce their end.
        if configuration.dispatchActions { application.addServices(runner) }
        // Before the dispatcher: stopped after it, so that actions still running are confirmed.
        for producer in kafkaProducers.services { application.addServices(producer) }
        if configuration.dispatchActions { application.addServices(dispatcher) }
        // Added last, so that graceful shutdown stops them first: their last batch is stored while the pipeline runs.
        for service in kafkaServices { application.addServices(service) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        let automationCount = await catalog.all().count
        var ready: Logger.Metadata = [
            "address": "\(configuration.host):\(configuration.port)", "database": "\(configuration.databaseDescription)",
            "automations": "\(automationCount)", "webhooks": "\(webhooks.all().count)", "kafka_sources": "\(kafkaServices.count) of \(kafkaSources.count)", "startup_ms": "\(Int(elapsed))",
            "authentication": "\(configuration.tokens.isEmpty ? "none (loopback only)" : "\(configuration.tokens.count) tokens")",
        ]
        // How commits reach the disk, as SQLite reports it for the connection that commits (FULL: power loss).
        if let sqlite = store as? SQLiteStore { ready["synchronous"] = "\((try? sqlite.writerSynchronous) ?? "unknown")" }
        logger.info("tripline ready", metadata: ready)
        return (application, Parts(pipeline: pipeline, catalog: catalog, store: store, webhooks: webhooks))
    }

    /// GETs an AWS URL (SNS signing certificates and subscription confirmations; the verifier checks the host).
    static func fetchFromAWS(_ url: URL, client: HTTPClient) async throws -> (status: Int, body: [UInt8]) {
        let response = try await client.execute(HTTPClientRequest(url: url.absoluteString), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Array(body.readableBytesView))
    }
}

/// Gives every request an id (from `X-Request-Id` or new), in the logger's metadata and the response headers.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = TriplineRequestContext

    /// Request ids: a per-process random prefix and a counter (cheaper than a UUID per request, unique per process).
    static let prefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    static let counter = Atomic<UInt64>(0)

    static func nextID() -> String {
        let number = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return "\(prefix)-\(String(number, radix: 16))"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[.xRequestID].map { String($0.prefix(64)) } ?? Self.nextID()
        context.logger[metadataKey: "request_id"] = "\(id)"
        do {
            var response = try await next(request, context)
            response.headers[.xRequestID] = id
            return response
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            // No route: answer like every other error, with a detail.
            throw APIError(.notFound, "no route for \(request.method.rawValue) \(request.uri.path.prefix(200))")
        } catch let error as any HTTPResponseError {
            if error.status.code >= 500 {
                context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "status": "\(error.status.code)"])
            }
            throw error
        } catch {
            // Anything unexpected becomes a 500 without details; the details go to the log.
            context.logger.error("unexpected error", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, "internal error (request \(id))")
        }
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}

/// Health, readiness, version and metrics.
struct HealthRoutes {
    let store: any TriplineStore
    let catalog: AutomationCatalog
    let prometheus: PrometheusCollectorRegistry?
    let pipeline: EventPipeline

    func register(on router: Router<TriplineRequestContext>) {
        router.get("/api/health") { _, _ in jsonResponse(.bool(true)) }
        router.get("/healthz") { _, _ in jsonResponse(["status": "ok"]) }
        router.get("/readyz") { _, _ in try await ready() }
        router.get("/api/ready") { _, _ in try await ready() }
        router.get("/api/admin/version") { _, _ in jsonResponse("3.9.1") }
        router.get("/metrics") { _, context in
            try context.require(.read)
            pipeline.recordEngineSize()
            var buffer: [UInt8] = []
            prometheus?.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
    }

    func ready() async throws -> Response {
        guard await catalog.rulesLoaded else { throw APIError(.serviceUnavailable, "rules are not loaded") }
        do {
            _ = try await store.count(table: "automations")
        } catch {
            throw APIError(.serviceUnavailable, "the database is not readable")
        }
        var answer: [String: JSONValue] = [
            "status": "ready", "automations": .int(Int64(await catalog.all().count)), "open_buckets": .int(Int64(await pipeline.openBuckets())),
        ]
        // On a shared database: whether this process evaluates the triggers now (any process may take over).
        if pipeline.shared != nil { answer["role"] = .string(await pipeline.leading ? "leader" : "follower") }
        return jsonResponse(.object(answer))
    }
}
