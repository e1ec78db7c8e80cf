// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "casket",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Casket", targets: ["Casket"]),
        .library(name: "CasketMigration", targets: ["CasketMigration"]),
        .library(name: "CasketGC", targets: ["CasketGC"]),
        .executable(name: "casket", targets: ["CasketCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // What Glibc's Swift overlay does not expose: renameat2, RENAME_NOREPLACE.
        .target(name: "CCasketShims"),
        // The one door to the file system: system calls, descriptors, directory handles that never follow a
        // symbolic link, temp files, host identity, and the error type. Nothing else imports Glibc.
        .target(name: "CasketSystem", dependencies: ["CCasketShims"], swiftSettings: strict),
        .target(name: "Casket", dependencies: ["CXXHash", "CLZ4", "CasketSystem"], swiftSettings: strict),
        .target(name: "CasketMigration", dependencies: ["Casket"], swiftSettings: strict),
        // Garbage collection, its multi-host lock, and fsck.
        .target(name: "CasketGC", dependencies: ["Casket"], swiftSettings: strict),
        .executableTarget(
            name: "CasketCLI",
            dependencies: [
                "Casket", "CasketMigration", "CasketGC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CasketTestSupport",
            dependencies: ["Casket"],
            path: "Tests/CasketTestSupport",
            swiftSettings: strict
        ),
        // Load generator the tests spawn as real, separate writer and reader processes.
        .executableTarget(
            name: "casket-testhelper",
            dependencies: ["Casket", "CasketGC"],
            path: "Tests/CasketTestHelper",
            swiftSettings: strict
        ),
        .testTarget(
            name: "CasketSystemTests", dependencies: ["CasketSystem", "CasketTestSupport"], swiftSettings: strict),
        .testTarget(name: "CasketTests", dependencies: ["Casket", "CasketTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "CasketMigrationTests",
            dependencies: ["Casket", "CasketMigration", "CasketTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CasketGCTests", dependencies: ["CasketGC", "Casket", "CasketTestSupport"], swiftSettings: strict),
    ]
)
