internal import HTTPTypes
public import Foundation
public import Logging
internal import CoreMetrics
public import TriplineCore
public import TriplineActions

/// The automations the server runs: those declared in the rules folder (read-only through the API) and those
/// created through the API (stored in the database). Every change is handed to the pipeline as a whole new set.
public actor AutomationCatalog {
    /// One automation as the API shows it.
    public struct Entry: Sendable {
        /// The automation.
        public var automation: Automation
        /// When it was created (for rules: when loaded).
        public var created: Instant
        /// When it last changed.
        public var updated: Instant
        /// The rules file it was declared in; `nil` for automations created through the API.
        public var sourceFile: String?

        /// The automation in Prefect's response shape, plus `source_file` and `read_only`.
        public var jsonValue: JSONValue {
            guard case .object(var object) = automation.jsonValue else { return automation.jsonValue }
            object["created"] = .string(created.rfc3339)
            object["updated"] = .string(updated.rfc3339)
            object["read_only"] = .bool(sourceFile != nil)
            object["source_file"] = sourceFile.map(JSONValue.string) ?? .null
            return .object(object)
        }
    }

    let rulesPath: String
    let store: any DurableStore
    let pipeline: EventPipeline
    let logger: Logger
    let metrics: ServerMetrics
    private var rules: [Entry] = []
    private var api: [UUID: Entry] = [:]
    private var rulesFingerprint = ""
    /// Rules automations paused by a `pause-automation` action (rules files stay as written; kept until restart).
    private var pausedRules: Set<UUID> = []
    /// The destinations declared in the rules folder, replaced with every successful reload.
    public nonisolated let destinations: DestinationDirectory
    /// The local runner's deployments declared in the rules folder, replaced with every successful reload.
    public nonisolated let deployments = DeploymentDirectory()
    /// Checks templates in actions at load time.
    let templates: (any TemplateRenderer)?
    /// Whether the rules folder has been loaded successfully at least once.
    public private(set) var rulesLoaded = false

    /// Creates the catalog.
    public init(
        rulesPath: String, store: any DurableStore, pipeline: EventPipeline, logger: Logger, metrics: ServerMetrics,
        destinations: DestinationDirectory = DestinationDirectory(), templates: (any TemplateRenderer)? = nil
    ) {
        self.destinations = destinations
        self.templates = templates
        self.rulesPath = rulesPath
        self.store = store
        self.pipeline = pipeline
        self.logger = logger
        self.metrics = metrics
    }

    /// Loads the rules folder and the stored automations.
    /// - Throws: The first rules error when the folder is invalid at start (the server must not start without its rules).
    public func load() async throws {
        for stored in try await store.storedAutomations() {
            api[stored.automation.id] = Entry(automation: stored.automation, created: stored.created, updated: stored.updated, sourceFile: nil)
        }
        let errors = try reloadRules(force: true)
        if let first = errors.first { throw first }
        await publish()
    }

    /// Re-reads the automations created through the API from the store: another process sharing the database changed
    /// them. Publishes the new set only when it differs.
    public func reloadStored() async throws {
        var fresh: [UUID: Entry] = [:]
        for stored in try await store.storedAutomations() {
            fresh[stored.automation.id] = Entry(automation: stored.automation, created: stored.created, updated: stored.updated, sourceFile: nil)
        }
        let changed = fresh.count != api.count || fresh.contains { id, entry in api[id].map { $0.automation != entry.automation || $0.updated != entry.updated } ?? true }
        guard changed else { return }
        api = fresh
        logger.info("automations changed by another process", metadata: ["api_automations": "\(fresh.count)"])
        await publish()
    }

    /// Re-reads the rules folder if its files changed (or always with `force`). On any error the running set is
    /// kept and every error is logged with its file:line.
    /// - Returns: The errors found (empty on success or when nothing changed).
    @discardableResult
    public func reloadRules(force: Bool = false) throws(TriplineError) -> [TriplineError] {
        let fingerprint = RulesLoader.fingerprint(rulesPath)
        if !force, fingerprint == rulesFingerprint { return [] }
        rulesFingerprint = fingerprint
        let loaded: (automations: [Automation], errors: [TriplineError])
        do {
            loaded = try RulesLoader.automations([rulesPath])
        } catch {
            logger.error("cannot read the rules folder; keeping the running rules", metadata: ["error": "\(error)"])
            return [error]
        }
        var problems = loaded.errors
        /// What `load` declares, its problems added to `problems`.
        func collect<T>(_ load: () throws(TriplineError) -> ([T], [TriplineError])) -> [T] {
            do {
                let (values, errors) = try load()
                problems += errors
                return values
            } catch {
                problems.append(error)
                return []
            }
        }
        let declared = collect { () throws(TriplineError) in try RulesLoader.destinations([rulesPath]) }
        let deployed = collect { () throws(TriplineError) in try RulesLoader.deployments([rulesPath]) }
        if problems.isEmpty {
            let renderer = templates
            var texts: [String: String] = [:]
            for file in Set(loaded.automations.compactMap(\.source?.file)) { texts[file] = try? RulesLoader.text(file) }
            problems += RulesLoader.checkActions(
                loaded.automations, destinations: declared, deployments: deployed, check: { (template: String) throws(TriplineError) in try renderer?.check(template) }, texts: texts)
        }
        if !problems.isEmpty {
            for error in problems { logger.error("invalid rule; keeping the running rules", metadata: ["error": "\(error)"]) }
            return problems
        }
        var seen: [UUID: String] = [:]
        for automation in loaded.automations {
            if let other = seen[automation.id] {
                let error = TriplineError(
                    .invalidAutomation, "automation id \(automation.id.lowercasedText) is used twice", location: automation.source,
                    hint: "also in \(other)")
                logger.error("invalid rule; keeping the running rules", metadata: ["error": "\(error)"])
                return [error]
            }
            seen[automation.id] = automation.source?.description ?? rulesPath
        }
        let now = Instant(seconds: Date().timeIntervalSince1970)
        let previous = Dictionary(rules.map { ($0.automation.id, $0) }, uniquingKeysWith: { first, _ in first })
        rules = loaded.automations.map { automation in
            let old = previous[automation.id]
            let unchanged = old.map { $0.automation == automation } ?? false
            return Entry(
                automation: automation, created: old?.created ?? now, updated: unchanged ? (old?.updated ?? now) : now,
                sourceFile: automation.source?.file ?? rulesPath)
        }
        for index in rules.indices where pausedRules.contains(rules[index].automation.id) { rules[index].automation.enabled = false }
        destinations.replace(declared)
        deployments.replace(deployed)
        rulesLoaded = true
        metrics.rulesReloads.increment()
        logger.info("rules loaded", metadata: ["automations": "\(rules.count)", "folder": "\(rulesPath)"])
        return []
    }

    /// Reloads the rules folder if it changed and hands the result to the pipeline.
    public func reloadIfChanged(force: Bool = false) async {
        let before = rulesFingerprint
        let errors = (try? reloadRules(force: force)) ?? []
        if errors.isEmpty, force || rulesFingerprint != before { await publish() }
    }

    private func publish() async {
        await pipeline.replaceAutomations(all().map(\.automation))
    }

    /// Every automation: rules first (in file order), then API ones by creation.
    public func all() -> [Entry] {
        rules + api.values.sorted { ($0.created, $0.automation.name) < ($1.created, $1.automation.name) }
    }

    /// One automation by id.
    public func entry(_ id: UUID) -> Entry? {
        rules.first { $0.automation.id == id } ?? api[id]
    }

    /// Creates an automation through the API.
    /// - Throws: ``APIError`` 409 when the id exists.
    public func create(_ automation: Automation) async throws -> Entry {
        if entry(automation.id) != nil { throw APIError(.conflict, "an automation with id \(automation.id.lowercasedText) exists") }
        let now = Instant(seconds: Date().timeIntervalSince1970)
        let entry = Entry(automation: automation, created: now, updated: now, sourceFile: nil)
        try await store.saveAutomation(StoredAutomation(automation: automation, created: now, updated: now))
        api[automation.id] = entry
        await publish()
        return entry
    }

    /// Replaces an API automation.
    public func replace(_ id: UUID, with automation: Automation) async throws {
        let existing = try writable(id)
        var replaced = automation
        replaced.id = id
        let now = Instant(seconds: Date().timeIntervalSince1970)
        try await store.saveAutomation(StoredAutomation(automation: replaced, created: existing.created, updated: now))
        api[id] = Entry(automation: replaced, created: existing.created, updated: now, sourceFile: nil)
        await publish()
    }

    /// Enables or disables an API automation.
    public func setEnabled(_ id: UUID, _ enabled: Bool) async throws {
        var automation = try writable(id).automation
        automation.enabled = enabled
        try await replace(id, with: automation)
    }

    /// Deletes an API automation.
    public func delete(_ id: UUID) async throws {
        _ = try writable(id)
        _ = try await store.deleteAutomation(id: id)
        api[id] = nil
        await publish()
    }

    /// Pauses or resumes any automation (the `pause-automation` / `resume-automation` actions). Rules automations
    /// keep their files; the pause holds until the server restarts.
    /// - Throws: A ``TriplineError`` when there is no such automation.
    public func setActive(_ id: UUID, _ active: Bool) async throws {
        if let index = rules.firstIndex(where: { $0.automation.id == id }) {
            if active { pausedRules.remove(id) } else { pausedRules.insert(id) }
            rules[index].automation.enabled = active
            rules[index].updated = Instant(seconds: Date().timeIntervalSince1970)
            await publish()
            return
        }
        guard api[id] != nil else { throw TriplineError(.invalidValue, "no automation has the id \(id.lowercasedText)") }
        try await setEnabled(id, active)
    }

    private func writable(_ id: UUID) throws -> Entry {
        if let rule = rules.first(where: { $0.automation.id == id }) {
            throw APIError(
                .forbidden,
                "automation \"\(rule.automation.name)\" is declared in \(rule.sourceFile ?? rulesPath) and is read-only through the API; edit the file instead")
        }
        guard let entry = api[id] else { throw APIError(.notFound, "Automation not found") }
        return entry
    }
}
