import Foundation

/// What a garbage collection did (or, in a dry run, would do). Saved under `gc/reports/`.
public struct GCReport: Sendable, Equatable {
    /// The host that ran it.
    public var host = ""
    /// Its pid.
    public var pid: Int32 = 0
    /// Mark start, file-system time, nanoseconds since the epoch.
    public var markStart: Int64 = 0
    /// The grace, nanoseconds: unreferenced blobs younger than `markStart - grace` were kept.
    public var grace: Int64 = 0
    /// Whether nothing was deleted (a dry run).
    public var dryRun = false
    /// Whether `--offline` was given.
    public var offline = false
    /// File-system time minus this host's clock at the start, nanoseconds.
    public var clockSkew: Int64 = 0
    /// The lock taken over from a dead or stale collector, if any (`pid 12 on node-b`).
    public var tookOverLockFrom: String?

    /// Live keys.
    public var keys = 0
    /// Well-formed index entry lines.
    public var indexEntries = 0
    /// Index files read.
    public var indexFiles = 0
    /// Malformed index lines (every hash in them was kept).
    public var malformedLines = 0
    /// Distinct blobs referenced by live keys.
    public var referencedBlobs = 0
    /// Entries of `index/` that are not index files (symlinks, folders, FIFOs, hidden names): skipped,
    /// each as `'PATH' is KIND: ...`.
    public var indexDebris: [String] = []
    /// Links found under `blobs/` (a fan-out folder or a blob name): never followed nor removed, reported.
    public var unsafeEntries: [String] = []

    /// Blob files examined.
    public var blobsScanned = 0
    /// Bytes of those files.
    public var bytesScanned: Int64 = 0
    /// Blob files kept because a live key references them.
    public var live = 0
    /// Unreferenced blob files kept because they are younger than the grace.
    public var keptYoung = 0
    /// Unreferenced blob files removed.
    public var swept = 0
    /// The older of two forms of one blob, removed.
    public var twinsRemoved = 0
    /// Unsound forms of blobs that also had a sound form (docs/FORMAT.md 3.4), removed.
    public var unsoundFormsRemoved = 0
    /// Zero-length blob files (debris of a crash) removed.
    public var emptyBlobsRemoved = 0
    /// Other files under `blobs/` older than the grace, removed.
    public var strayFilesRemoved = 0
    /// Chunk digest sidecars of blobs that are gone, removed (docs/FORMAT.md 3.6).
    public var sidecarsRemoved = 0
    /// Temp files in `tmp/` older than the grace, removed.
    public var tempFilesRemoved = 0
    /// Packs whose writer was gone, sealed (docs/FORMAT.md 3.7).
    public var packsSealed = 0
    /// Sealed packs taken as repack victims: their records copied out where nothing kept holds them.
    public var packsRepacked = 0
    /// Victims given a `.retired` notice (removed by a later collection, a grace on).
    public var packsRetired = 0
    /// Packs removed: every record held elsewhere, or retired more than a grace before the mark.
    public var packsRemoved = 0
    /// Retired packs left for a later collection (their grace is not over).
    public var packsRetiredWaiting = 0
    /// New packs written by the repacking.
    public var packsWritten = 0
    /// Records copied into them.
    public var recordsCopied = 0
    /// Bytes of the pack files, indexes and notices removed (counted in ``bytesReclaimed`` too).
    public var packBytesFreed: Int64 = 0
    /// Damage met while copying (a live record that does not verify): its pack is left alone.
    public var damagedPacks: [String] = []
    /// Candidates found freshened or replaced at the last moment, and kept.
    public var raced = 0
    /// Blobs put back from where a killed collector had moved them.
    public var restored = 0
    /// Bytes of everything removed.
    public var bytesReclaimed: Int64 = 0

    /// Seconds spent reading the index.
    public var markSeconds = 0.0
    /// Seconds spent walking `blobs/` and `tmp/`.
    public var sweepSeconds = 0.0
    /// Seconds in all.
    public var durationSeconds = 0.0
    /// Where the report was saved.
    public var savedAs: String?

    /// Creates an empty report.
    public init() {}

    /// The report as a JSON object (snake_case keys), as saved and printed by `casket gc --json`.
    public var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "host": host, "pid": Int(pid), "mark_start": markStart, "grace_seconds": Double(grace) / 1e9,
            "dry_run": dryRun, "offline": offline, "clock_skew_seconds": Double(clockSkew) / 1e9,
            "keys": keys, "index_entries": indexEntries, "index_files": indexFiles, "malformed_lines": malformedLines,
            "referenced_blobs": referencedBlobs, "blobs_scanned": blobsScanned, "bytes_scanned": bytesScanned,
            "live": live, "kept_young": keptYoung, "swept": swept, "twins_removed": twinsRemoved,
            "unsound_forms_removed": unsoundFormsRemoved,
            "empty_blobs_removed": emptyBlobsRemoved, "stray_files_removed": strayFilesRemoved,
            "sidecars_removed": sidecarsRemoved, "packs_sealed": packsSealed, "packs_repacked": packsRepacked,
            "packs_retired": packsRetired, "packs_removed": packsRemoved, "packs_retired_waiting": packsRetiredWaiting,
            "packs_written": packsWritten, "records_copied": recordsCopied, "pack_bytes_freed": packBytesFreed,
            "temp_files_removed": tempFilesRemoved, "raced": raced, "restored": restored,
            "bytes_reclaimed": bytesReclaimed, "mark_seconds": markSeconds, "sweep_seconds": sweepSeconds,
            "duration_seconds": durationSeconds,
        ]
        if let tookOverLockFrom { object["took_over_lock_from"] = tookOverLockFrom }
        if !indexDebris.isEmpty { object["index_debris"] = indexDebris }
        if !unsafeEntries.isEmpty { object["unsafe_entries"] = unsafeEntries }
        if !damagedPacks.isEmpty { object["damaged_packs"] = damagedPacks }
        if let savedAs { object["report"] = savedAs }
        return object
    }

    /// Reads a saved report back; missing fields keep their defaults.
    public init(jsonObject object: [String: Any]) {
        func int(_ key: String) -> Int { (object[key] as? NSNumber)?.intValue ?? 0 }
        func int64(_ key: String) -> Int64 { (object[key] as? NSNumber)?.int64Value ?? 0 }
        func double(_ key: String) -> Double { (object[key] as? NSNumber)?.doubleValue ?? 0 }
        host = object["host"] as? String ?? ""
        pid = Int32(int("pid"))
        markStart = int64("mark_start")
        grace = Int64(double("grace_seconds") * 1e9)
        dryRun = object["dry_run"] as? Bool ?? false
        offline = object["offline"] as? Bool ?? false
        clockSkew = Int64(double("clock_skew_seconds") * 1e9)
        tookOverLockFrom = object["took_over_lock_from"] as? String
        keys = int("keys")
        indexEntries = int("index_entries")
        indexFiles = int("index_files")
        malformedLines = int("malformed_lines")
        referencedBlobs = int("referenced_blobs")
        indexDebris = object["index_debris"] as? [String] ?? []
        unsafeEntries = object["unsafe_entries"] as? [String] ?? []
        blobsScanned = int("blobs_scanned")
        bytesScanned = int64("bytes_scanned")
        live = int("live")
        keptYoung = int("kept_young")
        swept = int("swept")
        twinsRemoved = int("twins_removed")
        unsoundFormsRemoved = int("unsound_forms_removed")
        emptyBlobsRemoved = int("empty_blobs_removed")
        strayFilesRemoved = int("stray_files_removed")
        sidecarsRemoved = int("sidecars_removed")
        packsSealed = int("packs_sealed")
        packsRepacked = int("packs_repacked")
        packsRetired = int("packs_retired")
        packsRemoved = int("packs_removed")
        packsRetiredWaiting = int("packs_retired_waiting")
        packsWritten = int("packs_written")
        recordsCopied = int("records_copied")
        packBytesFreed = int64("pack_bytes_freed")
        damagedPacks = object["damaged_packs"] as? [String] ?? []
        tempFilesRemoved = int("temp_files_removed")
        raced = int("raced")
        restored = int("restored")
        bytesReclaimed = int64("bytes_reclaimed")
        markSeconds = double("mark_seconds")
        sweepSeconds = double("sweep_seconds")
        durationSeconds = double("duration_seconds")
        savedAs = object["report"] as? String
    }

    /// The JSON bytes saved in `gc/reports/`.
    func encoded() -> [UInt8] {
        let data =
            (try? JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data()
        return Array(data) + [0x0A]
    }
}
