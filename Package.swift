// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "lkjwt-fcgi",
    products: [
        .executable(name: "lkjwt-fcgi", targets: ["lkjwt-fcgi"]),
        // libFuzzer targets for every parser of outside input (scripts/fuzz); in an ordinary build a
        // replayer of inputs through the same checks.
        .executable(name: "lkjwt-fuzz", targets: ["lkjwt-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CFCGI",
            pkgConfig: "fcgi",
            providers: [.apt(["libfcgi-dev"])]
        ),
        // Headers only: libcurl is loaded on first use (LKJWTLogic/HTTP/CurlLibrary.swift), not linked.
        .systemLibrary(
            name: "CCurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CResolv",
            providers: [.apt(["libc6-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "LKJWTLogic",
            dependencies: [
                "CCurl",
                "CCrypto",
                "CResolv",
                "CSQLite",
                "CHiredis",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "lkjwt-fcgi",
            dependencies: [
                "CFCGI",
                "LKJWTLogic",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // The Swift runtime and FoundationEssentials linked in: as shared libraries their loading
            // and symbol binding cost each plain CGI request several milliseconds (bench/bench.py).
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections"])]
        ),
        .executableTarget(
            name: "lkjwt-fuzz",
            dependencies: [
                "LKJWTLogic",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LKJWTLogicTests",
            dependencies: ["LKJWTLogic"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
