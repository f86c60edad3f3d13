import ArgumentParser
import TriplineCore
import TriplineServer

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
                guard ruleFile.kind == .automations else {
                    print("\(file): error: \(ruleFile.kind.rawValue) are not supported by this version")
                    problems += 1
                    continue
                }
                let loaded = Automation.load(text: text, file: file)
                automations += loaded.automations.count
                for error in loaded.errors {
                    let location = error.location.map(\.description) ?? file
                    print("\(location): error: \(error.message)")
                }
                problems += loaded.errors.count
                if !quiet, loaded.errors.isEmpty { print("\(file): ok (\(loaded.automations.count) automation\(loaded.automations.count == 1 ? "" : "s"))") }
            }
            print("\(files.count) file\(files.count == 1 ? "" : "s"), \(automations) valid automation\(automations == 1 ? "" : "s"), \(problems) problem\(problems == 1 ? "" : "s")")
            if problems > 0 { throw ExitCode(1) }
        }
    }
}
