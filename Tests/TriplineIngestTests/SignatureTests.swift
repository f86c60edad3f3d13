import Foundation
import Testing
import TriplineCore
import TriplineIngest

/// Every signature scheme against official vectors (and vectors computed independently with Python's hmac).
@Suite struct SignatureTests {
    @Test func githubPublishedVector() throws {
        guard case .object(let vector) = try FixtureFiles.json("github/doc-test-vector.json") else { Issue.record("vector"); return }
        let secret = Secret(bytes: Array(vector["secret"]!.stringValue!.utf8), reference: .environment("S"))
        let headers = WebhookHeaders([(vector["header"]!.stringValue!, vector["signature"]!.stringValue!)])
        try GitHubSignature.verify(headers: headers, body: Array(vector["payload"]!.stringValue!.utf8), secrets: [secret], allowSHA1: false)
        #expect(throws: WebhookRejection.self) {
            try GitHubSignature.verify(headers: headers, body: Array("Hello, World?".utf8), secrets: [secret], allowSHA1: false)
        }
    }

    @Test func githubVectors() throws {
        guard case .array(let vectors)? = try FixtureFiles.json("github/signature-vectors.json")[path: "vectors"] else { Issue.record("vectors"); return }
        #expect(vectors.count >= 5)
        for vector in vectors {
            let id = vector[path: "id"]?.stringValue ?? "?"
            let body: [UInt8]
            if let file = vector[path: "body_file"]?.stringValue {
                body = try FixtureFiles.bytes("github/\(file)")
            } else {
                body = [UInt8](Data(base64Encoded: vector[path: "body_b64"]?.stringValue ?? "") ?? Data())
            }
            var headers = WebhookHeaders()
            if let header = vector[path: "header"]?.stringValue, let signature = vector[path: "signature"]?.stringValue { headers.add(header, signature) }
            if case .object(let extra)? = vector[path: "headers"] { for (name, value) in extra { headers.add(name, value.stringValue ?? "") } }
            let secret = Secret(bytes: Array((vector[path: "secret"]?.stringValue ?? "").utf8), reference: .environment("S"))
            let valid = rejection { () throws(WebhookRejection) in
                try GitHubSignature.verify(headers: headers, body: body, secrets: [secret], allowSHA1: false)
            } == nil
            #expect(valid == (vector[path: "expect"]?.stringValue == "valid"), "\(id)")
        }
    }

    @Test func githubSHA1OnlyWhenAllowed() throws {
        let body = try FixtureFiles.bytes("github/ping.json")
        var headers = try FixtureFiles.headers("github/ping.json")
        headers = WebhookHeaders(headers.entries.filter { $0.name.lowercased() != "x-hub-signature-256" })
        #expect(throws: WebhookRejection.self) {
            try GitHubSignature.verify(headers: headers, body: body, secrets: [FixtureFiles.githubSecret], allowSHA1: false)
        }
        try GitHubSignature.verify(headers: headers, body: body, secrets: [FixtureFiles.githubSecret], allowSHA1: true)
    }

    @Test func stripeVectors() async throws {
        guard case .array(let vectors)? = try FixtureFiles.json("stripe/signature-vectors.json")[path: "vectors"] else { Issue.record("vectors"); return }
        #expect(vectors.count >= 10)
        for vector in vectors {
            let id = vector[path: "id"]?.stringValue ?? "?"
            let secret = Secret(bytes: Array((vector[path: "secret"]?.stringValue ?? "").utf8), reference: .environment("S"))
            let now = Instant(seconds: vector[path: "now"]?.number ?? 0)
            let tolerance = vector[path: "tolerance"]?.number.map { TimeSpan(seconds: $0) }
            let outcome = rejection { () throws(WebhookRejection) in
                try StripeSignature.verify(
                    header: vector[path: "header"]?.stringValue, body: Array((vector[path: "payload"]?.stringValue ?? "").utf8), secrets: [secret], now: now,
                    tolerance: tolerance)
            }?.code ?? "valid"
            // A valid signature over a body that is not an event is still refused by the endpoint.
            var delivered = outcome
            if outcome == "valid", let tolerance, let header = vector[path: "header"]?.stringValue {
                var endpoint = WebhookEndpoint(slug: "stripe", preset: .stripe)
                endpoint.tolerance = tolerance
                let request = WebhookRequest.post(
                    "stripe", headers: WebhookHeaders([("Stripe-Signature", header), ("Content-Type", "application/json")]),
                    body: Array((vector[path: "payload"]?.stringValue ?? "").utf8), at: now.seconds)
                let refused = await rejection { () async throws(WebhookRejection) in _ = try await WebhookProcessor.testing(endpoint, secrets: [secret]).process(request) }
                // (The SDKs' test events have no `type`, which Tripline also refuses; only the JSON check matters here.)
                if let refused, refused.reason.contains("not valid JSON") { delivered = refused.code }
            }
            let expected = vector[path: "expect"]?.stringValue
            #expect((delivered == "valid") == (expected == "valid"), "\(id): \(outcome) / \(delivered)")
            if vector[path: "reason"]?.stringValue == "timestamp_outside_tolerance" { #expect(outcome == "stale_timestamp", "\(id)") }
        }
    }

    @Test func stripeRotationAcceptsEitherSecret() throws {
        let body = try FixtureFiles.bytes("stripe/charge.refunded.json")
        let header = try FixtureFiles.headers("stripe/charge.refunded.json")["stripe-signature"]
        let old = Secret(bytes: Array("whsec_old".utf8), reference: .environment("OLD"))
        try StripeSignature.verify(header: header, body: body, secrets: [old, FixtureFiles.stripeSecret], now: Instant(seconds: 1_700_000_183), tolerance: .seconds(300))
        #expect(throws: WebhookRejection.self) {
            try StripeSignature.verify(header: header, body: body, secrets: [old], now: Instant(seconds: 1_700_000_183), tolerance: .seconds(300))
        }
    }

    @Test func slackPublishedVector() throws {
        // The example of Slack's "Verifying requests from Slack" documentation.
        let body = Array(
            "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
                .utf8)
        let secret = Secret(bytes: Array("8f742231b10e8888abcd99yyyzzz85a5".utf8), reference: .environment("SLACK"))
        let headers = WebhookHeaders([
            ("X-Slack-Request-Timestamp", "1531420618"), ("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
        ])
        try SlackSignature.verify(headers: headers, body: body, secrets: [secret], now: Instant(seconds: 1_531_420_618 + 299), tolerance: .seconds(300))
        let stale = rejection { () throws(WebhookRejection) in
            try SlackSignature.verify(headers: headers, body: body, secrets: [secret], now: Instant(seconds: 1_531_420_618 + 301), tolerance: .seconds(300))
        }
        #expect(stale?.code == "stale_timestamp")
        #expect(throws: WebhookRejection.self) {
            try SlackSignature.verify(headers: headers, body: body + [0x20], secrets: [secret], now: Instant(seconds: 1_531_420_618), tolerance: .seconds(300))
        }
    }

    @Test func genericSchemesDescribeOtherProviders() throws {
        let body = Array(#"{"id":820982911946154508,"email":"jon@example.com"}"#.utf8)
        // Shopify-like: base64 HMAC-SHA256 of the body in X-Shopify-Hmac-Sha256 (expected value from Python's hmac).
        let shopify = HMACScheme(header: "X-Shopify-Hmac-Sha256", algorithm: .sha256, encoding: .base64)
        let shopifySecret = Secret(bytes: Array("shpss_test".utf8), reference: .environment("SHOPIFY"))
        let request = WebhookRequest.post("shop", headers: WebhookHeaders([("X-Shopify-Hmac-Sha256", "ZPINS/5npCYM+nR4R+feUuIZGvjL1Ncj6BUOKdHVNKQ=")]), body: body)
        try GenericSignature.verify(request, scheme: shopify, secrets: [shopifySecret], tolerance: .seconds(300))
        // Timestamped SHA-512 hex with a prefix, signed as "{timestamp}.{body}".
        let timed = HMACScheme(header: "X-Signature", algorithm: .sha512, encoding: .hex, prefix: "sha512=", timestampHeader: "X-Timestamp")
        let secret = Secret(bytes: Array("lin_secret".utf8), reference: .environment("LIN"))
        let signature =
            "sha512=18c6d9d3030570d124cfb7e1228d0ab780aea62571ba928b60dd026294c806083b3182d1eadcf1b55964e4b440378cf91b42f41f918e6ab8574539f6a7f98c2b"
        let fresh = WebhookRequest.post("lin", headers: WebhookHeaders([("X-Signature", signature), ("X-Timestamp", "1700000000")]), body: body, at: 1_700_000_100)
        try GenericSignature.verify(fresh, scheme: timed, secrets: [secret], tolerance: .seconds(300))
        let stale = WebhookRequest.post("lin", headers: fresh.headers, body: body, at: 1_700_000_301)
        #expect(rejection { () throws(WebhookRejection) in try GenericSignature.verify(stale, scheme: timed, secrets: [secret], tolerance: .seconds(300)) }?.code == "stale_timestamp")
        let missing = WebhookRequest.post("lin", headers: WebhookHeaders([("X-Timestamp", "1700000000")]), body: body, at: 1_700_000_100)
        #expect(rejection { () throws(WebhookRejection) in try GenericSignature.verify(missing, scheme: timed, secrets: [secret], tolerance: .seconds(300)) }?.code == "missing_signature")
    }

    @Test func realSNSMessagesVerifyAgainstTheRealCertificate() throws {
        let certificate = try SigningCertificate(
            pem: FixtureFiles.bytes("aws/sns/real-signing-cert.SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"))
        for file in ["aws/sns/real-notification.sigv1.json", "aws/sns/real-notification.sigv2.json"] {
            guard case .object(let body) = try FixtureFiles.json(file) else { Issue.record("\(file)"); continue }
            let message = try SNSMessage(body)
            try message.verify(with: certificate)
            // One changed character in a signed field breaks the signature.
            var tampered = body
            tampered["Message"] = .string("Hello world!")
            #expect(throws: WebhookRejection.self) { try SNSMessage(tampered).verify(with: certificate) }
        }
        // The documented string to sign.
        guard case .object(let v1) = try FixtureFiles.json("aws/sns/real-notification.sigv1.json"),
            case .string(let expected)? = try FixtureFiles.json("aws/sns/signature-verification.json")[path: "real_example_string_to_sign.string_to_sign"]
        else { Issue.record("fixtures"); return }
        #expect(String(decoding: try SNSMessage(v1).stringToSign, as: UTF8.self) == expected)
    }

    @Test func snsCertificateURLsMustBeSNSEndpoints() {
        #expect(AWSMessageVerifier.isSNSURL("https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5.pem", certificate: true))
        #expect(AWSMessageVerifier.isSNSURL("https://sns.cn-north-1.amazonaws.com.cn/x.pem", certificate: true))
        for bad in [
            "http://sns.us-east-2.amazonaws.com/x.pem", "https://internetbadguys.com/cert.pem", "https://sns.us-east-2.amazonaws.com.evil.com/x.pem",
            "https://sns.us-east-2.amazonaws.com/x.txt", "https://s3.us-east-2.amazonaws.com/x.pem", "https://sns.us-east-2.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-2.amazonaws.com/x.pem", "https://evil.sns.us-east-2.amazonaws.com/x.pem",
        ] {
            #expect(!AWSMessageVerifier.isSNSURL(bad, certificate: true), "\(bad)")
        }
    }

    @Test func extremeTimestampsAreRefusedNotTrapped() {
        let secret = Secret(bytes: Array("s".utf8), reference: .environment("S"))
        let now = Instant(seconds: 1_700_000_000)
        for text in ["-9223372036854775808", "9223372036854775807", "99999999999999999"] {
            let slack = WebhookHeaders([("X-Slack-Request-Timestamp", text), ("X-Slack-Signature", "v0=00")])
            #expect(rejection { () throws(WebhookRejection) in try SlackSignature.verify(headers: slack, body: [], secrets: [secret], now: now, tolerance: .seconds(300)) } != nil)
            #expect(rejection { () throws(WebhookRejection) in try StripeSignature.verify(header: "t=\(text),v1=00", body: [], secrets: [secret], now: now, tolerance: .seconds(300)) } != nil)
            let scheme = HMACScheme(header: "X-Sig", timestampHeader: "X-Time")
            let request = WebhookRequest.post("g", headers: WebhookHeaders([("X-Sig", "00"), ("X-Time", text)]), body: [])
            #expect(rejection { () throws(WebhookRejection) in try GenericSignature.verify(request, scheme: scheme, secrets: [secret], tolerance: .seconds(300)) } != nil)
        }
        #expect(Instant(seconds: 1e300).microseconds == .max)
        #expect(TimeSpan(seconds: -.infinity).microseconds == .min)
        #expect(TimeSpan(seconds: .nan).microseconds == 0)
        #expect(TimeSpan.seconds(.max).microseconds == .max)
    }

    @Test func snsCertificatesMustBeOnTheTopicsRegion() {
        let url = URL(string: "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem")!
        #expect(AWSMessageVerifier.isSigningCertificateURL(url, topicArn: "arn:aws:sns:us-east-2:295079676684:topic"))
        #expect(!AWSMessageVerifier.isSigningCertificateURL(url, topicArn: "arn:aws:sns:eu-west-1:295079676684:topic"))
        #expect(!AWSMessageVerifier.isSigningCertificateURL(URL(string: "https://sns.us-east-2.amazonaws.com/other.pem")!, topicArn: "arn:aws:sns:us-east-2:1:t"))
        #expect(!AWSMessageVerifier.isSigningCertificateURL(URL(string: "https://sns.us-east-2.amazonaws.com/a/SimpleNotificationService-ab.pem")!, topicArn: "arn:aws:sns:us-east-2:1:t"))
    }

    @Test func hmacAndDigestsMatchKnownValues() {
        // RFC 4231 test case 2.
        let mac = DigestAlgorithm.sha256.hmac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(ByteEncoding.hex.encode(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(ByteEncoding.hex.encode(DigestAlgorithm.sha1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2], [1, 2, 3]))
        // An empty key is a valid HMAC key (RFC 2104): HMAC-SHA256("", "") from Python's hmac.
        #expect(ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: [UInt8](), message: [UInt8]())) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
        // Name-based UUIDs are stable and version 5.
        let id = UUID(name: "github:delivery-1")
        #expect(id == UUID(name: "github:delivery-1"))
        #expect(id.uuidString.lowercased().dropFirst(14).first == "5")
    }
}
