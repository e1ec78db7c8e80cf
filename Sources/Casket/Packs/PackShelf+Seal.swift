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

extension PackShelf {
    /// What fsck finds in one pack (docs/GC.md, "fsck").
    public struct Audit: Sendable {
        /// The pack file's path.
        public var path: String
        /// Records with a valid header.
        public var records = 0
        /// The bytes they hold.
        public var bytes: Int64 = 0
        /// Records whose bytes do not decode or hash to their digest, as "offset N (blob H): why".
        public var damaged: [String] = []
        /// What is wrong with the pack's index: it is not the one a seal writes for the pack now (`nil`:
        /// it is, or the pack is not sealed).
        public var indexProblem: String?
        /// Whether the pack has an index.
        public var sealed = false
        /// The hashes of its sound records (fsck checks live keys against them without a lookup per pack).
        public var sound: [Digest] = []
    }

    /// Verifies every record of the pack `id` and, when it is sealed, that its index is exactly the one a
    /// seal would write (every sound record listed, nothing else).
    public func audit(_ id: String) throws(CasketError) -> Audit {
        var audit = Audit(path: folder.path(of: id + PackShelf.packSuffix))
        let (records, covered) = try verify(id)
        for (record, flaw) in records {
            audit.records += 1
            audit.bytes += record.stored
            if let flaw {
                audit.damaged.append("offset \(record.offset) (blob \(record.digest.hex)): \(flaw)")
            } else {
                audit.sound.append(record.digest)
            }
        }
        guard let indexStatus = try folder.statusIfPresent(id + PackShelf.indexSuffix) else { return audit }
        audit.sealed = true
        let indexPath = folder.path(of: id + PackShelf.indexSuffix)
        guard indexStatus.isRegularFile else {
            audit.indexProblem = "'\(indexPath)' is \(indexStatus.kind), not a regular file"
            return audit
        }
        let handle = try folder.openForReading(id + PackShelf.indexSuffix)
        do {
            let index = try PackIndex(handle.io, length: handle.io.status().size)
            // The index may cover less than the scan (records appended by nobody after the seal are not
            // indexed); what it covers must be exactly what a seal of that length lists.
            let within = records.filter { $0.flaw == nil && $0.record.end <= index.covered }.map(\.record)
            let expected = PackIndex.encode(within, covered: index.covered)
            let actual = try PackScan.readExactly(handle.io, at: 0, count: Int(handle.io.status().size))
            if index.covered > covered {
                audit.indexProblem =
                    "'\(indexPath)' covers \(index.covered) bytes, the pack's records end at \(covered)"
            } else if actual != expected {
                audit.indexProblem = "'\(indexPath)' does not list exactly the sound records of the pack"
            }
        } catch  where error.code == .corrupt {
            audit.indexProblem = error.message
        }
        return audit
    }
}
