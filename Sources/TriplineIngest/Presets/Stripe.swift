public import TriplineCore

/// Stripe's `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`: HMAC-SHA256 of `"<t>.<raw body>"`.
public enum StripeSignature {
    /// Verifies the header against any of `secrets`, then the timestamp against `now`.
    /// - Parameter tolerance: How old (or how far in the future) the timestamp may be; `nil` skips the check.
    /// - Throws: A ``WebhookRejection`` (401) saying which check failed.
    public static func verify(header: String?, body: [UInt8], secrets: [Secret], now: Instant, tolerance: TimeSpan?) throws(WebhookRejection) {
        guard let header, !header.isEmpty else { throw .unauthorized("missing_signature", "the Stripe-Signature header is missing") }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: " ")
            let value = parts[1].trimmingCharacters(in: " ")
            if key == "t", timestamp == nil, let parsed = Int64(value), (-100_000_000_000...100_000_000_000).contains(parsed) { timestamp = parsed }
            if key == "v1", let bytes = ByteEncoding.hex.decode(value), bytes.count == 32 { signatures.append(bytes) }
        }
        guard let timestamp else { throw .unauthorized("bad_signature", "the Stripe-Signature header has no timestamp") }
        guard !signatures.isEmpty || header.contains("v1=") else {
            throw .unauthorized("bad_signature", "the Stripe-Signature header has no v1 signature")
        }
        let signed = Array("\(timestamp).".utf8) + body
        var matched = false
        for secret in secrets {
            let expected = DigestAlgorithm.sha256.hmac(key: secret.bytes, message: signed)
            for signature in signatures where ConstantTime.equals(expected, signature) { matched = true }
        }
        guard matched else { throw .unauthorized("bad_signature", "no signature matches the body") }
        if let tolerance, abs(now.microseconds / 1_000_000 - timestamp) > tolerance.microseconds / 1_000_000 {
            throw .unauthorized("stale_timestamp", "the signed timestamp is outside the tolerance of \(tolerance.microseconds / 1_000_000) s")
        }
    }
}

extension WebhookProcessor {
    /// Stripe: `stripe.<type>` on the event's object (`stripe.<object>.<id>`), with the customer and the connected
    /// account related.
    func stripe(_ request: WebhookRequest) throws(WebhookRejection) -> WebhookResult {
        try StripeSignature.verify(
            header: request.headers["stripe-signature"], body: request.body, secrets: resolved.secrets, now: request.received, tolerance: endpoint.tolerance)
        if let mediaType = request.mediaType, !MediaType.isJSON(mediaType) {
            throw .unsupportedMediaType("Stripe deliveries are application/json, not \(mediaType)")
        }
        let body = try Self.jsonObject(request.body)
        let payload = JSONValue.object(body)
        guard case .string(let type)? = body["type"], !type.isEmpty else { throw .malformed("a Stripe event needs a `type`") }
        let stripeID = body["id"]?.stringValue
        var resource: [String: String]
        if let kind = payload[path: "data.object.object"]?.stringValue, let objectID = payload[path: "data.object.id"]?.stringValue {
            resource = [Resource.idLabel: "stripe.\(kind).\(objectID)", "stripe.object": kind]
        } else {
            resource = [Resource.idLabel: "stripe.event.\(stripeID ?? "unknown")"]
        }
        if case .bool(let live)? = body["livemode"] { resource["stripe.livemode"] = String(live) }
        var related: [Resource] = []
        let customer = payload[path: "data.object.customer"]
        let customerID = customer?.stringValue ?? customer?[path: "id"]?.stringValue
        if let customerID, payload[path: "data.object.object"]?.stringValue != "customer" {
            related.append(Resource([Resource.idLabel: "stripe.customer.\(customerID)", Resource.roleLabel: "customer"]))
        }
        if let account = body["account"]?.stringValue {
            related.append(Resource([Resource.idLabel: "stripe.account.\(account)", Resource.roleLabel: "account"]))
        }
        related.append(webhookResource)
        let occurred: Instant
        if case .int(let created)? = body["created"], created > 0, created < 1 << 40 {
            occurred = Instant(microseconds: created * 1_000_000)
        } else {
            occurred = request.received
        }
        let event = Event(
            id: Self.eventID(stripeID, prefix: "stripe", body: request.body), occurred: occurred, event: "stripe.\(type)", resource: Resource(resource),
            related: related, payload: body, received: request.received)
        return WebhookResult(events: [event], note: "stripe.\(type)")
    }
}
