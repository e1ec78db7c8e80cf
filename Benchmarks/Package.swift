// swift-tools-version: 6.2
// Benchmarks for Casket, kept out of the root package so that `swift test` never builds the harness.
// Run from the repository root:  swift package --package-path Benchmarks benchmark --no-progress
import PackageDescription

let package = Package(
    name: "casket-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "casket", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // libxxhash called from C, with no Swift in between: the baseline for Digest(hashing:).
        .target(name: "CXXH3Direct", linkerSettings: [.linkedLibrary("xxhash")]),
        // Whole-run timing of small keyed writes beside raw file creation (docs/PERFORMANCE.md, section 3).
        .executableTarget(
            name: "keyed-writes",
            dependencies: [.product(name: "Casket", package: "casket")],
            path: "Benchmarks/KeyedWrites"
        ),
        .executableTarget(
            name: "CasketBenchmarks",
            dependencies: [
                "CXXH3Direct",
                .product(name: "Casket", package: "casket"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/CasketBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
