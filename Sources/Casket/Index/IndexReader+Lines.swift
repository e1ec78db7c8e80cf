/// An index file kept open between two reads of winning lines (most winners of a compacted store are in
/// one file). Reading through it after the file was folded away still reads the line that was recorded:
/// an index file's bytes never change once written, and its inode is the one that was checked.
final class OpenIndexFile {
    let number: UInt32
    let handle: FileHandle

    init(number: UInt32, handle: consuming FileHandle) {
        self.number = number
        self.handle = handle
    }
}

extension IndexReader {
    /// How many times a read of a key goes back to the index when its winning line has moved.
    static let lineAttempts = 8

    /// The winning entry of `key` (a tombstone included), its value tree parsed again from its line.
    ///
    /// The table says where the line was when the index was read; by now compaction may have folded
    /// that file away (FORMAT.md 5.6) or something may have replaced it. The line read there must be the
    /// same line (its length and hash, then its key, time and origin), or the whole index is read again
    /// and the key looked up anew, so a moved line costs one more read and never a wrong value.
    ///
    /// - Throws: ``CasketError/Code/busy`` naming the file when the line kept moving, or the read's error.
    mutating func winningEntry(_ key: IndexKey) throws(CasketError) -> IndexEntry? {
        var last = ""
        var failure: CasketError?
        for _ in 0..<IndexReader.lineAttempts {
            guard let winner = winners[key] else { return nil }
            do {
                if let entry = try entry(of: key, winner) { return entry }
                failure = nil
            } catch {
                // An open file that another host removed reads ESTALE on NFS: that is a moved line too.
                failure = error
            }
            last = directory + "/" + fileNames[Int(winner.location.file)]
            forget()
            try refresh()
        }
        if let failure { throw failure }
        throw CasketError(
            .busy,
            "the winning line of key \(KeyDisplay.quoted(key.string)) kept moving while it was read (index "
                + "files replaced \(IndexReader.lineAttempts) times in a row; last '\(last)')", path: last)
    }

    /// The line at `winner`'s location parsed, or `nil` when it is not that line any more.
    private mutating func entry(of key: IndexKey, _ winner: WinnerTable.Winner) throws(CasketError) -> IndexEntry? {
        let location = winner.location
        guard let file = try open(location.file) else { return nil }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: location.length, alignment: 16)
        defer { bytes.deallocate() }
        var done = 0
        while done < bytes.count {
            let n = try file.handle.io.pread(
                into: UnsafeMutableRawBufferPointer(rebasing: bytes[done...]), at: location.offset + Int64(done))
            if n == 0 { return nil }
            done += n
        }
        let line = UnsafeRawBufferPointer(bytes)
        guard WinnerTable.check(line) == location.check else { return nil }
        let parsed = IndexLine.parse(
            line, writer: IndexReader.writerID(ofFile: fileNames[Int(location.file)]), line: winner.line)
        guard case .success(.entry(let entry)) = parsed, IndexKey(entry.key) == key,
            entry.timestamp == winner.timestamp, entry.origin.line == winner.line,
            entry.origin.writer.sameBytes(as: winner.writer)
        else { return nil }
        return entry
    }

    /// The file numbered `number`, open, or `nil` when its name no longer names the file that was read.
    private mutating func open(_ number: UInt32) throws(CasketError) -> OpenIndexFile? {
        if let lastOpened, lastOpened.number == number { return lastOpened }
        let name = fileNames[Int(number)]
        guard let folder, let inode = files[IndexKey(name)]?.inode else { return nil }
        let handle: FileHandle
        do {
            handle = try folder.openForReading(name)
        } catch  where error.code == .notFound || error.code == .notARegularFile || error.code == .unsafePath {
            return nil
        }
        guard try handle.io.status().inode == inode else { return nil }
        let file = OpenIndexFile(number: number, handle: handle)
        lastOpened = file
        return file
    }
}
