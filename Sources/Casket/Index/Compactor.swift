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
        /// Index files left alone because they hold malformed lines or an unfinished last line: folding
        /// them would drop those bytes, which a person may want to inspect.
        public var filesWithProblems: [String] = []
        /// Entry lines read from the folded files.
        public var entriesRead = 0
        /// Entry lines written to the compacted file (winners, and tombstones still needed).
        public var entriesWritten = 0
        /// Tombstones dropped because no remaining file mentions their key.
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

    /// Folds what is safe to fold.
    ///
    /// - Parameter dryRun: Report what would be folded without changing anything.
    public func run(dryRun: Bool = false) throws(CasketError) -> Report {
        let directory = store.blobs.layout.index
        let now = try store.blobs.fileSystemNow()
        var survey = IndexReader(directory: directory)
        try survey.refresh()
        var chosen: [String] = []
        var kept: [String] = []
        var report = Report()
        for name in survey.files.keys.sorted().map(\.string) {
            let path = directory + "/" + name
            guard case .success(let st) = system_stat(path) else { continue }
            let idle = now - st.mtimeNanoseconds >= idleNanoseconds
            let damaged =
                survey.issues.contains { $0.file.sameBytes(as: path) }
                || (survey.files[IndexKey(name)]?.offset ?? 0) != st.size
            if damaged {
                report.filesWithProblems.append(path)
                kept.append(name)
            } else if name.hasSuffix(".folding") || survey.isSealed(name) || idle {
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
            switch system_rename(directory + "/" + name, directory + "/" + name + ".folding") {
            case .success: folding.append(name + ".folding")
            case .failure(.noSuchFileOrDirectory): continue  // another compaction took it
            case .failure(let errno):
                throw CasketError.publish(directory + "/" + name, to: name + ".folding", errno: errno)
            }
        }
        let foldingSet = Set(folding.map { IndexKey($0) })
        var folded = IndexReader(directory: directory, include: { foldingSet.contains(IndexKey($0)) })
        try folded.refresh()
        var rest = IndexReader(
            directory: directory, include: { !foldingSet.contains(IndexKey($0)) && !$0.hasSuffix(".folding") })
        try rest.refresh()
        report.entriesRead = folded.entryCount
        var out: [UInt8] = []
        for key in folded.winners.keys.sorted() {
            let entry = folded.winners[key]!
            if entry.isDeleted && rest.winners[key] == nil {
                report.tombstonesDropped += 1
                continue
            }
            out.append(contentsOf: IndexLine.encode(entry, withOrigin: true))
            report.entriesWritten += 1
        }
        out.append(contentsOf: IndexLine.encodeSeal(timestamp: system_wallClockNanoseconds()))
        let name =
            "compact-\(String(system_wallClockNanoseconds()).leftPadded(to: 20))-\(HostIdentity.randomHex(bytes: 4))"
        let tempPath = directory + "/" + name + ".jsonl.tmp"
        let handle = try FileHandle.createExclusive(tempPath, mode: 0o666)
        do throws(CasketError) {
            try typed { try out.withUnsafeBytes { try handle.io.writeAll($0) } }
            try handle.io.sync()
            if case .failure(let errno) = system_rename(tempPath, directory + "/" + name + ".jsonl") {
                throw CasketError.publish(tempPath, to: name + ".jsonl", errno: errno)
            }
        } catch {
            _ = system_unlink(tempPath)
            throw error
        }
        try syncDirectory(directory)
        report.output = name + ".jsonl"
        report.bytesAfter = Int64(out.count)
        for name in folding {
            switch system_unlink(directory + "/" + name) {
            case .success, .failure(.noSuchFileOrDirectory): break
            case .failure(let errno): throw CasketError.remove(directory + "/" + name, errno: errno)
            }
        }
        try syncDirectory(directory)
        return report
    }

}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
