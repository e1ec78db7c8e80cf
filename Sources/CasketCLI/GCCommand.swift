import ArgumentParser
import Casket
import CasketGC
import Foundation

/// Exit codes of `casket gc` and `casket fsck` that a scheduler can tell apart (docs/GC.md).
enum MaintenanceExit {
    /// Another collector holds a fresh lock: this run did nothing. Alert only if it persists.
    static let lockHeld: Int32 = 3
    /// This host's clock and the file system's differ too much: nothing was deleted. Fix NTP.
    static let clockSkew: Int32 = 4
    /// fsck found corrupt blobs, missing blobs or malformed index lines.
    static let damageFound: Int32 = 5

    /// Prints a failure and exits with the code a scheduler should see (``Failure`` decides it).
    static func fail(_ error: CasketError, json: Bool) -> ExitCode {
        ExitCode(Failure.report(error, json: json))
    }
}

/// `casket gc`.
struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove blobs no live key references, once older than the grace; remove debris.",
        discussion: """
            Safe with writers running: an unreferenced blob is removed only when its mtime is older than \
            (mark start - grace), and writers freshen a blob's mtime whenever they reuse it. "Now" is the \
            file system's time; the run is refused when this host's clock differs from it by more than \
            --max-clock-skew. One collection at a time per store, across hosts (lock file gc/lock).

            Exit codes: 0 done; 1 failure; 2 usage (for example --grace 0 without --offline); \
            3 another collection holds the lock, or a compaction held the index lock for ten minutes (nothing \
            done); 4 clock skew too large (nothing done). Every code but 0 means "not done": alert on it. \
            Reports are kept in gc/reports/; --history lists them. See docs/GC.md.
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(
        parsing: .unconditional,
        help: "Keep unreferenced blobs younger than this (24h, 30m, 90s, 500ms; plain number = seconds).")
    var grace = "24h"

    @Flag(help: "Promise that no writer is running; only then may --grace be 0.")
    var offline = false

    @Flag(name: .customLong("dry-run"), help: "List what would be removed and the bytes; remove nothing.")
    var dryRun = false

    @Flag(help: "List the reports of past runs and exit.")
    var history = false

    @Option(
        name: .customLong("lock-ttl"), parsing: .unconditional,
        help: "Take over another collector's lock once its heartbeat is this old.")
    var lockTTL = "5m"

    @Option(parsing: .unconditional, help: .hidden)
    var heartbeat = "15s"

    @Option(
        name: .customLong("max-clock-skew"), parsing: .unconditional,
        help: "Refuse to run when this host's clock is this far off.")
    var maxClockSkew = "5m"

    @Option(
        name: .customLong("keep-reports"), parsing: .unconditional,
        help: "How many reports to keep in gc/reports/.")
    var keepReports = 200

    func validate() throws {
        // Only the grace may be 0 (with --offline): a lock TTL, heartbeat or skew bound of 0 makes no sense.
        for (name, value, zeroAllowed) in [
            ("--grace", grace, true), ("--lock-ttl", lockTTL, false), ("--heartbeat", heartbeat, false),
            ("--max-clock-skew", maxClockSkew, false),
        ] {
            if value.hasPrefix("-") { throw ValidationError("\(name) cannot be negative (got '\(value)')") }
            guard let parsed = GCDuration.parse(value) else {
                throw ValidationError("\(name) '\(value)' is not a duration (examples: 24h, 30m, 90s, 500ms)")
            }
            if parsed == 0 && !zeroAllowed { throw ValidationError("\(name) must be greater than 0 (got '\(value)')") }
        }
        if keepReports < 0 { throw ValidationError("--keep-reports cannot be negative (got \(keepReports))") }
        if GCDuration.parse(grace) == 0 && !offline {
            throw ValidationError(
                "--grace 0 would delete blobs that running writers are about to reference; add --offline only if "
                    + "no writer is running")
        }
    }

    func run() throws {
        let store: BlobStore
        do { store = try options.openStore() } catch { throw MaintenanceExit.fail(error, json: options.json) }
        if history { return try printHistory(store) }
        var settings = Collector.Options()
        settings.grace = GCDuration.parse(grace)!
        settings.offline = offline
        settings.dryRun = dryRun
        settings.lockTTL = GCDuration.parse(lockTTL)!
        settings.heartbeatInterval = max(1_000_000, GCDuration.parse(heartbeat)!)
        settings.maxClockSkew = GCDuration.parse(maxClockSkew)!
        settings.keepReports = keepReports
        var removals: [[String: Any]] = []
        let report: GCReport
        do {
            let collector = try Collector(store: store, options: settings)
            report = try collector.run { removal in
                if dryRun {
                    if options.json {
                        removals.append([
                            "path": removal.path, "bytes": removal.bytes, "reason": removal.reason.rawValue,
                        ])
                    } else if removal.reason == .retire {
                        print("would retire \(removal.path) \(removal.bytes) B")
                    } else {
                        print("would remove \(removal.path) \(removal.bytes) B (\(removal.reason.rawValue))")
                    }
                }
            }
        } catch {
            throw MaintenanceExit.fail(error, json: options.json)
        }
        for debris in report.indexDebris { Output.standardError("casket: warning: \(debris)") }
        for damage in report.damagedPacks {
            Output.standardError("casket: warning: \(damage) (the pack is left as it is)")
        }
        for entry in report.unsafeEntries { Output.standardError("casket: warning: \(entry)") }
        if options.json {
            var object = report.jsonObject
            if dryRun { object["would_remove"] = removals }
            Output.json(object)
        } else {
            print(GCCommand.summary(report))
        }
    }

    static func summary(_ r: GCReport) -> String {
        let verb = r.dryRun ? "would reclaim" : "reclaimed"
        var lines = [
            "\(r.dryRun ? "dry run: " : "")scanned \(r.blobsScanned) blob files (\(Output.bytes(r.bytesScanned))), "
                + "\(r.live) live, \(r.keptYoung) unreferenced but younger than the grace \(GCDuration.format(r.grace))",
            "swept \(r.swept) unreferenced blobs, \(r.twinsRemoved) older twins, \(r.unsoundFormsRemoved) unsound forms, "
                + "\(r.emptyBlobsRemoved) empty blob files, "
                + "\(r.strayFilesRemoved) stray files, \(r.sidecarsRemoved) sidecars, \(r.tempFilesRemoved) temp files: \(verb) "
                + "\(Output.bytes(r.bytesReclaimed)) (\(r.bytesReclaimed) B)",
            "packs: \(r.packsSealed) sealed, \(r.packsRepacked) repacked (\(r.recordsCopied) records copied into "
                + "\(r.packsWritten) new packs), \(r.packsRemoved) removed, \(r.packsRetired) retired, "
                + "\(r.packsRetiredWaiting) retired waiting for their grace: \(Output.bytes(r.packBytesFreed)) of packs",
            "index: \(r.keys) live keys, \(r.indexEntries) entries in \(r.indexFiles) files, "
                + "\(r.referencedBlobs) referenced blobs"
                + (r.malformedLines > 0 ? ", \(r.malformedLines) malformed lines (their hashes kept)" : ""),
            String(
                format: "duration %.2f s (mark %.2f s, sweep %.2f s)", r.durationSeconds, r.markSeconds, r.sweepSeconds),
        ]
        if r.raced > 0 { lines.append("\(r.raced) candidates were reused by a writer during the sweep and kept") }
        if r.restored > 0 { lines.append("\(r.restored) blobs put back where an interrupted collection had left them") }
        if let from = r.tookOverLockFrom { lines.append("took over the stale lock of \(from)") }
        if let saved = r.savedAs { lines.append("report: \(saved)") }
        return lines.joined(separator: "\n")
    }

    private func printHistory(_ store: BlobStore) throws {
        let reports: [GCReport]
        do { reports = try ReportArchive(store: store).reports() } catch {
            throw MaintenanceExit.fail(error, json: options.json)
        }
        if options.json {
            Output.json(reports.map(\.jsonObject))
            return
        }
        if reports.isEmpty { print("no garbage collection reports in \(store.root)/gc/reports") }
        for r in reports {
            let when = Date(timeIntervalSince1970: Double(r.markStart) / 1e9)
            let stamp = ISO8601DateFormatter().string(from: when)
            print(
                "\(stamp)  \(r.host)  \(r.dryRun ? "dry-run " : "")grace \(GCDuration.format(r.grace))  "
                    + "scanned \(r.blobsScanned)  live \(r.live)  swept \(r.swept)  temp \(r.tempFilesRemoved)  "
                    + "reclaimed \(Output.bytes(r.bytesReclaimed))  "
                    + String(format: "%.2f s", r.durationSeconds))
        }
    }
}

/// `casket fsck`.
struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Re-hash blobs, quarantine corrupt ones, list keys whose blobs are missing and bad index lines.",
        discussion: """
            Corrupt blob files are moved to quarantine/ (the next writer of that payload stores it again). \
            Exit codes: 0 clean; 5 damage found (corrupt or missing blobs, malformed index lines, links in \
            the place of store folders or blobs, which are never followed); \
            1 the check could not run; 2 usage.
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(
        parsing: .unconditional,
        help: "Re-hash only N blob files chosen at random (the index checks always cover every key).")
    var sample: Int?

    @Flag(
        help: """
            Write chunk digests (docs/FORMAT.md 3.6) for blobs of at least chunks_min bytes that have none, \
            such as blobs stored before chunk digests existed, and replace wrong ones.
            """)
    var addChunks = false

    @Option(help: "The grace of your collections: retired packs older than it are reported (default 24h).")
    var grace = "24h"

    func validate() throws {
        if let sample, sample < 0 { throw ValidationError("--sample must not be negative") }
        guard let parsed = GCDuration.parse(grace), parsed >= 0 else {
            throw ValidationError("--grace must be a duration such as 24h, 90m or 30s")
        }
    }

    func run() throws {
        let report: Checker.Report
        do {
            let store = try options.openStore()
            var checker = Checker(store: store, sample: sample)
            checker.addChunks = addChunks
            checker.retiredGrace = GCDuration.parse(grace) ?? checker.retiredGrace
            report = try checker.run { corruption in
                if !options.json {
                    Output.standardError("casket: corrupt: \(corruption.message)")
                }
            }
        } catch {
            throw MaintenanceExit.fail(error, json: options.json)
        }
        let throughput = report.hashSeconds > 0 ? Double(report.bytesChecked) / report.hashSeconds : 0
        if options.json {
            Output.json([
                "clean": report.clean, "blob_files": report.blobFiles, "blobs_checked": report.blobsChecked,
                "bytes_checked": report.bytesChecked, "keys": report.keys, "packs": report.packs,
                "pack_records_checked": report.packRecordsChecked, "damaged_packs": report.damagedPacks,
                "retired_packs": report.retiredPacks,
                "retired_past_grace": report.retiredPastGrace.map {
                    ["pack": $0.pack, "retired": $0.retiredAt, "age_seconds": $0.ageSeconds] as [String: Any]
                },
                "corrupt": report.corrupt.map { c -> [String: Any] in
                    var o: [String: Any] = ["path": c.path, "message": c.message]
                    if let q = c.quarantinedAs { o["quarantined_as"] = q }
                    return o
                },
                "missing": report.missing.map { ["key": $0.key, "blob": $0.digest.hex] },
                "bad_sidecars": report.badSidecars.map { b -> [String: Any] in
                    var o: [String: Any] = ["path": b.path, "reason": b.reason, "replaced": b.replaced]
                    if let q = b.quarantinedAs { o["quarantined_as"] = q }
                    return o
                },
                "sidecars_added": report.sidecarsAdded,
                "malformed": report.malformed.map {
                    ["file": $0.file, "line": $0.line, "reason": $0.reason.description]
                },
                "debris": report.debris, "index_debris": report.indexDebris.map(\.description),
                "unsafe": report.unsafeEntries,
                "hash_seconds": report.hashSeconds, "duration_seconds": report.durationSeconds,
                "bytes_per_second": throughput,
            ])
        } else {
            print(
                "checked \(report.blobsChecked) of \(report.blobFiles) blob files (\(Output.bytes(report.bytesChecked)), "
                    + String(format: "%.2f s, %@/s", report.hashSeconds, Output.bytes(Int64(throughput)))
                    + "), \(report.packRecordsChecked) pack records in \(report.packs) packs, \(report.keys) live keys")
            for c in report.corrupt {
                print("corrupt  \(c.path)" + (c.quarantinedAs.map { " -> \($0)" } ?? " (could not move it)"))
            }
            for m in report.missing { print("missing  blob \(m.digest) of key \(KeyDisplay.quoted(m.key))") }
            for b in report.badSidecars {
                print(
                    "bad sidecar  \(b.path): \(b.reason)" + (b.quarantinedAs.map { " -> \($0)" } ?? "")
                        + (b.replaced ? " (replaced)" : ""))
            }
            if report.sidecarsAdded > 0 { print("added chunk digests to \(report.sidecarsAdded) blobs") }
            for issue in report.malformed { print("malformed  \(issue)") }
            for path in report.debris.prefix(20) { print("debris  \(path) (casket gc removes it)") }
            for debris in report.indexDebris { print("debris  \(debris)") }
            for entry in report.unsafeEntries { print("unsafe  \(entry)") }
            for damage in report.damagedPacks { print("damaged  \(damage)") }
            for old in report.retiredPastGrace {
                print(
                    "retired  pack \(old.pack) was retired \(GCDuration.format(Int64(old.ageSeconds * 1e9))) ago, "
                        + "more than the grace: run casket gc to remove it")
            }
            print(
                report.clean
                    ? "clean"
                    : "damage found: \(report.corrupt.count) corrupt, \(report.missing.count) missing, \(report.malformed.count) malformed lines, \(report.badSidecars.count) bad sidecars, \(report.damagedPacks.count) pack problems"
            )
        }
        if !report.clean { throw ExitCode(MaintenanceExit.damageFound) }
    }
}
