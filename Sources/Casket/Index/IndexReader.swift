/// Reads every index file of a store into a table of winners, and on refresh reads only the bytes
/// appended since the last read (docs/FORMAT.md, sections 5.3 and 5.4).
///
/// Not thread-safe: one reader per thread, or guard it.
struct IndexReader {
    /// What has been consumed of one file.
    struct FileState {
        var inode: UInt64
        var offset: Int64
        var lines: Int
        var sealed: Bool
        /// Bytes after the last newline when the file was last read: an unfinished last line.
        var tail = 0
        /// The file's number in ``IndexReader/fileNames``, what a ``WinnerTable/Location`` names.
        var number: UInt32 = 0
    }

    let directory: String
    /// Per index file name (compared as bytes, like keys).
    private(set) var files: [IndexKey: FileState] = [:]
    /// Every key's winner, without value trees: a value is parsed again from its line when it is read.
    private(set) var winners = WinnerTable()
    /// The names of the files read since the last full read, by ``FileState/number``.
    private(set) var fileNames: [String] = []
    /// The open `index/` of the last listing: winning lines are read again through it.
    var folder: Directory?
    /// The last index file a winning line was read from, kept open for the next read.
    var lastOpened: OpenIndexFile?
    /// Lines read that were well formed, all files together (entries, not seals).
    private(set) var entryCount = 0
    /// Malformed lines met so far.
    private(set) var issues: [IndexIssue] = []
    /// Bytes read by the last refresh (a test hook for incremental reads).
    private(set) var bytesReadByLastRefresh: Int64 = 0
    /// Whether a listed file vanished (compaction folded it away) before the last refresh could read it.
    private(set) var fileVanishedDuringLastRefresh = false
    /// Entries of `index/` that are not index files, as the last refresh found them (never read).
    private(set) var debris: [IndexDebris] = []
    /// What `lstat` said about each index file the last refresh listed (and `include` accepted).
    private(set) var listed: [IndexKey: FileStatus] = [:]

    /// When set, only files whose names pass are read (compaction reads folded and unfolded files apart).
    var include: (@Sendable (String) -> Bool)? = nil
    /// When false, winners go to ``markWinners`` instead of ``winners``: only time, origin and blob hashes,
    /// what garbage collection's mark and a writer's stamping need, in flat arrays (``MarkTable``: about 70
    /// bytes a key plus its bytes).
    var keepValues = true
    /// The winners kept when `keepValues` is false.
    private(set) var markWinners = MarkTable()

    /// A key's winner reduced to what marking needs.
    struct MarkWinner {
        var timestamp: Int64
        var writer: String
        var line: Int
        /// The first blob (meaningful when `count > 0`); more blobs, if any, in `more`.
        var first: Digest
        var count: Int32
        var deleted: Bool
        var more: [Digest]?

        var blobs: [Digest] { count == 0 ? [] : [first] + (more ?? []) }
    }
    /// Well-formed hashes found in malformed lines, collected when `collectMalformedHashes` is set: a
    /// collector marks them too rather than guess that a line it cannot read references nothing.
    private(set) var malformedHashes: Set<Digest> = []
    var collectMalformedHashes = false

    init(directory: String, include: (@Sendable (String) -> Bool)? = nil) {
        self.directory = directory
        self.include = include
    }

    /// Whether the file was seen to end with a seal line.
    func isSealed(_ name: String) -> Bool { files[IndexKey(name)]?.sealed ?? false }

    /// Whether `name` is an index file's name (docs/FORMAT.md 5.1; the entry must also be a regular file).
    static func isIndexFile(_ name: String) -> Bool { IndexDirectory.hasIndexName(name) }

    static func writerID(ofFile name: String) -> String {
        if name.hasSuffix(".jsonl.folding") { return String(name.dropLast(".jsonl.folding".count)) }
        return String(name.dropLast(".jsonl".count))
    }

    /// Reads what is new. A file that vanished or was replaced forces a full reload, since compaction may
    /// have dropped lines this table was built from.
    mutating func refresh() throws(CasketError) {
        bytesReadByLastRefresh = 0
        let listing = try IndexDirectory.list(directory)
        debris = listing.debris
        fileVanishedDuringLastRefresh = listing.vanished
        var stats: [IndexKey: FileStatus] = [:]
        for (name, st) in listing.files where include?(name.string) ?? true { stats[name] = st }
        listed = stats
        var mustReload = files.keys.contains { stats[$0] == nil }
        for (name, st) in stats {
            if let known = files[name], known.inode != st.inode || st.size < known.offset { mustReload = true }
        }
        if mustReload { forget() }
        folder = listing.directory
        for name in stats.keys.sorted() {
            let st = stats[name]!
            var state =
                files[name]
                ?? FileState(inode: st.inode, offset: 0, lines: 0, sealed: false, number: UInt32(fileNames.count))
            if files[name] == nil { fileNames.append(name.string) }
            if st.size > state.offset {
                guard try read(name: name.string, in: listing.directory, state: &state) else { continue }
            }
            files[name] = state
        }
    }

    /// Drops everything read: the next refresh reads every file from its start.
    mutating func forget() {
        files = [:]
        fileNames = []
        winners = WinnerTable()
        markWinners = MarkTable()
        lastOpened = nil
        entryCount = 0
        issues = []
    }

    /// Reads the whole lines appended to one file; false when it vanished or changed identity since it was
    /// listed (folded away, or replaced by something that is not an index file): the next refresh reloads.
    private mutating func read(name: String, in folder: Directory, state: inout FileState) throws(CasketError)
        -> Bool
    {
        let path = directory + "/" + name
        let handle: FileHandle
        do {
            // openat with O_NOFOLLOW | O_NONBLOCK, then fstat: never a link, never a FIFO (FORMAT.md 5.1).
            handle = try folder.openForReading(name)
        } catch  where error.code == .notFound || error.code == .notARegularFile || error.code == .unsafePath {
            fileVanishedDuringLastRefresh = true
            return false
        }
        guard try handle.io.status().inode == state.inode else {
            fileVanishedDuringLastRefresh = true
            return false
        }
        let writer = IndexReader.writerID(ofFile: name)
        let chunk = 1 << 20
        var carry: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var offset = state.offset
        while true {
            let chunkStart = offset
            let n = try handle.io.pread(into: buffer, at: offset)
            if n == 0 { break }
            offset += Int64(n)
            bytesReadByLastRefresh += Int64(n)
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<n])
            var start = 0
            for i in 0..<n where bytes[i] == 0x0A {
                if carry.isEmpty {
                    consume(
                        UnsafeRawBufferPointer(rebasing: bytes[start..<i]), path: path, writer: writer, state: &state)
                } else {
                    carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
                    carry.withUnsafeBytes { consume($0, path: path, writer: writer, state: &state) }
                    carry.removeAll(keepingCapacity: true)
                }
                state.offset = chunkStart + Int64(i) + 1
                start = i + 1
            }
            // An unterminated tail is an append in progress: keep it for the next chunk, not consumed.
            carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<n]))
        }
        // state.offset counts only whole lines, so an unfinished last line is read again next time.
        state.tail = carry.count
        return true
    }

    private mutating func consume(
        _ line: UnsafeRawBufferPointer, path: String, writer: String, state: inout FileState
    ) {
        // Called before state.offset moves past the line: it is where the line starts.
        let offset = state.offset
        state.lines += 1
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
        switch IndexLine.parse(line, writer: writer, line: state.lines) {
        case .failure(let reason):
            issues.append(IndexIssue(file: path, line: state.lines, reason: reason))
            if collectMalformedHashes { IndexReader.hashes(in: line) { malformedHashes.insert($0) } }
        case .success(.seal):
            state.sealed = true
        case .success(.entry(let entry)):
            entryCount += 1
            if !keepValues {
                markWinners.offer(entry)
                return
            }
            let location = WinnerTable.Location(
                file: state.number, offset: offset, length: line.count, check: WinnerTable.check(line))
            winners.offer(entry, at: location)
        }
    }

    /// Calls `body` with every run of exactly 32 lowercase hex digits in `line`.
    static func hashes(in line: UnsafeRawBufferPointer, _ body: (Digest) -> Void) {
        var runStart = -1
        for i in 0...line.count {
            let isHex = i < line.count && ((line[i] >= 0x30 && line[i] <= 0x39) || (line[i] >= 0x61 && line[i] <= 0x66))
            if isHex {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart == 32, let digest = Digest(String(decoding: line[runStart..<i], as: UTF8.self)) {
                    body(digest)
                }
                runStart = -1
            }
        }
    }
}
