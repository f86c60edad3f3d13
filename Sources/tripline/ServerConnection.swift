import ArgumentParser
import Foundation
import TriplineCore

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How a command reaches a running `tripline serve`: its URL and an API token. Shared by the commands that read or
/// change what a server holds (webhook deliveries, action deliveries, runs).
struct ServerConnection: ParsableArguments {
    @Option(name: .customLong("server"), help: "The server's URL (TRIPLINE_URL; default http://127.0.0.1:4200).")
    var serverURL: String?

    @Option(name: .customLong("token-file"), help: "A file holding an API token (default: the TRIPLINE_API_TOKEN environment variable).")
    var tokenFile: String?

    var baseURL: String {
        (serverURL ?? ProcessInfo.processInfo.environment["TRIPLINE_URL"] ?? "http://127.0.0.1:4200").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    }

    func token() throws -> String? {
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile), let text = String(data: data, encoding: .utf8) else {
                throw TriplineError(.io, "cannot read the token file \(tokenFile)")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return ProcessInfo.processInfo.environment["TRIPLINE_API_TOKEN"]
    }

    /// Sends a request and returns the parsed JSON answer.
    /// - Throws: An error naming the server's `detail` (or the connection problem); the command exits with status 1.
    func json(_ method: String, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        guard let url = URL(string: baseURL + path) else { throw TriplineError(.usage, "not a URL: \(baseURL + path)") }
        var request = URLRequest(url: url, timeoutInterval: 30)
        request.httpMethod = method
        if let token = try token() { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = Data(body.jsonText.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            printError("error: cannot reach \(baseURL): \(error.localizedDescription) (is `tripline serve` running? see --server)")
            throw ExitCode(1)
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let value = (try? JSONValue.parse(data)) ?? .null
        guard (200..<300).contains(status) else {
            printError("error: \(method) \(path): \(status) \(value[detail: "detail"] ?? String(decoding: data.prefix(300), as: UTF8.self))")
            throw ExitCode(1)
        }
        return value
    }
}

extension JSONValue {
    subscript(detail key: String) -> String? {
        guard case .object(let object) = self else { return nil }
        return object[key]?.stringValue
    }

    /// A member as text for a table cell.
    func cell(_ key: String) -> String {
        guard case .object(let object) = self, let value = object[key] else { return "" }
        switch value {
        case .null: return "-"
        case .string(let text): return text
        case .array(let items): return items.map { $0.stringValue ?? $0.jsonText }.joined(separator: ",")
        default: return value.jsonText
        }
    }
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = min(max(widths[index], cell.count), 60) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            let text = cell.count > 60 ? String(cell.prefix(59)) + "…" : cell
            return index == cells.count - 1 ? text : text.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}
