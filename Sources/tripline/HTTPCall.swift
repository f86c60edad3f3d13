import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One HTTP request from the command line (the API commands and the benchmarks), over AsyncHTTPClient, so that the
/// binary does not load Foundation's networking (libcurl and its TLS stack) into every process, `serve` included.
enum HTTPCall {
    /// The largest answer read.
    static let maximumResponse = 64 * 1024 * 1024

    /// Sends `method url` with `headers` and `body`; returns the status and the body.
    static func send(_ method: String, _ url: String, headers: [(String, String)] = [], body: Data? = nil, timeout: TimeAmount = .seconds(30)) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: maximumResponse)
        return (Int(response.status.code), Data(buffer.readableBytesView))
    }
}
