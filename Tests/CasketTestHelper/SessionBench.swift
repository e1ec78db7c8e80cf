import Casket

/// `session-bench STORE COUNT SIZE [writes]`: the Swift side of docs/PERFORMANCE.md 10. Writes COUNT distinct
/// values of SIZE bytes through one `WriteSession` (closed, so every line is committed), then, unless
/// `writes` only, reads every key back verified through a new `CacheStore`, and prints the rates as one
/// JSON line. The payloads are made before the clock starts, as the exca script makes its arrays.
func sessionBench(_ root: String, count: Int, size: Int, readBack: Bool = true) throws {
    let payloads = (0..<count).map { payload(for: "k\($0)", size: size) }
    let keys = (0..<count).map { "k\($0)" }
    let writeStart = ContinuousClock.now
    let cache = try CacheStore.open(at: root)
    let session = try cache.writeSession()
    for i in 0..<count { try session.set(keys[i], bytes: payloads[i]) }
    try session.close()
    let written = ContinuousClock.now - writeStart
    func perSecond(_ elapsed: Duration) -> Int {
        Int(Double(count) / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)))
    }
    guard readBack else { return emit("{\"count\":\(count),\"size\":\(size),\"write_per_s\":\(perSecond(written))}\n") }
    let readStart = ContinuousClock.now
    let reader = try CacheStore.open(at: root)
    var total = 0
    for key in keys { total += try reader.get(key).count }
    let read = ContinuousClock.now - readStart
    guard total == count * size else { fail("read \(total) bytes, expected \(count * size)") }
    emit(
        "{\"count\":\(count),\"size\":\(size),\"write_per_s\":\(perSecond(written)),"
            + "\"read_per_s\":\(perSecond(read))}\n")
}
