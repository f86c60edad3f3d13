import ArgumentParser
import Foundation
import Logging
import TriplineCore
import TriplineStorage

extension Tripline {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the database migrations that `tripline serve` would apply at start, or list the pending ones.",
            discussion: """
                Migrations are named and append-only; the database records which ones it has. Several processes starting \
                together apply them one at a time. Use this before rolling out a new version, or with --check in a \
                deployment pipeline (exit 1 when migrations are pending).
                """)

        @Option(help: "SQLite database file (TRIPLINE_DATABASE; default tripline.sqlite).") var database: String?
        @Option(help: "PostgreSQL database URL (TRIPLINE_DATABASE_URL; the password from PGPASSWORD or TRIPLINE_DATABASE_PASSWORD_FILE).")
        var databaseURL: String?
        @Flag(help: "Only list pending migrations; exit 1 when there are any.") var check = false

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            let location: StoreLocation
            if let url = try databaseURLSetting(databaseURL ?? environment["TRIPLINE_DATABASE_URL"], environment: environment) {
                location = .postgres(url: url)
            } else {
                location = .sqlite(path: database ?? environment["TRIPLINE_DATABASE"] ?? "tripline.sqlite", synchronous: "FULL")
            }
            var logger = Logger(label: "tripline")
            logger.logLevel = .warning
            do {
                if check {
                    let pending = try location.pendingMigrations(logger: logger)
                    if pending.isEmpty {
                        print("the database is up to date")
                        return
                    }
                    print("pending migrations:")
                    for name in pending { print("  \(name)") }
                    throw ExitCode(1)
                }
                let applied = try location.migrate(logger: logger)
                if applied.isEmpty {
                    print("the database is up to date")
                } else {
                    print("applied \(applied.count) migration(s):")
                    for name in applied { print("  \(name)") }
                }
            } catch let error as TriplineError {
                printError("error: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
