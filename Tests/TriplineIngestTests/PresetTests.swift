import Foundation
import Testing
import TriplineCore
import TriplineIngest

/// Each preset maps real deliveries to the documented events.
@Suite struct PresetTests {
    func process(_ endpoint: WebhookEndpoint, _ request: WebhookRequest, secrets: [Secret] = [], credential: Secret? = nil) async throws -> WebhookResult {
        try await WebhookProcessor.testing(endpoint, secrets: secrets, credential: credential).process(request)
    }

    @Test func everyGitHubFixtureBecomesOneWellNamedEvent() async throws {
        let endpoint = WebhookEndpoint(slug: "github", preset: .github)
        let bodies = try FixtureFiles.signedBodies("github").filter { !$0.contains("malformed") }
        #expect(bodies.count >= 12)
        for path in bodies {
            let headers = try FixtureFiles.headers(path)
            let result = try await process(endpoint, .post("github", headers: headers, body: try FixtureFiles.bytes(path)), secrets: [FixtureFiles.githubSecret])
            #expect(result.events.count == 1, "\(path)")
            guard let event = result.events.first else { continue }
            let kind = headers["x-github-event"]!
            let action = event.payload["action"]?.stringValue
            #expect(event.event == "github.\(kind)" + (action.map { ".\($0)" } ?? ""), "\(path)")
            #expect(event.id.uuidString.lowercased() == headers["x-github-delivery"]!.lowercased(), "\(path): the delivery id is the event id")
            if let fullName = event.payload["repository"]?[path: "full_name"]?.stringValue {
                #expect(event.resource.id == "github.repository.\(fullName)", "\(path)")
            }
            if let login = event.payload["sender"]?[path: "login"]?.stringValue {
                #expect(event.related.contains { $0.id == "github.user.\(login)" && $0.role == "sender" }, "\(path)")
            }
            #expect(event.related.contains { $0.id == "tripline.webhook.github" && $0.role == "webhook" })
        }
    }

    @Test func githubPushCarriesTheBranchAndIgnoresNothing() async throws {
        let endpoint = WebhookEndpoint(slug: "github", preset: .github)
        let path = "github/push.json"
        let event = try await process(endpoint, .post("github", headers: try FixtureFiles.headers(path), body: try FixtureFiles.bytes(path)), secrets: [FixtureFiles.githubSecret]).events[0]
        #expect(event.event == "github.push")
        #expect(event.resource["github.ref"] == event.payload["ref"]?.stringValue)
        #expect(event.resource.id == "github.repository.Codertocat/Hello-World")
    }

    @Test func githubRejectsTruncatedJSONEvenWithAValidSignature() async throws {
        let path = "github/malformed.truncated-ping.json"
        let outcome = await rejection { () async throws(WebhookRejection) in
            _ = try await WebhookProcessor.testing(WebhookEndpoint(slug: "github", preset: .github), secrets: [FixtureFiles.githubSecret])
                .process(.post("github", headers: try! FixtureFiles.headers(path), body: try! FixtureFiles.bytes(path)))
        }
        #expect(outcome?.status == 400)
        #expect(outcome?.code == "malformed")
    }

    @Test func githubFormEncodedDeliveriesAndWrongContentTypes() async throws {
        let secret = FixtureFiles.githubSecret
        let json = try FixtureFiles.bytes("github/ping.json")
        var form = Array("payload=".utf8)
        form += Array(String(decoding: json, as: UTF8.self).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!.utf8)
        let signature = "sha256=" + ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: secret.bytes, message: form))
        let headers = WebhookHeaders([
            ("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", signature), ("Content-Type", "application/x-www-form-urlencoded"),
        ])
        let result = try await process(WebhookEndpoint(slug: "github", preset: .github), .post("github", headers: headers, body: form), secrets: [secret])
        #expect(result.events.first?.event == "github.ping")
        let xml = WebhookHeaders([("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", signature), ("Content-Type", "application/xml")])
        let refused = await rejection { () async throws(WebhookRejection) in
            _ = try await WebhookProcessor.testing(WebhookEndpoint(slug: "github", preset: .github), secrets: [secret]).process(.post("github", headers: xml, body: form))
        }
        #expect(refused?.status == 415)
    }

    @Test func stripeEventsNameTheObjectAndRelateTheCustomer() async throws {
        let endpoint = WebhookEndpoint(slug: "stripe", preset: .stripe)
        let bodies = try FixtureFiles.signedBodies("stripe")
        #expect(bodies.count >= 6)
        for path in bodies {
            let headers = try FixtureFiles.headers(path)
            let t = Double(headers["stripe-signature"]!.split(separator: ",")[0].dropFirst(2))!
            let result = try await process(endpoint, .post("stripe", headers: headers, body: try FixtureFiles.bytes(path), at: t), secrets: [FixtureFiles.stripeSecret])
            let event = try #require(result.events.first, "\(path)")
            let body = try FixtureFiles.json(path)
            #expect(event.event == "stripe.\(body[path: "type"]!.stringValue!)")
            #expect(event.resource.id == "stripe.\(body[path: "data.object.object"]!.stringValue!).\(body[path: "data.object.id"]!.stringValue!)")
            #expect(event.id == UUID.eventID(from: body[path: "id"]!.stringValue!, prefix: "stripe"))
            if let customer = body[path: "data.object.customer"]?.stringValue {
                #expect(event.related.contains { $0.id == "stripe.customer.\(customer)" && $0.role == "customer" }, "\(path)")
            }
            // The same delivery replayed ten minutes later is refused.
            let replay = await rejection { () async throws(WebhookRejection) in
                _ = try await WebhookProcessor.testing(endpoint, secrets: [FixtureFiles.stripeSecret])
                    .process(.post("stripe", headers: headers, body: try! FixtureFiles.bytes(path), at: t + 600))
            }
            #expect(replay?.code == "stale_timestamp")
        }
    }

    @Test func s3KeysAreDecodedLikeUnquotePlus() throws {
        guard case .array(let vectors)? = try FixtureFiles.json("aws/s3/key-encoding-vectors.json")[path: "vectors"] else { Issue.record("vectors"); return }
        for vector in vectors {
            #expect(FormDecoding.unescape(vector[path: "encoded"]!.stringValue!) == vector[path: "decoded"]!.stringValue!)
        }
        #expect(FormDecoding.unescape("a%2Fb%20c+d%") == "a/b c d%")
    }

    @Test func s3NotificationsInEveryShape() async throws {
        var endpoint = WebhookEndpoint(slug: "lake", preset: .awsS3)
        endpoint.unauthenticated = true
        let received = 1_700_000_000.0
        func events(_ path: String) async throws -> [Event] {
            try await process(endpoint, .post("lake", headers: WebhookHeaders([("Content-Type", "application/json")]), body: try FixtureFiles.bytes(path), at: received)).events
        }
        let direct = try await events("aws/s3/aws-lambda-go-s3-event.percent-encoded-key.json")
        #expect(direct.count == 1)
        #expect(direct.first?.resource["aws.s3.key"] == "Happy Face.jpg")
        #expect(direct.first?.event == "aws.s3.ObjectCreated:Put")
        let documented = try await events("aws/s3/doc-objectcreated-put.json")
        #expect(documented.first?.resource.id.hasPrefix("aws.s3.bucket.") == true)
        #expect(documented.first?.payload["size"] != nil)
        #expect(documented.first?.occurred != Instant(seconds: received), "occurred is the record's eventTime")
        #expect(try await events("aws/s3/doc-test-event.json").isEmpty, "s3:TestEvent is acknowledged and ignored")
        #expect(try await events("aws/s3/powertools-s3EventGlacier.json").count == 1)
        let viaSQS = try await events("aws/sqs/powertools-s3SqsEvent.json")
        #expect(!viaSQS.isEmpty)
        #expect(viaSQS.allSatisfy { $0.event.hasPrefix("aws.s3.ObjectCreated:") })
        let bridge = try await events("aws/eventbridge/powertools-object-created.json")
        #expect(bridge.map(\.event) == ["aws.s3.ObjectCreated:Put"])
        #expect(bridge.first?.resource["aws.s3.key"] == "IMG_m7fzo3.jpg")
        #expect(bridge.first?.resource.id == "aws.s3.bucket.example-bucket")
        // Redelivery gives the same ids.
        #expect(try await events("aws/eventbridge/powertools-object-created.json").map(\.id) == bridge.map(\.id))
        // SNS inside SQS without S3 content: nothing to store.
        #expect(try await events("aws/sqs/powertools-snsSqsEvent.json").isEmpty)
    }

    @Test func s3EndpointsRefuseUnverifiedRequests() async throws {
        var endpoint = WebhookEndpoint(slug: "lake", preset: .awsS3)
        endpoint.authentication = .bearer([.environment("TOKEN")])
        let token = Secret(bytes: Array("s3cr3t-token".utf8), reference: .environment("TOKEN"))
        let body = try FixtureFiles.bytes("aws/s3/doc-objectcreated-put.json")
        let processor = WebhookProcessor.testing(endpoint, secrets: [], credential: token)
        let without = await rejection { () async throws(WebhookRejection) in _ = try await processor.process(.post("lake", headers: WebhookHeaders(), body: body)) }
        #expect(without?.status == 401)
        let wrong = await rejection { () async throws(WebhookRejection) in
            _ = try await processor.process(.post("lake", headers: WebhookHeaders([("Authorization", "Bearer nope")]), body: body))
        }
        #expect(wrong?.code == "bad_credentials")
        let accepted = try await processor.process(.post("lake", headers: WebhookHeaders([("Authorization", "Bearer s3cr3t-token")]), body: body))
        #expect(accepted.events.count == 1)
    }

    /// An S3 endpoint without `topics` can neither verify nor confirm SNS messages: it refuses them (SNS retries) instead
    /// of acknowledging and dropping them; the SNS preset refuses bodies that are neither text nor JSON.
    @Test func snsMessagesNeedTopicsAndATextOrJSONType() async throws {
        var endpoint = WebhookEndpoint(slug: "lake", preset: .awsS3)
        endpoint.authentication = .bearer([.environment("TOKEN")])
        let token = Secret(bytes: Array("s3cr3t-token".utf8), reference: .environment("TOKEN"))
        let processor = WebhookProcessor.testing(endpoint, secrets: [], credential: token)
        for path in ["aws/sns/real-s3-via-sns.nexrad.json", "aws/sns/doc-subscription-confirmation.json"] {
            var headers = try FixtureFiles.headers(path)
            headers.add("Authorization", "Bearer s3cr3t-token")
            let body = try FixtureFiles.bytes(path)
            let refused = await rejection { () async throws(WebhookRejection) in
                _ = try await processor.process(.post("lake", headers: headers, body: body))
            }
            #expect(refused?.status == 403, "\(path)")
            #expect(refused?.reason.contains("`topics`") == true, "\(path): \(refused?.reason ?? "accepted")")
        }

        var sns = WebhookEndpoint(slug: "sns", preset: .awsSNS)
        sns.topics = ["arn:aws:sns:*"]
        let path = "aws/sns/real-notification.sigv1.json"
        let headers = WebhookHeaders(try FixtureFiles.headers(path).filter { $0.name.lowercased() != "content-type" } + [(name: "Content-Type", value: "text/csv")])
        let body = try FixtureFiles.bytes(path)
        let wrongType = await rejection { () async throws(WebhookRejection) in
            _ = try await WebhookProcessor.testing(sns, secrets: []).process(.post("sns", headers: headers, body: body))
        }
        #expect(wrongType?.status == 415)
    }

    /// Templates see header names in lowercase; a reference with capitals would render empty, so it is refused with
    /// the name to write instead.
    @Test func templatesReferringToCapitalizedHeadersAreRefused() {
        let loaded = WebhookEndpoint.load(
            text: """
                slug: hooks
                preset: generic
                unauthenticated: true
                template: |
                  {"event": "hook.{{ headers.X-GitHub-Event }}", "resource": {"prefect.resource.id": "r.{{ headers.x-request-id }}"},
                   "payload": {"delivery": {{ headers.X-GitHub-Delivery|json }}, "again": "{{ headers.X-GitHub-Event }}"}}
                """, file: "hooks.yaml")
        let messages = loaded.errors.map(\.description)
        #expect(messages.count == 2, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("hooks.yaml:4:") && $0.contains("`headers.X-GitHub-Event`") && $0.contains("headers.x-github-event") })
        #expect(messages.contains { $0.contains("`headers.X-GitHub-Delivery`") })
        #expect(WebhookEndpoint.load(text: "slug: h\npreset: generic\nunauthenticated: true\ntemplate: '{{ headers.x-github-event }}'\n").errors.isEmpty)
    }

    /// `auth` credentials rotate like signing secrets: while two are listed, either is accepted.
    @Test func bearerAndBasicCredentialsRotate() async throws {
        let loaded = WebhookEndpoint.load(
            text: """
                - slug: lake
                  preset: aws-s3
                  auth: {bearer: [env:TOKEN, env:TOKEN_NEXT]}
                - slug: ce
                  preset: cloudevents
                  auth: {basic: {username: sender, password: [env:PASSWORD, file:/run/secrets/next]}}
                - slug: one
                  preset: cloudevents
                  auth: {bearer: env:TOKEN}
                """, file: "hooks.yaml")
        #expect(loaded.errors.isEmpty, "\(loaded.errors.map(\.description))")
        #expect(loaded.endpoints.map { $0.authentication?.references.count } == [2, 2, 1])
        for (text, message) in [
            ("auth: {bearer: []}", "hooks.yaml:3:"), ("auth: {bearer: [env:A, 7]}", "auth.bearer[1]: must be a string"),
            ("auth: {bearer: [env:A, nope]}", "auth.bearer[1]"), ("auth: {basic: {username: u}}", "auth.basic.password"),
        ] {
            let broken = WebhookEndpoint.load(text: "slug: lake\npreset: aws-s3\n\(text)\n", file: "hooks.yaml")
            #expect(broken.errors.contains { $0.description.contains(message) }, "\(text): \(broken.errors.map(\.description))")
        }

        var endpoint = WebhookEndpoint(slug: "lake", preset: .awsS3)
        endpoint.authentication = .bearer([.environment("TOKEN"), .environment("TOKEN_NEXT")])
        let old = Secret(bytes: Array("old-token-1".utf8), reference: .environment("TOKEN"))
        let new = Secret(bytes: Array("new-token-2".utf8), reference: .environment("TOKEN_NEXT"))
        let body = try FixtureFiles.bytes("aws/s3/doc-objectcreated-put.json")
        let bearer = WebhookProcessor(endpoint: ResolvedWebhookEndpoint(endpoint, secrets: [], credentials: [old, new]), aws: AWSMessageVerifier(fetch: { _ in throw URLError(.notConnectedToInternet) }, pinned: [:]))
        for token in ["old-token-1", "new-token-2"] {
            let result = try await bearer.process(.post("lake", headers: WebhookHeaders([("Authorization", "Bearer \(token)")]), body: body))
            #expect(result.events.count == 1, "\(token) is accepted while both are listed")
        }
        let refused = await rejection { () async throws(WebhookRejection) in
            _ = try await bearer.process(.post("lake", headers: WebhookHeaders([("Authorization", "Bearer old-token-1x")]), body: body))
        }
        #expect(refused?.code == "bad_credentials")

        endpoint.authentication = .basic(username: "sender", passwords: [.environment("TOKEN"), .environment("TOKEN_NEXT")])
        let basic = WebhookProcessor(endpoint: ResolvedWebhookEndpoint(endpoint, secrets: [], credentials: [old, new]), aws: AWSMessageVerifier(fetch: { _ in throw URLError(.notConnectedToInternet) }, pinned: [:]))
        for (user, password, accepted) in [("sender", "old-token-1", true), ("sender", "new-token-2", true), ("other", "new-token-2", false)] {
            let header = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
            let outcome = await rejection { () async throws(WebhookRejection) in
                _ = try await basic.process(.post("lake", headers: WebhookHeaders([("Authorization", header)]), body: body))
            }
            #expect((outcome == nil) == accepted, "\(user):\(password)")
        }
    }

    @Test func snsNotificationsAreVerifiedAndTopicsChecked() async throws {
        let certificate = try SigningCertificate(
            pem: FixtureFiles.bytes("aws/sns/real-signing-cert.SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"))
        let pinned = ["SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem": certificate]
        var endpoint = WebhookEndpoint(slug: "sns", preset: .awsSNS)
        endpoint.topics = ["arn:aws:sns:us-east-2:295079676684:publish-and-verify-*"]
        let processor = WebhookProcessor.testing(endpoint, secrets: [], pinned: pinned)
        for path in ["aws/sns/real-notification.sigv1.json", "aws/sns/real-notification.sigv2.json"] {
            let result = try await processor.process(.post("sns", headers: try FixtureFiles.headers(path), body: try FixtureFiles.bytes(path)))
            let event = try #require(result.events.first)
            #expect(event.event == "aws.sns.Notification")
            #expect(event.payload["message"] == .string("Hello world"))
            #expect(event.id == UUID(uuidString: try FixtureFiles.json(path)[path: "MessageId"]!.stringValue!))
        }
        // Another topic: refused before anything is fetched.
        var other = endpoint
        other.topics = ["arn:aws:sns:us-east-1:111111111111:other"]
        let refused = await rejection { () async throws(WebhookRejection) in
            _ = try await WebhookProcessor.testing(other, secrets: [], pinned: pinned)
                .process(.post("sns", headers: WebhookHeaders(), body: try! FixtureFiles.bytes("aws/sns/real-notification.sigv1.json")))
        }
        #expect(refused?.code == "topic_not_allowed")
        // A certificate URL off AWS is never fetched.
        guard case .object(let negative)? = try FixtureFiles.json("aws/sns/negative-cert-url-not-aws.json")[path: "message"] else { Issue.record("fixture"); return }
        let offAWS = await rejection { () async throws(WebhookRejection) in
            _ = try await processor.process(.post("sns", headers: WebhookHeaders(), body: Array(JSONValue.object(negative).jsonText.utf8)))
        }
        #expect(offAWS?.code == "bad_certificate_url")
        // Placeholder signatures of the documentation examples do not verify.
        var docs = endpoint
        docs.topics = ["*"]
        let placeholder = await rejection { () async throws(WebhookRejection) in
            _ = try await WebhookProcessor.testing(docs, secrets: [], pinned: ["SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem": certificate])
                .process(.post("sns", headers: WebhookHeaders(), body: try! FixtureFiles.bytes("aws/sns/doc-notification.json")))
        }
        #expect(placeholder?.status == 401)
    }

    @Test func snsSubscriptionsAreConfirmedOnlyOnAWSHosts() async throws {
        // A key and certificate of our own, made with the openssl command, sign a SubscriptionConfirmation.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-sns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = folder.appendingPathComponent("key.pem").path
        let cert = folder.appendingPathComponent("cert.pem").path
        try run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=sns.amazonaws.com")
        let topic = "arn:aws:sns:eu-west-1:123456789012:lake"
        let subscribeURL = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=\(topic)&Token=2336412f37"
        var message: [String: JSONValue] = [
            "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": "2336412f37",
            "TopicArn": .string(topic), "Message": "You have chosen to subscribe to the topic.", "SubscribeURL": .string(subscribeURL),
            "Timestamp": "2026-11-23T00:00:00.000Z", "SignatureVersion": "2",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        ]
        let toSign = folder.appendingPathComponent("tosign").path
        try Data(try SNSMessage(message.merging(["Signature": "x"]) { a, _ in a }).stringToSign).write(to: URL(fileURLWithPath: toSign))
        let signature = folder.appendingPathComponent("sig").path
        try run("openssl", "dgst", "-sha256", "-sign", key, "-out", signature, toSign)
        message["Signature"] = .string(try Data(contentsOf: URL(fileURLWithPath: signature)).base64EncodedString())

        let fetched = FetchLog()
        var endpoint = WebhookEndpoint(slug: "sns", preset: .awsSNS)
        endpoint.topics = [topic]
        let certificate = try SigningCertificate(pem: [UInt8](try Data(contentsOf: URL(fileURLWithPath: cert))))
        let processor = WebhookProcessor(
            endpoint: ResolvedWebhookEndpoint(endpoint, secrets: []),
            aws: AWSMessageVerifier(fetch: { url in
                await fetched.add(url.absoluteString)
                return (200, [])
            }, pinned: ["SimpleNotificationService-0123abcd.pem": certificate]))
        let result = try await processor.process(.post("sns", headers: WebhookHeaders(), body: Array(JSONValue.object(message).jsonText.utf8)))
        #expect(result.events.isEmpty)
        #expect(await fetched.urls == [subscribeURL])
        // A SubscribeURL off AWS is refused even when the signature is valid.
        message["SubscribeURL"] = "https://example.com/confirm"
        try Data(try SNSMessage(message).stringToSign).write(to: URL(fileURLWithPath: toSign))
        try run("openssl", "dgst", "-sha256", "-sign", key, "-out", signature, toSign)
        message["Signature"] = .string(try Data(contentsOf: URL(fileURLWithPath: signature)).base64EncodedString())
        let refused = await rejection { () async throws(WebhookRejection) in
            _ = try await processor.process(.post("sns", headers: WebhookHeaders(), body: Array(JSONValue.object(message).jsonText.utf8)))
        }
        #expect(refused?.code == "bad_subscribe_url")
        #expect(await fetched.urls.count == 1)
    }

    @Test func cloudEventsConformanceCases() async throws {
        var endpoint = WebhookEndpoint(slug: "ce", preset: .cloudevents)
        endpoint.unauthenticated = true
        let processor = WebhookProcessor.testing(endpoint, secrets: [])
        let structured = WebhookHeaders([("Content-Type", "application/cloudevents+json")])
        guard case .array(let valid)? = try FixtureFiles.json("cloudevents/conformance-valid-events.subset.json")[path: "tests"],
            case .array(let invalid)? = try FixtureFiles.json("cloudevents/conformance-invalid-events.subset.json")[path: "tests"]
        else { Issue.record("fixtures"); return }
        for test in valid {
            let body = Array(test[path: "event"]!.jsonText.utf8)
            let result = try await processor.process(.post("ce", headers: structured, body: body))
            #expect(result.events.count == 1, "\(test[path: "id"]!)")
            #expect(result.events.first?.event == test[path: "event.type"]?.stringValue)
            #expect(result.events.first?.resource.id == test[path: "event.source"]?.stringValue)
        }
        for test in invalid {
            let body = Array(test[path: "event"]!.jsonText.utf8)
            let outcome = await rejection { () async throws(WebhookRejection) in _ = try await processor.process(.post("ce", headers: structured, body: body)) }
            #expect(outcome?.status == 400, "\(test[path: "id"]!) must be refused")
        }
    }

    @Test func cloudEventsBinaryAndStructuredModesAgree() async throws {
        var endpoint = WebhookEndpoint(slug: "ce", preset: .cloudevents)
        endpoint.unauthenticated = true
        let processor = WebhookProcessor.testing(endpoint, secrets: [])
        for name in ["B234", "C234", "C234num", "D234str"] {
            let binary = try FixtureFiles.json("cloudevents/spec-\(name).binary-http.json")
            var headers = WebhookHeaders()
            if case .object(let fields)? = binary[path: "headers"] { for (key, value) in fields { headers.add(key, value.stringValue ?? "") } }
            let fromBinary = try await processor.process(.post("ce", headers: headers, body: Array(binary[path: "body"]!.stringValue!.utf8))).events[0]
            let fromStructured = try await processor.process(
                .post("ce", headers: WebhookHeaders([("Content-Type", "application/cloudevents+json")]), body: try FixtureFiles.bytes("cloudevents/spec-\(name).structured.json"))
            ).events[0]
            #expect(fromBinary.id == fromStructured.id, "\(name): same (source, id), same event id")
            #expect(fromBinary.event == fromStructured.event)
            #expect(fromBinary.occurred == fromStructured.occurred)
            #expect(fromBinary.resource.id == fromStructured.resource.id)
        }
        for file in ["conformance-http-binary", "conformance-http-structured"] {
            let fixture = try FixtureFiles.json("cloudevents/\(file).json")
            var headers = WebhookHeaders()
            if case .object(let fields)? = fixture[path: "headers"] { for (key, value) in fields { headers.add(key, value.stringValue ?? "") } }
            let event = try await processor.process(.post("ce", headers: headers, body: Array(fixture[path: "body"]!.stringValue!.utf8))).events[0]
            #expect(event.event == fixture[path: "expected_attributes.type"]?.stringValue)
            #expect(event.payload["data"] == fixture[path: "expected_data"], "\(file)")
            #expect(event.occurred == Instant(rfc3339: fixture[path: "expected_attributes.time"]!.stringValue!))
        }
        let wrong = try FixtureFiles.json("cloudevents/malformed.structured-with-wrong-content-type.json")
        let outcome = await rejection { () async throws(WebhookRejection) in
            _ = try await processor.process(.post("ce", headers: WebhookHeaders([("Content-Type", "text/plain")]), body: Array(wrong[path: "body"]!.stringValue!.utf8)))
        }
        #expect(outcome?.status == 415)
        // A batch.
        let batch = Array(#"[{"specversion":"1.0","id":"1","source":"/a","type":"t.one"},{"specversion":"1.0","id":"2","source":"/a","type":"t.two"}]"#.utf8)
        let events = try await processor.process(.post("ce", headers: WebhookHeaders([("Content-Type", "application/cloudevents-batch+json")]), body: batch)).events
        #expect(events.map(\.event) == ["t.one", "t.two"])
    }

    @Test func slackChallengeCommandsAndEvents() async throws {
        let secret = Secret(bytes: Array("slack-signing".utf8), reference: .environment("SLACK"))
        let endpoint = WebhookEndpoint(slug: "slack", preset: .slack)
        func signed(_ body: String, contentType: String, at time: Int64 = 1_700_000_000) -> WebhookRequest {
            let signature = "v0=" + ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: secret.bytes, message: Array("v0:\(time):\(body)".utf8)))
            return .post(
                "slack", headers: WebhookHeaders([("X-Slack-Signature", signature), ("X-Slack-Request-Timestamp", "\(time)"), ("Content-Type", contentType)]),
                body: Array(body.utf8), at: Double(time))
        }
        let challenge = try await process(endpoint, signed(#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#, contentType: "application/json"), secrets: [secret])
        #expect(challenge.events.isEmpty)
        #expect(String(decoding: challenge.body, as: UTF8.self) == #"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#)
        let callback = try await process(
            endpoint,
            signed(
                #"{"type":"event_callback","team_id":"T1","event_id":"Ev123","event_time":1700000000,"event":{"type":"message","channel":"C9","user":"U7","text":"deploy"}}"#,
                contentType: "application/json"), secrets: [secret])
        #expect(callback.events.first?.event == "slack.message")
        #expect(callback.events.first?.resource.id == "slack.channel.C9")
        #expect(callback.events.first?.related.contains { $0.id == "slack.user.U7" } == true)
        let command = try await process(
            endpoint, signed("token=x&team_id=T1&channel_id=C9&user_id=U7&command=%2Fdeploy&text=api&trigger_id=13345224609.738474920.8088930838d88f008e0",
                contentType: "application/x-www-form-urlencoded"), secrets: [secret])
        #expect(command.events.first?.event == "slack.command.deploy")
        #expect(command.events.first?.payload["token"] == nil, "the verification token is not stored")
        #expect(command.events.first?.payload["text"] == .string("api"))
        // Slack's periodic certificate check of a slash-command URL expects a 200 and makes no event.
        let check = try await process(endpoint, signed("ssl_check=1&token=x", contentType: "application/x-www-form-urlencoded"), secrets: [secret])
        #expect(check.status == 200 && check.events.isEmpty)
    }

    @Test func genericEndpointsNameTheirEventsAndDeduplicateByHeader() async throws {
        var endpoint = WebhookEndpoint(slug: "shop", preset: .generic)
        endpoint.signature = HMACScheme(header: "X-Shopify-Hmac-Sha256", algorithm: .sha256, encoding: .base64)
        endpoint.eventName = "shopify.order.created"
        endpoint.idHeader = "X-Shopify-Webhook-Id"
        let secret = Secret(bytes: Array("shpss_test".utf8), reference: .environment("SHOPIFY"))
        let body = Array(#"{"id":820982911946154508,"email":"jon@example.com"}"#.utf8)
        let headers = WebhookHeaders([
            ("X-Shopify-Hmac-Sha256", "ZPINS/5npCYM+nR4R+feUuIZGvjL1Ncj6BUOKdHVNKQ="), ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        ])
        let first = try await process(endpoint, .post("shop", headers: headers, body: body), secrets: [secret]).events[0]
        let again = try await process(endpoint, .post("shop", headers: headers, body: body, at: 1_700_000_060), secrets: [secret]).events[0]
        #expect(first.event == "shopify.order.created")
        #expect(first.id == again.id)
        #expect(first.id == UUID(uuidString: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"))
        #expect(first.payload["email"] == .string("jon@example.com"))
        let tampered = await rejection { () async throws(WebhookRejection) in
            _ = try await WebhookProcessor.testing(endpoint, secrets: [secret]).process(.post("shop", headers: headers, body: body + [0x0a]))
        }
        #expect(tampered?.code == "bad_signature")
    }

    @Test func pingsAndOtherMethods() async throws {
        let processor = WebhookProcessor.testing(WebhookEndpoint(slug: "github", preset: .github), secrets: [FixtureFiles.githubSecret])
        let ping = try await processor.process(WebhookRequest(method: "GET", slug: "github", headers: WebhookHeaders(), body: [], received: Instant(seconds: 0)))
        #expect(ping.events.isEmpty && ping.status == 200)
        let delete = await rejection { () async throws(WebhookRejection) in
            _ = try await processor.process(WebhookRequest(method: "DELETE", slug: "github", headers: WebhookHeaders(), body: [], received: Instant(seconds: 0)))
        }
        #expect(delete?.status == 405)
        let empty = await rejection { () async throws(WebhookRejection) in
            let headers = WebhookHeaders([("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", "sha256=" + ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: FixtureFiles.githubSecret.bytes, message: [UInt8]())))])
            _ = try await processor.process(.post("github", headers: headers, body: []))
        }
        #expect(empty?.status == 400)
    }
}

actor FetchLog {
    var urls: [String] = []
    func add(_ url: String) { urls.append(url) }
}

func run(_ arguments: String...) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
}
