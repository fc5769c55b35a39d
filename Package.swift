// swift-tools-version:6.0
import PackageDescription

// The module graph points down: GatewayNet knows sockets and HTTP, nothing of imaging;
// GatewayServer is the only module that knows both; the executable only parses flags.
let package = Package(
    name: "ImagingGateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "imaging-gateway", targets: ["imaging-gateway"]),
        .executable(name: "gateway-bench", targets: ["gateway-bench"]),
        .executable(name: "gateway-agent", targets: ["gateway-agent"]),
        .library(name: "GatewayNet", targets: ["GatewayNet"]),
        .library(name: "PatientTokens", targets: ["PatientTokens"]),
        .library(name: "ImagingIndex", targets: ["ImagingIndex"]),
        .library(name: "ReadQueue", targets: ["ReadQueue"]),
        .library(name: "GatewayServer", targets: ["GatewayServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CGatewayShims", dependencies: ["COpenSSL"]),
        .target(name: "CSQLiteShims", dependencies: ["CSQLite"]),
        .target(name: "JSONText"),
        .target(name: "CommandExit", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(
            name: "GatewayNet",
            dependencies: [
                "COpenSSL", "CZlib", "CGatewayShims", "JSONText",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]),
        .target(name: "ImagingIndex", dependencies: ["JSONText"]),
        .target(name: "PatientTokens", dependencies: ["COpenSSL", "CGatewayShims"]),
        .target(name: "AuditLog", dependencies: ["COpenSSL", "CGatewayShims", "JSONText"]),
        .target(
            name: "ReadQueue",
            dependencies: ["ImagingIndex", "JSONText", .product(name: "HeapModule", package: "swift-collections"),
                           .product(name: "DequeModule", package: "swift-collections")]),
        .target(name: "Inference", dependencies: ["GatewayNet", "JSONText"]),
        .target(name: "IndexStore", dependencies: ["ImagingIndex", "AuditLog", "JSONText", "ReadQueue", "CSQLite", "CSQLiteShims"]),
        .target(
            name: "GatewayServer",
            dependencies: [
                "GatewayNet", "CGatewayShims", "ImagingIndex", "IndexStore", "JSONText", "PatientTokens", "AuditLog", "ReadQueue",
                "Inference",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .executableTarget(
            name: "imaging-gateway",
            dependencies: [
                "GatewayServer", "IndexStore", "PatientTokens", "AuditLog", "CGatewayShims", "CommandExit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "GatewayAgent", dependencies: ["GatewayNet", "ImagingIndex", "JSONText", "PatientTokens"]),
        .executableTarget(
            name: "gateway-agent",
            dependencies: [
                "GatewayAgent", "ImagingIndex", "PatientTokens", "CommandExit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(
            name: "BenchCore",
            dependencies: ["GatewayNet", "CGatewayShims", "PatientTokens", "ChildProcess",
                           .product(name: "Histogram", package: "hdrhistogram-swift")],
            path: "Benchmarks/BenchCore"),
        .executableTarget(
            name: "gateway-bench",
            dependencies: ["BenchCore", "GatewayNet", "CommandExit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/GatewayBench"),
        .target(name: "CChildProcess"),
        .target(name: "ChildProcess", dependencies: ["CChildProcess"]),
        // Test support, not shipped: fresh paths for tests' files, removed once they pass.
        .target(name: "TestScratch", path: "Tests/TestScratch"),
        .target(name: "RecordFixtures", dependencies: ["ImagingIndex"], path: "Tests/RecordFixtures"),
        .testTarget(name: "GatewayNetTests", dependencies: ["GatewayNet", "JSONText", "ChildProcess", "TestScratch"]),
        .testTarget(name: "ImagingIndexTests", dependencies: ["ImagingIndex", "JSONText", "RecordFixtures"]),
        .testTarget(name: "JSONTextTests", dependencies: ["JSONText"]),
        .testTarget(name: "PatientTokensTests", dependencies: ["PatientTokens"]),
        .testTarget(name: "AuditLogTests", dependencies: ["AuditLog", "TestScratch"]),
        .testTarget(name: "ReadQueueTests", dependencies: ["ReadQueue", "ImagingIndex"]),
        .testTarget(name: "IndexStoreTests", dependencies: ["IndexStore", "ImagingIndex", "AuditLog", "JSONText", "ReadQueue", "ChildProcess", "CSQLite",
                                                                "CSQLiteShims", "TestScratch"]),
        .testTarget(name: "GatewayBenchTests", dependencies: ["BenchCore", "GatewayNet", "GatewayServer", "IndexStore", "ImagingIndex",
                                                                  "ChildProcess", "TestScratch"]),
        .testTarget(name: "GatewayServerTests",
                    dependencies: ["GatewayServer", "GatewayNet", "IndexStore", "ImagingIndex", "GatewayAgent", "PatientTokens",
                                   "AuditLog", "ReadQueue", "Inference", "ChildProcess", "TestScratch", "RecordFixtures"]),
    ]
)
