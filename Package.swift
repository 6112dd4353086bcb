// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // The daemon's pure parts are generic (ReadyQueue<ID>, TimerWheel<Purpose>, WriteBatch<...>) and live in modules of
    // their own: without their bodies the dispatcher calls them unspecialised. Measured: ~3% less daemon CPU per file.
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "orchestrator",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "orchestrator", targets: ["orchestrator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // No traits: swift-configuration support and full Foundation are not needed by the API server.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Linux calls that Glibc does not export to Swift (GNU extensions, raw syscalls).
        .target(name: "CLinuxShims"),
        // Starts one worker as a fork of itself, so the worker's max RSS is its own (see spawn.c). No libc: it runs
        // once per worker and static glibc start-up alone would cost more than the rest.
        .executableTarget(
            name: "orchestrator-spawn",
            cSettings: [.unsafeFlags(["-ffreestanding", "-fno-stack-protector", "-fno-builtin", "-fno-pic"])],
            linkerSettings: [.unsafeFlags(["-static-executable", "-Xclang-linker", "-nostdlib"])]),
        // Pure logic: no I/O, no clock of its own. Most unit tests live here.
        .target(
            name: "OrchestratorCore", dependencies: [.product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strict),
        // Cron expressions and their fire times in a time zone, daylight-saving rules included (spec/cron.md).
        .target(name: "OrchestratorCron", swiftSettings: strict),
        // When tasks are due: interval and cron slots, catch-up, dependency gates. Pure.
        .target(
            name: "OrchestratorSchedule", dependencies: ["OrchestratorConfig", "OrchestratorCron"],
            swiftSettings: strict),
        // TOML file -> validated Config, every problem with file:line.
        .target(
            name: "OrchestratorConfig",
            dependencies: [
                "OrchestratorCore", "OrchestratorCron", "OrchestratorPostgres", .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strict),
        // The durable ledger: jobs, attempts, transitions (GRDB over system SQLite).
        .target(
            name: "OrchestratorStore",
            dependencies: ["OrchestratorCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        // libpq, PostgreSQL's C client (Debian's libpq-dev; scripts/setup installs it).
        .target(name: "CLibPQ"),
        // A synchronous PostgreSQL client over libpq: URLs, statements with bound parameters, transactions,
        // classified errors, LISTEN/NOTIFY through a socket for the event loop, advisory locks.
        .target(name: "OrchestratorPostgres", dependencies: ["CLibPQ"], swiftSettings: strict),
        // The ledger in PostgreSQL, the engine several daemons can share: the store protocol over OrchestratorPostgres.
        .target(
            name: "OrchestratorPostgresStore",
            dependencies: ["OrchestratorStore", "OrchestratorPostgres", "OrchestratorCore"],
            swiftSettings: strict),
        // Linux effects: inotify, posix_spawn + pidfd, renames, locks, sd_notify.
        .target(
            name: "OrchestratorPlatform",
            dependencies: ["CLinuxShims", "OrchestratorCore"],
            swiftSettings: strict),
        // The live dashboard's static files (HTML, CSS, JavaScript; no build step), embedded in the binary.
        .target(name: "OrchestratorDashboard", exclude: ["Assets"], swiftSettings: strict),
        // Prometheus metrics of the daemon: what it counts and the text `GET /metrics` serves.
        .target(
            name: "OrchestratorMetrics",
            dependencies: [
                "OrchestratorCore", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        // The daemon and the commands, composed from the modules above.
        .target(
            name: "OrchestratorDaemon",
            dependencies: [
                "OrchestratorCore", "OrchestratorConfig", "OrchestratorStore", "OrchestratorPostgresStore",
                "OrchestratorPlatform", "OrchestratorSchedule", "OrchestratorCron", "OrchestratorMetrics",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict),
        // The HTTP API inside the daemon: routes onto the command library; the dispatcher knows nothing of it.
        .target(
            name: "OrchestratorHTTP",
            dependencies: [
                "OrchestratorDaemon", "OrchestratorConfig", "OrchestratorCore", "OrchestratorStore", "OrchestratorDashboard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["openapi.json"],  // embedded by scripts/embed-openapi
            swiftSettings: strict),
        // Thin command-line shell.
        .executableTarget(
            name: "orchestrator",
            dependencies: [
                "OrchestratorDaemon", "OrchestratorHTTP", "OrchestratorMetrics", "OrchestratorConfig", "OrchestratorCore",
                "OrchestratorCron",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        // Micro-benchmarks of the timer wheel (against swift-collections' Heap) and the cron evaluator;
        // run by Benchmarks/bench.sh, never by the tests.
        .executableTarget(
            name: "orchestrator-bench",
            dependencies: [
                "OrchestratorCore", "OrchestratorCron", "OrchestratorMetrics",
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            path: "Benchmarks/Swift", swiftSettings: strict),
        // Helpers shared by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "OrchestratorCoreTests", dependencies: ["OrchestratorCore", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "OrchestratorConfigTests", dependencies: ["OrchestratorConfig", "OrchestratorCore"],
            swiftSettings: strict),
        .testTarget(
            name: "OrchestratorPlatformTests", dependencies: ["OrchestratorPlatform", "OrchestratorCore", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "OrchestratorCronTests", dependencies: ["OrchestratorCron", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "OrchestratorScheduleTests",
            dependencies: ["OrchestratorSchedule", "OrchestratorConfig", "OrchestratorCore", "OrchestratorCron", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "OrchestratorStoreTests",
            dependencies: [
                "OrchestratorStore", "OrchestratorPostgresStore", "OrchestratorPostgres", "OrchestratorCore",
                "OrchestratorSchedule", "OrchestratorConfig", "OrchestratorCron",
            ],
            swiftSettings: strict),
        // Against a real server: $ORCH_TEST_POSTGRES_URL, which scripts/test sets (scripts/postgres).
        .testTarget(name: "OrchestratorPostgresTests", dependencies: ["OrchestratorPostgres"], swiftSettings: strict),
        .testTarget(
            name: "OrchestratorDaemonTests",
            dependencies: [
                "OrchestratorDaemon", "OrchestratorConfig", "OrchestratorCore", "OrchestratorStore", "OrchestratorPlatform",
                "OrchestratorMetrics", "TestSupport",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "OrchestratorMetricsTests", dependencies: ["OrchestratorMetrics", "OrchestratorCore", "TestSupport"],
            swiftSettings: strict),
        .testTarget(name: "OrchestratorDashboardTests", dependencies: ["OrchestratorDashboard"], swiftSettings: strict),
        .testTarget(
            name: "OrchestratorHTTPTests",
            dependencies: [
                "OrchestratorHTTP", "OrchestratorDaemon", "OrchestratorStore", "OrchestratorConfig",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests", dependencies: ["OrchestratorCore", "TestSupport"], exclude: ["Support/openapi_validate.py"],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
