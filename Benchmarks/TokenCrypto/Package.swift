// swift-tools-version:6.1
import PackageDescription

// Per-core micro-benchmarks of the token cryptography, with swift-crypto's public
// P384._VOPRF as the reference measured in the same run. A nested package so that
// swift-crypto (and its BoringSSL build) stays out of the product and of CI's build.
let package = Package(
    name: "TokenCryptoBench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ImagingGateway", path: "../.."),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        .executableTarget(
            name: "token-crypto-bench",
            dependencies: [
                .product(name: "PatientTokens", package: "ImagingGateway"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Sources"),
    ]
)
