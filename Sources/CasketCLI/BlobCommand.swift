import ArgumentParser
import Casket

/// `casket blob ...`: work with blobs by hash.
struct BlobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blob",
        abstract: "Store, read, look up and verify blobs by hash.",
        subcommands: [Put.self, Get.self, Has.self, Verify.self]
    )
}

extension BlobCommand {
    /// Stores one input: a payload below `pack_max` goes to `packs`, anything larger to a blob file.
    static func put(_ file: String, into store: BlobStore, packs: PackWriter?) throws(CasketError) -> PutResult {
        guard let packs else {
            return file == "-" ? try store.put(readingDescriptor: 0, name: "<stdin>") : try store.put(fileAt: file)
        }
        guard file != "-" else { return try put(FileRef(fd: 0, path: "<stdin>"), into: store, packs: packs) }
        let handle = try FileHandle.openForReading(file)
        // Anything but a regular file is refused by the blob put, with its own message.
        guard try handle.io.status().kind == .regular, try handle.io.status().size < store.config.packMax else {
            return try store.put(fileAt: file)
        }
        return try put(handle.io, into: store, packs: packs)
    }

    /// Reads up to `pack_max` bytes of `io`: a payload that ends before is packed, a longer one streamed.
    static func put(_ io: FileRef, into store: BlobStore, packs: PackWriter) throws(CasketError) -> PutResult {
        let limit = store.config.packMax
        var head = [UInt8](repeating: 0, count: limit)
        let n = try typed { try head.withUnsafeMutableBytes { try io.readFully(into: $0) } }
        if n < limit {
            head.removeLast(limit - n)
            return try typed { try head.withUnsafeBytes { try store.put($0, packingInto: packs) } }
        }
        var pending = head[...]
        return try store.put(streaming: { (buffer) throws(CasketError) in
            guard !pending.isEmpty else { return try io.read(into: buffer) }
            let count = min(buffer.count, pending.count)
            buffer.copyBytes(from: pending.prefix(count))
            pending = pending.dropFirst(count)
            return count
        })
    }

    /// `casket blob put FILE...`.
    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store files; print 'HASH  FILE' for each, like sha256sum.",
            discussion: """
                A file already stored is not written again (its blob is freshened). Use - to read standard \
                input. Every file is tried; the exit code is 1 if any failed.
                """
        )

        @OptionGroup var options: StoreOptions

        @Argument(help: "Files to store (- for standard input).")
        var files: [String]

        func validate() throws {
            if files.isEmpty { throw ValidationError("give at least one FILE (or - for standard input)") }
        }

        func run() throws {
            let store = try options.openStore()
            var failed = false
            var results: [[String: Any]] = []
            // Small payloads go to one pack, sealed at the end (docs/FORMAT.md 3.7).
            let packs = store.config.packs ? try store.packWriter() : nil
            defer { try? packs?.seal() }
            for file in files {
                do {
                    let result = try BlobCommand.put(file, into: store, packs: packs)
                    if options.json {
                        results.append([
                            "file": file, "hash": result.digest.hex, "size": result.size,
                            "deduplicated": result.deduplicated, "compressed": result.compressed,
                            "stored_bytes": result.storedBytes,
                        ])
                    } else {
                        print("\(result.digest.hex)  \(file)")
                    }
                } catch {
                    failed = true
                    if options.json { results.append(["file": file, "error": Output.errorObject(error)]) }
                    // A failure in the store (a full disk writing tmp/...) names the temp file only: say
                    // which input it was, since several may be given.
                    let name = file == "-" ? "<stdin>" : file
                    let text = error.description.contains(name) ? "\(error)" : "storing '\(name)': \(error)"
                    Output.standardError("casket: error: \(text)")
                }
            }
            try packs?.seal()
            if options.json { Output.json(results) }
            if failed { throw ExitCode(1) }
        }
    }

    /// `casket blob get HASH [-o FILE]`.
    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a blob's payload to standard output or a file, verifying its hash.",
            discussion: """
                With -o a regular file appears only once the whole payload has been verified. On standard output \
                a corrupt blob is detected at the end: the exit code is then 1 and the message names the blob.
                """
        )

        @OptionGroup var options: StoreOptions

        @Argument(help: "The blob's hash: 32 lowercase hex digits.")
        var hash: String

        @Option(
            name: .shortAndLong,
            help: """
                Write to this file instead of standard output: a regular file is replaced only once verified, a \
                device or FIFO is written through, a symlink, directory or socket is refused.
                """)
        var output: String?

        @Option(help: PayloadRange.help)
        var range: PayloadRange?

        func run() throws {
            let digest = try Digest(validating: hash)
            let store = try options.openStore()
            if let range {
                let size = try store.export(digest, range: range, toFileAt: output)
                if options.json, let output { Output.json(["hash": digest.hex, "size": size, "file": output]) }
                return
            }
            if let output {
                let size = try store.export(digest, toFileAt: output)
                if options.json { Output.json(["hash": digest.hex, "size": size, "file": output]) }
            } else {
                try store.export(digest, toDescriptor: 1, name: "<stdout>")
            }
        }
    }

    /// `casket blob has HASH`.
    struct Has: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tell whether a blob is stored: exit code 0 if it is, 1 if not."
        )

        @OptionGroup var options: StoreOptions

        @Argument(help: "The blob's hash.")
        var hash: String

        func run() throws {
            let digest = try Digest(validating: hash)
            let store = try options.openStore()
            let location = store.locate(digest)
            let packed = location == nil && store.contains(digest)
            if options.json {
                var object: [String: Any] = ["hash": digest.hex, "present": location != nil || packed]
                if let location {
                    object["compressed"] = location.compressed
                    object["stored_bytes"] = location.storedBytes
                    if let size = location.size { object["size"] = size }
                }
                if packed { object["packed"] = true }
                Output.json(object)
            } else {
                print(location == nil && !packed ? "\(digest.hex) absent" : "\(digest.hex) present")
            }
            if location == nil && !packed { throw ExitCode(1) }
        }
    }

    /// `casket blob verify [HASH...]`.
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Re-hash blobs (all of them by default, blob files and packed payloads) and report any that are corrupt or missing.",
            discussion: """
                Without hashes, every blob file and every record of every pack (docs/FORMAT.md 3.7) is \
                verified, and a pack index that does not list exactly the pack's sound records is reported. \
                Exit code 1 when any blob is corrupt or missing.
                """
        )

        @OptionGroup var options: StoreOptions

        @Argument(help: "Hashes to verify (default: every blob in the store).")
        var hashes: [String] = []

        func run() throws {
            let store = try options.openStore()
            var digests: [Digest] = []
            for hash in hashes { digests.append(try Digest(validating: hash)) }
            var checked = 0
            var bytes: Int64 = 0
            var problems: [[String: Any]] = []
            let check: (Digest) -> Void = { digest in
                do throws(CasketError) {
                    bytes += try store.read(digest) { (_) throws(CasketError) in }
                    checked += 1
                } catch {
                    checked += 1
                    problems.append(["hash": digest.hex, "error": Output.errorObject(error)])
                    Output.standardError("casket: \(error)")
                }
            }
            var packs = 0
            var records = 0
            if hashes.isEmpty {
                try store.forEachBlob { (file) throws(CasketError) in
                    // A blob kept in both forms is read through its raw form; check the frame too.
                    if file.compressed && store.mappablePath(file.digest) != nil { return }
                    check(file.digest)
                }
                for (id, _) in try store.packShelf()?.packIDs() ?? [] {
                    let audit = try store.packShelf()!.audit(id)
                    packs += 1
                    records += audit.records
                    bytes += audit.bytes
                    let damage =
                        audit.damaged.map { "pack '\(audit.path)' is damaged at \($0)" }
                        + [audit.indexProblem].compactMap { $0 }
                    for message in damage {
                        problems.append([
                            "pack": audit.path,
                            "error": Output.errorObject(CasketError(.corrupt, message, path: audit.path)),
                        ])
                        Output.standardError("casket: \(message)")
                    }
                }
            } else {
                digests.forEach(check)
            }
            if options.json {
                Output.json([
                    "checked": checked, "pack_records": records, "packs": packs, "bytes": bytes, "problems": problems,
                    "ok": problems.isEmpty,
                ])
            } else {
                print(
                    "verified \(checked) blobs and \(records) pack records in \(packs) packs, \(Output.bytes(bytes)): "
                        + "\(problems.count) corrupt or missing")
            }
            if !problems.isEmpty { throw ExitCode(1) }
        }
    }
}
