// swift-tools-version:6.1
import PackageDescription

#if os(Linux)
import Glibc
#endif

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// How release builds of `tripline` are linked on Linux. Every byte of the binary that the loader or the first
/// requests touch stays resident, so these settings lower the server's memory (README, Performance):
/// - no dynamic symbol table for the program's own symbols (the toolchain's static-stdlib arguments export them all;
///   nothing looks them up, and the table is paged in at start-up);
/// - where the toolchain has lld and the C library understands packed relative relocations (glibc 2.36, 2022), lld
///   with `-z pack-relative-relocs`: the relocation table shrinks from 3.5 MB to 30 KB.
/// A build without lld or on an older C library gets the first setting alone and runs anywhere the toolchain does;
/// `TRIPLINE_PORTABLE_LINK=1` in the build's environment does the same on purpose, for a binary meant for an older
/// system than the one that builds it.
let releaseLinkerSettings: [LinkerSetting] = {
    #if os(Linux)
    var flags = ["-Xlinker", "--no-export-dynamic"]
    if getenv("TRIPLINE_PORTABLE_LINK") == nil, hasLLD(), !glibcVersion().lexicographicallyPrecedes([2, 36]) {
        flags += ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"]
    }
    return [.unsafeFlags(flags, .when(platforms: [.linux], configuration: .release))]
    #else
    return []
    #endif
}()

#if os(Linux)
/// The C library's version, from `confstr` ("glibc 2.36" → [2, 36]); empty where it is not glibc.
func glibcVersion() -> [Int] {
    var buffer = [CChar](repeating: 0, count: 64)
    guard confstr(Int32(_CS_GNU_LIBC_VERSION), &buffer, buffer.count) > 0 else { return [] }
    let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard text.hasPrefix("glibc ") else { return [] }
    return text.dropFirst(6).split(separator: ".").compactMap { Int($0) }
}

/// Whether `ld.lld` is on PATH (swift.org toolchains ship it next to `swift`). When it is not, the build keeps the
/// toolchain's default linker.
func hasLLD() -> Bool {
    let path = getenv("PATH").map { String(cString: $0) } ?? ""
    return path.split(separator: ":").contains { access("\($0)/ld.lld", X_OK) == 0 }
}
#endif

let package = Package(
    name: "tripline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tripline", targets: ["tripline"]),
        .library(name: "TriplineCore", targets: ["TriplineCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/stencilproject/Stencil", exact: "0.15.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        .target(
            name: "TriplineCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "TriplineKafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "TriplineIngest",
            dependencies: [
                "TriplineCore", "COpenSSL", "TriplineKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TriplineStorage",
            dependencies: [
                "TriplineCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TriplineTemplates",
            dependencies: ["TriplineCore", .product(name: "Stencil", package: "Stencil")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TriplineActions",
            dependencies: [
                "TriplineCore",
                "TriplineKafka",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TriplineServer",
            dependencies: [
                "TriplineCore",
                "TriplineIngest",
                "TriplineStorage",
                "TriplineActions",
                "TriplineTemplates",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TriplineTestKit",
            dependencies: ["TriplineCore"],
            swiftSettings: swiftSettings
        ),
        // Local HTTP servers standing in for Slack, PagerDuty and webhook targets; used only by tests.
        .target(
            name: "TriplineTestTargets",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tripline",
            dependencies: [
                "TriplineCore",
                "TriplineIngest",
                "TriplineServer",
                "TriplineStorage",
                "TriplineTemplates",
                "TriplineKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings,
            linkerSettings: releaseLinkerSettings
        ),
        .testTarget(
            name: "TriplineCoreTests",
            dependencies: ["TriplineCore", "TriplineTestKit"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TriplineKafkaTests",
            dependencies: [
                "TriplineKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TriplineIngestTests",
            dependencies: [
                "TriplineCore", "TriplineIngest", "TriplineKafka", "TriplineTemplates",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TriplineCLITests",
            dependencies: ["TriplineCore", "TriplineTestKit"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TriplineActionsTests",
            dependencies: [
                "TriplineCore", "TriplineActions", "TriplineStorage", "TriplineTemplates", "TriplineTestKit", "TriplineTestTargets", "TriplineKafka",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TriplineServerTests",
            dependencies: [
                "TriplineCore", "TriplineServer", "TriplineStorage", "TriplineTestKit", "TriplineTestTargets", "TriplineIngest", "TriplineKafka",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
