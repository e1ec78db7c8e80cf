@_spi(Maintenance) import Casket

#if canImport(Glibc)
import Glibc
#endif

/// The pack writers of the helper (see main.swift): real processes that tests kill mid-record.
func packCommand(_ args: [String], _ store: BlobStore) throws {
    func say(_ text: String) { _ = (text + "\n").withCString { write(1, $0, strlen($0)) } }
    func append(_ writer: PackWriter, _ key: String, size: Int, compressible: Bool = false) throws -> (
        pack: String, record: PackRecord
    ) {
        // A compressible payload repeats 16 bytes: LZ4 finds the repeats.
        let seed = payload(for: key, size: 16)
        let bytes = compressible ? (0..<size).map { seed[$0 % 16] } : payload(for: key, size: size)
        return try bytes.withUnsafeBytes { try writer.append($0, digest: Digest(hashing: bytes)) }
    }
    switch args[1] {
    case "pack-write":
        guard args.count >= 4 else { fail("usage: pack-write STORE SIZE...") }
        let writer = try store.packWriter()
        let sizes = args[3...].compactMap { Int($0) }
        var pack = ""
        for (i, size) in sizes.enumerated() {
            pack = try append(writer, "p\(i)", size: size, compressible: i % 2 == 1).pack
            if i == 1 { _ = try append(writer, "p1", size: size, compressible: true) }
        }
        try writer.seal()
        say(pack)
    case "pack-view":
        // A reader holding one view of packs/ across garbage collections: at each line of its input it reads
        // every payload named and answers "ok" or the hashes that did not read back.
        let digests = args[3...].compactMap { Digest($0) }
        while readLine() != nil {
            let bad = digests.filter { (digest) in
                guard let bytes = try? store.readAll(digest) else { return true }
                return Digest(hashing: bytes) != digest
            }
            say(bad.isEmpty ? "ok" : bad.map(\.hex).joined(separator: " "))
        }
    case "pack-loop":
        guard args.count == 4, let size = Int(args[3]) else { fail("usage: pack-loop STORE SIZE") }
        let writer = try store.packWriter(targetSize: 1 << 20)
        var i = 0
        while true {
            let found = try append(writer, "q\(i)", size: size + i % 1024)
            say("\(found.pack) \(found.record.digest.hex)")
            i += 1
        }
    default:
        let writer = try store.packWriter()
        var pack = ""
        for i in 0..<3 { pack = try append(writer, "t\(i)", size: 3000 + i).pack }
        let bytes = payload(for: "t3", size: 5000)
        let (record, stored) = bytes.withUnsafeBytes {
            PackRecord.encode($0, digest: Digest(hashing: bytes), compress: false, offset: 0)
        }
        let torn = record.header() + stored.prefix(stored.count / 2)
        let fd = open(store.root + "/packs/" + pack + ".pack", O_WRONLY | O_APPEND)
        _ = torn.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        say("torn \(pack)")
        while true { sleep(60) }
    }
}
