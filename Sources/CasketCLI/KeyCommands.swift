import ArgumentParser
import Casket
import Foundation

/// Printing of index problems met while reading, shared by the commands that read keys.
enum IndexWarnings {
    static func report(_ store: CacheStore) {
        for debris in store.indexDebris { Output.standardError("casket: warning: \(debris)") }
        let issues = store.issues
        for issue in issues.prefix(20) { Output.standardError("casket: warning: skipped \(issue)") }
        if issues.count > 20 {
            Output.standardError("casket: warning: ... and \(issues.count - 20) more malformed lines")
        }
    }
}

extension IndexEntry {
    /// The entry as `show` and `set --json` print it. Built as a `JSONValue`, so that numbers in the value
    /// tree keep their exact text (`2.0` stays `2.0`), as the index line has them.
    var json: JSONValue {
        var fields: [(key: String, value: JSONValue)] = [
            ("key", .string(key)), ("ts", .int(timestamp)),
            ("origin", .object(JSONObject([("writer", .string(origin.writer)), ("line", .int(origin.line))]))),
            ("blobs", .array(blobs.map { .array([.string($0.digest.hex), .int($0.size)]) })),
            ("size", .int(payloadBytes)),
        ]
        if let value { fields.append(("value", value)) } else { fields.append(("deleted", .bool(true))) }
        if let meta { fields.append(("meta", meta)) }
        return .object(JSONObject(fields))
    }
}

/// `casket set KEY [FILE]`.
struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set a key to the contents of a file (or standard input).",
        discussion: """
            The payload is stored once as a blob (deduplicated against every blob already stored), then one \
            line referencing its hash is appended to this process's own index file. An existing key is \
            overwritten: the new line is stamped later than the entry it replaces (even one from a host whose \
            clock runs ahead), so it wins. Keys are byte strings: NFC and NFD forms are two keys.
            """
    )

    @OptionGroup var options: StoreOptions

    @Argument(help: "The key (any non-empty string).")
    var key: String

    @Argument(help: "The file to store (default, or -: standard input).")
    var file: String = "-"

    func run() throws {
        let cache = CacheStore(blobs: try options.openStore())
        let session = try cache.writeSession()
        let entry: IndexEntry
        if file == "-" {
            entry = try session.set(key, readingDescriptor: 0, name: "<stdin>")
        } else {
            entry = try session.set(key, fileAt: file)
        }
        try session.close()
        if options.json {
            Output.json(entry.json)
        } else {
            let hash = entry.blobs.first?.digest.hex ?? "(inline)"
            print("\(hash)  \(key)")
        }
    }
}

/// `casket get KEY [-o FILE]`.
struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Write the payload of a key's value to standard output or a file, verified.",
        discussion: """
            Works for values with one payload (one blob, or inline bytes). A value made of several blobs \
            (a nested tree, a directory) is refused with a clear error: see it with 'casket show KEY'.
            """
    )

    @OptionGroup var options: StoreOptions

    @Argument(help: "The key.")
    var key: String

    @Option(
        name: .shortAndLong,
        help: """
            Write to this file instead of stdout: a regular file is replaced only once verified, a device or FIFO \
            is written through, a symlink, directory or socket is refused.
            """)
    var output: String?

    @Option(help: PayloadRange.help)
    var range: PayloadRange?

    func run() throws {
        let cache = CacheStore(blobs: try options.openStore())
        defer { IndexWarnings.report(cache) }
        if let range {
            try cache.export(key, range: range, toFileAt: output)
            return
        }
        if let output {
            try cache.export(key, toFileAt: output)
        } else {
            try cache.export(key, toDescriptor: 1, name: "<stdout>")
        }
    }
}

/// `casket show KEY`.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a key's winning index entry as JSON (value tree, blobs, origin, time)."
    )

    @OptionGroup var options: StoreOptions

    @Argument(help: "The key.")
    var key: String

    func run() throws {
        let cache = CacheStore(blobs: try options.openStore())
        defer { IndexWarnings.report(cache) }
        guard let entry = try cache.entry(key) else {
            throw CasketError(.notFound, "key \(KeyDisplay.quoted(key)) is not in the store '\(cache.blobs.root)'")
        }
        Output.json(entry.json)
    }
}

/// `casket ls`.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List live keys with the size of their values.",
        discussion: """
            Prints 'SIZE<tab>KEY' lines sorted by key (SIZE counts blob and inline payload bytes); with --json \
            an array of {key, size, type, blobs, ts}. Streamed: one key at a time.
            """
    )

    @OptionGroup var options: StoreOptions

    func run() throws {
        let cache = CacheStore(blobs: try options.openStore())
        defer { IndexWarnings.report(cache) }
        // One entry at a time: the output of 10 million keys is never held in memory (issue 10, finding 20).
        var out = BufferedOutput()
        if options.json { out.append("[") }
        var first = true
        // From the winner table alone: no value tree is parsed (docs/DESIGN.md 3.5).
        try cache.forEachListing { (item) throws(CasketError) in
            if options.json {
                if !first { out.append(",") }
                let object: JSONValue = .object(
                    JSONObject([
                        ("blobs", .int(Int64(item.blobs))), ("key", .string(item.key)), ("size", .int(item.size)),
                        ("ts", .int(item.timestamp)), ("type", .string(item.type)),
                    ]))
                object.encode(into: &out.bytes)
            } else {
                out.append("\(item.size)\t\(item.key)\n")
            }
            first = false
            try out.flushIfFull()
        }
        if options.json { out.append("]\n") }
        try out.flush()
    }
}

/// `casket rm KEY...`.
struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Delete keys (appends tombstones; blobs are reclaimed later by 'casket gc').",
        discussion: "A key that is not present is an error (exit 1) unless --force is given."
    )

    @OptionGroup var options: StoreOptions

    @Flag(name: .shortAndLong, help: "Do not complain about keys that are not present.")
    var force = false

    @Argument(help: "The keys to delete.")
    var keys: [String]

    func validate() throws {
        if keys.isEmpty { throw ValidationError("give at least one KEY") }
    }

    func run() throws {
        let cache = CacheStore(blobs: try options.openStore())
        defer { IndexWarnings.report(cache) }
        let session = try cache.writeSession()
        var missing: [String] = []
        var deleted: [String] = []
        for key in keys {
            if try !cache.contains(key) {
                missing.append(key)
                if !force { continue }
            }
            try session.delete(key)
            deleted.append(key)
        }
        try session.close()
        if options.json { Output.json(["deleted": deleted, "missing": missing]) }
        if !force {
            for key in missing {
                Output.standardError("casket: error: key \(KeyDisplay.quoted(key)) is not in the store")
            }
            if !missing.isEmpty { throw ExitCode(1) }
        }
    }
}

/// `casket compact`.
struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Fold index files into one holding only the winning entries.",
        discussion: """
            Folds sealed index files (their writer closed them) and unsealed files unmodified for --idle \
            seconds (their writer is presumed gone; if it is not, it notices and rewrites its line \
            elsewhere, so nothing is lost); an unfinished last line of such a file is dropped and reported. \
            Tombstones are kept while any other index file mentions their key. One compaction at a time: \
            the index lock gc/index.lock is waited for up to ten minutes, then the command exits 3 (busy).
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(parsing: .unconditional, help: "Seconds an unsealed index file must be unmodified before it is folded.")
    var idle: Double = 3600

    @Flag(help: "Report what would be folded without changing anything.")
    var dryRun = false

    func validate() throws {
        if !(idle >= 0) { throw ValidationError("--idle cannot be negative (got \(idle))") }
    }

    func run() throws {
        let report: Compactor.Report
        do {
            let cache = CacheStore(blobs: try options.openStore())
            report = try Compactor(store: cache, idleSeconds: idle).run(dryRun: dryRun)
        } catch {
            // Busy (another compaction or a GC mark holds the index lock) exits 3, as gc does.
            throw MaintenanceExit.fail(error, json: options.json)
        }
        if options.json {
            var object: [String: Any] = [
                "dry_run": dryRun, "files_folded": report.filesFolded, "files_kept": report.filesKept,
                "entries_read": report.entriesRead, "entries_written": report.entriesWritten,
                "tombstones_dropped": report.tombstonesDropped, "bytes_before": report.bytesBefore,
                "bytes_after": report.bytesAfter, "files_with_problems": report.filesWithProblems,
                "partial_tails_dropped": report.partialTailsDropped.map { ["file": $0.path, "bytes": $0.bytes] },
                "temp_files_removed": report.tempFilesRemoved, "index_debris": report.debris.map(\.description),
            ]
            if let output = report.output { object["output"] = output }
            Output.json(object)
            return
        }
        let verb = dryRun ? "would fold" : "folded"
        print(
            "\(verb) \(report.filesFolded) index files (\(report.entriesRead) entries, \(Output.bytes(report.bytesBefore))) "
                + "into \(report.entriesWritten) entries (\(Output.bytes(report.bytesAfter))); kept \(report.filesKept) files"
        )
        for path in report.filesWithProblems {
            Output.standardError("casket: warning: not folded: '\(path)' holds malformed lines")
        }
        for tail in report.partialTailsDropped { Output.standardError("casket: warning: \(tail)") }
        if report.tempFilesRemoved > 0 {
            Output.standardError(
                "casket: removed \(report.tempFilesRemoved) unpublished output files of killed compactions")
        }
        for debris in report.debris { Output.standardError("casket: warning: \(debris)") }
    }
}
