import Benchmark
import CXXH3Direct
import Casket

/// Deterministic bytes, the pattern of the known-answer tests.
private func pattern(_ count: Int) -> [UInt8] {
    (0..<count).map { i in UInt8(truncatingIfNeeded: i &* 7 &+ (i >> 8) &* 13 &+ 1) }
}

let benchmarks: @Sendable () -> Void = {
    let sizes: [(name: String, bytes: Int, seconds: Int)] = [("1 MiB", 1 << 20, 3), ("256 MiB", 256 << 20, 6)]
    for (name, count, seconds) in sizes {
        let input = pattern(count)
        // Same input, same check: both must give the same digest, or the comparison is meaningless.
        var high: UInt64 = 0
        var low: UInt64 = 0
        input.withUnsafeBytes { cxxh3_direct_128($0.baseAddress, $0.count, &high, &low) }
        precondition(Digest(hashing: input) == Digest(high: high, low: low), "Swift and C digests differ")

        let configuration = Benchmark.Configuration(
            metrics: [.wallClock, .throughput],
            timeUnits: .microseconds,
            warmupIterations: 3,
            scalingFactor: .one,
            maxDuration: .seconds(seconds),
            maxIterations: 100_000
        )
        Benchmark("XXH3-128 \(name) Digest(hashing:)", configuration: configuration) { benchmark in
            input.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations { blackHole(Digest(hashing: bytes)) }
            }
        }
        Benchmark("XXH3-128 \(name) C XXH3_128bits_dispatch", configuration: configuration) { benchmark in
            input.withUnsafeBytes { bytes in
                var h: UInt64 = 0
                var l: UInt64 = 0
                for _ in benchmark.scaledIterations {
                    cxxh3_direct_128(bytes.baseAddress, bytes.count, &h, &l)
                    blackHole(h ^ l)
                }
            }
        }
    }
}
