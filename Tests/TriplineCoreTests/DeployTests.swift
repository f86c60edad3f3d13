import Foundation
import Testing
import TriplineCore

/// The deployment files in deploy/ must keep providing what the server depends on: the probe endpoints, port 4200,
/// the data and rules locations, a non-root user, the reload and stop signals. deploy/check.sh checks the same and
/// more (systemd-analyze, a real YAML parser); these run with `swift test`, so a change to the server's contract and
/// a stale manifest fail together. The files are read as text: Yams is not a dependency of this target.
@Suite struct DeployTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL

    static func text(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    /// Just enough of YAML's block structure to find values: each line's indentation and its text, without blank and
    /// comment-only lines, which would otherwise end a block early.
    struct Outline {
        var lines: [(indent: Int, text: String)]

        init(_ source: String) {
            lines = source.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line -> (indent: Int, text: String)? in
                let text = line.drop { $0 == " " }
                if text.isEmpty || text.hasPrefix("#") { return nil }
                return (line.count - text.count, String(text))
            }
        }

        init(lines: [(indent: Int, text: String)]) { self.lines = lines }

        /// The lines nested under the first line that reads `key` (for example "livenessProbe:"), at any depth.
        func block(_ key: String) -> Outline {
            // The outermost line with that key (a service named like a key deeper down, e.g. under depends_on, wins).
            let matches = lines.indices.filter { lines[$0].text == key || lines[$0].text == "- " + key }
            guard let start = matches.min(by: { lines[$0].indent < lines[$1].indent }) else { return Outline(lines: []) }
            let indent = lines[start].indent + (lines[start].text.hasPrefix("- ") ? 2 : 0)
            let rest = lines[(start + 1)...].prefix { $0.indent > indent }
            return Outline(lines: Array(rest))
        }

        /// Every value written as `key: value` (or `- key: value`), at any depth, without quotes.
        func values(_ key: String) -> [String] {
            lines.compactMap { line in
                var text = Substring(line.text)
                if text.hasPrefix("- ") { text = text.dropFirst(2) }
                guard text.hasPrefix(key + ":") else { return nil }
                return text.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            }
        }

        /// The keys at the block's outermost level.
        var keys: [String] {
            let top = lines.map(\.indent).min() ?? 0
            return lines.filter { $0.indent == top && $0.text.hasSuffix(":") }.map { String($0.text.dropLast()) }
        }

        /// The value of an environment entry `- name: NAME` followed by `value: ...`.
        func environment(_ name: String) -> String? {
            guard let index = lines.firstIndex(where: { $0.text == "- name: \(name)" }), index + 1 < lines.count else { return nil }
            return Outline(lines: [lines[index + 1]]).values("value").first
        }
    }

    @Test func kustomizationListsEachKubernetesKindOnce() throws {
        let resources = Outline(try Self.text("deploy/kubernetes/kustomization.yaml")).block("resources:").lines.map { $0.text }
        #expect(resources.allSatisfy { $0.hasPrefix("- ") && $0.hasSuffix(".yaml") }, "\(resources)")
        var kinds: [String] = []
        for resource in resources {
            let manifest = Outline(try Self.text("deploy/kubernetes/" + String(resource.dropFirst(2))))
            kinds += manifest.lines.filter { $0.indent == 0 && $0.text.hasPrefix("kind:") }.map {
                $0.text.dropFirst("kind:".count).trimmingCharacters(in: .whitespaces)
            }
            #expect(manifest.values("namespace").isEmpty, "\(resource) must not pin a namespace")
        }
        #expect(kinds.sorted() == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Secret", "Service"])
    }

    @Test func deploymentProbesThePortAndMountsDataRulesAndTokens() throws {
        let deployment = Outline(try Self.text("deploy/kubernetes/deployment.yaml"))
        #expect(deployment.block("livenessProbe:").values("path") == ["/healthz"])
        #expect(deployment.block("readinessProbe:").values("path") == ["/readyz"])
        #expect(deployment.values("containerPort") == ["4200"])
        #expect(deployment.values("replicas") == ["1"])
        #expect(deployment.block("strategy:").values("type") == ["Recreate"], "SQLite is single-writer: no rolling update")
        #expect(deployment.values("enableServiceLinks") == ["false"], "a Service named tripline would set TRIPLINE_PORT")

        let mounts = deployment.values("mountPath")
        #expect(mounts.contains("/var/lib/tripline"))
        #expect(mounts.contains { $0 == "/etc/tripline/rules" || $0.hasPrefix("/etc/tripline/rules/") }, "\(mounts)")
        #expect(deployment.environment("TRIPLINE_DATABASE") == "/var/lib/tripline/tripline.sqlite")
        #expect(deployment.environment("TRIPLINE_RULES") == "/etc/tripline/rules")
        let tokens = try #require(deployment.environment("TRIPLINE_API_TOKENS_FILE"))
        #expect(mounts.contains { tokens.hasPrefix($0 + "/") }, "the tokens file \(tokens) lies on a mounted volume")
        #expect(deployment.values("secretName") == ["tripline-api-tokens"])
        #expect(Outline(try Self.text("deploy/kubernetes/secret.yaml")).values("name") == ["tripline-api-tokens"])
        #expect(deployment.values("readOnlyRootFilesystem") == ["true"])
        #expect(deployment.values("runAsNonRoot") == ["true"])
    }

    @Test func rulesConfigMapHoldsValidAutomations() throws {
        let source = try Self.text("deploy/kubernetes/configmap.yaml")
        // Each key of `data:` is a block scalar (`name.yaml: |`) holding one rules file.
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let dataLine = try #require(lines.firstIndex(of: "data:"))
        var files: [String: String] = [:]
        var current: String?
        for line in lines[(dataLine + 1)...] {
            if line.hasPrefix("  "), !line.hasPrefix("   "), line.hasSuffix(": |") {
                let name = String(line.dropFirst(2).dropLast(3))
                files[name] = ""
                current = name
            } else if let name = current, line.hasPrefix("    ") || line.isEmpty {
                files[name, default: ""] += String(line.dropFirst(4)) + "\n"
            }
        }
        #expect(!files.isEmpty)
        for (name, text) in files {
            let loaded = Automation.load(text: text, file: name)
            #expect(loaded.errors.isEmpty, "\(name): \(loaded.errors.map(\.description))")
            #expect(loaded.automations.count == 1, "\(name)")
        }
    }

    @Test func dockerfileRuntimeStageRunsAsNonRootWithHealthCheckVolumeAndPort() throws {
        let dockerfile = try Self.text("deploy/Dockerfile")
        let stages = dockerfile.components(separatedBy: "\nFROM ")
        #expect(stages.count == 3, "a build and a runtime stage")
        #expect(stages[1].hasPrefix("${SWIFT_IMAGE} AS build") && dockerfile.contains("ARG SWIFT_IMAGE=swift:6.1-bookworm"))
        let runtime = try #require(stages.last)
        #expect(runtime.hasPrefix("${RUNTIME_IMAGE}") && dockerfile.contains("ARG RUNTIME_IMAGE=debian:bookworm-slim"))
        let lines = runtime.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("#") }
        let user = try #require(lines.last { $0.hasPrefix("USER ") })
        #expect(!["USER root", "USER 0", "USER 0:0"].contains(user), "\(user)")
        let healthCheck = try #require(lines.firstIndex { $0.hasPrefix("HEALTHCHECK ") })
        #expect(lines[healthCheck...].prefix(2).joined().contains("/healthz"))
        #expect(lines.contains("VOLUME /var/lib/tripline"))
        #expect(lines.contains("EXPOSE 4200"))
        #expect(lines.contains(#"ENTRYPOINT ["tripline"]"#))
        #expect(lines.contains(#"CMD ["serve", "--host", "0.0.0.0"]"#))
        let words = Set(lines.joined(separator: " ").split(separator: " ").map(String.init))
        for library in ["libsqlite3-0", "libssl3", "librdkafka1", "ca-certificates", "curl"] {
            #expect(words.contains(library), "runtime stage installs \(library)")
        }
        // Nothing links Foundation's networking or XML modules, so their C libraries stay out of the image.
        for library in ["libcurl4", "libxml2"] {
            #expect(!words.contains(library), "runtime stage does not install \(library)")
        }
    }

    @Test func systemdUnitStartsReloadsAndStopsTheServer() throws {
        let unit = try Self.text("deploy/systemd/tripline.service")
        let service = try #require(unit.components(separatedBy: "\n[Service]\n").last?.components(separatedBy: "\n[").first)
        let lines = Set(service.split(separator: "\n").map(String.init))
        #expect(lines.contains("ExecStart=/usr/local/bin/tripline serve --database /var/lib/tripline/tripline.sqlite --rules /etc/tripline/rules"))
        #expect(lines.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        #expect(lines.contains("KillSignal=SIGTERM"))
        #expect(lines.contains { $0.hasPrefix("TimeoutStopSec=") })
        #expect(lines.isSuperset(of: ["Restart=on-failure", "StateDirectory=tripline", "ProtectSystem=strict", "NoNewPrivileges=yes"]))
    }

    @Test func composeRunsTriplineAloneAndTheRestOnlyInTheScaleOutProfile() throws {
        let services = Outline(try Self.text("deploy/compose.yaml")).block("services:")
        #expect(Set(services.keys) == ["tripline", "tripline-shared", "postgres", "kafka"])
        let tripline = services.block("tripline:")
        #expect(tripline.values("profiles").isEmpty)
        #expect(tripline.lines.contains { $0.text == "- tripline-data:/var/lib/tripline" })
        #expect(tripline.lines.contains { $0.text == "- ../rules:/etc/tripline/rules:ro" })
        #expect(tripline.block("secrets:").lines.map(\.text) == ["- tripline_api_tokens"])
        for optional in ["tripline-shared:", "postgres:", "kafka:"] {
            #expect(services.block(optional).values("profiles") == ["[scale-out]"], "\(optional)")
        }
        let shared = services.block("tripline-shared:")
        #expect(shared.lines.contains { $0.text == "TRIPLINE_DATABASE_URL: postgres://tripline@postgres:5432/tripline?sslmode=disable" })
        #expect(shared.lines.contains { $0.text == "TRIPLINE_DATABASE_PASSWORD_FILE: /run/secrets/postgres_password" })
    }
}
