extension Lease {
    /// Takes the lease at `path`, taking over a stale one, and starts the heartbeat. Never waits.
    ///
    /// - Parameters:
    ///   - path: The lease file; its folder must exist.
    ///   - fields: The user's fields for the record (a claim's `key`).
    ///   - ttl: How old another holder's heartbeat must be for its lease to be stale. Must be positive.
    ///   - heartbeat: How often this holder refreshes the file. Must be positive.
    ///   - sync: Flush the record before linking it (the store's durability).
    /// - Returns: ``LeaseAttempt/acquired(_:)``, or ``LeaseAttempt/busy(_:)`` naming the other holder.
    /// - Throws: ``CasketError/Code/invalidArgument`` for a TTL or heartbeat that is not positive;
    ///   ``CasketError/Code/notARegularFile`` for a directory under the lease's name; I/O errors (an
    ///   error is never taken for a lease); ``CasketError/Code/busy`` when the file kept changing hands.
    public static func acquire(
        in store: BlobStore, at path: String, fields: JSONObject = JSONObject(), ttl: Duration, heartbeat: Duration,
        sync: Bool
    ) throws(CasketError) -> LeaseAttempt {
        let (folder, name) = try store.files.locate(path)
        return try acquire(in: folder, name, fields: fields, ttl: ttl, heartbeat: heartbeat, sync: sync)
    }

    /// ``acquire(in:at:fields:ttl:heartbeat:sync:)`` for the entry `name` of an open folder.
    static func acquire(
        in folder: Directory, _ name: String, fields: JSONObject = JSONObject(), ttl: Duration, heartbeat: Duration,
        sync: Bool
    ) throws(CasketError) -> LeaseAttempt {
        let path = folder.path(of: name)
        try validate(ttl: ttl, heartbeat: heartbeat)
        let record = LeaseRecord.mine(fields: fields)
        var tookOver: LeaseHolder? = nil
        for _ in 0..<16 {
            let (created, now) = try folder.createByLink(name, record.encoded(), sync: sync)
            if created {
                return .acquired(
                    Lease(
                        folder: folder, name: name, record: record, ttl: ttl, heartbeat: heartbeat, tookOver: tookOver))
            }
            guard let holder = try LeaseHolder.observe(folder, name, now: now, ttl: ttl) else { continue }  // released
            guard holder.isStale else { return .busy(holder) }
            let ran = try withTakeoverFile(folder, name, record: record, ttl: ttl) { (now) throws(CasketError) in
                // Judge again under the takeover file: only the very file judged stale is removed.
                guard let again = try LeaseHolder.observe(folder, name, now: now, ttl: ttl) else { return }
                guard again.isStale, again.isUnchanged(holder) else { return }
                switch folder.remove(name) {
                case .success, .failure(.noSuchFileOrDirectory): tookOver = again
                case .failure(let errno): throw .remove(path, errno: errno)
                }
            }
            if !ran { return .busy(holder) }  // another taker is at it
        }
        throw CasketError(.busy, "could not take the lease '\(path)': it kept changing hands", path: path)
    }

    static func validate(ttl: Duration, heartbeat: Duration) throws(CasketError) {
        guard ttl > .zero else {
            throw CasketError(
                .invalidArgument,
                "a lease TTL must be positive, not \(ttl): with \(ttl) every live holder would count as stale")
        }
        guard heartbeat > .zero else {
            throw CasketError(.invalidArgument, "a lease heartbeat interval must be positive, not \(heartbeat)")
        }
    }

    /// Runs `body` while holding `<path>.takeover`, created exclusively like a lease; a takeover file
    /// that is stale (judged like a lease) is a dead taker's and is removed. Returns false when another
    /// taker holds it. `body` gets the file system's now (the takeover file's mtime).
    static func withTakeoverFile(
        _ folder: Directory, _ name: String, record: LeaseRecord, ttl: Duration,
        _ body: (_ now: Int64) throws(CasketError) -> Void
    ) throws(CasketError) -> Bool {
        let guardName = name + ".takeover"
        for _ in 0..<4 {
            let (created, now) = try folder.createByLink(guardName, record.encoded(), sync: false)
            if created {
                defer {
                    if case .success(let bytes?) = folder.readIfRegular(guardName, limit: 1 << 16),
                        LeaseRecord(parsing: bytes)?.token == record.token
                    {
                        _ = folder.remove(guardName)
                    }
                }
                try body(now)
                return true
            }
            guard let other = try LeaseHolder.observe(folder, guardName, now: now, ttl: ttl) else { continue }
            guard other.isStale else { return false }
            // A taker that died mid-takeover: remove its file if it is still the one judged, then retry.
            if let again = try LeaseHolder.observe(folder, guardName, now: now, ttl: ttl), again.isUnchanged(other) {
                _ = folder.remove(guardName)
            }
        }
        return false
    }
}
