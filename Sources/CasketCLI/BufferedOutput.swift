import Casket

/// Standard output written in 64 KiB blocks, for commands that stream one record at a time (`casket ls`).
struct BufferedOutput {
    var bytes: [UInt8] = []
    static let blockSize = 64 << 10

    init() { bytes.reserveCapacity(BufferedOutput.blockSize + 4096) }

    mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func flushIfFull() throws(CasketError) {
        if bytes.count >= BufferedOutput.blockSize { try flush() }
    }

    mutating func flush() throws(CasketError) {
        let out = FileRef(fd: 1, path: "<stdout>")
        let pending = bytes
        try pending.withUnsafeBufferPointer { (buffer) throws(CasketError) in
            try out.writeAll(UnsafeRawBufferPointer(buffer))
        }
        bytes.removeAll(keepingCapacity: true)
    }
}
