import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Testing

/// A request a fake target received.
struct ReceivedRequest: Sendable {
    var method: String
    var path: String
    var headers: [String: String]
    var body: String
    var at: Date
}

/// What a fake target answers.
struct FakeAnswer: Sendable {
    var status: Int
    var body: String = ""
    var headers: [String: String] = [:]
    /// Waits this long before answering (longer than the client's timeout simulates a lost answer).
    var delay: Duration = .zero
}

/// A local HTTP server on a real socket that records every request and answers as the test scripts it: the stand-in
/// for Slack, PagerDuty and webhook targets, which the tests cannot reach.
final class FakeTarget: Sendable {
    let requests = Mutex<[ReceivedRequest]>([])
    let answer: @Sendable (ReceivedRequest, Int) -> FakeAnswer
    let portBox = Mutex<Int?>(nil)
    let task = Mutex<Task<Void, any Error>?>(nil)

    /// - Parameter answer: The answer to the n-th request (0-based).
    init(answer: @escaping @Sendable (ReceivedRequest, Int) -> FakeAnswer) {
        self.answer = answer
    }

    var port: Int { portBox.withLock { $0 ?? 0 } }
    var url: String { "http://127.0.0.1:\(port)" }
    var received: [ReceivedRequest] { requests.withLock { $0 } }

    func start() async throws {
        let router = Router()
        router.on("/**", method: .post) { request, context in try await self.handle(request, context) }
        router.on("/**", method: .put) { request, context in try await self.handle(request, context) }
        router.on("/**", method: .get) { request, context in try await self.handle(request, context) }
        router.on("/**", method: .delete) { request, context in try await self.handle(request, context) }
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0), serverName: "fake"),
            onServerRunning: { channel in self.portBox.withLock { $0 = channel.localAddress?.port } },
            logger: Logger(label: "fake-target", factory: { _ in SwiftLogNoOpLogHandler() }))
        task.withLock { $0 = Task { try await app.run() } }
        for _ in 0..<400 where portBox.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
        #expect(port != 0, "the fake target started")
    }

    func stop() {
        task.withLock { $0?.cancel() }
    }

    deinit { task.withLock { $0?.cancel() } }

    func handle(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: 1 << 20)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let received = ReceivedRequest(
            method: request.method.rawValue, path: request.uri.path, headers: headers, body: String(buffer: buffer), at: Date())
        let number = requests.withLock { list -> Int in
            list.append(received)
            return list.count - 1
        }
        let reply = answer(received, number)
        if reply.delay > .zero { try await Task.sleep(for: reply.delay) }
        var fields = HTTPFields()
        for (name, value) in reply.headers { if let field = HTTPField.Name(name) { fields[field] = value } }
        return Response(status: HTTPResponse.Status(code: reply.status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: reply.body)))
    }
}

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
