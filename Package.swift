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
        // Headers only: libcurl is loaded on first use (LKJWTSystem/HTTP/CurlLibrary.swift), not linked.
        .systemLibrary(
            name: "CCurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Headers only: libcrypto is loaded on first use (LKJWTLogic/Crypto/CryptoLibrary.swift), not linked.
        .systemLibrary(
            name: "CCrypto",
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
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // Behaviour: endpoints, access policy, tokens, the job state machine, and the protocols for
        // I/O. No C library but libcrypto, so its unit tests need no libcurl, libresolv, SQLite or hiredis.
        .target(
            name: "LKJWTLogic",
            dependencies: [
                "CCrypto",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The implementations of LKJWTLogic's I/O protocols over the C libraries, the system clocks
        // and randomness.
        .target(
            name: "LKJWTSystem",
            dependencies: [
                "LKJWTLogic",
                "CCurl",
                "CCrypto",
                "CResolv",
                "CSQLite",
                "CHiredis",
                "CYAML",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The FastCGI/CGI adapter and the one composition root.
        .executableTarget(
            name: "lkjwt-fcgi",
            dependencies: [
                "CFCGI",
                "LKJWTLogic",
                "LKJWTSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // The Swift runtime and FoundationEssentials linked in: as shared libraries their loading
            // and symbol binding cost each plain CGI request several milliseconds (bench/bench.py).
            // Linked by the toolchain's lld with packed relative relocations (DT_RELR, glibc 2.36): the
            // 40,000 relocations of the position-independent binary took 950 KB that every start read,
            // 0.1 ms of each CGI request; gold cannot pack them.
            // Release only: the debug build is linked into the adapter's unit tests, which need the
            // shared runtime that swift-testing uses.
            linkerSettings: [
                .unsafeFlags(
                    ["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                    .when(configuration: .release))
            ]
        ),
        .executableTarget(
            name: "lkjwt-fuzz",
            dependencies: [
                "LKJWTLogic",
                "LKJWTSystem",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test code shared by the test targets of both layers: the job store conformance suite.
        .target(
            name: "LKJWTTestSupport",
            dependencies: ["LKJWTLogic"],
            path: "Tests/LKJWTTestSupport"
        ),
        .testTarget(
            name: "LKJWTLogicTests",
            dependencies: ["LKJWTLogic", "LKJWTTestSupport"]
        ),
        .testTarget(
            name: "LKJWTSystemTests",
            dependencies: [
                "LKJWTSystem",
                "LKJWTLogic",
                "LKJWTTestSupport",
                "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The adapter's pure parts (serving mode, parameter walk, body reading), through @testable import.
        .testTarget(
            name: "lkjwt-fcgiTests",
            dependencies: ["lkjwt-fcgi", "CFCGI", "LKJWTLogic"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
