public import TriplineCore

/// Slack's request signing (v0): `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">` with
/// `X-Slack-Request-Timestamp`, rejected outside the tolerance (5 minutes by default).
public enum SlackSignature {
    /// Verifies a request against any of `secrets`.
    /// - Throws: A ``WebhookRejection`` (401) saying which check failed.
    public static func verify(headers: WebhookHeaders, body: [UInt8], secrets: [Secret], now: Instant, tolerance: TimeSpan) throws(WebhookRejection) {
        guard let signature = headers["x-slack-signature"], let timestampText = headers["x-slack-request-timestamp"] else {
            throw .unauthorized("missing_signature", "the X-Slack-Signature or X-Slack-Request-Timestamp header is missing")
        }
        guard let timestamp = Int64(timestampText.trimmingCharacters(in: " ")), (-100_000_000_000...100_000_000_000).contains(timestamp) else {
            throw .unauthorized("bad_signature", "X-Slack-Request-Timestamp is not a Unix time")
        }
        if abs(now.microseconds / 1_000_000 - timestamp) > tolerance.microseconds / 1_000_000 {
            throw .unauthorized("stale_timestamp", "the request timestamp is outside the tolerance of \(tolerance.microseconds / 1_000_000) s")
        }
        guard signature.hasPrefix("v0="), let provided = ByteEncoding.hex.decode(signature.dropFirst(3)), provided.count == 32 else {
            throw .unauthorized("bad_signature", "X-Slack-Signature is not v0=<hex>")
        }
        let signed = Array("v0:\(timestamp):".utf8) + body
        for secret in secrets where ConstantTime.equals(DigestAlgorithm.sha256.hmac(key: secret.bytes, message: signed), provided) { return }
        throw .unauthorized("bad_signature", "the signature does not match the body")
    }
}

extension WebhookProcessor {
    /// Slack: Events API callbacks (`slack.<event type>[.<subtype>]`), slash commands (`slack.command.<name>`) and
    /// interactions (`slack.interaction.<type>`); the url_verification challenge is answered.
    func slack(_ request: WebhookRequest) throws(WebhookRejection) -> WebhookResult {
        try SlackSignature.verify(
            headers: request.headers, body: request.body, secrets: resolved.secrets, now: request.received, tolerance: endpoint.tolerance)
        switch request.mediaType {
        case "application/x-www-form-urlencoded"?:
            return try slackForm(request)
        case let mediaType? where !MediaType.isJSON(mediaType):
            throw .unsupportedMediaType("Slack requests are application/json or application/x-www-form-urlencoded, not \(mediaType)")
        default:
            break
        }
        var body = try Self.jsonObject(request.body)
        // Slack's legacy verification token is a credential: it is not stored.
        body["token"] = nil
        let payload = JSONValue.object(body)
        switch body["type"]?.stringValue {
        case "url_verification"?:
            guard let challenge = body["challenge"]?.stringValue else { throw .malformed("url_verification without a challenge") }
            return WebhookResult(
                events: [], status: 200, body: Array(JSONValue.object(["challenge": .string(challenge)]).jsonText.utf8), contentType: "application/json",
                note: "url_verification answered")
        case "app_rate_limited"?:
            return .acknowledged("app_rate_limited notice")
        case "event_callback"?:
            guard let type = payload[path: "event.type"]?.stringValue, !type.isEmpty else { throw .malformed("event_callback without event.type") }
            var name = "slack.\(type)"
            if let subtype = payload[path: "event.subtype"]?.stringValue, !subtype.isEmpty { name += ".\(subtype)" }
            let team = body["team_id"]?.stringValue
            let channel = payload[path: "event.channel"]?.stringValue ?? payload[path: "event.item.channel"]?.stringValue
            let user = payload[path: "event.user"]?.stringValue
            let occurred: Instant
            if case .int(let time)? = body["event_time"], time > 0, time < 1 << 40 { occurred = Instant(microseconds: time * 1_000_000) } else {
                occurred = request.received
            }
            let event = slackEvent(
                name: name, id: Self.eventID(body["event_id"]?.stringValue, prefix: "slack", body: request.body), team: team, channel: channel, user: user,
                payload: body, occurred: occurred, received: request.received)
            return WebhookResult(events: [event], note: name)
        default:
            return .acknowledged("Slack request of type \(body["type"]?.stringValue ?? "(none)") ignored")
        }
    }

    func slackForm(_ request: WebhookRequest) throws(WebhookRejection) -> WebhookResult {
        let fields = FormDecoding.fields(request.body)
        func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }
        // Slack checks the certificate of slash-command URLs now and then with `ssl_check=1`; it expects a 200.
        if field("ssl_check") == "1" { return .acknowledged("Slack certificate check") }
        if let interaction = field("payload") {
            var body = try Self.jsonObject(Array(interaction.utf8), what: "the payload field")
            body["token"] = nil
            let payload = JSONValue.object(body)
            let type = body["type"]?.stringValue ?? "unknown"
            let name = "slack.interaction.\(type)"
            let identity = body["trigger_id"]?.stringValue ?? payload[path: "container.message_ts"]?.stringValue
            let event = slackEvent(
                name: name, id: Self.eventID(identity, prefix: "slack-interaction", body: request.body), team: payload[path: "team.id"]?.stringValue,
                channel: payload[path: "channel.id"]?.stringValue, user: payload[path: "user.id"]?.stringValue, payload: body, occurred: request.received,
                received: request.received)
            return WebhookResult(events: [event], note: name)
        }
        guard let command = field("command"), !command.isEmpty else {
            throw .malformed("a form-encoded Slack request needs `command` (slash command) or `payload` (interaction)")
        }
        let name = "slack.command.\(command.hasPrefix("/") ? String(command.dropFirst()) : command)"
        var body: [String: JSONValue] = [:]
        for (key, value) in fields where key != "token" { body[key] = .string(value) }
        let event = slackEvent(
            name: name, id: Self.eventID(field("trigger_id"), prefix: "slack-command", body: request.body), team: field("team_id"), channel: field("channel_id"),
            user: field("user_id"), payload: body, occurred: request.received, received: request.received)
        // Slack shows an empty 200 as "no reply"; say something short.
        return WebhookResult(events: [event], status: 200, body: Array("Received.".utf8), contentType: "text/plain", note: name)
    }

    func slackEvent(
        name: String, id: EventID, team: String?, channel: String?, user: String?, payload: [String: JSONValue], occurred: Instant, received: Instant
    ) -> Event {
        var resource: [String: String]
        if let channel {
            resource = [Resource.idLabel: "slack.channel.\(channel)", "slack.channel": channel]
        } else if let team {
            resource = [Resource.idLabel: "slack.team.\(team)"]
        } else {
            resource = [Resource.idLabel: "slack.webhook.\(endpoint.slug)"]
        }
        if let team { resource["slack.team"] = team }
        var related: [Resource] = []
        if let user { related.append(Resource([Resource.idLabel: "slack.user.\(user)", Resource.roleLabel: "user"])) }
        if let team, channel != nil { related.append(Resource([Resource.idLabel: "slack.team.\(team)", Resource.roleLabel: "team"])) }
        related.append(webhookResource)
        return Event(id: id, occurred: occurred, event: name, resource: Resource(resource), related: related, payload: payload, received: received)
    }
}
