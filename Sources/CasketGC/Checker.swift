@_spi(Maintenance) public import Casket
import Foundation

/// `casket fsck`: re-hashes blobs, quarantines corrupt ones, and cross-checks the index against `blobs/`.
///
/// Needs no lock and changes nothing but corrupt blob files, which it moves to `quarantine/` (a corrupt
/// blob removed from `blobs/` lets the next writer of that payload store it again).
public struct Checker {
    /// One corrupt blob file.
    public struct Corruption: Sendable, Equatable {
        /// Where it was.
        public var path: String
        /// Where it is now (`quarantine/...`), or `nil` if it could not be moved.
        public var quarantinedAs: String?
        /// Why it is corrupt.
        public var message: String
    }

    /// A sidecar that does not hold its blob's chunk digests (docs/FORMAT.md 3.6).
    public struct BadSidecar: Sendable, Equatable {
        /// Where it was.
        public var path: String
        /// Where it is now (`quarantine/...`), or `nil` if it could not be moved.
        public var quarantinedAs: String?
        /// Why it is wrong.
        public var reason: String
        /// Whether a correct sidecar was written in its place (`--add-chunks`).
        public var replaced: Bool
    }

    /// A live key whose blob is absent.
    public struct Missing: Sendable, Equatable {
        /// The key.
        public var key: String
        /// The blob it references.
        public var digest: Digest
    }

    /// What fsck found.
    public struct Report: Sendable {
        /// Blob files re-hashed.
        public var blobsChecked = 0
        /// Blob files in the store (all of them, also when only a sample was checked).
        public var blobFiles = 0
        /// Bytes read from the files checked.
        public var bytesChecked: Int64 = 0
        /// Corrupt blob files.
        public var corrupt: [Corruption] = []
        /// Live keys whose blobs are missing.
        public var missing: [Missing] = []
        /// Sidecars that do not match their blobs (quarantined): damage, though the blobs are sound.
        public var badSidecars: [BadSidecar] = []
        /// Sidecars written for blobs that had none (``Checker/addChunks``).
        public var sidecarsAdded = 0
        /// Malformed index lines.
        public var malformed: [IndexIssue] = []
        /// Files under `blobs/` that are not blobs.
        public var debris: [String] = []
        /// Entries of `index/` that are not index files (never read; not damage).
        public var indexDebris: [IndexDebris] = []
        /// Links (or other non-folders) in the place of the store's folders or fan-out folders, and links
        /// under blob names: never followed, and damage, since a person or a program put them there.
        public var unsafeEntries: [String] = []
        /// Pack records re-hashed (docs/FORMAT.md 3.7).
        public var packRecordsChecked = 0
        /// Packs checked.
        public var packs = 0
        /// Damaged pack records and pack indexes, each naming the pack file and what is wrong.
        public var damagedPacks: [String] = []
        /// Packs with a `.retired` notice (docs/FORMAT.md 3.9), verified like the others.
        public var retiredPacks = 0
        /// Retired packs whose notice is older than ``Checker/retiredGrace``: a collection should have
        /// removed them (is `casket gc` scheduled?). Not damage.
        public var retiredPastGrace: [(pack: String, retiredAt: Int64, ageSeconds: Double)] = []
        /// Live keys checked.
        public var keys = 0
        /// Seconds spent re-hashing.
        public var hashSeconds = 0.0
        /// Seconds in all.
        public var durationSeconds = 0.0

        /// True when nothing is wrong (debris alone is not wrong: GC removes it).
        public var clean: Bool {
            corrupt.isEmpty && missing.isEmpty && malformed.isEmpty && unsafeEntries.isEmpty && badSidecars.isEmpty
                && damagedPacks.isEmpty
        }
    }

    let store: BlobStore
    /// Re-hash only this many blob files, chosen at random; `nil` checks all.
    public var sample: Int?
    /// Move corrupt blobs to `quarantine/` (default true).
    public var quarantine = true
    /// Write the sidecar of every blob of at least `chunks_min` bytes that has none, and replace wrong ones
    /// (`fsck --add-chunks`): blobs stored before chunk digests existed get them.
    public var addChunks = false
    /// The grace of the collections: a retired pack older than it is reported (default 24 h, as `casket gc`).
    public var retiredGrace: Int64 = 86_400_000_000_000

    /// Creates a checker.
    public init(store: BlobStore, sample: Int? = nil) {
        self.store = store
        self.sample = sample
    }

    /// Runs the check.
    ///
    /// - Parameter onCorrupt: Called as each corrupt blob is found.
    public func run(onCorrupt: (Corruption) -> Void = { _ in }) throws(CasketError) -> Report {
        let started = Date()
        var report = Report()
        report.unsafeEntries = store.unsafeFolders()
        if !report.unsafeEntries.isEmpty { return report }  // nothing below a linked folder is looked at
        var chosen: [BlobStore.BlobFile] = []
        var seen = 0
        var rng = SystemRandomNumberGenerator()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        let hashStart = Date()
        try store.forEachBlob(
            { (file) throws(CasketError) in
                seen += 1
                guard let sample else {
                    try check(file, buffer: buffer, report: &report, onCorrupt: onCorrupt)
                    return
                }
                // Reservoir sampling: every file has the same chance, in one pass, in O(sample) memory.
                if chosen.count < sample {
                    chosen.append(file)
                } else {
                    let slot = Int.random(in: 0..<seen, using: &rng)
                    if slot < sample { chosen[slot] = file }
                }
            },
            debris: { (path) throws(CasketError) in
                if let status = store.files.status(path), status.kind == .symbolicLink {
                    report.unsafeEntries.append("'\(path)' is a symbolic link (never followed)")
                } else {
                    report.debris.append(path)
                }
            },
            sidecar: { (digest, path) throws(CasketError) in
                // Judged with its blob; one without a blob file is debris that GC removes.
                if ![false, true].contains(where: { store.files.status(store.path(of: digest, compressed: $0)) != nil })
                {
                    report.debris.append(path)
                }
            })
        for file in chosen { try check(file, buffer: buffer, report: &report, onCorrupt: onCorrupt) }
        var packed: [Digest] = []
        if let shelf = try store.packShelf() {
            var now: Int64? = nil
            for (id, _) in try shelf.packIDs() {
                let audit: PackShelf.Audit
                do {
                    audit = try shelf.audit(id)
                } catch  where error.code == .notFound {
                    continue  // removed meanwhile (a garbage collection repacked it)
                }
                if let retired = try shelf.retirement(id) {
                    report.retiredPacks += 1
                    if now == nil { now = try store.fileSystemNow() }
                    let time = now ?? 0
                    if time - retired > retiredGrace + 1_000_000_000 {
                        report.retiredPastGrace.append((id, retired, Double(time - retired) / 1e9))
                    }
                }
                report.packs += 1
                report.packRecordsChecked += audit.records
                report.bytesChecked += audit.bytes
                report.damagedPacks += audit.damaged.map { "pack '\(audit.path)': record at \($0)" }
                if let problem = audit.indexProblem { report.damagedPacks.append(problem) }
                packed += audit.sound
            }
        }
        // Sound pack records just verified: a live key's blob among them needs no lookup in every pack
        // (one per pack and key made fsck grow with keys times packs). Any other is looked up as before.
        let verified = DigestSet(consume packed)
        report.blobFiles = seen
        report.hashSeconds = Date().timeIntervalSince(hashStart)

        // The index: every live key's blobs must exist; malformed lines are reported.
        // The lean reader of garbage collection's mark: keys and hashes only, never value trees.
        let mark = try CacheStore.mark(store) { (key, digests) throws(CasketError) in
            for digest in digests where !verified.contains(digest) && !store.contains(digest) {
                report.missing.append(Missing(key: key, digest: digest))
            }
        }
        report.missing.sort { (IndexKey($0.key), $0.digest) < (IndexKey($1.key), $1.digest) }
        report.keys = mark.keys
        report.malformed = mark.issues
        report.indexDebris = mark.debris
        report.durationSeconds = Date().timeIntervalSince(started)
        return report
    }

    private func check(
        _ file: BlobStore.BlobFile, buffer: UnsafeMutableRawBufferPointer, report: inout Report,
        onCorrupt: (Corruption) -> Void
    ) throws(CasketError) {
        do {
            report.bytesChecked += file.storedBytes
            report.blobsChecked += 1
            let digester = ChunkDigester()
            let size = try store.verifyFile(at: file.path, digest: file.digest, buffer: buffer, chunks: digester)
            try checkSidecar(file, size: size, digests: digester.finish(), report: &report)
        } catch  where error.code == .notFound {
            return  // removed meanwhile (a garbage collection)
        } catch  where error.code == .corrupt || error.code == .compression {
            var corruption = Corruption(path: file.path, quarantinedAs: nil, message: error.description)
            if quarantine {
                switch try moveToQuarantine(file, buffer: buffer) {
                case .moved(let target): corruption.quarantinedAs = target
                case .replacedMeanwhile: return
                case .notMoved: break
                }
            }
            report.corrupt.append(corruption)
            onCorrupt(corruption)
        }
    }

    /// Checks a sound blob's sidecar against the digests computed while it was re-hashed: a wrong or
    /// unusable one is quarantined (readers would verify the blob whole, or report its chunks corrupt); with
    /// ``addChunks`` a missing or wrong one is (re)written.
    private func checkSidecar(
        _ file: BlobStore.BlobFile, size: Int64, digests: [UInt64], report: inout Report
    ) throws(CasketError) {
        let state = store.sidecar(file.digest, size: size)
        let computed = ChunkDigests(digest: file.digest, size: size, digests: digests)
        let wanted = ChunkDigests.wanted(size: size, minimum: store.config.chunksMin)
        let reason: String
        switch state {
        case .usable(let found) where found == computed || found.chunkSize != computed.chunkSize: return
        case .usable: reason = "its chunk digests do not match the blob's bytes"
        case .unusable(_, let why): reason = why
        case .absent:
            guard addChunks, wanted else { return }
            try store.publishSidecar(computed)
            report.sidecarsAdded += 1
            return
        }
        let path = store.sidecarPath(file.digest)
        var bad = BadSidecar(path: path, quarantinedAs: nil, reason: reason, replaced: false)
        if quarantine {
            try store.files.makeDirectory(store.quarantineDirectory)
            let target =
                store.quarantineDirectory + "/" + file.digest.hex + ChunkDigests.suffix + "."
                + StoreFiles.randomHex(bytes: 4)
            if case .success = store.files.rename(path, target) { bad.quarantinedAs = target }
        }
        if addChunks, wanted {
            try store.publishSidecar(computed)
            bad.replaced = true
        }
        report.badSidecars.append(bad)
    }

    enum QuarantineOutcome {
        case moved(String)
        case replacedMeanwhile
        case notMoved
    }

    /// Moves a corrupt file to `quarantine/`, then checks it again: a writer may have replaced the unsound
    /// file with a sound one just before the move, and that one goes back.
    private func moveToQuarantine(_ file: BlobStore.BlobFile, buffer: UnsafeMutableRawBufferPointer)
        throws(CasketError) -> QuarantineOutcome
    {
        try store.files.makeDirectory(store.quarantineDirectory)
        let name = (file.path.split(separator: "/").last.map(String.init) ?? file.digest.hex)
        let target = store.quarantineDirectory + "/" + name + "." + StoreFiles.randomHex(bytes: 4)
        guard case .success = store.files.rename(file.path, target) else { return .notMoved }
        if (try? store.verifyFile(at: target, digest: file.digest, buffer: buffer)) != nil {
            if case .failure = store.files.renameNoReplace(target, file.path) { _ = store.files.unlink(target) }
            return .replacedMeanwhile
        }
        return .moved(target)
    }
}
