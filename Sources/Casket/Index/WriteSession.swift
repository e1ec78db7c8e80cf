/// A writer's own index file and the operations that append to it (docs/FORMAT.md, section 5.5).
///
/// Created by ``CacheStore/writeSession()``. The file is created on the first write and sealed by
/// ``close()`` (or when the session is released). One session per thread: its operations take a lock only
/// because, under group commit, a timer thread commits a batch that waited ``groupAge``.
public final class WriteSession {
    let store: CacheStore
    /// Owns the descriptor; `io` is the view used to write through it.
    private var file: FileHandle?
    private var io: FileRef?
    private var inode: (dev: UInt64, ino: UInt64) = (0, 0)
    /// The current writer id; changes if compaction folds the file away while this session is open.
    public private(set) var writerID: String
    private var lines = 0
    private var lastTimestamp: Int64 = 0
    private var closed = false
    /// Whether every write reads the store's index again first. Off by default: the session reads the
    /// index at its first write and stamps later writes against that view and its own lines
    /// (docs/FORMAT.md 5.4), since listing `index/` before every write costs one `lstat` per index file.
    package var refreshesBeforeEachWrite = false
    private var indexRead = false
    /// This session's packs (docs/FORMAT.md 3.7), made at its first small payload in a store with packs.
    private var packs: PackWriter?
    /// Group commit (durability `group`, docs/FORMAT.md 5.5): the lines not written yet, how many, when
    /// the first was added, and the blobs to check once they are written.
    private var pending: [UInt8] = []
    private var pendingLines = 0
    /// The bytes the batch holds: its lines, and the payloads kept to store again (5.5 step 4), which
    /// ``groupBytes`` bounds as the Python client's batch does.
    private var pendingHeld = 0
    private var batchStart: ContinuousClock.Instant?
    private var pendingChecks: [Check] = []
    /// A blob a batched line names, to look for once the line is written (5.5 step 4): the blob, its key and
    /// how to store it again.
    private typealias Check = (BlobRef, String, ((BlobRef) throws(CasketError) -> Void)?)
    /// The batch the flusher's thread is writing (``commitBehind()``), until ``settle()`` takes its outcome.
    private var behind: (bytes: [UInt8], count: Int, checks: [Check])?
    /// Made at the first full batch.
    private var flusher: BatchFlusher?
    /// A test's hook: runs on the flusher's thread before each flush of the session's pack behind, and
    /// fails that flush when it throws.
    package var beforePackFlushBehind: (() throws(CasketError) -> Void)?
    /// A batch is committed at this many lines, bytes of lines, or age (checked at each write).
    public static let groupLines = 1000
    /// See ``groupLines``.
    public static let groupBytes = 64 << 20
    /// See ``groupLines``.
    public static let groupAge: Duration = .milliseconds(200)
    /// The most lines a due batch grows to while the batch before it is being written (``commitIfDue()``).
    static let growthLines = 8 * groupLines
    /// The age at which this session commits a batch; ``groupAge`` unless a test needs only the count rule.
    package var batchAge: Duration = WriteSession.groupAge
    /// Held by every operation, and by the timer around the commit of a batch that is due.
    private let lock = SessionLock()
    /// Made at the first batched line; commits a batch once it is ``batchAge`` old.
    private var timer: BatchTimer?
    /// The failure of a commit the timer made, reported by the next operation (its batch is lost).
    private var timerError: CasketError?
    private var grouped: Bool { store.blobs.config.durability == .group }
    /// The winners' times, origins and blobs only (about 100 bytes a key): what stamping a write needs,
    /// without the value trees, and without changing the view of the store's own reads.
    private var winners: IndexReader

    init(store: CacheStore) {
        self.store = store
        self.writerID = WriteSession.newWriterID()
        self.winners = IndexReader(directory: store.blobs.layout.index)
        self.winners.keepValues = false
    }

    deinit { try? close() }

    static func newWriterID() -> String {
        "\(HostIdentity.host)-\(HostIdentity.pid)-\(HostIdentity.randomHex(bytes: 4))"
    }

    var path: String { store.blobs.layout.index + "/" + writerID + ".jsonl" }

    /// Sets `key` to a payload held in memory, stored as a blob (or inlined when the store allows it).
    ///
    /// - Returns: The entry as written.
    @discardableResult
    public func set(_ key: String, bytes: [UInt8]) throws(CasketError) -> IndexEntry {
        lock.acquire()
        defer { lock.release() }
        if store.blobs.config.inlineMax > 0 && bytes.count <= store.blobs.config.inlineMax {
            return try set(key, value: ValueTree.inlineBytesNode(bytes))
        }
        if store.blobs.packs(size: Int64(bytes.count)) {
            let put = try typed { try bytes.withUnsafeBytes { try store.blobs.put($0, packingInto: packWriter()) } }
            return try set(key, bytesOf: BlobRef(digest: put.digest, size: put.size)) {
                (_) throws(CasketError) in
                _ = try typed {
                    try bytes.withUnsafeBytes { try self.store.blobs.put($0, packingInto: self.packWriter()) }
                }
            }
        }
        let put = try store.blobs.put(bytes)
        return try set(key, bytesOf: BlobRef(digest: put.digest, size: put.size)) {
            (_) throws(CasketError) in _ = try self.store.blobs.put(bytes)
        }
    }

    /// Stores a payload as ``set(_:bytes:)`` would, without a line: appended to this session's pack below
    /// `pack_max` (docs/FORMAT.md 3.7), else a blob file. For writers that build their value trees
    /// themselves (the migrator); the pack is flushed before the lines of the session that follow.
    public func put(_ bytes: [UInt8]) throws(CasketError) -> PutResult {
        lock.acquire()
        defer { lock.release() }
        guard store.blobs.packs(size: Int64(bytes.count)) else { return try store.blobs.put(bytes) }
        return try typed { try bytes.withUnsafeBytes { try store.blobs.put($0, packingInto: packWriter()) } }
    }

    /// Sets `key` to the contents of a file, streamed into a blob (inlined when the store allows it).
    @discardableResult
    public func set(_ key: String, fileAt path: String) throws(CasketError) -> IndexEntry {
        lock.acquire()
        defer { lock.release() }
        if let small = try smallFile(path) { return try set(key, bytes: small) }
        let put = try store.blobs.put(fileAt: path)
        return try set(key, value: ValueTree.bytesNode(BlobRef(digest: put.digest, size: put.size))) {
            (_) throws(CasketError) in _ = try self.store.blobs.put(fileAt: path)
        }
    }

    /// Sets `key` to a stream of unknown length (for example standard input).
    @discardableResult
    public func set(
        _ key: String,
        streaming read: (UnsafeMutableRawBufferPointer) throws(CasketError) -> Int
    ) throws(CasketError) -> IndexEntry {
        lock.acquire()
        defer { lock.release() }
        let put = try store.blobs.put(streaming: read)
        return try set(key, value: ValueTree.bytesNode(BlobRef(digest: put.digest, size: put.size)))
    }

    /// Sets `key` to everything readable from a descriptor (for example 0, standard input), inlined when it
    /// ends within `inline_max` bytes.
    @discardableResult
    public func set(_ key: String, readingDescriptor fd: Int32, name: String) throws(CasketError) -> IndexEntry {
        lock.acquire()
        defer { lock.release() }
        let io = FileRef(fd: fd, path: name)
        let head = try readHead(io)
        if head.complete { return try set(key, bytes: head.bytes) }
        var pending = head.bytes[...]
        return try set(
            key,
            streaming: { (buffer) throws(CasketError) in
                guard !pending.isEmpty else { return try io.read(into: buffer) }
                let n = min(buffer.count, pending.count)
                buffer.copyBytes(from: pending.prefix(n))
                pending = pending.dropFirst(n)
                return n
            })
    }

    /// Sets `key` to a value tree whose blobs are already stored.
    ///
    /// - Parameters:
    ///   - key: Any non-empty string.
    ///   - value: A node (an object with `#type`); its blobs are found with ``ValueTree/blobs(in:)``.
    ///   - meta: Informative metadata stored with the entry.
    ///   - republish: Called for a referenced blob found missing after the line was appended (a garbage
    ///     collection swept it meanwhile); it must store that blob again. Without it such a blob is an error.
    /// - Throws: ``CasketError/Code/notFound`` when a referenced blob is missing and cannot be republished.
    @discardableResult
    public func set(
        _ key: String,
        value: JSONValue,
        meta: JSONValue? = nil,
        republish: ((BlobRef) throws(CasketError) -> Void)? = nil
    ) throws(CasketError) -> IndexEntry {
        lock.acquire()
        defer { lock.release() }
        try reportTimerError()
        guard !key.isEmpty else { throw CasketError(.invalidArgument, "a key must not be empty") }
        guard case .object(let object) = value, object["#type"]?.stringValue != nil else {
            throw CasketError(
                .invalidArgument, "the value of key \(KeyDisplay.quoted(key)) is not a node (an object with \"#type\")")
        }
        return try setNode(key, value: value, blobs: try ValueTree.blobs(in: value), meta: meta, republish: republish)
    }

    /// ``set(_:value:meta:republish:)`` of the `Bytes` node of a blob just stored, whose blobs are known.
    private func set(_ key: String, bytesOf ref: BlobRef, republish: @escaping (BlobRef) throws(CasketError) -> Void)
        throws(CasketError) -> IndexEntry
    {
        try reportTimerError()
        guard !key.isEmpty else { throw CasketError(.invalidArgument, "a key must not be empty") }
        return try setNode(key, value: ValueTree.bytesNode(ref), blobs: [ref], meta: nil, republish: republish)
    }

    /// Appends (or batches) the line of a checked node whose blobs are `blobs`.
    private func setNode(
        _ key: String, value: JSONValue, blobs: [BlobRef], meta: JSONValue?,
        republish: ((BlobRef) throws(CasketError) -> Void)?
    ) throws(CasketError) -> IndexEntry {
        if grouped {
            let entry = try batch(key: key, value: value, blobs: blobs, meta: meta)
            for ref in blobs { pendingChecks.append((ref, key, republish)) }
            if republish != nil { pendingHeld += blobs.reduce(0) { $0 + Int($1.size) } }  // it keeps the payload
            try commitIfDue()
            return entry
        }
        // A line never reaches the disk before the packed bytes it references.
        if store.blobs.durable { try packs?.sync() }
        let entry = try append(key: key, value: value, blobs: blobs, meta: meta)
        // Invariant I4: a GC that finished between the blob writes and this line may have swept a blob
        // this writer deduplicated against; the line is durable now, so republishing closes the race.
        // (Records of this writer's open pack are not swept: GC leaves packs alone.)
        for ref in blobs where packs?.record(of: ref.digest) == nil && !store.blobs.contains(ref.digest, size: ref.size)
        {
            guard let republish else { throw WriteSession.removed(ref, key: key) }
            try republish(ref)
        }
        return entry
    }

    /// Deletes `key` by appending a tombstone.
    @discardableResult
    public func delete(_ key: String) throws(CasketError) -> IndexEntry {
        lock.acquire()
        defer { lock.release() }
        try reportTimerError()
        guard !key.isEmpty else { throw CasketError(.invalidArgument, "a key must not be empty") }
        guard grouped else { return try append(key: key, value: nil, blobs: [], meta: nil) }
        let entry = try batch(key: key, value: nil, blobs: [], meta: nil)
        try commitIfDue()
        return entry
    }

    /// Flushes the lines appended so far to stable storage (`fdatasync`), whatever the store's durability:
    /// for writers that append a batch of lines without flushing each one.
    ///
    /// A failed flush abandons the file (its lines may not all be on disk; nothing is appended to it again):
    /// the caller writes the batch again, and the next line goes to a new file.
    public func flush() throws(CasketError) {
        lock.acquire()
        defer { lock.release() }
        try reportTimerError()
        if grouped { return try commit() }
        guard let io else { return }
        do {
            try io.sync(dataOnly: true)
        } catch {
            abandonFile()
            throw error
        }
    }

    /// Seals this session's pack, then appends a seal line and closes the file. Nothing can be written
    /// afterwards.
    public func close() throws(CasketError) {
        lock.acquire()
        defer { lock.release() }
        guard !closed else { return }
        defer { flusher?.stop() }  // a session that fails to close runs any later batch on its own thread
        try reportTimerError()
        timer?.stop()
        try settle()
        defer {
            file = nil
            io = nil
        }
        let seal = IndexLine.encodeSeal(
            timestamp: lastTimestamp == .max ? .max : max(system_wallClockNanoseconds(), lastTimestamp + 1))
        guard grouped else {
            closed = true
            try packs?.seal()
            packs = nil
            guard let io else { return }
            try typed { try seal.withUnsafeBytes { try io.writeAll($0) } }
            if store.blobs.durable { try io.sync(dataOnly: true) }
            return
        }
        // The last batch and the seal line go in one write and one flush, handed over as any batch is
        // (after the pack's flush); meanwhile the pack is sealed here, which waits for that flush first.
        if pendingLines > 0 || io != nil { try commitBehind(appending: seal) }
        closed = true
        let sealed: CasketError?
        do throws(CasketError) {
            try packs?.seal()
            sealed = nil
        } catch {
            sealed = error
        }
        packs = nil
        try settle()
        if let sealed { throw sealed }
    }

    /// The session's pack writer, made on first use; its packs are named after the session's first writer id.
    func packWriter() throws(CasketError) -> PackWriter {
        if let packs { return packs }
        // Under group commit every batch syncs the pack before its lines: records can wait in memory.
        let made = try store.blobs.packWriter(writerID: writerID, buffered: grouped)
        packs = made
        return made
    }

    /// The timestamp of a write of `key`: later than the clock, than this file's last line, and than the
    /// key's current winner (docs/FORMAT.md 5.4), so a host whose clock ran ahead cannot freeze the key.
    private func nextTimestamp(for key: String) throws(CasketError) -> Int64 {
        if refreshesBeforeEachWrite || !indexRead {
            // A file folded away while being listed may hide the winner: read again (compaction publishes
            // before it deletes, so a later pass sees its lines under the new name).
            for _ in 0..<5 {
                try winners.refresh()
                if !winners.fileVanishedDuringLastRefresh { break }
            }
            indexRead = true
        }
        let winner = winners.markWinners[IndexKey(key)]
        var floor = lastTimestamp
        if let winner { floor = max(floor, winner.timestamp) }
        guard floor < Int64.max else {
            let origin = winner.map { " (\($0.writer):\($0.line))" } ?? ""
            throw CasketError(
                .clockSkew,
                "key '\(key)' has an entry with ts \(floor)\(origin), the greatest a timestamp can be: no write "
                    + "can come after it (its writer's clock is wrong; docs/FORMAT.md 5.4)")
        }
        lastTimestamp = max(system_wallClockNanoseconds(), floor + 1)
        return lastTimestamp
    }

    /// Closes the current file for good and moves to a new writer id: after a failed or partial append the
    /// file may end with part of a line, and a later append would merge with it (docs/FORMAT.md 5.5).
    private func abandonFile() {
        file = nil
        io = nil
        writerID = WriteSession.newWriterID()
    }

    private func append(key: String, value: JSONValue?, blobs: [BlobRef], meta: JSONValue?) throws(CasketError)
        -> IndexEntry
    {
        guard !closed else { throw CasketError(.invalidArgument, "the write session is closed") }
        let timestamp = try nextTimestamp(for: key)
        var failedOnce = false
        while true {
            try openFileIfNeeded()
            let entry = IndexEntry(
                key: key, timestamp: timestamp, value: value, blobs: blobs,
                origin: .init(writer: writerID, line: lines + 1), meta: meta)
            let line = IndexLine.encode(entry, withOrigin: false)
            let io = self.io!
            do throws(CasketError) {
                try typed { try line.withUnsafeBytes { try io.writeAll($0) } }
                if store.blobs.durable { try io.sync(dataOnly: true) }
            } catch {
                // Write error, short write or failed fdatasync: never append to this file again; write the
                // line once more in a new file (a duplicate line is harmless).
                abandonFile()
                if failedOnce { throw error }
                failedOnce = true
                continue
            }
            lines += 1
            if stillOurs() { return entry }
            // Compaction took the file away: start a new one and write the line again there.
            abandonFile()
        }
    }

    /// The error for a blob a line names that was removed before the line was written, and cannot be
    /// stored again.
    static func removed(_ ref: BlobRef, key: String) -> CasketError {
        CasketError(
            .notFound,
            "blob \(ref.digest) of key \(KeyDisplay.quoted(key)) was removed (by a concurrent garbage collection?) before its entry was committed; set the key again"
        )
    }

    /// Creates this session's index file if it has none open.
    private func openFileIfNeeded() throws(CasketError) {
        guard io == nil else { return }
        // index/ opened without following a link; O_EXCL never follows one either.
        let handle = try store.blobs.directories.folder(.index, create: true).createExclusive(writerID + ".jsonl")
        let st = try handle.io.status()
        inode = (st.device, st.inode)
        io = handle.io
        file = consume handle
        lines = 0
    }

    /// Adds a line to the batch (group commit); its origin is the line it will be in this file.
    private func batch(key: String, value: JSONValue?, blobs: [BlobRef], meta: JSONValue?) throws(CasketError)
        -> IndexEntry
    {
        guard !closed else { throw CasketError(.invalidArgument, "the write session is closed") }
        let entry = IndexEntry(
            key: key, timestamp: try nextTimestamp(for: key), value: value, blobs: blobs,
            origin: .init(writer: writerID, line: lines + (behind?.count ?? 0) + pendingLines + 1), meta: meta)
        let before = pending.count
        IndexLine.encode(entry, withOrigin: false, into: &pending)
        pendingLines += 1
        pendingHeld += pending.count - before
        if batchStart == nil {
            let start = ContinuousClock.now
            batchStart = start
            if timer == nil { timer = BatchTimer { [weak self] in self?.timerFired() } }
            timer?.schedule(start + batchAge)
        }
        return entry
    }

    /// On the timer's thread: commits the batch if it is ``batchAge`` old, else says when it will be.
    private func timerFired() -> ContinuousClock.Instant? {
        lock.acquire()
        defer { lock.release() }
        guard !closed, let start = batchStart else { return nil }
        guard ContinuousClock.now - start >= batchAge else { return start + batchAge }
        do {
            try commit()
        } catch {
            timerError = error
        }
        return nil
    }

    /// Throws, once, the failure of a commit the timer made: that batch's lines were not written.
    private func reportTimerError() throws(CasketError) {
        guard let error = timerError else { return }
        timerError = nil
        throw error
    }

    /// Hands the batch over once it is due (``groupLines``, ``groupBytes`` or ``batchAge``); while the batch
    /// before it is still being written, a due batch keeps growing instead of waiting for that thread, up to
    /// ``growthLines`` lines or ``groupBytes`` held: when flushes are slow, each covers more lines.
    private func commitIfDue() throws(CasketError) {
        guard let batchStart else { return }
        guard
            pendingLines >= WriteSession.groupLines || pendingHeld >= WriteSession.groupBytes
                || ContinuousClock.now - batchStart >= batchAge
        else { return }
        if let flusher, behind != nil, !flusher.idle, pendingLines < WriteSession.growthLines,
            pendingHeld < WriteSession.groupBytes
        {
            return
        }
        try commitBehind()
    }

    /// Commits the batch (group commit, docs/FORMAT.md 5.5) and waits for it: when it returns, every key
    /// set before it survives a crash.
    private func commit() throws(CasketError) {
        try commitBehind()
        try settle()
    }

    /// Hands the batch to the flusher's thread, once the batch written before it is settled: the session's
    /// pack records are written here and flushed there, and only once that flush has succeeded does the
    /// thread write every line in one write and one `fdatasync` (5.5 steps 1-2: no line ever names bytes
    /// that are not durable). The session fills the next batch meanwhile. `seal`, a seal line, ends the
    /// write (``close()``).
    private func commitBehind(appending seal: [UInt8]? = nil) throws(CasketError) {
        try settle()
        guard pendingLines > 0 || seal != nil else { return }
        let (bytes, count, checks) = (pending + (seal ?? []), pendingLines, pendingChecks)
        (pending, pendingLines, pendingHeld, pendingChecks, batchStart) = ([], 0, 0, [], nil)
        pending.reserveCapacity(bytes.count)  // the next batch is about as large: no growth by doubling
        pendingChecks.reserveCapacity(checks.count)
        try openFileIfNeeded()
        // Last: a flush made is always handed over, so the pack writer's wait for it ends.
        let packFlush = try packs?.flushBehind()
        let io = self.io!
        let hook = beforePackFlushBehind
        let flusher = self.flusher ?? BatchFlusher()
        self.flusher = flusher
        behind = (bytes, count, checks)
        flusher.submit {
            if let packFlush, let error = packFlush.run(before: hook) { return .pack(error) }
            do throws(CasketError) {
                try typed { try bytes.withUnsafeBytes { try io.writeAll($0) } }
                try io.sync(dataOnly: true)
            } catch {
                return .index(error)
            }
            return nil
        }
    }

    /// Takes the outcome of the batch written behind, if any, then looks for the blobs its lines name (5.5
    /// step 4). A failure loses that batch and every line set since (this call's too, when a write reports
    /// it): after a failed pack flush those lines may name records that are not on disk.
    private func settle() throws(CasketError) {
        guard let batch = behind, let flusher else { return }
        behind = nil
        do throws(CasketError) {
            switch flusher.wait() {
            case nil:
                lines += batch.count
                if !stillOurs() {  // compaction took the file away: the batch goes to a new one
                    abandonFile()
                    try writeBatch(batch.bytes, count: batch.count)
                }
            case .pack(let error):
                packs?.settleBehind()  // abandons the pack: its later records are not flushed either
                throw error
            case .index:
                abandonFile()  // never append to it again (5.5 step 2): the batch goes to a new file, once
                try writeBatch(batch.bytes, count: batch.count, failedOnce: true)
            }
        } catch {
            (pending, pendingLines, pendingHeld, pendingChecks, batchStart) = ([], 0, 0, [], nil)
            throw error
        }
        try check(batch.checks)
    }

    /// Writes a batch's lines in this session's file, then flushes them; after a failed write or flush the
    /// file is abandoned and the batch written once more in a new file (a second failure is thrown).
    private func writeBatch(_ bytes: [UInt8], count: Int, failedOnce: Bool = false) throws(CasketError) {
        var failedOnce = failedOnce
        while true {
            try openFileIfNeeded()
            let io = self.io!
            do throws(CasketError) {
                try typed { try bytes.withUnsafeBytes { try io.writeAll($0) } }
                try io.sync(dataOnly: true)
            } catch {
                abandonFile()
                if failedOnce { throw error }
                failedOnce = true
                continue
            }
            lines += count
            if stillOurs() { return }
            abandonFile()
        }
    }

    /// Stores again a blob that written lines name and that is gone (a GC swept it meanwhile, invariant I4);
    /// the records of this session's open pack are not looked for (GC leaves open packs alone).
    private func check(_ checks: [Check]) throws(CasketError) {
        for (ref, key, republish) in checks
        where packs?.record(of: ref.digest) == nil && !store.blobs.contains(ref.digest, size: ref.size) {
            guard let republish else { throw WriteSession.removed(ref, key: key) }
            try republish(ref)
        }
    }

    /// Whether the index path still names the file this session has open.
    private func stillOurs() -> Bool {
        guard let index = try? store.blobs.directories.folder(.index),
            case .success(let current) = index.status(writerID + ".jsonl")
        else { return false }
        return current.inode == inode.ino && current.device == inode.dev
    }
}
