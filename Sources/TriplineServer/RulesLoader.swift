internal import Foundation
public import TriplineCore

/// Reads rules from files and folders: the one place that walks a rules folder, used by the server and the
/// commands alike.
public enum RulesLoader {
    /// What a rules file declares, decided by the folder it sits in: `webhooks/`, `destinations/`, `deployments/`
    /// and `sources/` hold those kinds; every other file holds automations.
    public enum Kind: String, Sendable, CaseIterable {
        case automations, webhooks, destinations, deployments, sources

        /// The kind of `file`, found from its path relative to the rules folder (or from its parent folder when
        /// it was named on its own).
        public static func of(relativePath: String) -> Kind {
            let components = relativePath.split(separator: "/")
            for component in components.dropLast() {
                if let kind = Kind(rawValue: String(component)), kind != .automations { return kind }
            }
            return .automations
        }
    }

    /// A rules file: its path as found, its path relative to the folder it was found in, and its kind.
    public struct RuleFile: Sendable, Equatable {
        public var path: String
        public var relativePath: String
        public var kind: Kind
    }

    /// Every rules file under `paths` with its kind; a file named on its own takes its kind from its parent folder.
    /// - Throws: A ``TriplineError`` with code `.io` naming a path that does not exist.
    public static func classifiedRuleFiles(_ paths: [String]) throws(TriplineError) -> [RuleFile] {
        var result: [RuleFile] = []
        for path in paths {
            let root = (path as NSString).standardizingPath
            for file in try ruleFiles([path]) {
                let standardized = (file as NSString).standardizingPath
                var relative = standardized.hasPrefix(root + "/") ? String(standardized.dropFirst(root.count + 1)) : ""
                let kind: Kind
                if relative.isEmpty {
                    relative = (file as NSString).lastPathComponent
                    let parent = ((standardized as NSString).deletingLastPathComponent as NSString).lastPathComponent
                    kind = Kind.of(relativePath: parent + "/" + relative)
                } else {
                    kind = Kind.of(relativePath: relative)
                }
                result.append(RuleFile(path: file, relativePath: relative, kind: kind))
            }
        }
        return result
    }
    /// Every rules file under `paths` (files as given; folders searched recursively for .yaml, .yml and .json),
    /// sorted by path. Hidden files and hidden folders are skipped: Kubernetes mounts a ConfigMap as links into a
    /// `..<timestamp>` folder, which would otherwise load every rule twice.
    /// - Throws: A ``TriplineError`` with code `.io` naming a path that does not exist.
    public static func ruleFiles(_ paths: [String]) throws(TriplineError) -> [String] {
        var files: [String] = []
        let manager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw TriplineError(.io, "no such file or folder: \(path)")
            }
            if !isDirectory.boolValue {
                files.append(path)
                continue
            }
            guard let enumerator = manager.enumerator(atPath: path) else { throw TriplineError(.io, "cannot read folder \(path)") }
            var found: [String] = []
            while let relative = enumerator.nextObject() as? String {
                if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                    if (relative as NSString).lastPathComponent.hasPrefix(".") { enumerator.skipDescendants() }
                    continue
                }
                // Sample bodies for webhook templates live in `samples/` folders and are not rules.
                if relative.split(separator: "/").dropLast().contains("samples") { continue }
                if relative.hasSuffix(".yaml") || relative.hasSuffix(".yml") || relative.hasSuffix(".json") {
                    found.append((path as NSString).appendingPathComponent(relative))
                }
            }
            files += found.sorted()
        }
        return files
    }

    /// Reads a UTF-8 text file.
    public static func text(_ path: String) throws(TriplineError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw TriplineError(.io, "cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw TriplineError(.io, "\(path) is not UTF-8 text") }
        return text
    }

    /// Loads automations from files or folders. Stable ids derive from each file's path relative to the folder
    /// given, so they do not depend on where the folder is mounted.
    /// - Returns: The automations and every problem, located by file:line:column.
    public static func automations(_ paths: [String]) throws(TriplineError) -> (automations: [Automation], errors: [TriplineError]) {
        var automations: [Automation] = []
        var errors: [TriplineError] = []
        for file in try classifiedRuleFiles(paths) where file.kind == .automations {
            let loaded = Automation.load(text: try text(file.path), file: file.path, idNamespace: file.relativePath)
            automations += loaded.automations
            errors += loaded.errors
        }
        return (automations, errors)
    }

    /// A fingerprint of the rules files under `path` (names, sizes, modification times), to notice changes.
    public static func fingerprint(_ path: String) -> String {
        guard let files = try? ruleFiles([path]) else { return "missing" }
        return files.map { file in
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(file):\(size):\(modified)"
        }.joined(separator: "\n")
    }
}
