/// Compute-once claims on the shared file system: at most one worker computes a key at a time, across
/// processes, containers and hosts (docs/CLAIMS.md).
///
/// A claim on key K is the ``Lease`` `claims/<xxh3-128(K)>` whose record carries the key; this type adds
/// only the policy: the name, a TTL (default 60 s) with a heartbeat every quarter of it, and the listing.
public struct ClaimBoard: Sendable {
    /// The store the claims live in.
    public let store: BlobStore
    /// How long a claim lives without a heartbeat.
    public let ttl: Duration

    /// Creates a board.
    ///
    /// - Parameters:
    ///   - store: The store; claims live in its `claims/` folder.
    ///   - ttl: How long a claim survives without a heartbeat (default 60 s). Holders heartbeat every
    ///     quarter of it.
    /// - Throws: ``CasketError/Code/invalidArgument`` for a TTL that is not positive.
    public init(store: BlobStore, ttl: Duration = .seconds(60)) throws(CasketError) {
        try Lease.validate(ttl: ttl, heartbeat: ttl)
        self.store = store
        self.ttl = ttl
    }

    var directory: String { store.layout.claims }

    var heartbeat: Duration { max(ttl / 4, .milliseconds(50)) }

    static func keyHash(_ key: String) -> String { Digest(hashing: Array(key.utf8)).hex }

    func path(_ key: String) -> String { directory + "/" + ClaimBoard.keyHash(key) }

    /// The outcome of an attempt to claim a key.
    public enum Attempt: Sendable {
        /// This process holds the claim now.
        case acquired(HeldClaim)
        /// Another worker holds a live claim (or is taking a stale one over).
        case busy(ClaimRecord)
    }

    /// Tries once to claim `key`, taking over a stale claim if there is one. Never waits.
    ///
    /// - Throws: ``CasketError`` on an I/O error (an error is never mistaken for a claim), and
    ///   ``CasketError/Code/notARegularFile`` when a directory sits under the claim's name.
    public func tryClaim(_ key: String) throws(CasketError) -> Attempt {
        let folder = try store.directories.folder(.claims, create: true)
        let fields = JSONObject([("key", .string(key))])
        switch try Lease.acquire(
            in: folder, ClaimBoard.keyHash(key), fields: fields, ttl: ttl, heartbeat: heartbeat, sync: store.durable)
        {
        case .acquired(let lease): return .acquired(HeldClaim(key: key, lease: lease))
        case .busy(let holder): return .busy(ClaimRecord(holder))
        }
    }

    /// Every claim file, with its age in file-system time.
    public func list() throws(CasketError) -> [ClaimRecord] { try survey().claims }

    /// Every claim file, and every stray entry of `claims/` with the reason it is not a claim. A stray
    /// (another file, a folder, a name that cannot be read) is reported, never fatal.
    public func survey() throws(CasketError) -> ClaimSurvey {
        let folder = try store.directories.folder(.claims, create: true)
        let now = try store.fileSystemNow()
        var claims: [ClaimRecord] = []
        var strays: [ClaimSurvey.Stray] = []
        try folder.forEachEntry { (name, kind) throws(CasketError) in
            let path = folder.path(of: name)
            let misnamed =
                kind == .directory
                ? "a folder, not a claim file" : "not a claim file name (a claim is named by a key's hash)"
            let hash = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
            guard Digest(hash) != nil else {
                strays.append(.init(path: path, reason: misnamed))
                return
            }
            // The unique file behind the link, and the takeover file: protocol files, not claims.
            if name.hasSuffix(".tmp") || name == hash + ".takeover" { return }
            guard name == hash else {
                strays.append(.init(path: path, reason: misnamed))
                return
            }
            do throws(CasketError) {
                if let lease = try LeaseHolder.observe(folder, name, now: now, ttl: ttl) {
                    claims.append(ClaimRecord(lease))
                }
            } catch {
                strays.append(.init(path: path, reason: error.description))
            }
        }
        claims.sort { (IndexKey($0.key ?? ""), $0.path) < (IndexKey($1.key ?? ""), $1.path) }
        strays.sort { $0.path < $1.path }
        return ClaimSurvey(claims: claims, strays: strays)
    }
}
