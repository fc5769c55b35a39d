// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets, kept out of the root package because libFuzzer supplies `main`:
// build and run them with Tests/Fuzz/fuzz.sh. Each has its seed corpus in seeds*/.
let package = Package(
    name: "GatewayFuzz",
    dependencies: [.package(name: "ImagingGateway", path: "../..")],
    targets: [
        .executableTarget(
            name: "HTTPParserFuzz",
            dependencies: [.product(name: "GatewayNet", package: "ImagingGateway")]),
        .executableTarget(
            name: "GzipFuzz",
            dependencies: [.product(name: "GatewayNet", package: "ImagingGateway")]),
        .executableTarget(
            name: "RecordFuzz",
            dependencies: [.product(name: "ImagingIndex", package: "ImagingGateway")]),
        .executableTarget(
            name: "UPSFuzz",
            dependencies: [.product(name: "ReadQueue", package: "ImagingGateway"),
                           .product(name: "ImagingIndex", package: "ImagingGateway")]),
        .executableTarget(
            name: "QueryFuzz",
            dependencies: [.product(name: "GatewayServer", package: "ImagingGateway"),
                           .product(name: "GatewayNet", package: "ImagingGateway")]),
        .executableTarget(
            name: "CodesFuzz",
            dependencies: [.product(name: "ImagingIndex", package: "ImagingGateway")]),
        .executableTarget(
            name: "TokenFuzz",
            dependencies: [.product(name: "PatientTokens", package: "ImagingGateway")]),
    ]
)
