import Foundation

/// Compute-once claims on the shared file system: at most one worker computes a key at a time, across
/// processes and hosts (docs/CLAIMS.md).
///
/// A claim on key K is a file `claims/<xxh3(K)>.<generation>` created exclusively with a unique file and
/// `link` (atomic on NFS), whose mtime is the holder's heartbeat. A claim whose heartbeat is older than
/// the TTL is stale: a waiter takes it over by creating the next generation, which only one waiter can
/// create. Time comes from the file system (the mtime of a file just written), never from a host clock.
public struct ClaimBoard: Sendable {
    /// The store the claims live in.
    public let store: BlobStore
    /// How long a claim lives without a heartbeat.
    public let ttlNanoseconds: Int64

    /// Creates a board.
    ///
    /// - Parameters:
    ///   - store: The store; claims live in its `claims/` folder.
    ///   - ttlSeconds: How long a claim survives without a heartbeat (default 60 s). Holders heartbeat
    ///     every quarter of it.
    public init(store: BlobStore, ttlSeconds: Double = 60) {
        self.store = store
        self.ttlNanoseconds = Int64(ttlSeconds * 1e9)
    }

    var directory: String { store.layout.claims }

    static func keyHash(_ key: String) -> String { Digest(hashing: Array(key.utf8)).hex }

    func path(_ key: String, generation: Int) -> String {
        directory + "/" + ClaimBoard.keyHash(key) + "." + String(generation)
    }

    /// The outcome of an attempt to claim a key.
    public enum Attempt: Sendable {
        /// This process holds the claim now.
        case acquired(HeldClaim)
        /// Another worker holds a live claim.
        case busy(ClaimRecord)
    }

    /// Tries once to claim `key`, taking over a stale claim if there is one. Never waits.
    ///
    /// - Throws: ``CasketError`` on an I/O error: an error is never mistaken for a claim.
    public func tryClaim(_ key: String) throws(CasketError) -> Attempt {
        try makeDirectory(directory, existingIsFine: true)
        var generation = 0
        while true {
            let token = HostIdentity.randomHex(bytes: 8)
            let target = path(key, generation: generation)
            let record = ClaimRecord(
                key: key, host: HostIdentity.host, pid: HostIdentity.pid, token: token,
                started: system_wallClockNanoseconds(), generation: generation, heartbeat: 0)
            // The unique file behind the link is also the clock probe: `now` is the file system's.
            let (ours, now) = try StoreFiles.createByLink(target, record.encoded(), sync: store.durable)
            if ours {
                if generation > 0, let live = liveLowerGeneration(key, below: generation, now: now) {
                    // A lower generation came back to life (released and re-taken meanwhile): back off.
                    _ = system_unlink(target)
                    return .busy(live)
                }
                return .acquired(HeldClaim(board: self, key: key, generation: generation, path: target, token: token))
            }
            guard let existing = try read(target) else { continue }  // released meanwhile: try again
            if now - existing.heartbeat < ttlNanoseconds { return .busy(existing) }
            generation += 1  // stale: take it over at the next generation
        }
    }

    private func liveLowerGeneration(_ key: String, below generation: Int, now: Int64) -> ClaimRecord? {
        for lower in 0..<generation {
            if let record = try? read(path(key, generation: lower)), now - record.heartbeat < ttlNanoseconds {
                return record
            }
        }
        return nil
    }

    /// Reads a claim file; `nil` when it does not exist.
    func read(_ path: String) throws(CasketError) -> ClaimRecord? {
        guard case .success(let st) = system_stat(path) else { return nil }
        let bytes: [UInt8]
        do {
            bytes = try readSmallFile(path, limit: 1 << 16)
        } catch  where error.code == .notFound {
            return nil
        }
        guard let record = ClaimRecord(parsing: bytes, heartbeat: st.mtimeNanoseconds) else {
            throw CasketError(.corrupt, "claim file '\(path)' is not a claim record", path: path)
        }
        return record
    }

    /// A claim as listed by ``list()``.
    public struct Listing: Sendable {
        /// What the claim file says.
        public var record: ClaimRecord
        /// The claim file.
        public var path: String
        /// Nanoseconds since the last heartbeat, in file-system time.
        public var age: Int64
        /// Whether the heartbeat is older than the TTL.
        public var stale: Bool
    }

    /// Every claim file, with its age in file-system time.
    public func list() throws(CasketError) -> [Listing] {
        try makeDirectory(directory, existingIsFine: true)
        let now = try store.fileSystemNow()
        var out: [Listing] = []
        try forEachEntry(in: directory) { (name, _) throws(CasketError) in
            guard !name.hasSuffix(".tmp") else { return }
            let path = directory + "/" + name
            guard let record = try read(path) else { return }
            let age = now - record.heartbeat
            out.append(Listing(record: record, path: path, age: age, stale: age >= ttlNanoseconds))
        }
        return out.sorted {
            (IndexKey($0.record.key), $0.record.generation) < (IndexKey($1.record.key), $1.record.generation)
        }
    }
}
