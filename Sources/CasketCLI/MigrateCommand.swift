import ArgumentParser
import Casket
import CasketMigration
import Foundation

/// `casket migrate SRC --into DST`.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Migrate an exca CacheDict cache folder into a store.",
        discussion: """
            Reads every exca layout (0.1 to 0.6.0), keeps one deterministic copy per key (docs/MIGRATION.md), \
            writes each live payload once as a blob and one index entry per key. The source is only read, \
            unless --reclaim. Nothing outside SRC is ever read or deleted: an entry whose file name leaves SRC, \
            goes through a symlink, or names a FIFO, a device or a hard-linked file is reported as not migrated. \
            A rerun after an interruption skips finished keys. DST is created if missing and may be SRC itself.
            """
    )

    @Argument(help: "The exca cache folder (the one holding *-info.jsonl files).")
    var source: String

    @Option(name: .long, help: "The store to migrate into (created if missing; may equal SRC).")
    var into: String

    @Flag(name: .long, help: "Print the plan and write nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Also hash every duplicate copy and report keys whose copies differ.")
    var verifyDuplicates = false

    @Flag(name: .long, help: "After migrating, delete each source shard whose keys are verified in the store.")
    var reclaim = false

    @Flag(name: .long, help: "Print machine-readable JSON on standard output.")
    var json = false

    func validate() throws {
        if dryRun && reclaim { throw ValidationError("--dry-run and --reclaim cannot be combined") }
    }

    func run() throws {
        let progress: (@Sendable (Int64, Int64) -> Void)? = system_isTerminal(2) ? ProgressBar().update : nil
        let migrator = Migrator(
            source: source, destination: into,
            options: Migrator.Options(verifyDuplicates: verifyDuplicates, progress: progress))
        let plan = try migrator.plan()
        for warning in plan.cache.warnings { Output.standardError("casket: warning: \(warning)") }
        if dryRun {
            printPlan(plan)
            return
        }
        var report = try migrator.run(plan)
        if progress != nil { FileHandle.standardError.write(Data("\n".utf8)) }
        if reclaim { report = try migrator.reclaim(plan, run: report) }
        printReport(report)
    }

    func unmigratableJSON(_ plan: MigrationPlan) -> [[String: Any]] {
        plan.unmigratable.map {
            ["key": $0.key, "file": $0.file, "line": $0.line, "reason": $0.reason, "code": $0.code.description]
        }
    }

    func planJSON(_ plan: MigrationPlan) -> [String: Any] {
        [
            "source": source, "into": into, "layouts": plan.cache.layouts.sorted(), "keys": plan.keys.count,
            "entries": plan.entries, "duplicate_copies": plan.duplicateCopies, "bytes_on_disk": plan.bytesOnDisk,
            "unique_bytes": plan.uniqueBytes, "inflation": plan.inflation, "bytes_to_write": plan.bytesToWrite,
            "already_migrated": plan.alreadyMigrated, "not_migrated": unmigratableJSON(plan),
            "warnings": plan.cache.warnings.map(\.description),
        ]
    }

    func printPlan(_ plan: MigrationPlan) {
        if json {
            var object = planJSON(plan)
            object["dry_run"] = true
            Output.json(object)
            return
        }
        print("plan for \(source) -> \(into) (dry run, nothing written)")
        print("layouts           \(plan.cache.layouts.sorted().joined(separator: ", "))")
        print("keys              \(plan.keys.count) migratable, \(plan.unmigratable.count) not migratable")
        print("entries           \(plan.entries) (\(plan.duplicateCopies) duplicate copies)")
        print("bytes on disk     \(Output.bytes(plan.bytesOnDisk)) (\(plan.bytesOnDisk) B)")
        print("unique bytes      \(Output.bytes(plan.uniqueBytes)) (\(plan.uniqueBytes) B)")
        print("inflation         \(String(format: "%.2f", plan.inflation))x")
        print("bytes to write    \(Output.bytes(plan.bytesToWrite)) (\(plan.alreadyMigrated) keys already migrated)")
        printUnmigratable(plan)
    }

    func printUnmigratable(_ plan: MigrationPlan) {
        guard !plan.unmigratable.isEmpty else { return }
        print("not migrated:")
        for entry in plan.unmigratable { print("  \(entry)") }
    }

    func printReport(_ report: MigrationReport) {
        let plan = report.plan
        if json {
            var object = planJSON(plan)
            object.merge([
                "keys_migrated": report.keysMigrated, "keys_skipped_already_migrated": report.skippedAlreadyMigrated,
                "duplicates_collapsed": plan.duplicateCopies, "blobs_written": report.blobsWritten,
                "blobs_deduplicated": report.blobsDeduplicated, "bytes_read": report.bytesRead,
                "bytes_written": report.bytesWritten, "bytes_before": plan.bytesOnDisk,
                "bytes_after": report.storeBytesAfter, "inflation_before": report.inflationBefore,
                "inflation_after": report.inflationAfter, "seconds": report.seconds,
                "throughput_bytes_per_second": report.throughput, "differing_duplicates": report.differingDuplicates,
                "reclaimed_shards": report.reclaimedShards, "bytes_reclaimed": report.bytesReclaimed,
                "kept_shards": report.keptShards.map { ["shard": $0.shard, "reason": $0.reason] },
            ]) { _, new in new }
            Output.json(object)
            return
        }
        print("migrated \(source) -> \(into)")
        print(
            "keys              \(plan.keys.count) (\(report.keysMigrated) migrated now, \(report.skippedAlreadyMigrated) already)"
        )
        print("duplicates        \(plan.duplicateCopies) copies collapsed")
        print(
            "bytes before      \(Output.bytes(plan.bytesOnDisk)), inflation \(String(format: "%.2f", report.inflationBefore))x"
        )
        print(
            "bytes after       \(Output.bytes(report.storeBytesAfter)) in blobs, inflation \(String(format: "%.2f", report.inflationAfter))x"
        )
        print("blobs             \(report.blobsWritten) written, \(report.blobsDeduplicated) already stored")
        print(
            "time              \(String(format: "%.2f", report.seconds)) s, \(Output.bytes(Int64(report.throughput)))/s"
        )
        if !report.differingDuplicates.isEmpty {
            print(
                "copies differ     \(report.differingDuplicates.count) keys: \(report.differingDuplicates.joined(separator: ", "))"
            )
        }
        if !report.reclaimedShards.isEmpty || !report.keptShards.isEmpty {
            print("reclaimed         \(report.reclaimedShards.count) shards, \(Output.bytes(report.bytesReclaimed))")
            for kept in report.keptShards { print("  kept \(kept.shard): \(kept.reason)") }
        }
        printUnmigratable(plan)
    }
}

/// A one-line progress bar on standard error: bytes, rate, ETA.
final class ProgressBar: @unchecked Sendable {
    private let started = Date()
    private var last = Date.distantPast

    func update(_ done: Int64, _ total: Int64) {
        let now = Date()
        guard done == total || now.timeIntervalSince(last) > 0.2 else { return }
        last = now
        let elapsed = max(now.timeIntervalSince(started), 1e-6)
        let rate = Double(done) / elapsed
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = String(
            format: "\r[%@] %5.1f%% %@ / %@  %@/s  ETA %.0fs ", bar, fraction * 100, Output.bytes(done),
            Output.bytes(total),
            Output.bytes(Int64(rate)), eta)
        FileHandle.standardError.write(Data(line.utf8))
    }
}
