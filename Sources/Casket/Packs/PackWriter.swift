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
    private var sequence = 0
    private var open: OpenPack?

    /// The pack being appended to.
    private final class OpenPack {
        let id: String
        let handle: FileHandle
        let lease: Lease
        var length: Int64 = 0
        var records: [PackRecord] = []
        var digests: [Digest: PackRecord] = [:]
        var unsynced = false

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
    init(folder: Directory, writerID: String, targetSize: Int64, compress: Bool, durable: Bool) {
        self.folder = folder
        self.writerID = writerID
        self.targetSize = targetSize
        self.compress = compress
        self.durable = durable
    }

    deinit { try? seal() }

    /// The open pack's id, if any.
    public var openPackID: String? { open?.id }

    /// Where this writer's open pack holds `digest`, if it does.
    public func record(of digest: Digest) -> (pack: String, record: PackRecord)? {
        guard let open, let record = open.digests[digest] else { return nil }
        return (open.id, record)
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
        if let current = open, current.lease.isLost { abandon() }
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
        let pack: OpenPack
        if let current = open { pack = current } else { pack = try start() }
        let (record, stored) = PackRecord.encode(payload, digest: digest, compress: compress, offset: pack.length)
        var bytes = record.header()
        bytes.append(contentsOf: stored)
        let io = pack.handle.io
        try typed { try bytes.withUnsafeBytes { try io.writeAll($0) } }
        pack.length = record.end
        pack.records.append(record)
        pack.digests[digest] = record
        pack.unsynced = true
        let id = pack.id
        if pack.length >= targetSize { try seal() }
        return (id, record)
    }

    /// Flushes the open pack's appended records (`fdatasync`): after it, they survive a crash. A failed
    /// flush leaves the pack to be sealed by others and is reported: the batch's lines must not be written.
    public func sync() throws(CasketError) {
        guard let pack = open, pack.unsynced else { return }
        do throws(CasketError) {
            try pack.handle.io.sync(dataOnly: true)
        } catch {
            abandon()
            throw error
        }
        pack.unsynced = false
    }

    /// Seals the open pack: flushes it, publishes its index (never replacing one: someone who judged this
    /// writer dead may have sealed it already, with the same bytes), and releases its lease. An empty pack
    /// is removed instead.
    public func seal() throws(CasketError) {
        guard let pack = open else { return }
        open = nil
        defer { pack.lease.release() }
        guard !pack.records.isEmpty else {
            _ = folder.remove(pack.id + PackShelf.packSuffix)
            return
        }
        if durable { try pack.handle.io.sync(dataOnly: true) }
        try PackWriter.publishIndex(
            PackIndex.encode(pack.records, covered: pack.length), in: folder, id: pack.id, durable: durable)
    }

    /// Leaves the open pack unsealed (after a failed write or flush, or a lost lease): its lease is
    /// released, so the next GC, or any reader that seals abandoned packs, seals what it holds.
    private func abandon() {
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
                in: folder, id + PackShelf.leaseSuffix, ttl: PackWriter.leaseTTL, heartbeat: PackWriter.leaseTTL / 4,
                sync: durable)
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
