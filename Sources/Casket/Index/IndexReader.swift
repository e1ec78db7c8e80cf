#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    }

    let directory: String
    private(set) var files: [String: FileState] = [:]
    private(set) var winners: [String: IndexEntry] = [:]
    /// Lines read that were well formed, all files together (entries, not seals).
    private(set) var entryCount = 0
    /// Malformed lines met so far.
    private(set) var issues: [IndexIssue] = []
    /// Bytes read by the last refresh (a test hook for incremental reads).
    private(set) var bytesReadByLastRefresh: Int64 = 0

    /// When set, only files whose names pass are read (compaction reads folded and unfolded files apart).
    var include: (@Sendable (String) -> Bool)? = nil

    init(directory: String, include: (@Sendable (String) -> Bool)? = nil) {
        self.directory = directory
        self.include = include
    }

    /// Whether the file was seen to end with a seal line.
    func isSealed(_ name: String) -> Bool { files[name]?.sealed ?? false }

    static func isIndexFile(_ name: String) -> Bool {
        name.hasSuffix(".jsonl") || name.hasSuffix(".jsonl.folding")
    }

    static func writerID(ofFile name: String) -> String {
        if name.hasSuffix(".jsonl.folding") { return String(name.dropLast(".jsonl.folding".count)) }
        return String(name.dropLast(".jsonl".count))
    }

    /// Reads what is new. A file that vanished or was replaced forces a full reload, since compaction may
    /// have dropped lines this table was built from.
    mutating func refresh() throws(CasketError) {
        bytesReadByLastRefresh = 0
        var names: [String] = []
        try forEachEntry(in: directory) { (name, _) throws(CasketError) in
            if IndexReader.isIndexFile(name) && include?(name) ?? true { names.append(name) }
        }
        let present = Set(names)
        var mustReload = files.keys.contains { !present.contains($0) }
        var stats: [String: stat] = [:]
        for name in names {
            guard case .success(let st) = system_stat(directory + "/" + name) else {
                mustReload = mustReload || files[name] != nil
                continue
            }
            if let known = files[name], known.inode != UInt64(st.st_ino) || st.size < known.offset { mustReload = true }
            stats[name] = st
        }
        if mustReload {
            files = [:]
            winners = [:]
            entryCount = 0
            issues = []
        }
        for name in names.sorted() {
            guard let st = stats[name] else { continue }
            var state = files[name] ?? FileState(inode: UInt64(st.st_ino), offset: 0, lines: 0, sealed: false)
            if st.size > state.offset {
                try read(name: name, state: &state)
            }
            files[name] = state
        }
    }

    private mutating func read(name: String, state: inout FileState) throws(CasketError) {
        let path = directory + "/" + name
        let handle: FileHandle
        do {
            handle = try FileHandle.openForReading(path)
        } catch where error.code == .notFound {
            return  // folded away between listing and opening; the next refresh reloads
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
                    consume(UnsafeRawBufferPointer(rebasing: bytes[start..<i]), path: path, writer: writer, state: &state)
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
    }

    private mutating func consume(
        _ line: UnsafeRawBufferPointer, path: String, writer: String, state: inout FileState
    ) {
        state.lines += 1
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
        switch IndexLine.parse(line, writer: writer, line: state.lines) {
        case .failure(let reason):
            issues.append(IndexIssue(file: path, line: state.lines, reason: reason))
        case .success(.seal):
            state.sealed = true
        case .success(.entry(let entry)):
            entryCount += 1
            if let current = winners[entry.key], !entry.wins(over: current) { return }
            winners[entry.key] = entry
        }
    }
}
