// swift-tools-version: 6.2
import PackageDescription

/// Applied to every target so the whole package builds under the same language rules.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
    name: "autotune",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Autotune", targets: ["Autotune"]),
        .library(name: "AutotuneStore", targets: ["AutotuneStore"]),
        .library(name: "AutotuneTask", targets: ["AutotuneTask"]),
        .library(name: "AutotuneStorePostgres", targets: ["AutotuneStorePostgres"]),
        .library(name: "AutotuneRunner", targets: ["AutotuneRunner"]),
        .library(name: "AutotuneRay", targets: ["AutotuneRay"]),
        .library(name: "AutotuneServing", targets: ["AutotuneServing"]),
        .library(name: "AutotuneTesting", targets: ["AutotuneTesting"]),
        .library(name: "AutotuneReport", targets: ["AutotuneReport"]),
        .library(name: "AutotuneApp", targets: ["AutotuneApp"]),
        .executable(name: "autotune", targets: ["autotune"]),
    ],
    // PostgreSQL studies shared by workers on several machines. On by default; `--disable-default-traits` builds
    // an autotune without it, which leaves out postgres-nio's crypto (a second BoringSSL): the quickstart's build
    // (docs/architecture.md has what each dependency costs).
    traits: [
        .default(enabledTraits: ["PostgreSQL"]),
        .trait(
            name: "PostgreSQL", description: "Studies shared through PostgreSQL (--db postgres://, autotune worker)."),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // OpenBLAS (CBLAS and the LAPACK routines libopenblas exports), for the Gaussian process.
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        // Pure value types and logic: no processes, files or network.
        .target(name: "Autotune", dependencies: ["COpenBLAS"]),
        // Task files (YAML or JSON) to validated core values, with file/line errors.
        .target(
            name: "AutotuneTask",
            dependencies: ["Autotune", .product(name: "Yams", package: "Yams")]
        ),
        // A study as an HTML page of SVG charts: no I/O, no script library.
        .target(name: "AutotuneReport", dependencies: ["Autotune"]),
        // SQLite persistence through GRDB.
        .target(
            name: "AutotuneStore",
            dependencies: ["Autotune", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // PostgreSQL persistence through postgres-nio, for studies shared by workers on several machines.
        .target(
            name: "AutotuneStorePostgres",
            dependencies: [
                "Autotune",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The experiment loop and the experiments that start processes.
        .target(
            name: "AutotuneRunner",
            dependencies: [
                "Autotune",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Trials as Ray jobs, through the Ray Jobs REST API: a target of its own, so a program that embeds the
        // runner with its own strategy does not build an HTTP client and its TLS.
        .target(
            name: "AutotuneRay",
            dependencies: [
                "Autotune", "AutotuneRunner",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        // Model serving: the serving experiment, the OpenAI-compatible load generator, the simulated engine.
        .target(
            name: "AutotuneServing",
            dependencies: [
                "Autotune", "AutotuneRunner",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Fakes for tests of code built on Autotune.
        .target(
            name: "AutotuneTesting",
            dependencies: [
                "Autotune", "AutotuneRunner", "AutotuneStore", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The application: a study session (task, resources, coordinator, store), the query views, the
        // dashboard's routes. What the command line, the report and the dashboard share.
        .target(
            name: "AutotuneApp",
            dependencies: [
                "Autotune", "AutotuneTask", "AutotuneStore", "AutotuneRunner", "AutotuneRay", "AutotuneServing",
                "AutotuneReport", .target(name: "AutotuneStorePostgres", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // The command line: parses arguments, prints, maps exit codes.
        .executableTarget(
            name: "autotune",
            dependencies: [
                "Autotune", "AutotuneApp", "AutotuneTask", "AutotuneRunner", "AutotuneRay", "AutotuneServing",
                "AutotuneReport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmarks: the loop's own cost per trial (docs/benchmarks.md).
        .executableTarget(
            name: "autotune-bench",
            dependencies: [
                "Autotune", "AutotuneStore", "AutotuneStorePostgres", "AutotuneRunner", "AutotuneServing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "AutotuneTests",
            dependencies: ["Autotune", "AutotuneTesting"],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "AutotuneTaskTests", dependencies: ["AutotuneTask"]),
        .testTarget(name: "AutotuneStoreTests", dependencies: ["AutotuneStore", "AutotuneTesting"]),
        .testTarget(name: "AutotuneCLITests", dependencies: ["autotune"]),
        .testTarget(
            name: "AutotuneAppTests",
            dependencies: [
                "AutotuneApp", "AutotuneTesting", .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "AutotuneStorePostgresTests",
            dependencies: ["AutotuneStorePostgres", "AutotuneTesting", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "AutotuneServingTests",
            dependencies: [
                "AutotuneServing", "AutotuneStore", "AutotuneTask", .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "AutotuneRunnerTests",
            dependencies: [
                "AutotuneRunner", "AutotuneRay", "AutotuneStore", "AutotuneTask", "AutotuneTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
