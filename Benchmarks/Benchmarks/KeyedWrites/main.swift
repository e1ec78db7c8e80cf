// keyed-writes: items per second of CacheStore writes of small values, beside the raw cost of creating
// the same number of files, measured in the same process and run.
//
//   swift run -c release --package-path Benchmarks keyed-writes [COUNT] [SIZE] [FSYNC_COUNT]
//
// Prints one JSON object per line: {"name", "count", "seconds", "items_per_second"} (median of 3 runs).

import Casket
import Foundation

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
let count = arguments.count > 1 ? Int(arguments[1])! : 20_000
let size = arguments.count > 2 ? Int(arguments[2])! : 4096
let fsyncCount = arguments.count > 3 ? Int(arguments[3])! : 2_000
let base = ProcessInfo.processInfo.environment["CASKET_BENCH_DIR"] ?? NSTemporaryDirectory() + "casket-keyed-bench"

// Distinct incompressible payloads from a fast xorshift (the system generator would cost a syscall a call).
var state: UInt64 = 0x9E37_79B9_7F4A_7C15
let payloads: [[UInt8]] = (0..<count).map { _ in
    (0..<size).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

func fresh(_ name: String) -> String {
    let path = base + "/" + name
    try? FileManager.default.removeItem(atPath: path)
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func median(_ runs: Int = 3, _ body: () throws -> Double) rethrows -> Double {
    var times: [Double] = []
    for _ in 0..<runs { times.append(try body()) }
    return times.sorted()[runs / 2]
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func report(_ name: String, _ n: Int, _ time: Double) {
    print("{\"name\":\"\(name)\",\"count\":\(n),\"seconds\":\(time),\"items_per_second\":\(Double(n) / time)}")
}

/// The floor for one-file-per-value stores: create a temp file, write the payload, rename it into place.
func rawFiles(_ n: Int, sync: Bool) -> Double {
    median {
        let dir = fresh("raw")
        return seconds {
            for i in 0..<n {
                let tmp = dir + "/\(i).tmp"
                let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                precondition(fd >= 0)
                payloads[i].withUnsafeBytes { precondition(write(fd, $0.baseAddress, $0.count) == $0.count) }
                if sync { fsync(fd) }
                close(fd)
                precondition(rename(tmp, dir + "/\(i)") == 0)
                if sync {
                    let dfd = open(dir, O_RDONLY | O_DIRECTORY)
                    fsync(dfd)
                    close(dfd)
                }
            }
        }
    }
}

/// `packMax`: the store's default packs these values; 0 makes one blob file per value, the form the raw file
/// rows are the floor of.
func casket(
    _ n: Int, durability: StoreConfig.Durability, inlineMax: Int, packMax: Int = StoreConfig.defaultPackMax
) throws -> Double {
    try median {
        let dir = fresh("store")
        try FileManager.default.removeItem(atPath: dir)
        let config = StoreConfig(durability: durability, inlineMax: inlineMax, packMax: packMax)
        let cache = CacheStore(blobs: try BlobStore.create(at: dir, config: config))
        return try seconds {
            let session = try cache.writeSession()
            for i in 0..<n { try session.set("key\(i)", bytes: payloads[i]) }
            try session.close()
        }
    }
}

do {
    report("raw files, no fsync", count, rawFiles(count, sync: false))
    report("casket set, durability none", count, try casket(count, durability: .none, inlineMax: 0))
    report("casket set, durability none, inline", count, try casket(count, durability: .none, inlineMax: size))
    report(
        "casket set, durability none, pack_max 0", count, try casket(count, durability: .none, inlineMax: 0, packMax: 0)
    )
    report("raw files, fsync", fsyncCount, rawFiles(fsyncCount, sync: true))
    report("casket set, durability fsync", fsyncCount, try casket(fsyncCount, durability: .fsync, inlineMax: 0))
    report(
        "casket set, durability fsync, inline", fsyncCount, try casket(fsyncCount, durability: .fsync, inlineMax: size))
    report(
        "casket set, durability fsync, pack_max 0", fsyncCount,
        try casket(fsyncCount, durability: .fsync, inlineMax: 0, packMax: 0))
    try? FileManager.default.removeItem(atPath: base)
} catch {
    print("keyed-writes: \(error)")
    exit(1)
}
