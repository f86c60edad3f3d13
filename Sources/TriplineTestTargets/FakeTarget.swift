public import Foundation
internal import HTTPTypes
internal import Hummingbird
internal import Logging
internal import NIOCore
import Synchronization

/// A request a fake target received.
public struct ReceivedRequest: Sendable {
    public var method: String
    public var path: String
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: String
    public var at: Date
}

/// What a fake target answers.
public struct FakeAnswer: Sendable {
    public var status: Int
    public var body: String
    public var headers: [String: String]
    /// Waits this long before answering (longer than the client's timeout simulates a lost answer).
    public var delay: Duration

    /// Creates an answer.
    public init(status: Int, body: String = "", headers: [String: String] = [:], delay: Duration = .zero) {
        self.status = status
        self.body = body
        self.headers = headers
        self.delay = delay
    }
}

/// A local HTTP server on a real socket that records every request and answers as the test scripts it: the stand-in
/// for Slack, PagerDuty and webhook targets, which the tests cannot reach.
public final class FakeTarget: Sendable {
    let requests = Mutex<[ReceivedRequest]>([])
    let answer: @Sendable (ReceivedRequest, Int) -> FakeAnswer
    let portBox = Mutex<Int?>(nil)
    let task = Mutex<Task<Void, any Error>?>(nil)

    /// - Parameter answer: The answer to the n-th request (0-based).
    public init(answer: @escaping @Sendable (ReceivedRequest, Int) -> FakeAnswer) {
        self.answer = answer
    }

    public var port: Int { portBox.withLock { $0 ?? 0 } }
    public var url: String { "http://127.0.0.1:\(port)" }
    public var received: [ReceivedRequest] { requests.withLock { $0 } }

    /// Starts listening on a free port of 127.0.0.1.
    public func start() async throws {
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
        if port == 0 { throw CancellationError() }
    }

    /// Stops listening.
    public func stop() {
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
