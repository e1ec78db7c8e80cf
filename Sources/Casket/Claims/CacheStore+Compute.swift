import Foundation

extension CacheStore {
    /// Returns the stored payload of `key`, or computes, stores and returns it, computing at most once
    /// across every process and host sharing the store.
    ///
    /// When another worker holds the claim on `key`, waits (with backoff, up to `timeout`) for its result.
    /// If that worker dies, its claim goes stale after the board's TTL and this call takes over.
    ///
    /// - Parameters:
    ///   - key: The key.
    ///   - board: The claim board (its TTL sets how soon a dead worker's claim is taken over).
    ///   - timeout: How long to wait for another worker, in seconds.
    ///   - compute: Produces the payload; called only by the claim holder.
    /// - Throws: ``CasketError/Code/busy`` when the wait times out; errors of `compute` or of the store.
    public func getOrCompute(
        _ key: String,
        board: ClaimBoard,
        timeout: Double = 3600,
        compute: () throws -> [UInt8]
    ) throws -> [UInt8] {
        try getOrCompute([key], board: board, timeout: timeout) { missing in
            [IndexKey(missing[0]): try compute()]
        }[IndexKey(key)]!
    }

    /// The batch form, like exca's MapInfra: claims every missing key it can, computes those in one call,
    /// then waits for the keys other workers are computing.
    ///
    /// - Parameters:
    ///   - keys: The keys wanted.
    ///   - board: The claim board.
    ///   - timeout: How long to wait for other workers, in seconds.
    ///   - compute: Given the keys this worker claimed (never empty), returns a payload for each of them.
    /// - Returns: The payload of every key. Keys are byte strings (``IndexKey``): "café" in NFC and NFD are
    ///   two keys, computed and stored apart.
    public func getOrCompute(
        _ keys: [String],
        board: ClaimBoard,
        timeout: Double = 3600,
        compute: ([String]) throws -> [IndexKey: [UInt8]]
    ) throws -> [IndexKey: [UInt8]] {
        var results: [IndexKey: [UInt8]] = [:]
        var pending = Set(keys.map { IndexKey($0) }).sorted().map(\.string)
        let deadline = system_wallClockNanoseconds() + Int64(timeout * 1e9)
        var delay = 0.02
        while !pending.isEmpty {
            var claimed: [HeldClaim] = []
            defer { claimed.forEach { $0.release() } }
            var waiting: [String] = []
            for key in pending {
                if try contains(key) {
                    results[IndexKey(key)] = try get(key)
                    continue
                }
                switch try board.tryClaim(key) {
                case .acquired(let claim):
                    // Re-check under the claim: the previous holder may have finished just before releasing.
                    if try contains(key) {
                        claim.release()
                        results[IndexKey(key)] = try get(key)
                    } else {
                        claimed.append(claim)
                    }
                case .busy:
                    waiting.append(key)
                }
            }
            if !claimed.isEmpty {
                let mine = claimed.map(\.key)
                let values = try compute(mine)
                let session = try writeSession()
                for key in mine {
                    guard let value = values[IndexKey(key)] else {
                        throw CasketError(
                            .invalidArgument, "compute returned no value for key \(KeyDisplay.quoted(key))")
                    }
                    try session.set(key, bytes: value)
                    results[IndexKey(key)] = value
                }
                try session.close()
                claimed.forEach { $0.release() }
                delay = 0.02
            } else if !waiting.isEmpty {
                guard system_wallClockNanoseconds() < deadline else {
                    throw CasketError(
                        .busy,
                        "timed out after \(timeout) s waiting for other workers to compute \(waiting.count) keys, "
                            + "first '\(waiting[0])'")
                }
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 1.5, 1.0)
            }
            pending = waiting
        }
        return results
    }
}
