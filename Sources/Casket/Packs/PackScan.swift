/// Reading a pack file by its record headers (docs/FORMAT.md 3.7): what an open pack holds, what a
/// seal indexes, what fsck verifies, and the verified read of one record.
enum PackScan {
    /// How much of a pack one read brings in while scanning.
    static let window = 1 << 20

    /// Calls `body` for each complete record with a valid header from `start`, in file order, and returns
    /// where the scan stopped: the end of the last such record. A torn or zeroed tail (a writer killed
    /// mid-record, a power loss) stops it and is never taken for a record. With `verify`, each record's
    /// bytes are decoded and hashed, and `body` is told what is wrong with them (`nil`: sound).
    @discardableResult
    static func records(
        _ io: FileRef, from start: Int64 = 0, length: Int64, verify: Bool,
        _ body: (PackRecord, PackFlaw?) throws(CasketError) -> Void
    ) throws(CasketError) -> Int64 {
        var buffer: [UInt8] = []
        var bufferStart: Int64 = 0
        func ensure(_ from: Int64, _ to: Int64) throws(CasketError) {
            if from >= bufferStart && to <= bufferStart + Int64(buffer.count) { return }
            let end = min(length, max(to, from + Int64(window)))
            buffer = try readExactly(io, at: from, count: Int(end - from))
            bufferStart = from
        }
        var position = start
        while position + Int64(PackRecord.headerSize) <= length {
            try ensure(position, position + Int64(PackRecord.headerSize))
            let at = Int(position - bufferStart)
            let parsed = buffer.withUnsafeBytes { bytes in
                PackRecord(
                    header: UnsafeRawBufferPointer(rebasing: bytes[at..<at + PackRecord.headerSize]), offset: position)
            }
            guard let record = parsed, record.end <= length else { break }
            var flaw: PackFlaw? = nil
            if verify {
                try ensure(position, record.end)
                let from = Int(position - bufferStart) + PackRecord.headerSize
                let result = buffer.withUnsafeBytes { bytes in
                    record.payload(from: UnsafeRawBufferPointer(rebasing: bytes[from..<from + Int(record.stored)]))
                }
                if case .failure(let found) = result { flaw = found }
            }
            try body(record, flaw)
            position = record.end
        }
        return position
    }

    /// The verified payload of `record` in the pack open as `io`: its header is read again and must be
    /// the one expected, and its bytes must hash to its digest.
    ///
    /// - Throws: ``CasketError/Code/corrupt`` naming the pack, the offset and what is wrong.
    static func payload(_ io: FileRef, _ record: PackRecord) throws(CasketError) -> [UInt8] {
        func corrupt(_ what: String) -> CasketError {
            CasketError(
                .corrupt,
                "pack '\(io.path)' is damaged at offset \(record.offset) (blob \(record.digest.hex)): \(what)",
                path: io.path)
        }
        let bytes = try readExactly(io, at: record.offset, count: PackRecord.headerSize + Int(record.stored))
        guard bytes.count == PackRecord.headerSize + Int(record.stored) else {
            throw corrupt(PackFlaw.truncated.description)
        }
        let result = bytes.withUnsafeBytes { (all) -> Result<[UInt8], PackFlaw>? in
            guard let header = PackRecord(header: all, offset: record.offset), header == record else { return nil }
            return header.payload(from: UnsafeRawBufferPointer(rebasing: all[PackRecord.headerSize...]))
        }
        switch result {
        case .success(let payload)?: return payload
        case .failure(let flaw)?: throw corrupt(flaw.description)
        case nil: throw corrupt("its header is not the record's")
        }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    static func readExactly(_ io: FileRef, at offset: Int64, count: Int) throws(CasketError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try typed { try bytes.withUnsafeMutableBytes { try io.pread(into: $0, at: offset) } }
        if n < count { bytes.removeLast(count - n) }
        return bytes
    }
}
