/// A writer's own packs (docs/FORMAT.md 3.7): it appends small payloads to one open pack at a time,
/// which only it appends to, and seals each pack (writes its index) when it is full or the writer ends.
///
/// While a pack is open its writer holds the lease `packs/<id>.lease` (section 7), so that anyone may
/// seal a pack whose writer died, and no one seals one whose writer is alive. After a failed write or a
/// lost lease the pack is left as it is (its torn tail is never extended, as an index file's is not,
/// FORMAT 5.5 step 2) and the payload goes to a new pack. Not thread-safe: one writer per session.
public final class PackWriter {
    /// How long a writer's lease lives without a heartbeat; the heartbeat runs every quarter of it.
    public static let leaseTTL: Duration = .seconds(60)

    let folder: Directory
    let writerID: String
    /// A pack is sealed once it holds this many bytes.
    let targetSize: Int64
    let compress: Bool
    let durable: Bool
    /// Whether records are kept in memory and written in runs of up to ``appendBuffer`` bytes (several
    /// whole records per write, FORMAT 3.7) before ``sync()``, ``drain()`` or ``seal()``: for a writer that
    /// flushes before any line names them (group commit). Otherwise each record is written as appended.
    let buffered: Bool
    /// The most bytes of records a buffered writer keeps before writing them.
    static let appendBuffer = 1 << 20
    private var sequence = 0
    /// The TTL of this writer's pack leases.
    private let ttl: Duration
    /// How many records the last sealed pack held: a new pack's tables are made that large at once.
    private var lastPackRecords = 0
    private var open: OpenPack?
    /// A buffered run that could be written neither to its pack nor to a new one: its records are lost,
    /// so the next ``sync()`` throws it and no line names them.
    private var failed: CasketError?
    /// The flush of the open pack another thread runs (``flushBehind()``): the pack is neither sealed nor
    /// abandoned before it has run, and a failed one abandons it (its records may not be on disk).
    private var behind: PackFlush?
    /// Full packs of a buffered writer, not sealed yet: the next ``flushBehind()`` seals them on the thread
    /// that runs it, before the open pack's flush (so before any line that names their records), and
    /// ``seal()`` or ``sync()`` here. Their records are still this writer's (``record(of:)``).
    private var full: [OpenPack] = []
    /// The full packs the flush behind is sealing, until it has run.
    private var sealingBehind: [OpenPack] = []

    /// The pack being appended to.
    private final class OpenPack {
        let id: String
        let handle: FileHandle
        let lease: Lease
        var length: Int64 = 0
        var records: [PackRecord] = []
        var digests: [Digest: PackRecord] = [:]
        var unsynced = false
        /// Buffered records not written yet; they end at `length`.
        var buffer: [UInt8] = []

        init(id: String, handle: consuming FileHandle, lease: Lease) {
            self.id = id
            self.handle = handle
            self.lease = lease
        }
    }

    /// - Parameters:
    ///   - folder: The store's `packs/` folder.
    ///   - writerID: The writer id (FORMAT 5.1) that names its packs `<writerID>-<n>`.
    ///   - targetSize: The pack size after which a pack is sealed.
    ///   - compress: Whether the store's compression is LZ4 (the form rule of FORMAT 3.2 then decides).
    ///   - durable: Whether seals flush (appends are flushed by ``sync()``, once per batch).
    ///   - buffered: Whether records are written in runs (see ``buffered``).
    ///   - leaseTTL: The TTL of each pack's lease (``leaseTTL``; tests shorten it to lose a lease quickly).
    init(
        folder: Directory, writerID: String, targetSize: Int64, compress: Bool, durable: Bool, buffered: Bool = false,
        leaseTTL: Duration = PackWriter.leaseTTL
    ) {
        self.folder = folder
        self.writerID = writerID
        self.targetSize = targetSize
        self.compress = compress
        self.durable = durable
        self.buffered = buffered
        self.ttl = leaseTTL
    }

    deinit { try? seal() }

    /// The open pack's id, if any.
    public var openPackID: String? { open?.id }

    /// Where this writer's open pack, or a full one it has not finished sealing, holds `digest`, if one does.
    public func record(of digest: Digest) -> (pack: String, record: PackRecord)? {
        if let open, let record = open.digests[digest] { return (open.id, record) }
        // Two loops, not one over the lists joined: that would make an array at every put.
        for pack in full {
            if let record = pack.digests[digest] { return (pack.id, record) }
        }
        for pack in sealingBehind {
            if let record = pack.digests[digest] { return (pack.id, record) }
        }
        return nil
    }

    /// Appends a payload (whose digest the caller computed) to the open pack, starting one if needed;
    /// a payload already in the open pack is not written again. The bytes are not flushed: ``sync()``
    /// does that for a batch, before its index lines are written.
    ///
    /// - Returns: The pack and the record.
    @discardableResult
    public func append(_ payload: UnsafeRawBufferPointer, digest: Digest) throws(CasketError) -> (
        pack: String, record: PackRecord
    ) {
        if let found = record(of: digest) { return found }
        if let current = open, current.lease.isLost { abandonLost(current) }
        do throws(CasketError) {
            return try appendOnce(payload, digest: digest)
        } catch {
            // The pack may end with part of a record now: never append to it again (FORMAT 5.5 step 2).
            abandon()
            return try appendOnce(payload, digest: digest)
        }
    }

    private func appendOnce(_ payload: UnsafeRawBufferPointer, digest: Digest) throws(CasketError) -> (
        pack: String, record: PackRecord
    ) {
        var pack: OpenPack
        if let current = open { pack = current } else { pack = try start() }
        if !pack.buffer.isEmpty && pack.buffer.count + PackRecord.headerSize + payload.count > PackWriter.appendBuffer {
            try drain(pack)
            if let current = open { pack = current } else { pack = try start() }
        }
        let record: PackRecord
        if buffered {
            if pack.buffer.capacity == 0 { pack.buffer.reserveCapacity(PackWriter.appendBuffer) }
            record = PackRecord.encode(
                payload, digest: digest, compress: compress, offset: pack.length, into: &pack.buffer)
        } else {
            let (made, stored) = PackRecord.encode(payload, digest: digest, compress: compress, offset: pack.length)
            var bytes = made.header()
            bytes.append(contentsOf: stored)
            let io = pack.handle.io
            try typed { try bytes.withUnsafeBytes { try io.writeAll($0) } }
            record = made
        }
        pack.length = record.end
        pack.records.append(record)
        pack.digests[digest] = record
        pack.unsynced = true
        let id = pack.id
        if pack.buffer.count >= PackWriter.appendBuffer { try drain(pack) }
        if let current = open, current === pack, pack.length >= targetSize {
            if buffered {
                // Sealed behind (flushBehind), off the writer's thread: its flushes and files wait there.
                try drain(pack)
                if let current = open, current === pack {
                    open = nil
                    lastPackRecords = pack.records.count
                    full.append(pack)
                }
            } else {
                try seal()
            }
        }
        return self.record(of: digest) ?? (id, record)  // a failed run moves records to a new pack
    }

    /// Writes the open pack's buffered records (not flushed).
    public func drain() throws(CasketError) {
        if let pack = open { try drain(pack) }
    }

    /// One write of `pack`'s buffered records. When it fails, the pack is left (its tail may be torn,
    /// FORMAT 5.5 step 2) and the same bytes go to a new pack, once: a record's header does not hold its
    /// offset, so only the offsets change. If that fails too, the records are lost: the error is kept for
    /// the next ``sync()``, so no line names them, and thrown.
    private func drain(_ pack: OpenPack) throws(CasketError) {
        guard !pack.buffer.isEmpty else { return }
        let start = pack.length - Int64(pack.buffer.count)
        var target = pack
        var moved = false
        while true {
            let io = target.handle.io
            // Written from the buffer itself: a copy would share it, and emptying a shared buffer makes a
            // new one (1 MiB of fresh pages a run).
            let count = Int64(target.buffer.count)
            do throws(CasketError) {
                try typed { [target] in try target.buffer.withUnsafeBytes { try io.writeAll($0) } }
                if durable { io.startWriteback(offset: target.length - count, length: count) }
                target.buffer.removeAll(keepingCapacity: true)
                return
            } catch {
                // The records written before this run are not flushed: flush them now, or lose the batch.
                if !moved && start > 0 {
                    do throws(CasketError) { try io.sync(dataOnly: true) } catch { failed = failed ?? error }
                }
                abandon()
                guard !moved, let fresh = try? self.start() else {
                    failed = error
                    throw error
                }
                moved = true
                let delta = fresh.length - start
                let kept = target.records.filter { $0.offset >= start }
                fresh.records = kept.map {
                    var r = $0; r.offset += delta; return r
                }
                for r in fresh.records { fresh.digests[r.digest] = r }
                fresh.buffer = target.buffer
                fresh.length = start + delta + Int64(fresh.buffer.count)
                fresh.unsynced = true
                target = fresh
            }
        }
    }

    /// Flushes the open pack's appended records (`fdatasync`): after it, they survive a crash. A failed
    /// flush leaves the pack to be sealed by others and is reported: the batch's lines must not be written.
    public func sync() throws(CasketError) {
        let open = try drainForFlush()  // first: it throws the failure of a flush behind
        try sealFull()
        guard let pack = open, pack.unsynced else { return }
        do throws(CasketError) {
            try pack.handle.io.sync(dataOnly: true)
        } catch {
            abandon()
            throw error
        }
        pack.unsynced = false
    }

    /// Writes the open pack's buffered records, as ``sync()`` does, and returns their flush for another
    /// thread to run while records keep being appended (group commit's batch flushed behind, FORMAT 5.5:
    /// that thread writes the batch's lines only once the flush has succeeded); `nil` when every record
    /// appended is flushed already. Records appended afterwards wait for the next flush.
    func flushBehind() throws(CasketError) -> PackFlush? {
        let open = try drainForFlush()
        let flushed = open.flatMap { $0.unsynced ? $0 : nil }
        guard flushed != nil || !full.isEmpty else { return nil }
        flushed?.unsynced = false
        let (folder, durable) = (self.folder, self.durable)
        let seals = full.map { pack in
            { () -> CasketError? in
                do throws(CasketError) {
                    try PackWriter.seal(pack, in: folder, durable: durable)
                    return nil
                } catch {
                    return error
                }
            }
        }
        sealingBehind = full
        full = []
        let flush = PackFlush(pack: flushed, io: flushed?.handle.io, seals: seals)
        behind = flush
        return flush
    }

    /// Waits for the flush run behind, if any; when it failed, abandons the pack it flushed, if still open
    /// (none of that pack's unflushed records may be named), and returns the failure, once.
    @discardableResult
    func settleBehind() -> CasketError? {
        guard let flush = behind else { return nil }
        behind = nil
        let error = flush.wait()
        // Sealed, or, after a failure, left to others: a seal the failure kept from running has its lease
        // released here (a release is idempotent).
        if error != nil { for pack in sealingBehind { pack.lease.release() } }
        sealingBehind = []
        guard let error else { return nil }
        if let pack = open, pack === flush.pack { abandon() }
        return error
    }

    /// Seals the full packs here (``seal()``, ``sync()``): writers that flush behind seal them there.
    private func sealFull() throws(CasketError) {
        settleBehind()
        while let pack = full.first {
            full.removeFirst()
            try PackWriter.seal(pack, in: folder, durable: durable)
        }
    }

    /// The open pack once its buffered records are written and the flush behind has run; throws a run that
    /// could not be written (once).
    private func drainForFlush() throws(CasketError) -> OpenPack? {
        if let error = settleBehind() { throw error }
        do throws(CasketError) {
            if let pack = open { try drain(pack) }
        } catch {
            failed = nil  // reported here, once
            throw error
        }
        if let error = failed {
            failed = nil
            throw error
        }
        return open
    }

    /// Seals the open pack: flushes it, publishes its index (never replacing one: someone who judged this
    /// writer dead may have sealed it already, with the same bytes), and releases its lease. An empty pack
    /// is removed instead.
    public func seal() throws(CasketError) {
        try sealFull()
        if let pack = open { try drain(pack) }
        guard let pack = open else { return }
        open = nil
        lastPackRecords = pack.records.count
        try PackWriter.seal(pack, in: folder, durable: durable)
    }

    /// Seals a pack whose records are all written: flushes it, publishes its index and releases its lease
    /// (on any outcome: a pack left unsealed is sealed by others). An empty pack is removed instead. Runs
    /// on the writer's thread or, for a full pack, on the one that flushes behind (nothing else touches a
    /// full pack but reads of its record table).
    private static func seal(_ pack: OpenPack, in folder: Directory, durable: Bool) throws(CasketError) {
        defer { pack.lease.release() }
        guard !pack.records.isEmpty else {
            _ = folder.remove(pack.id + PackShelf.packSuffix)
            return
        }
        if durable { try pack.handle.io.sync(dataOnly: true) }
        try PackWriter.publishIndex(
            PackIndex.encode(pack.records, covered: pack.length), in: folder, id: pack.id, durable: durable)
    }

    /// Leaves a pack whose lease was lost (its writer stalled past the TTL, and another may be sealing it):
    /// records of it not flushed yet may never reach the disk, or lie past the index its taker publishes,
    /// so the next ``sync()`` throws and no line names them (the batch is lost, and reported).
    private func abandonLost(_ pack: OpenPack) {
        if pack.unsynced || !pack.buffer.isEmpty {
            failed =
                failed
                ?? CasketError(
                    .busy,
                    "the lease of pack '\(pack.id)' was lost before its records were flushed; they are not "
                        + "committed", path: folder.path(of: pack.id + PackShelf.packSuffix))
        }
        abandon()
    }

    /// Leaves the open pack unsealed (after a failed write or flush, or a lost lease): its lease is
    /// released, so the next GC, or any reader that seals abandoned packs, seals what it holds.
    private func abandon() {
        settleBehind()
        guard let pack = open else { return }
        open = nil
        pack.lease.release()
    }

    private func start() throws(CasketError) -> OpenPack {
        while true {
            sequence += 1
            let id = "\(writerID)-\(sequence)"
            let lease: Lease
            switch try Lease.acquire(
                // Not flushed, as the Python writer's: after a crash its owner is gone whatever the lease
                // holds, and a lease that comes back empty is judged by its age (FORMAT 3.7).
                in: folder, id + PackShelf.leaseSuffix, ttl: ttl, heartbeat: ttl / 4,
                sync: false)
            {
            case .acquired(let taken): lease = taken
            case .busy: continue
            }
            let handle: FileHandle
            do {
                handle = try folder.createExclusive(id + PackShelf.packSuffix, mode: 0o444)
            } catch let error where error.code == .alreadyExists {
                lease.release()
                continue
            } catch {
                lease.release()
                throw error
            }
            let pack = OpenPack(id: id, handle: handle, lease: lease)
            pack.records.reserveCapacity(lastPackRecords)
            pack.digests.reserveCapacity(lastPackRecords)
            open = pack
            return pack
        }
    }

    /// Publishes `<id>.idx` holding `bytes`, never replacing an existing one.
    static func publishIndex(_ bytes: [UInt8], in folder: Directory, id: String, durable: Bool) throws(CasketError) {
        try publishOnce(bytes, in: folder, as: id + PackShelf.indexSuffix, durable: durable)
    }

    /// Publishes a file of `packs/` written once (an index, a retirement notice) through a temp file,
    /// never replacing an existing one: whoever wrote it first wrote what this call would.
    static func publishOnce(_ bytes: [UInt8], in folder: Directory, as name: String, durable: Bool)
        throws(CasketError)
    {
        var file = try AtomicFile(in: folder, mode: 0o444)
        let out = file.io
        try typed { try bytes.withUnsafeBytes { try out.writeAll($0) } }
        if try file.publish(to: folder, as: name, .exclusive(replaceIfUnsupported: false), durable: durable)
            == .nameTaken
        {
            file.discard()
        }
    }
}
