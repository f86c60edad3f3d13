import Foundation
import Logging
import TriplineStorage
import TriplineTestTargets

/// The stores the storage tests run against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// A fresh location of this kind.
    func freshLocation() throws -> StoreLocation {
        switch self {
        case .sqlite:
            return .sqlite(
                path: FileManager.default.temporaryDirectory.appendingPathComponent("tripline-store-\(UUID().uuidString).sqlite").path, synchronous: "FULL")
        case .postgres:
            return .postgres(url: try PostgresTestServer.freshDatabase())
        }
    }

    /// The kinds that can run here.
    static var available: [StoreKind] { PostgresTestServer.enabled ? allCases : [.sqlite] }
}

import Testing
