import ArgumentParser
import TriplineCore
import TriplineServer
import TriplineTemplates

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
            let files: [String]
            do {
                files = try RulesLoader.ruleFiles(paths)
            } catch {
                printError("error: \(error)")
                throw ExitCode(2)
            }
            var problems = 0
            var automations = 0
            var loadedAutomations: [Automation] = []
            var texts: [String: String] = [:]
            for file in files {
                let text: String
                do {
                    text = try RulesLoader.text(file)
                } catch {
                    printError("\(file): error: \(error.reason)")
                    problems += 1
                    continue
                }
                texts[file] = text
                let loaded = Automation.load(text: text, file: file)
                loadedAutomations += loaded.automations
                automations += loaded.automations.count
                for error in loaded.errors {
                    let location = error.location.map(\.description) ?? file
                    print("\(location): error: \(error.message)")
                }
                problems += loaded.errors.count
                if !quiet, loaded.errors.isEmpty { print("\(file): ok (\(loaded.automations.count) automation\(loaded.automations.count == 1 ? "" : "s"))") }
            }
            // Destinations, and what only the whole set can tell: destinations named by actions, template syntax.
            let destinations = (try? RulesLoader.destinations(paths)) ?? (destinations: [], errors: [])
            let templates = StencilTemplates()
            let crossErrors = destinations.errors + RulesLoader.checkActions(
                loadedAutomations, destinations: destinations.destinations, check: { (template: String) throws(TriplineError) in try templates.check(template) },
                texts: texts)
            for error in crossErrors {
                let location = error.location.map(\.description) ?? "rules"
                print("\(location): error: \(error.message)")
            }
            problems += crossErrors.count
            if !quiet, !destinations.destinations.isEmpty {
                print("destinations: \(destinations.destinations.map { "\($0.name) (\($0.kind.rawValue))" }.joined(separator: ", "))")
            }
            print("\(files.count) file\(files.count == 1 ? "" : "s"), \(automations) valid automation\(automations == 1 ? "" : "s"), \(problems) problem\(problems == 1 ? "" : "s")")
            if problems > 0 { throw ExitCode(1) }
        }
    }
}
