import Foundation
import Testing
import TriplineIngest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Webhook deliveries through a running server over a real socket: every fixture with its expected outcome, plus
/// tampered, stale, empty, truncated, huge and wrongly typed requests; the delivery history; secrets never echoed.
@Suite(.serialized) struct WebhookEndToEndTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../TriplineIngestTests/Fixtures")
        .standardizedFileURL
    static let githubSecret = "It's a Secret to Everybody"
    static let stripeSecret = "whsec_test_secret"
    static let s3Token = "lake-token-5f1e"
    static let linearSecret = "linear-signing-2b7d"

    static let rules: [String: String] = [
        "webhooks/github.yaml": """
            slug: github
            preset: github
            secrets: [env:TEST_GITHUB_SECRET, env:TEST_GITHUB_SECRET_NEXT]
            keep_failed_bodies: true
            max_body_size: 1000000
            """,
        "webhooks/others.yaml": """
            - slug: stripe
              preset: stripe
              secret: env:TEST_STRIPE_SECRET
            - slug: sns
              preset: aws-sns
              topics: ["arn:aws:sns:us-east-2:295079676684:publish-and-verify-*"]
            - slug: lake
              preset: aws-s3
              auth: {bearer: env:TEST_S3_TOKEN}
            - slug: ce
              preset: cloudevents
              unauthenticated: true
            - slug: unconfigured
              preset: stripe
              secret: env:TEST_NOT_SET_ANYWHERE
            """,
        "webhooks/linear.yaml": """
            slug: linear
            preset: generic
            signature: {header: Linear-Signature, algorithm: sha256, encoding: hex}
            secret: env:TEST_LINEAR_SECRET
            sample: samples/linear.json
            template: |
              {"event": "linear.{{ body.type }}.{{ body.action }}",
               "resource": {"prefect.resource.id": "linear.issue.{{ body.data.id }}", "linear.team": {{ body.data.team.key|json }}},
               "payload": {"title": {{ body.data.title|json }}, "headers": {{ headers|json }}}}
            """,
        "webhooks/samples/linear.json": #"{"type":"Issue","action":"create","data":{"id":"ISS-1","title":"Broken build","team":{"key":"ENG"}}}"#,
        "automations/push.yaml": """
            name: any push
            trigger: {type: event, posture: Reactive, expect: [github.push], match: {prefect.resource.id: "github.repository.*"}}
            actions: [{type: do-nothing}]
            """,
    ]

    func server() async throws -> ServerProcess {
        let server = try ServerProcess(rules: Self.rules)
        server.environment = [
            "TEST_GITHUB_SECRET": "an-old-secret", "TEST_GITHUB_SECRET_NEXT": Self.githubSecret, "TEST_STRIPE_SECRET": Self.stripeSecret,
            "TEST_S3_TOKEN": Self.s3Token, "TRIPLINE_SNS_CERTIFICATES": Self.fixtures.appendingPathComponent("aws/sns").path,
            "TEST_LINEAR_SECRET": Self.linearSecret,
        ]
        // The fixture certificate's file name is the last path component of the messages' SigningCertURL.
        let pinned = server.folder.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: pinned, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: Self.fixtures.appendingPathComponent("aws/sns/real-signing-cert.SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"),
            to: pinned.appendingPathComponent("SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"))
        server.environment["TRIPLINE_SNS_CERTIFICATES"] = pinned.path
        try await server.start()
        return server
    }

    func body(_ path: String) throws -> Data { try Data(contentsOf: Self.fixtures.appendingPathComponent(path)) }

    func headers(_ path: String) throws -> [String: String] {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent(path.replacingOccurrences(of: ".json", with: ".headers.json")))
        return (try JSONSerialization.jsonObject(with: data) as? [String: String]) ?? [:]
    }

    func fixtureBodies(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.appendingPathComponent(folder).path)
            .filter { $0.hasSuffix(".headers.json") && !$0.hasPrefix("malformed") }
            .map { "\(folder)/\($0.replacingOccurrences(of: ".headers.json", with: ".json"))" }.sorted()
    }

    func deliveries(_ server: ServerProcess, _ slug: String) async throws -> [[String: Any]] {
        let (status, list) = try await server.json("GET", "/api/webhooks/\(slug)/deliveries?limit=1000")
        #expect(status == 200)
        return list as? [[String: Any]] ?? []
    }

    func storedEvents(_ server: ServerProcess, named names: [String]) async throws -> [[String: Any]] {
        let names = String(data: try JSONSerialization.data(withJSONObject: names), encoding: .utf8)!
        let filter = #"{"filter": {"occurred": {"since": "1970-01-01T00:00:00Z"}, "event": {"name": \#(names)}}, "limit": 50}"#
        let (_, page) = try await server.json("POST", "/api/events/filter", json: filter)
        return (page as? [String: Any])?["events"] as? [[String: Any]] ?? []
    }

    @Test func githubDeliveriesAreVerifiedStoredOnceAndFire() async throws {
        let server = try await server()
        let bodies = try fixtureBodies("github")
        #expect(bodies.count >= 12)
        for path in bodies {
            let (status, answer) = try await server.send("POST", "/hooks/github", body: try body(path), headers: try headers(path))
            #expect(status == 200, "\(path): \(String(decoding: answer, as: UTF8.self))")
        }
        // GitHub redelivers with the same X-GitHub-Delivery: stored once.
        let (again, answer) = try await server.send("POST", "/hooks/github", body: try body("github/push.json"), headers: try headers("github/push.json"))
        #expect(again == 200)
        #expect((try JSONSerialization.jsonObject(with: answer) as? [String: Any])?["duplicates"] as? Int == 1)
        let pushes = try await storedEvents(server, named: ["github.push"])
        #expect(pushes.count == 2, "push.json and push.new-branch.json, each once")
        let (_, firings) = try await server.json("GET", "/api/firings")
        #expect((firings as? [[String: Any]])?.filter { $0["automation"] as? String == "any push" }.count == 2)

        // Refusals, each with its status and a reason that does not leak the secret.
        let push = try body("github/push.json")
        var tampered = push
        tampered[100] ^= 0x01
        var cases: [(String, Data, [String: String], Int)] = [
            ("tampered body", tampered, try headers("github/push.json"), 401),
            ("no signature", push, try headers("github/push.json").filter { !$0.key.hasPrefix("X-Hub-Signature") }, 401),
            ("sha1 only", push, try headers("github/push.json").filter { $0.key != "X-Hub-Signature-256" }, 401),
            ("truncated JSON", try body("github/malformed.truncated-ping.json"), try headers("github/malformed.truncated-ping.json"), 400),
            ("wrong content type", push, try headers("github/push.json").merging(["Content-Type": "text/csv"]) { $1 }, 415),
        ]
        let empty = Data()
        let emptySignature = "sha256=" + ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: Array(Self.githubSecret.utf8), message: [UInt8]()))
        cases.append(("empty body", empty, ["X-GitHub-Event": "ping", "X-Hub-Signature-256": emptySignature, "Content-Type": "application/json"], 400))
        let huge = Data(repeating: UInt8(ascii: " "), count: 1_200_000)
        cases.append(("huge body", huge, ["X-GitHub-Event": "ping", "X-Hub-Signature-256": emptySignature, "Content-Type": "application/json"], 413))
        for (name, data, requestHeaders, expected) in cases {
            let (status, answer) = try await server.send("POST", "/hooks/github", body: data, headers: requestHeaders)
            #expect(status == expected, "\(name): \(String(decoding: answer.prefix(300), as: UTF8.self))")
            let text = String(decoding: answer, as: UTF8.self)
            #expect(text.contains("detail"), "\(name): a JSON reason")
            #expect(!text.contains(Self.githubSecret) && !text.contains("an-old-secret"))
        }
        let (unknown, _) = try await server.send("POST", "/hooks/nope", body: push, headers: try headers("github/push.json"))
        #expect(unknown == 404)
        let (delete, deleteAnswer) = try await server.send("DELETE", "/hooks/github", body: Data(), headers: [:])
        #expect(delete == 405, "\(String(decoding: deleteAnswer, as: UTF8.self))")
        let (ping, _) = try await server.send("GET", "/hooks/github", body: Data(), headers: [:])
        #expect(ping == 200)

        // The history, newest first, with reasons and the kept body of a failure.
        let history = try await deliveries(server, "github")
        #expect(history.count == bodies.count + 1 + cases.count + 2)
        #expect(history.first?["method"] as? String == "GET")
        #expect(history.contains { $0["method"] as? String == "DELETE" && $0["status"] as? Int == 405 })
        #expect(history.first { $0["code"] as? String == "too_large" }?["size"] as? Int == 1_200_000, "the declared size of a refused body")
        let reasons = Set(history.compactMap { $0["code"] as? String })
        #expect(reasons.isSuperset(of: ["bad_signature", "missing_signature", "malformed", "unsupported_media_type", "too_large"]))
        let tamperedRecord = try #require(history.first { $0["code"] as? String == "bad_signature" })
        #expect(tamperedRecord["body_kept"] as? Bool == true)
        let (_, detail) = try await server.json("GET", "/api/webhooks/github/deliveries/\(tamperedRecord["id"] as? Int ?? 0)")
        #expect(((detail as? [String: Any])?["body_base64"] as? String).flatMap { Data(base64Encoded: $0) } == tampered)
        let accepted = history.filter { $0["outcome"] as? String == "accepted" }
        #expect(accepted.count == bodies.count + 1)
        #expect(accepted.allSatisfy { ($0["event_ids"] as? [String])?.count == 1 && $0["body_kept"] as? Bool == false })

        let (_, metricsData) = try await server.request("GET", "/metrics")
        let metrics = String(decoding: metricsData, as: UTF8.self)
        #expect(metrics.contains(#"tripline_webhook_rejections_total{slug="github",reason="bad_signature"}"#))
        #expect(metrics.contains(#"tripline_webhook_deliveries_total{slug="github",outcome="accepted"}"#))
        let (_, endpoints) = try await server.request("GET", "/api/webhooks")
        let listing = String(decoding: endpoints, as: UTF8.self)
        #expect(listing.contains(#""slug":"unconfigured""#) && listing.contains("TEST_NOT_SET_ANYWHERE"))
        for secret in [Self.githubSecret, "an-old-secret", Self.stripeSecret, Self.s3Token] {
            #expect(!listing.contains(secret))
            #expect(!server.log().contains(secret), "the log never contains a secret")
        }
        try await server.stop()
    }

    @Test func stripeSNSS3AndCloudEventsDeliveries() async throws {
        let server = try await server()
        // Stripe: the fixtures signed at their own time are replays now; re-signed now they are accepted. (Their event
        // ids are anonymised to one value; each gets its own here, and the original id shows deduplication.)
        for (number, path) in try fixtureBodies("stripe").enumerated() {
            let original = try body(path)
            let (stale, _) = try await server.send("POST", "/hooks/stripe", body: original, headers: try headers(path))
            #expect(stale == 401, "\(path): an old signature is a replay")
            let data = Data(String(decoding: original, as: UTF8.self).replacingOccurrences(of: "evt_000000000000000000000000", with: "evt_\(number)").utf8)
            let t = Int(Date().timeIntervalSince1970)
            let signature = ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: Array(Self.stripeSecret.utf8), message: Array("\(t).".utf8) + [UInt8](data)))
            let (fresh, answer) = try await server.send(
                "POST", "/hooks/stripe", body: data, headers: ["Content-Type": "application/json", "Stripe-Signature": "t=\(t),v1=\(signature)"])
            #expect(fresh == 200, "\(path): \(String(decoding: answer, as: UTF8.self))")
        }
        let t = Int(Date().timeIntervalSince1970)
        let duplicate = [UInt8](try body("stripe/charge.refunded.json"))
        let signature = ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: Array(Self.stripeSecret.utf8), message: Array("\(t).".utf8) + duplicate))
        let (_, twice) = try await server.send(
            "POST", "/hooks/stripe", body: Data(duplicate), headers: ["Content-Type": "application/json", "Stripe-Signature": "t=\(t),v1=\(signature)"])
        let (_, thrice) = try await server.send(
            "POST", "/hooks/stripe", body: Data(duplicate), headers: ["Content-Type": "application/json", "Stripe-Signature": "t=\(t),v1=\(signature)"])
        #expect((try JSONSerialization.jsonObject(with: twice) as? [String: Any])?["duplicates"] as? Int == 0)
        #expect((try JSONSerialization.jsonObject(with: thrice) as? [String: Any])?["duplicates"] as? Int == 1, "a redelivered Stripe event is stored once")
        let stripeCodes = try await deliveries(server, "stripe").compactMap { $0["code"] as? String }
        #expect(stripeCodes.contains("stale_timestamp"))
        let failedPayments = try await storedEvents(server, named: ["stripe.payment_intent.payment_failed", "stripe.invoice.payment_failed"])
        #expect(failedPayments.count == 2)

        // SNS: the real AWS-signed messages verify with the pinned certificate; a changed message does not.
        for path in ["aws/sns/real-notification.sigv1.json", "aws/sns/real-notification.sigv2.json"] {
            let (status, answer) = try await server.send("POST", "/hooks/sns", body: try body(path), headers: try headers(path))
            #expect(status == 200, "\(path): \(String(decoding: answer, as: UTF8.self))")
            let changed = String(decoding: try body(path), as: UTF8.self).replacingOccurrences(of: "Hello world", with: "Hello World")
            let (refused, _) = try await server.send("POST", "/hooks/sns", body: Data(changed.utf8), headers: try headers(path))
            #expect(refused == 401)
        }
        #expect(try await storedEvents(server, named: ["aws.sns.Notification"]).count == 2)

        // S3 notifications with the endpoint's bearer token.
        let auth = ["Authorization": "Bearer \(Self.s3Token)", "Content-Type": "application/json"]
        let (s3, _) = try await server.send("POST", "/hooks/lake", body: try body("aws/s3/aws-lambda-go-s3-event.percent-encoded-key.json"), headers: auth)
        #expect(s3 == 200)
        let (testEvent, _) = try await server.send("POST", "/hooks/lake", body: try body("aws/s3/doc-test-event.json"), headers: auth)
        #expect(testEvent == 200)
        let (noToken, _) = try await server.send("POST", "/hooks/lake", body: try body("aws/s3/doc-objectcreated-put.json"), headers: ["Content-Type": "application/json"])
        #expect(noToken == 401)
        let (bridge, _) = try await server.send("POST", "/hooks/lake", body: try body("aws/eventbridge/powertools-object-created.json"), headers: auth)
        #expect(bridge == 200)
        let objects = try await storedEvents(server, named: ["aws.s3.ObjectCreated:Put"])
        #expect(objects.count == 2)
        let keys = Set(objects.compactMap { ($0["resource"] as? [String: String])?["aws.s3.key"] })
        #expect(keys == ["Happy Face.jpg", "IMG_m7fzo3.jpg"])
        let lake = try await deliveries(server, "lake")
        #expect(lake.map { $0["outcome"] as? String } == ["accepted", "rejected", "ignored", "accepted"])

        // CloudEvents, structured and binary.
        let (structured, _) = try await server.send(
            "POST", "/hooks/ce", body: try body("cloudevents/spec-C234.structured.json"), headers: ["Content-Type": "application/cloudevents+json"])
        #expect(structured == 200)
        let binaryFixture = try JSONSerialization.jsonObject(with: try body("cloudevents/spec-B234.binary-http.json")) as? [String: Any] ?? [:]
        let (binary, _) = try await server.send(
            "POST", "/hooks/ce", body: Data((binaryFixture["body"] as? String ?? "").utf8), headers: binaryFixture["headers"] as? [String: String] ?? [:])
        #expect(binary == 200)
        let (notCloudEvent, _) = try await server.send("POST", "/hooks/ce", body: Data("{}".utf8), headers: ["Content-Type": "text/plain"])
        #expect(notCloudEvent == 415)
        #expect(try await storedEvents(server, named: ["com.example.someevent"]).count == 2)

        // An endpoint whose secret is not set answers 503 and says so without naming a value.
        let (unconfigured, answer) = try await server.send("POST", "/hooks/unconfigured", body: Data("{}".utf8), headers: ["Content-Type": "application/json"])
        #expect(unconfigured == 503)
        #expect(String(decoding: answer, as: UTF8.self).contains("not configured"))
        try await server.stop()
    }

    @Test func templatesMapVerifiedRequestsToEvents() async throws {
        let server = try await server()
        let body = Data(#"{"type":"Issue","action":"update","data":{"id":"ISS-7","title":"Say \"hi\"\nplease","team":{"key":"OPS"}}}"#.utf8)
        let signature = ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: Array(Self.linearSecret.utf8), message: [UInt8](body)))
        let headers = ["Content-Type": "application/json", "Linear-Signature": signature, "User-Agent": "Linear-Webhook"]
        let (status, answer) = try await server.send("POST", "/hooks/linear", body: body, headers: headers)
        #expect(status == 200, "\(String(decoding: answer, as: UTF8.self))")
        let events = try await storedEvents(server, named: ["linear.Issue.update"])
        let event = try #require(events.first)
        #expect((event["resource"] as? [String: String])?["prefect.resource.id"] == "linear.issue.ISS-7")
        #expect((event["resource"] as? [String: String])?["linear.team"] == "OPS")
        let payload = event["payload"] as? [String: Any]
        #expect(payload?["title"] as? String == "Say \"hi\"\nplease", "the json filter keeps quotes and newlines intact")
        let seenHeaders = payload?["headers"] as? [String: String] ?? [:]
        #expect(seenHeaders["user-agent"] == "Linear-Webhook")
        #expect(seenHeaders["linear-signature"] == nil, "templates never see signatures")
        // The same delivery again: the id derives from what the template rendered, so it is stored once.
        let (_, again) = try await server.send("POST", "/hooks/linear", body: body, headers: headers)
        #expect((try JSONSerialization.jsonObject(with: again) as? [String: Any])?["duplicates"] as? Int == 1)
        // Verified first: a wrong signature never reaches the template.
        let (refused, _) = try await server.send("POST", "/hooks/linear", body: body, headers: headers.merging(["Linear-Signature": "00"]) { $1 })
        #expect(refused == 401)
        // A body the template cannot turn into an event: 422 with the reason.
        let scalar = Data("42".utf8)
        let scalarSignature = ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: Array(Self.linearSecret.utf8), message: [UInt8](scalar)))
        let (unmapped, reason) = try await server.send("POST", "/hooks/linear", body: scalar, headers: headers.merging(["Linear-Signature": scalarSignature]) { $1 })
        #expect(unmapped == 422, "\(String(decoding: reason, as: UTF8.self))")
        try await server.stop()
    }

    @Test func webhooksNeedNoAPITokenButTheHistoryDoes() async throws {
        let server = try ServerProcess(rules: Self.rules)
        let tokens = server.folder.appendingPathComponent("tokens")
        try "read reader-token-0123456789\ningest ingest-token-0123456789\n".write(to: tokens, atomically: true, encoding: .utf8)
        server.environment = [
            "TEST_GITHUB_SECRET": Self.githubSecret, "TEST_GITHUB_SECRET_NEXT": "a-second-secret", "TRIPLINE_API_TOKENS_FILE": tokens.path,
        ]
        try await server.start()
        let (status, _) = try await server.send("POST", "/hooks/github", body: try body("github/ping.json"), headers: try headers("github/ping.json"))
        #expect(status == 200)
        let (anonymous, _) = try await server.request("GET", "/api/webhooks/github/deliveries")
        #expect(anonymous == 401)
        let (ingestOnly, _) = try await server.request("GET", "/api/webhooks/github/deliveries", headers: ["Authorization": "Bearer ingest-token-0123456789"])
        #expect(ingestOnly == 403)
        let (reader, _) = try await server.request("GET", "/api/webhooks/github/deliveries", headers: ["Authorization": "Bearer reader-token-0123456789"])
        #expect(reader == 200)
        // The command line reads the same history.
        let output = try runTripline(["webhooks", "deliveries", "github", "--api-url", server.baseURL + "/api"], environment: ["TRIPLINE_API_TOKEN": "reader-token-0123456789"])
        #expect(output.status == 0)
        #expect(output.text.contains("accepted") && output.text.contains("github.ping"), "\(output.text)")
        let refused = try runTripline(["webhooks", "ls", "--api-url", server.baseURL + "/api"], environment: ["TRIPLINE_API_TOKEN": "ingest-token-0123456789"])
        #expect(refused.status == 1)
        #expect(refused.text.contains("403"))
        try await server.stop()
    }
}

/// Runs the built `tripline` with `arguments`; returns its exit status and its output (stdout and stderr).
func runTripline(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, text: String) {
    let process = Process()
    process.executableURL = try #require(ServerProcess.executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

extension WebhookEndToEndTests {
    /// Event sizes are checked per event: a large push is stored where the endpoint allows large bodies, and a large
    /// batch of small CloudEvents is stored anywhere; only an event over its limit is refused, naming both sizes.
    /// Deliveries share the event API's ingest budget: beyond it they wait their turn, and none is lost.
    @Test func deliveriesBeyondTheIngestBudgetWaitAndAreAllAccepted() async throws {
        let server = try ServerProcess(rules: [
            "webhooks/ce.yaml": """
                slug: ce
                preset: cloudevents
                unauthenticated: true
                """
        ])
        try await server.start(extraArguments: ["--ingest-budget", "4096"])
        let statuses = try await server.concurrently(clients: 16, requests: 8) { client, number in
            // About 1.5 KB each: two or three fit in the budget at once.
            let body = #"{"specversion":"1.0","id":"budget-\#(client)-\#(number)","source":"/tests/budget","type":"com.example.budget","data":{"note":"\#(String(repeating: "n", count: 1_400))"}}"#
            return try await server.send("POST", "/hooks/ce", body: Data(body.utf8), headers: ["Content-Type": "application/cloudevents+json"]).0
        }
        #expect(statuses.count == 128)
        #expect(statuses.allSatisfy { $0 == 200 }, "\(Set(statuses))")
        let (_, page) = try await server.json(
            "POST", "/api/events/filter", json: #"{"filter": {"occurred": {"since": "1970-01-01T00:00:00Z"}, "event": {"name": ["com.example.budget"]}}, "limit": 0}"#)
        #expect((page as? [String: Any])?["total"] as? Int == 128)
        #expect(try await server.metric("tripline_ingest_budget_waits_total") ?? 0 > 0, "16 senders over a budget of about three deliveries wait")
        try await server.stop()
    }

    @Test func largeDeliveriesAreLimitedPerEventAndByTheEndpointsBodySize() async throws {
        let server = try ServerProcess(rules: [
            "webhooks/hooks.yaml": """
                - slug: big
                  preset: github
                  secret: env:TEST_GITHUB_SECRET
                  max_body_size: 26214400
                - slug: plain
                  preset: github
                  secret: env:TEST_GITHUB_SECRET
                - slug: ce
                  preset: cloudevents
                  unauthenticated: true
                """
        ])
        server.environment = ["TEST_GITHUB_SECRET": Self.githubSecret]
        try await server.start()
        var push = try #require(try JSONSerialization.jsonObject(with: try body("github/push.json")) as? [String: Any])
        var commit = push["head_commit"] as? [String: Any] ?? [:]
        commit["message"] = String(repeating: "a long commit message ", count: 100_000)
        push["head_commit"] = commit
        let large = try JSONSerialization.data(withJSONObject: push)
        #expect(large.count > 2_000_000)
        let signature = "sha256=" + ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: Array(Self.githubSecret.utf8), message: [UInt8](large)))
        var headers = try headers("github/push.json")
        headers["X-Hub-Signature-256"] = signature
        headers["X-GitHub-Delivery"] = "0c5b1c7e-3f2a-4d7e-9b1a-000000000001"
        let (stored, answer) = try await server.send("POST", "/hooks/big", body: large, headers: headers)
        #expect(stored == 200, "\(String(decoding: answer, as: UTF8.self))")
        let events = try await storedEvents(server, named: ["github.push"])
        #expect(events.count == 1)
        let message = ((events.first?["payload"] as? [String: Any])?["head_commit"] as? [String: Any])?["message"] as? String
        #expect(message?.utf8.count == 2_200_000, "the whole push was stored")

        headers["X-GitHub-Delivery"] = "0c5b1c7e-3f2a-4d7e-9b1a-000000000002"
        let (refused, reason) = try await server.send("POST", "/hooks/plain", body: large, headers: headers)
        #expect(refused == 413)
        let detail = String(decoding: reason, as: UTF8.self)
        #expect(detail.contains("event 0 made from this delivery is") && detail.contains("more than the limit of 1500000 bytes"), "\(detail)")
        #expect(try await deliveries(server, "plain").first?["reason"] as? String != nil)

        // 8,000 small CloudEvents in one 2.4 MB batch: every event is far below the limit.
        let batch = (0..<8_000).map { number in
            #"{"specversion":"1.0","id":"batch-\#(number)","source":"/tests/batch","type":"com.example.batch.item","data":{"number":\#(number),"note":"\#(String(repeating: "n", count: 200))"}}"#
        }
        let batchBody = Data(("[" + batch.joined(separator: ",") + "]").utf8)
        #expect(batchBody.count > 2_000_000)
        let (accepted, batchAnswer) = try await server.send(
            "POST", "/hooks/ce", body: batchBody, headers: ["Content-Type": "application/cloudevents-batch+json"])
        #expect(accepted == 200, "\(String(decoding: batchAnswer.prefix(500), as: UTF8.self))")
        #expect((try JSONSerialization.jsonObject(with: batchAnswer) as? [String: Any])?["accepted"] as? Int == 8_000)
        try await server.stop()
    }
}

extension WebhookEndToEndTests {
    /// A request described by a fixture: `{method, headers, body}` (the CloudEvents HTTP examples).
    func describedRequest(_ path: String) throws -> (method: String, headers: [String: String], body: Data) {
        let object = try #require(try JSONSerialization.jsonObject(with: try body(path)) as? [String: Any])
        var headers = (object["headers"] as? [String: String]) ?? [:]
        headers = headers.filter { !["host", "content-length"].contains($0.key.lowercased()) }
        return (object["method"] as? String ?? "POST", headers, Data((object["body"] as? String ?? "").utf8))
    }

    /// The fixtures the other tests read in-process, through the running server as senders would post them: the
    /// CloudEvents examples and conformance cases, the S3, SQS and EventBridge notifications, and GitHub's signature
    /// vectors.
    @Test func everyCloudEventsAWSAndSignatureVectorFixtureOverASocket() async throws {
        let server = try await server()
        for name in ["B234", "C234", "C234num", "D234str"] {
            let binary = try describedRequest("cloudevents/spec-\(name).binary-http.json")
            let (status, answer) = try await server.send(binary.method, "/hooks/ce", body: binary.body, headers: binary.headers)
            #expect(status == 200, "spec-\(name) binary: \(String(decoding: answer, as: UTF8.self))")
            let (structured, structuredAnswer) = try await server.send(
                "POST", "/hooks/ce", body: try body("cloudevents/spec-\(name).structured.json"), headers: ["Content-Type": "application/cloudevents+json"])
            #expect(structured == 200, "spec-\(name) structured: \(String(decoding: structuredAnswer, as: UTF8.self))")
            #expect((try JSONSerialization.jsonObject(with: structuredAnswer) as? [String: Any])?["duplicates"] as? Int == 1, "the same (source, id) in both modes")
        }
        for name in ["conformance-http-binary", "conformance-http-structured"] {
            let request = try describedRequest("cloudevents/\(name).json")
            let (status, answer) = try await server.send(request.method, "/hooks/ce", body: request.body, headers: request.headers)
            #expect(status == 200, "\(name): \(String(decoding: answer, as: UTF8.self))")
        }
        for (file, expected) in [("conformance-valid-events.subset.json", 200), ("conformance-invalid-events.subset.json", 400)] {
            let suite = try #require(try JSONSerialization.jsonObject(with: try body("cloudevents/\(file)")) as? [String: Any])
            let cases = try #require(suite["tests"] as? [[String: Any]])
            #expect(!cases.isEmpty)
            for test in cases {
                let event = try JSONSerialization.data(withJSONObject: test["event"] ?? [:])
                let (status, answer) = try await server.send("POST", "/hooks/ce", body: event, headers: ["Content-Type": "application/cloudevents+json"])
                #expect(status == expected, "\(file) \(test["id"] ?? "?"): \(String(decoding: answer, as: UTF8.self))")
            }
        }
        let wrongType = try describedRequest("cloudevents/malformed.structured-with-wrong-content-type.json")
        let (unsupported, _) = try await server.send("POST", "/hooks/ce", body: wrongType.body, headers: ["Content-Type": "text/plain"])
        #expect(unsupported == 415)

        let auth = ["Content-Type": "application/json", "Authorization": "Bearer \(Self.s3Token)"]
        for path in [
            "aws/s3/doc-objectcreated-put.json", "aws/s3/powertools-s3Event.json", "aws/s3/powertools-s3EventGlacier.json", "aws/sqs/powertools-s3SqsEvent.json",
        ] {
            let (status, answer) = try await server.send("POST", "/hooks/lake", body: try body(path), headers: auth)
            #expect(status == 200, "\(path): \(String(decoding: answer, as: UTF8.self))")
            #expect(((try? JSONSerialization.jsonObject(with: answer)) as? [String: Any])?["accepted"] as? Int ?? 0 >= 1, "\(path) made events")
        }
        let (snsInSQS, snsAnswer) = try await server.send("POST", "/hooks/lake", body: try body("aws/sqs/powertools-snsSqsEvent.json"), headers: auth)
        #expect(snsInSQS == 200)
        #expect((try JSONSerialization.jsonObject(with: snsAnswer) as? [String: Any])?["accepted"] as? Int == 0, "an SNS message without S3 records in SQS")

        let vectors = try #require(
            (try JSONSerialization.jsonObject(with: try body("github/signature-vectors.json")) as? [String: Any])?["vectors"] as? [[String: Any]])
        for (number, vector) in vectors.enumerated() {
            let payload: Data
            if let file = vector["body_file"] as? String {
                payload = try body("github/\(file)")
            } else {
                payload = Data(base64Encoded: vector["body_b64"] as? String ?? "") ?? Data()
            }
            var headers = ["Content-Type": "application/json", "X-GitHub-Event": "ping", "X-GitHub-Delivery": "9a1c0de2-0000-4000-8000-00000000000\(number)"]
            if let header = vector["header"] as? String, let signature = vector["signature"] as? String { headers[header] = signature }
            for (name, value) in vector["headers"] as? [String: String] ?? [:] { headers[name] = value }
            let (status, answer) = try await server.send("POST", "/hooks/github", body: payload, headers: headers)
            let expected = vector["expect"] as? String == "valid" ? 200 : 401
            #expect(status == expected, "\(vector["id"] ?? "?"): \(String(decoding: answer, as: UTF8.self))")
        }
        try await server.stop()
    }
}
