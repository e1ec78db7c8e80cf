import Casket

#if canImport(Glibc)
import Glibc
#endif

/// The scale benchmark's writer and reader (Tools/bench/scale.sh, docs/PERFORMANCE.md 11): keys
/// `s/0..s/{N-1}`, each a distinct payload of 200 to 1,000 bytes, a function of the key.
func scaleCommand(_ args: [String], _ cache: CacheStore) throws {
    guard args.count == 4, let count = Int(args[3]), count > 0 else { fail("usage: \(args[1]) STORE N") }
    switch args[1] {
    case "scale-write":
        let session = try cache.writeSession()
        for i in 0..<count {
            let key = "s/\(i)"
            try session.set(key, bytes: scalePayload(i))
        }
        try session.close()
        emit("wrote \(count)\n")
    default:
        // A new process: the first get reads the whole index, then each key is one lookup and one read.
        var bytes = 0
        for i in 0..<count {
            let value = try cache.get("s/\(i)")
            guard value.count == scaleSize(i), value.prefix(8).elementsEqual(scalePayload(i).prefix(8)) else {
                fail("wrong value for s/\(i)")
            }
            bytes += value.count
        }
        emit("read \(count) keys, \(bytes) bytes\n")
    }
}

/// 200 to 1,000 bytes, spread over the range.
func scaleSize(_ i: Int) -> Int { 200 + (i &* 7919) % 801 }

/// Distinct for every `i`: the index in the first 8 bytes, then xorshift bytes seeded by it.
func scalePayload(_ i: Int) -> [UInt8] {
    let size = scaleSize(i)
    var bytes = [UInt8](repeating: 0, count: size)
    var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
    for j in 0..<size {
        if j < 8 {
            bytes[j] = UInt8(truncatingIfNeeded: UInt64(i) >> (8 * UInt64(j)))
            continue
        }
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[j] = UInt8(truncatingIfNeeded: state)
    }
    return bytes
}
