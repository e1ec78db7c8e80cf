extension PackShelf {
    /// What ``seal(_:durable:)`` did.
    public enum SealOutcome: Sendable, Equatable {
        /// The pack has an index now, listing this many records.
        case sealed(records: Int)
        /// It already had one.
        case alreadySealed
        /// Its writer's lease is live: the writer is still appending.
        case writerAlive
    }

    /// Seals a pack whose writer is gone (killed, or it lost its lease): takes over the writer's stale
    /// lease (a live one means the writer is alive: nothing is done), verifies every record, and
    /// publishes an index of the sound ones up to where the records stop (a torn tail is left out).
    /// Anyone may do it; two sealers publish the same bytes, and the second finds the first's index.
    public func seal(_ id: String, durable: Bool) throws(CasketError) -> SealOutcome {
        if try folder.statusIfPresent(id + PackShelf.indexSuffix) != nil { return .alreadySealed }
        let lease: Lease
        switch try Lease.acquire(
            in: folder, id + PackShelf.leaseSuffix, ttl: PackWriter.leaseTTL, heartbeat: PackWriter.leaseTTL / 4,
            sync: durable)
        {
        case .acquired(let taken): lease = taken
        case .busy: return .writerAlive
        }
        defer { lease.release() }
        if try folder.statusIfPresent(id + PackShelf.indexSuffix) != nil { return .alreadySealed }
        let (found, covered) = try verify(id)
        let records = found.filter { $0.flaw == nil }.map(\.record)
        try PackWriter.publishIndex(
            PackIndex.encode(records, covered: covered), in: folder, id: id, durable: durable)
        return .sealed(records: Set(records.map(\.digest)).count)
    }

    /// Every record of the pack `id` with a valid header, in file order, each with what is wrong with its
    /// bytes (`nil`: they decode and hash to its digest), and where the records stop: what a seal indexes
    /// and what fsck reports.
    public func verify(_ id: String) throws(CasketError) -> (
        records: [(record: PackRecord, flaw: PackFlaw?)], covered: Int64
    ) {
        let handle = try folder.openForReading(id + PackShelf.packSuffix)
        var records: [(record: PackRecord, flaw: PackFlaw?)] = []
        let covered = try PackScan.records(handle.io, length: handle.io.status().size, verify: true) {
            (record, flaw) throws(CasketError) in records.append((record, flaw))
        }
        return (records, covered)
    }
}
