import ArgumentParser
import TriplineCore
import TriplineServer
import TriplineIngest
import TriplineTemplates
import Foundation

extension Tripline {
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check rules files and report every problem with file:line:column and a hint.",
            discussion: "Exit status: 0 when every file is valid, 1 when any problem was found, 2 when a path cannot be read.")

        @Argument(help: "Files or folders of rules (YAML or JSON). Folders are searched recursively.")
        var paths: [String] = ["rules"]

        @Flag(name: .shortAndLong, help: "Print only problems and the summary.")
        var quiet = false

        func run() throws {
            let files: [RulesLoader.RuleFile]
            do {
                files = try RulesLoader.classifiedRuleFiles(paths)
            } catch {
                printError("error: \(error)")
                throw ExitCode(2)
            }
            var problems = 0
            var automations = 0
            var webhooks = 0
            var slugs: [String: String] = [:]
            var loadedAutomations: [Automation] = []
            var destinations: [Destination] = []
            var destinationNames: [String: String] = [:]
            var texts: [String: String] = [:]
            var kafkaSources = 0
            var deployments: [Deployment] = []
            var deploymentNames: [String: String] = [:]
            /// Reports a name already taken in `names` (where it was first declared), then records this one.
            func claim(_ name: String, _ what: String, at source: SourceLocation?, file: String, in names: inout [String: String]) {
                if let other = names[name] {
                    print("\(source.map(\.description) ?? file): error: \(what) \"\(name)\" is also declared at \(other)")
                    problems += 1
                }
                names[name] = source?.description ?? file
            }
            var sourceNames: [String: String] = [:]
            for ruleFile in files {
                let file = ruleFile.path
                let text: String
                do {
                    text = try RulesLoader.text(file)
                } catch {
                    printError("\(file): error: \(error.reason)")
                    problems += 1
                    continue
                }
                texts[file] = text
                let found: [TriplineError]
                let summary: String
                switch ruleFile.kind {
                case .automations:
                    let loaded = Automation.load(text: text, file: file)
                    loadedAutomations += loaded.automations
                    automations += loaded.automations.count
                    found = loaded.errors
                    summary = "\(loaded.automations.count) automation\(loaded.automations.count == 1 ? "" : "s")"
                case .webhooks:
                    let loaded = WebhookEndpoint.load(text: text, file: file)
                    webhooks += loaded.endpoints.count
                    found = loaded.errors + loaded.endpoints.flatMap { WebhookCatalog.checkTemplate($0, file: file, renderer: StencilTemplates()) }
                    summary = "\(loaded.endpoints.count) webhook endpoint\(loaded.endpoints.count == 1 ? "" : "s")"
                    for endpoint in loaded.endpoints {
                        if let other = slugs[endpoint.slug] {
                            print("\(endpoint.source.map(\.description) ?? file): error: the slug \"\(endpoint.slug)\" is also used at \(other)")
                            problems += 1
                        }
                        slugs[endpoint.slug] = endpoint.source?.description ?? file
                        let references = endpoint.secrets + (endpoint.authentication?.references ?? [])
                        for reference in references where (try? reference.resolve()) == nil {
                            if !quiet { print("\(endpoint.source.map(\.description) ?? file): note: \(reference) cannot be read here; the endpoint answers 503 until it can") }
                        }
                    }
                case .destinations:
                    let loaded = Destination.load(text: text, file: file)
                    found = loaded.errors
                    summary = "\(loaded.destinations.count) destination\(loaded.destinations.count == 1 ? "" : "s")"
                    for destination in loaded.destinations {
                        claim(destination.name, "the destination", at: destination.source, file: file, in: &destinationNames)
                    }
                    destinations += loaded.destinations
                case .sources:
                    let loaded = KafkaSource.load(text: text, file: file)
                    kafkaSources += loaded.sources.count
                    found = loaded.errors + loaded.sources.flatMap { $0.templateProblems(StencilTemplates()) }
                    summary = "\(loaded.sources.count) kafka source\(loaded.sources.count == 1 ? "" : "s")"
                    for source in loaded.sources {
                        claim(source.name, "the source name", at: source.location, file: file, in: &sourceNames)
                        for (key, value) in source.properties.sorted(by: { $0.key < $1.key }) {
                            guard case .secret(let reference) = value, source.enabled, (try? reference.resolve()) == nil else { continue }
                            if !quiet { print("\(source.location.map(\.description) ?? file): note: \(key) = \(reference) cannot be read here; serve refuses to start this source until it can") }
                        }
                    }
                case .deployments:
                    let loaded = Deployment.load(text: text, file: file)
                    found = loaded.errors
                    summary = "\(loaded.deployments.count) deployment\(loaded.deployments.count == 1 ? "" : "s")"
                    for deployment in loaded.deployments {
                        claim(deployment.name, "the deployment", at: deployment.source, file: file, in: &deploymentNames)
                        for (name, value) in deployment.environment.sorted(by: { $0.key < $1.key }) where value.isReference {
                            let readable: Bool
                            switch value {
                            case .environment(let variable): readable = !(ProcessInfo.processInfo.environment[variable] ?? "").isEmpty
                            case .file(let path): readable = FileManager.default.isReadableFile(atPath: path)
                            case .literal: readable = true
                            }
                            if !readable, !quiet {
                                print("\(deployment.source.map(\.description) ?? file): note: environment \(name) = \(value) cannot be read here; runs crash until it can")
                            }
                        }
                    }
                    deployments += loaded.deployments
                }
                for error in found {
                    let location = error.location.map(\.description) ?? file
                    print("\(location): error: \(error.message)")
                }
                if !quiet, found.isEmpty { print("\(file): ok (\(summary))") }
                problems += found.count
            }
            // What only the whole set can tell: every destination an action names is declared, templates parse.
            let templates = StencilTemplates()
            let crossErrors = RulesLoader.checkActions(
                loadedAutomations, destinations: destinations, deployments: deployments, check: { (template: String) throws(TriplineError) in try templates.check(template) },
                texts: texts)
            for error in crossErrors {
                let location = error.location.map(\.description) ?? "rules"
                print("\(location): error: \(error.message)")
            }
            problems += crossErrors.count
            print("\(files.count) file\(files.count == 1 ? "" : "s"), \(automations) valid automation\(automations == 1 ? "" : "s"), \(webhooks) webhook endpoint\(webhooks == 1 ? "" : "s"), \(destinations.count) destination\(destinations.count == 1 ? "" : "s"), \(kafkaSources) kafka source\(kafkaSources == 1 ? "" : "s"), \(deployments.count) deployment\(deployments.count == 1 ? "" : "s"), \(problems) problem\(problems == 1 ? "" : "s")")
            if problems > 0 { throw ExitCode(1) }
        }
    }
}
