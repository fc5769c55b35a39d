// swift-tools-version:6.0
import PackageDescription

// libFuzzer target for the HTTP request parser, kept out of the root package because
// libFuzzer supplies `main`: build it with scripts/fuzz-http-parser.sh.
let package = Package(
    name: "GatewayFuzz",
    dependencies: [.package(name: "ImagingGateway", path: "../..")],
    targets: [
        .executableTarget(
            name: "HTTPParserFuzz",
            dependencies: [.product(name: "GatewayNet", package: "ImagingGateway")]),
    ]
)
