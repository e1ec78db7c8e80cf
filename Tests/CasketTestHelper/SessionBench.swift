import Casket

#if canImport(Glibc)
import Glibc
#endif

/// `session-bench STORE COUNT SIZE`: the Swift side of docs/PERFORMANCE.md 10. Writes COUNT distinct values
/// of SIZE bytes through one `WriteSession` (closed, so every line is committed), then reads every key back
/// verified through a new `CacheStore`, and prints both rates as one JSON line. The payloads are made
/// before the clock starts, as the exca script makes its arrays.
func sessionBench(_ root: String, count: Int, size: Int) throws {
    // One xorshift stream: distinct, incompressible payloads, cheaper to make than one digest per key.
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    let payloads: [[UInt8]] = (0..<count).map { _ in
        var bytes = [UInt8](repeating: 0, count: size)
        for i in 0..<size {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[i] = UInt8(truncatingIfNeeded: state)
        }
        return bytes
    }
    let keys = (0..<count).map { "k\($0)" }
    let writeStart = ContinuousClock.now
    let cache = try CacheStore.open(at: root)
    let session = try cache.writeSession()
    for i in 0..<count { try session.set(keys[i], bytes: payloads[i]) }
    try session.close()
    let written = ContinuousClock.now - writeStart
    let readStart = ContinuousClock.now
    let reader = try CacheStore.open(at: root)
    var total = 0
    for key in keys { total += try reader.get(key).count }
    let read = ContinuousClock.now - readStart
    guard total == count * size else { fail("read \(total) bytes, expected \(count * size)") }
    func perSecond(_ elapsed: Duration) -> Int {
        Int(Double(count) / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)))
    }
    emit(
        "{\"count\":\(count),\"size\":\(size),\"write_per_s\":\(perSecond(written)),"
            + "\"read_per_s\":\(perSecond(read))}\n")
}
