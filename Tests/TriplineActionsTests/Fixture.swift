import Foundation
import TriplineTestTargets

/// The fixtures copied from the shared fixture set (public documentation examples).
enum Fixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }

    /// A recorded response fixture (`{status_code, headers, body}`) as a scripted answer.
    static func answer(_ name: String, retryAfter: String? = nil) throws -> FakeAnswer {
        let object = try JSONSerialization.jsonObject(with: Data(try text(name).utf8)) as! [String: Any]
        var headers = object["headers"] as? [String: String] ?? [:]
        if let retryAfter { headers["Retry-After"] = retryAfter }
        let body: String
        if let text = object["body"] as? String {
            body = text
        } else {
            body = String(decoding: try JSONSerialization.data(withJSONObject: object["body"] ?? [:], options: [.sortedKeys]), as: UTF8.self)
        }
        return FakeAnswer(status: object["status_code"] as! Int, body: body, headers: headers)
    }
}
