// swift-tools-version: 6.2
import PackageDescription

// A strategy of your own, in your own package: it depends on Autotune by path (or by URL and version), conforms
// to `Strategy`, and is registered by name so a task file's `strategy: {name: coordinate-descent}` finds it.
let package = Package(
    name: "CustomStrategy",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "autotune", path: "../.."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CoordinateDescent", dependencies: [.product(name: "Autotune", package: "autotune")]),
        .executableTarget(
            name: "custom-study",
            dependencies: [
                "CoordinateDescent",
                .product(name: "Autotune", package: "autotune"),
                .product(name: "AutotuneRunner", package: "autotune"),
                .product(name: "AutotuneStore", package: "autotune"),
                .product(name: "AutotuneTask", package: "autotune"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
