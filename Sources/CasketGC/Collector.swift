@_spi(Maintenance) public import Casket
import Foundation

/// Mark-and-sweep garbage collection of a store, safe with writers running (docs/GC.md, docs/DESIGN.md 4).
///
/// 1. Take the GC lock (``GCLock``); read "now" from the file system and refuse when this host's clock
///    differs from it by more than ``Options/maxClockSkew``.
/// 2. **Mark**: read every index file; the live set is every blob of every live winner.
/// 3. **Sweep**: walk `blobs/` one fan-out folder at a time. An unreferenced blob file is removed only if
///    its mtime is older than `markStart - grace`. A writer that deduplicates against a blob freshens its
///    mtime first, so a blob in use is never old. To close the gap between looking at the mtime and
///    unlinking, a candidate is first renamed aside (no writer can freshen it under that name), its mtime
///    is read again, and it is removed only if still old, else put back.
/// 4. Of two forms of one blob, remove an unsound one, or else the older one, zero-length blob files, stray files under `blobs/` and
///    temp files in `tmp/` older than the grace. Save the report under `gc/reports/`.
public final class Collector {
    /// How a collection runs.
    public struct Options: Sendable {
        /// Unreferenced blobs younger than this (relative to mark start) are kept. Default 24 h.
        public var grace: Int64 = 86_400_000_000_000
        /// The caller promises that no writer is running: only then may the grace be zero.
        public var offline = false
        /// Report what would be removed, remove nothing.
        public var dryRun = false
        /// How old the heartbeat of another collector's lock must be before it is taken over.
        public var lockTTL: Int64 = GCLock.defaultTTL.wholeNanoseconds
        /// How often this collector refreshes its lock.
        public var heartbeatInterval: Int64 = GCLock.defaultHeartbeat.wholeNanoseconds
        /// The largest tolerated difference between this host's clock and the file system's.
        public var maxClockSkew: Int64 = 300_000_000_000
        /// How many reports to keep in `gc/reports/` (older ones are removed).
        public var keepReports = 200
        /// Whether to save the report in the store.
        public var saveReport = true

        /// Default options: grace 24 h, online.
        public init() {}
    }

    /// One file removed (or that a dry run would remove).
    public struct Removal: Sendable {
        /// Why it goes.
        public enum Reason: String, Sendable {
            /// An unreferenced blob older than the grace.
            case unreferenced
            /// The older of two sound forms of one blob.
            case olderTwin = "older_twin"
            /// A form of a blob that cannot be its payload, beside a sound form (docs/FORMAT.md 3.4).
            case unsound
            /// A zero-length blob file that is not the empty payload.
            case empty
            /// A file under `blobs/` that is not a blob.
            case stray
            /// The chunk digests of a blob that is gone (docs/FORMAT.md 3.6).
            case sidecar
            /// A temp file older than the grace.
            case temp
            /// A pack whose every record is held elsewhere, or a retired pack past its grace (docs/GC.md).
            case pack
            /// A pack retired (not removed): its notice is published, it goes after the grace.
            case retire
        }
        /// The file.
        public var path: String
        /// Its size.
        public var bytes: Int64
        /// Why.
        public var reason: Reason
    }

    let store: BlobStore
    let options: Options
    static let asidePrefix = ".gc-aside."

    /// Creates a collector.
    ///
    /// - Throws: ``CasketError/Code/invalidArgument`` for a zero grace without `offline`.
    public init(store: BlobStore, options: Options) throws(CasketError) {
        guard options.grace > 0 || options.offline else {
            throw CasketError(
                .invalidArgument,
                "a grace of zero would delete blobs that running writers are about to reference; "
                    + "give --offline only if no writer is running")
        }
        guard options.grace >= 0 else { throw CasketError(.invalidArgument, "the grace must not be negative") }
        self.store = store
        self.options = options
    }

    /// Runs one collection.
    ///
    /// - Parameter onRemoval: Called for each file removed (in a dry run: that would be removed).
    /// - Throws: ``CasketError/Code/busy`` when another collector holds the lock (or took it over during the
    ///   run), ``CasketError/Code/clockSkew`` when this host's clock is too far from the file system's.
    public func run(onRemoval: (Removal) -> Void = { _ in }) throws(CasketError) -> GCReport {
        let started = Date()
        // A link in the place of blobs/, tmp/, gc/, ... is never followed: refuse before touching anything.
        if let unsafe = store.unsafeFolders().first {
            throw CasketError(.unsafePath, "refusing to collect garbage: \(unsafe)", path: store.root)
        }
        let lock = try GCLock.acquire(
            store, ttl: .nanoseconds(options.lockTTL), heartbeatInterval: .nanoseconds(options.heartbeatInterval))
        defer { lock.release() }
        var report = GCReport()
        report.host = StoreFiles.hostName
        report.pid = StoreFiles.pid
        report.dryRun = options.dryRun
        report.offline = options.offline
        report.grace = options.grace
        report.tookOverLockFrom = lock.tookOver.map(\.description)

        let local = StoreFiles.wallClockNanoseconds()
        let markStart = try store.fileSystemNow()
        report.markStart = markStart
        report.clockSkew = markStart - local
        guard abs(report.clockSkew) <= options.maxClockSkew else {
            throw CasketError(
                .clockSkew,
                "this host's clock differs from the file system's by \(GCDuration.format(abs(report.clockSkew))) "
                    + "(more than \(GCDuration.format(options.maxClockSkew))): fix the clock (NTP) before collecting")
        }

        let mark = try CacheStore.mark(store, lockTTL: options.lockTTL)
        report.indexDebris = mark.debris.map(\.description)
        report.keys = mark.keys
        report.indexEntries = mark.entries
        report.indexFiles = mark.indexFiles
        report.malformedLines = mark.issues.count
        report.referencedBlobs = mark.live.count
        let markDone = Date()
        report.markSeconds = markDone.timeIntervalSince(started)

        let (live, cutoff, dryRun) = (mark.live, markStart - options.grace, options.dryRun)
        report = try withoutActuallyEscaping(onRemoval) { (callback) throws(CasketError) -> GCReport in
            let sweep = Sweep(
                store: store, live: live, cutoff: cutoff, dryRun: dryRun, lock: lock, report: report,
                onRemoval: callback)
            try sweep.run()
            return sweep.report
        }
        if let shelf = try store.packShelf() {
            report = try withoutActuallyEscaping(onRemoval) { (callback) throws(CasketError) -> GCReport in
                let repack = Repack(
                    store: store, shelf: shelf, live: live, markStart: markStart, options: options, lock: lock,
                    report: report, onRemoval: callback)
                try repack.run()
                return repack.report
            }
        }
        report.sweepSeconds = Date().timeIntervalSince(markDone)
        report.durationSeconds = Date().timeIntervalSince(started)
        if options.saveReport {
            report.savedAs = try ReportArchive(store: store).save(report, keep: options.keepReports)
        }
        return report
    }
}

/// The sweep phase: one walk over `blobs/` and `tmp/`.
final class Sweep {
    let store: BlobStore
    let live: DigestSet
    let cutoff: Int64
    let dryRun: Bool
    let lock: GCLock
    var report: GCReport
    let onRemoval: (Collector.Removal) -> Void

    init(
        store: BlobStore, live: DigestSet, cutoff: Int64, dryRun: Bool, lock: GCLock, report: GCReport,
        onRemoval: @escaping (Collector.Removal) -> Void
    ) {
        self.store = store
        self.live = live
        self.cutoff = cutoff
        self.dryRun = dryRun
        self.lock = lock
        self.report = report
        self.onRemoval = onRemoval
    }

    func run() throws(CasketError) {
        try store.forEachBlob(
            { (file) throws(CasketError) in try blob(file) },
            debris: { (path) throws(CasketError) in try debris(path) },
            sidecar: { (digest, _) throws(CasketError) in try sidecar(of: digest, swept: nil) })
        // Temp files: everything old in tmp/, the unique files a killed process left behind the link that
        // creates a lock, a claim or a pack's lease (`*.tmp` in gc/, claims/ and packs/, where a killed
        // sealer also leaves its index's temp file), and a killed compaction's unpublished output
        // (`compact-*.jsonl.tmp` in index/).
        let isTemp: (String) -> Bool = { $0.hasSuffix(".tmp") }
        for (directory, accepts) in [
            (store.tmpDirectory, { _ in true }), (store.gcDirectory, isTemp), (store.claimsDirectory, isTemp),
            (store.packsDirectory, isTemp),
            (store.indexDirectory, CacheStore.isCompactionTemp),
        ] as [(String, (String) -> Bool)] {
            guard store.files.status(directory) != nil else { continue }
            try store.files.forEachName(in: directory) { (name) throws(CasketError) in
                let path = directory + "/" + name
                guard accepts(name), let status = store.files.status(path), status.isRegularFile,
                    status.mtimeNanoseconds < cutoff
                else { return }
                guard directory == store.indexDirectory else {
                    try remove(path, bytes: status.size, reason: .temp) { $0.mtimeNanoseconds < cutoff }
                    return
                }
                // Nobody freshens a compaction's output, so no aside is needed (an aside name in index/
                // left by a killed collector would be debris for ever).
                if dryRun {
                    record(path, bytes: status.size, reason: .temp)
                } else if !lock.isLost, case .success = store.files.unlink(path) {
                    record(path, bytes: status.size, reason: .temp)
                }
            }
        }
    }

    private func blob(_ file: BlobStore.BlobFile) throws(CasketError) {
        report.blobsScanned += 1
        report.bytesScanned += file.storedBytes
        if file.storedBytes == 0 && file.digest != .empty {
            try remove(file.path, bytes: 0, reason: .empty) { $0.size == 0 }
            return
        }
        if store.files.status(store.path(of: file.digest, compressed: !file.compressed)) != nil {
            if try twins(file) { return }
        }
        if live.contains(file.digest) {
            report.live += 1
            return
        }
        guard file.mtimeNanoseconds < cutoff else {
            report.keptYoung += 1
            return
        }
        try remove(file.path, bytes: file.storedBytes, reason: .unreferenced) { $0.mtimeNanoseconds < cutoff }
        try sidecar(of: file.digest, swept: file.compressed)
    }

    /// A blob's sidecar goes with its last form: at once when this pass swept the blob (`swept`, the form
    /// swept), else (an orphan left by a killed collector or beside a quarantined blob) once older than the
    /// grace. Never while a file of either form is under the blob's name, checked again once it is aside.
    private func sidecar(of digest: Digest, swept: Bool?) throws(CasketError) {
        let path = store.sidecarPath(digest)
        // A dry run removed nothing: the form it would sweep is still there.
        let forms = [false, true].filter { !(dryRun && $0 == swept) }.map { store.path(of: digest, compressed: $0) }
        let files = store.files
        let blobGone = { forms.allSatisfy { files.status($0) == nil } }
        guard let status = store.files.status(path), status.isRegularFile, blobGone(),
            swept != nil || status.mtimeNanoseconds < cutoff
        else { return }
        try remove(path, bytes: status.size, reason: .sidecar) { (status) in
            blobGone() && (swept != nil || status.mtimeNanoseconds < cutoff)
        }
    }

    /// Both forms of one blob exist (docs/FORMAT.md 3.2, 3.4): an unsound form goes once older than the
    /// grace, whatever the other's age, and the only sound form is never removed; of two sound forms the
    /// older goes, never the newer one, so a form a writer has just published or freshened survives.
    ///
    /// - Returns: Whether `file` needs no further judgement in this pass.
    private func twins(_ file: BlobStore.BlobFile) throws(CasketError) -> Bool {
        let forms = store.judgeForms(file.digest, size: nil)
        let (mine, twin) = file.compressed ? (forms.compressed, forms.raw) : (forms.raw, forms.compressed)
        guard mine.location != nil else {
            guard twin.location != nil else { return false }  // no sound form: fsck's business
            guard file.mtimeNanoseconds < cutoff else { return true }
            try remove(file.path, bytes: file.storedBytes, reason: .unsound) { $0.mtimeNanoseconds < cutoff }
            return true
        }
        // Two sound forms: judged once, when the walk meets the frame.
        guard file.compressed, let raw = forms.raw.location, let frame = forms.compressed.location else {
            return false
        }
        let rawIsOlder = raw.mtimeNanoseconds < frame.mtimeNanoseconds
        let (older, newer) = rawIsOlder ? (raw, frame) : (frame, raw)
        guard older.mtimeNanoseconds < cutoff else { return false }
        try remove(older.path, bytes: older.storedBytes, reason: .olderTwin) { (status) -> Bool in
            guard let now = store.judge(file.digest, compressed: newer.compressed, size: nil).location else {
                return false
            }
            return status.mtimeNanoseconds < cutoff && status.mtimeNanoseconds <= now.mtimeNanoseconds
        }
        return true
    }

    private func debris(_ path: String) throws(CasketError) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        if name.hasPrefix(Collector.asidePrefix) {
            try restore(path)
            return
        }
        if let status = store.files.status(path), status.kind == .symbolicLink {
            report.unsafeEntries.append("'\(path)' is a symbolic link (never followed)")
            return
        }
        guard !name.hasPrefix(".nfs"), let status = store.files.status(path), status.isRegularFile,
            status.mtimeNanoseconds < cutoff
        else { return }
        try remove(path, bytes: status.size, reason: .stray) { $0.mtimeNanoseconds < cutoff }
    }

    /// Removes a file if `stillGarbage` holds for it once it is out of every writer's reach.
    ///
    /// The file is renamed aside first: a writer freshens (or replaces) a blob through its name, so once
    /// renamed its mtime can no longer change and the second look is final. If it changed meanwhile it is
    /// put back; if a writer stored the blob again meanwhile, the copy aside is redundant and removed.
    private func remove(
        _ path: String, bytes: Int64, reason: Collector.Removal.Reason, stillGarbage: (FileStatus) -> Bool
    ) throws(CasketError) {
        if dryRun {
            record(path, bytes: bytes, reason: reason)
            return
        }
        guard !lock.isLost else {
            throw CasketError(.busy, "the garbage collection lock was taken over by another collector; stopping")
        }
        let slash = path.lastIndex(of: "/")!
        let aside =
            String(path[..<slash]) + "/" + Collector.asidePrefix + StoreFiles.randomHex(bytes: 8) + "."
            + path[path.index(after: slash)...]
        switch store.files.rename(path, aside) {
        case .success: break
        case .failure(.noSuchFileOrDirectory): return
        case .failure(let errno):
            throw CasketError(.io, "cannot move '\(path)' aside to remove it", path: path, errno: errno)
        }
        guard let status = store.files.status(aside), stillGarbage(status) else {
            report.raced += 1
            try putBack(aside, to: path)
            return
        }
        switch store.files.unlink(aside) {
        case .success, .failure(.noSuchFileOrDirectory): break
        case .failure(let errno): throw CasketError(.io, "cannot remove '\(aside)'", path: aside, errno: errno)
        }
        record(path, bytes: status.size, reason: reason)
    }

    private func record(_ path: String, bytes: Int64, reason: Collector.Removal.Reason) {
        switch reason {
        case .unreferenced: report.swept += 1
        case .olderTwin: report.twinsRemoved += 1
        case .unsound: report.unsoundFormsRemoved += 1
        case .empty: report.emptyBlobsRemoved += 1
        case .stray: report.strayFilesRemoved += 1
        case .sidecar: report.sidecarsRemoved += 1
        case .temp: report.tempFilesRemoved += 1
        case .pack, .retire: break  // counted by the packs phase
        }
        report.bytesReclaimed += bytes
        onRemoval(Collector.Removal(path: path, bytes: bytes, reason: reason))
    }

    /// Puts a file moved aside back under its name, unless a writer stored it again meanwhile.
    private func putBack(_ aside: String, to path: String) throws(CasketError) {
        switch store.files.renameNoReplace(aside, path) {
        case .success: return
        case .failure(.fileExists):
            _ = store.files.unlink(aside)  // the same payload is back under its name
        case .failure(let errno):
            // Fall back to replacing: both files hold the same payload (FORMAT.md 3.3).
            if case .failure = store.files.rename(aside, path) {
                throw CasketError(.io, "cannot put '\(aside)' back as '\(path)'", path: path, errno: errno)
            }
        }
    }

    /// A file that a killed collector left aside: put it back, then judge it like any blob in this pass
    /// (the walk may already have passed its name).
    private func restore(_ path: String) throws(CasketError) {
        let slash = path.lastIndex(of: "/")!
        let name = path[path.index(after: slash)...].dropFirst(Collector.asidePrefix.count)
        guard let dot = name.firstIndex(of: "."), !dryRun else { return }
        let original = String(path[..<slash]) + "/" + name[name.index(after: dot)...]
        try putBack(path, to: original)
        report.restored += 1
        if let status = store.files.status(original), status.isRegularFile,
            let file = BlobStore.BlobFile(path: original, size: status.size, mtimeNanoseconds: status.mtimeNanoseconds)
        {
            try blob(file)
        }
    }
}
