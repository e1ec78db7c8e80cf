/// Folds index files into one that holds only winners (docs/FORMAT.md, section 5.6).
///
/// Safe with writers running: a file is taken out of writers' reach by renaming it before it is read,
/// and a writer that still appends to it notices (its path no longer names its file) and writes its line
/// again in a new file. Lines of the folded files live on, with their origins, in the compacted file.
public struct Compactor {
    /// What a compaction did (or would do, in a dry run).
    public struct Report: Sendable, Equatable {
        /// Index files folded.
        public var filesFolded = 0
        /// Index files left alone (in use by a writer, or too recent).
        public var filesKept = 0
        /// Index files left alone because they hold malformed lines: folding them would drop those lines,
        /// which a person may want to inspect.
        public var filesWithProblems: [String] = []
        /// Unfinished last lines of idle or sealed files, dropped with the fold (reported once: the file is
        /// gone afterwards).
        public var partialTailsDropped: [PartialTail] = []
        /// Killed compactions' unpublished output removed.
        public var tempFilesRemoved = 0
        /// Entries of `index/` that are not index files (reported, never read).
        public var debris: [IndexDebris] = []
        /// Entry lines read from the folded files.
        public var entriesRead = 0
        /// Entry lines written to the compacted file (winners, and tombstones still needed).
        public var entriesWritten = 0
        /// Tombstones dropped because no remaining file mentions their key and they are older than the idle
        /// limit.
        public var tombstonesDropped = 0
        /// Bytes of the folded files.
        public var bytesBefore: Int64 = 0
        /// Bytes of the compacted file.
        public var bytesAfter: Int64 = 0
        /// The compacted file's name, if one was written.
        public var output: String?
    }

    let store: CacheStore
    /// An unsealed file counts as abandoned once unmodified for this long.
    public var idleNanoseconds: Int64
    /// How old the heartbeat of another holder's index lock must be before it is taken over; also how old
    /// a killed compaction's unpublished output must be before it is removed.
    public var lockTTLNanoseconds = IndexLock.defaultTTL
    /// How long to wait for the index lock (another compaction, or a garbage collection's mark).
    public var lockWaitNanoseconds: Int64 = 600_000_000_000

    /// Creates a compactor.
    ///
    /// - Parameters:
    ///   - store: The cache.
    ///   - idleSeconds: How long an unsealed index file must be unmodified before it is folded (default
    ///     one hour). Sealed files are always folded.
    public init(store: CacheStore, idleSeconds: Double = 3600) {
        self.store = store
        self.idleNanoseconds = Int64(idleSeconds * 1e9)
    }

    /// Folds what is safe to fold, holding the index lock (docs/FORMAT.md 5.6): two compactions never
    /// run at once, so one never drops a tombstone because another has folded away the line it shadows.
    ///
    /// - Parameter dryRun: Report what would be folded without changing anything (takes no lock).
    /// - Throws: ``CasketError/Code/busy`` when another compaction or a mark holds the index lock for
    ///   longer than ``lockWaitNanoseconds``, or took it over during the run.
    public func run(dryRun: Bool = false) throws(CasketError) -> Report {
        let directory = store.blobs.layout.index
        _ = try store.blobs.directories.folder(.index, create: true)
        // Every rename, create and removal below is relative to index/, opened without following a link.
        let folder = try IndexDirectory.open(directory)
        let lock =
            dryRun
            ? nil
            : try IndexLock.acquire(
                store.blobs, purpose: "compaction", ttl: lockTTLNanoseconds, wait: lockWaitNanoseconds)
        defer { lock?.release() }
        let now = try store.blobs.fileSystemNow()
        var report = Report()
        if let lock { report.tempFilesRemoved = try removeAbandonedOutput(in: folder, now: now, lock: lock) }
        var survey = IndexReader(directory: directory)
        try survey.refresh()
        report.debris = survey.debris
        var chosen: [String] = []
        var kept: [String] = []
        for name in survey.files.keys.sorted().map(\.string) {
            let path = directory + "/" + name
            guard let st = survey.listed[IndexKey(name)], let state = survey.files[IndexKey(name)] else { continue }
            let idle = now - st.mtimeNanoseconds >= idleNanoseconds
            let finished = name.hasSuffix(".folding") || survey.isSealed(name) || idle
            if survey.issues.contains(where: { $0.file.sameBytes(as: path) }) {
                report.filesWithProblems.append(path)
                kept.append(name)
            } else if finished {
                // An unfinished last line in a file nobody appends to any more is never completed: it is
                // dropped with the fold, reported this once.
                if state.tail > 0 { report.partialTailsDropped.append(PartialTail(path: path, bytes: state.tail)) }
                chosen.append(name)
                report.bytesBefore += st.size
            } else {
                kept.append(name)
            }
        }
        report.filesKept = kept.count
        // One compacted file and nothing else to fold: nothing to gain.
        if chosen.isEmpty || (chosen.count == 1 && chosen[0].hasPrefix("compact-")) {
            report.filesKept += chosen.count
            report.partialTailsDropped = []
            return report
        }
        report.filesFolded = chosen.count
        if dryRun {
            report.entriesRead = chosen.reduce(0) { $0 + (survey.files[IndexKey($1)]?.lines ?? 0) }
            return report
        }
        var folding: [String] = []
        for name in chosen {
            if name.hasSuffix(".folding") {
                folding.append(name)
                continue
            }
            try lock?.check()
            switch folder.rename(name, to: folder, as: name + ".folding") {
            case .success: folding.append(name + ".folding")
            case .failure(.noSuchFileOrDirectory): continue
            case .failure(let errno):
                throw CasketError.publish(directory + "/" + name, to: name + ".folding", errno: errno)
            }
        }
        let foldingSet = Set(folding.map { IndexKey($0) })
        var folded = try Compactor.readCompletely(directory) { foldingSet.contains(IndexKey($0)) }
        // Every other index file, `.folding` ones included: a tombstone is dropped only when no line of its
        // key remains anywhere else.
        let rest = try Compactor.readCompletely(directory) { !foldingSet.contains(IndexKey($0)) }
        report.entriesRead = folded.entryCount
        let name =
            "compact-\(String(system_wallClockNanoseconds()).leftPadded(to: 20))-\(HostIdentity.randomHex(bytes: 4))"
        // The one durable publish (AtomicFile): removed again if anything below fails.
        var file = try AtomicFile(in: folder, named: name + ".jsonl.tmp")
        do {
            // Written in pieces: memory holds the winners, not a second copy of them as text.
            var out: [UInt8] = []
            out.reserveCapacity(1 << 20)
            let io = file.io
            func flush() throws(CasketError) {
                try typed { try out.withUnsafeBytes { try io.writeAll($0) } }
                report.bytesAfter += Int64(out.count)
                out.removeAll(keepingCapacity: true)
            }
            // Each winner parsed again from its line in the `.folding` files, one at a time (DESIGN.md 3.5).
            for key in folded.winners.sortedKeys(includingDeleted: true) {
                guard let entry = try folded.winningEntry(key) else { continue }
                // A tombstone younger than the idle limit stays even when nothing else names its key: a writer
                // whose append raced with the renames may still write its losing line again (FORMAT.md 5.5
                // step 3), and without the tombstone that line would win.
                if entry.isDeleted && !rest.winners.contains(key) && now - entry.timestamp >= idleNanoseconds {
                    report.tombstonesDropped += 1
                    continue
                }
                out.append(contentsOf: IndexLine.encode(entry, withOrigin: true))
                report.entriesWritten += 1
                if out.count >= 1 << 20 { try flush() }
            }
            out.append(contentsOf: IndexLine.encodeSeal(timestamp: system_wallClockNanoseconds()))
            try flush()
            try io.sync()
            try lock?.check()
        }
        _ = try file.publish(to: folder, as: name + ".jsonl", .replace, durable: true)
        report.output = name + ".jsonl"
        try lock?.check()
        for name in folding {
            switch folder.remove(name) {
            case .success, .failure(.noSuchFileOrDirectory): break
            case .failure(let errno): throw CasketError.remove(directory + "/" + name, errno: errno)
            }
        }
        try folder.sync()
        return report
    }

    /// Reads the index files that `include` accepts until one pass read every file it listed (none was
    /// renamed away between listing and reading).
    static func readCompletely(_ directory: String, include: @escaping @Sendable (String) -> Bool)
        throws(CasketError) -> IndexReader
    {
        for _ in 1...20 {
            var reader = IndexReader(directory: directory, include: include)
            try reader.refresh()
            if !reader.fileVanishedDuringLastRefresh { return reader }
        }
        throw CasketError(
            .busy, "index files of '\(directory)' kept vanishing while compaction read them (another compaction?)",
            path: directory)
    }

    /// Removes the unpublished output of compactions that were killed: `compact-*.jsonl.tmp` unmodified for
    /// longer than the lock's TTL. Its writer held the index lock and wrote without pause, so it is dead
    /// or has lost the lock; the lines are still in the `.folding` files it read, so nothing is lost.
    private func removeAbandonedOutput(in folder: Directory, now: Int64, lock: IndexLock) throws(CasketError) -> Int {
        var removed = 0
        var names: [String] = []
        try folder.forEachEntry { (name, _) throws(CasketError) in
            if IndexDirectory.isCompactionTemp(name) { names.append(name) }
        }
        for name in names {
            guard let status = try folder.statusIfPresent(name), status.isRegularFile,
                now - status.mtimeNanoseconds > lockTTLNanoseconds
            else { continue }
            try lock.check()
            if case .success = folder.remove(name) { removed += 1 }
        }
        return removed
    }
}

/// The unfinished last line of an index file that compaction dropped with the fold.
public struct PartialTail: Sendable, Equatable, CustomStringConvertible {
    /// The index file (its name before the fold).
    public var path: String
    /// Bytes after its last newline.
    public var bytes: Int

    /// Creates a record.
    public init(path: String, bytes: Int) {
        self.path = path
        self.bytes = bytes
    }

    /// A sentence.
    public var description: String {
        "dropped the unfinished last line of '\(path)' (\(bytes) bytes without a newline; its writer is gone)"
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
