public import Casket
import Foundation

/// Migrates an exca `CacheDict` folder into a Casket store (docs/MIGRATION.md).
///
/// ```swift
/// let migrator = Migrator(source: "/caches/emg", destination: "/store")
/// let plan = try migrator.plan()          // dry run: reads only index files and stats
/// let report = try migrator.run(plan)     // writes blobs and index entries
/// ```
///
/// The source is only read, except by ``reclaim(_:run:)``, which deletes verified shards. Nothing outside it
/// is ever read or deleted: every file is reached through ``ConfinedFolder``.
public final class Migrator {
    /// What can be tuned.
    public struct Options: Sendable {
        /// Hash every duplicate copy and report keys whose copies differ.
        public var verifyDuplicates = false
        /// Called with (bytes done, bytes total) as payloads are copied.
        public var progress: (@Sendable (Int64, Int64) -> Void)? = nil

        /// Default options.
        public init(verifyDuplicates: Bool = false, progress: (@Sendable (Int64, Int64) -> Void)? = nil) {
            self.verifyDuplicates = verifyDuplicates
            self.progress = progress
        }
    }

    /// The exca cache folder.
    public let source: String
    /// The store folder (may equal `source`).
    public let destination: String
    /// The options.
    public let options: Options
    /// Set by ``plan()``: it judged the source's files, and remembers what it saw.
    var converter: ExcaConverter? = nil

    /// Prepares a migration; nothing is read yet.
    public init(source: String, destination: String, options: Options = Options()) {
        self.source = source
        self.destination = destination
        self.options = options
    }

    /// Reads the source's index files and stats its payload files, picks winners, and compares with the
    /// store (if it exists) to find keys already migrated. Writes nothing.
    public func plan() throws(CasketError) -> MigrationPlan {
        let cache = try ExcaCache.read(at: source)
        let converter = ExcaConverter(folder: cache.folder)
        self.converter = converter
        let store: CacheStore? = try? CacheStore.open(at: destination)
        var planned: [PlannedKey] = []
        var unmigratable: [UnmigratableEntry] = []
        var entries = 0
        var duplicates = 0
        var seen = Set<PayloadSource>()
        var unique: Int64 = 0
        var toWrite: Int64 = 0
        var already = 0
        for key in cache.keys {
            let copies = cache.copies[IndexKey(key)]!
            entries += copies.count
            duplicates += copies.count - 1
            var firstFailure: (ExcaLine, Unmigratable)? = nil
            var chosen: (Int, Converted)? = nil
            for (index, copy) in copies.enumerated() {
                switch converter.convert(copy) {
                case .success(let converted):
                    chosen = (index, converted)
                case .failure(let failure):
                    if firstFailure == nil { firstFailure = (copy, failure) }
                }
                if chosen != nil { break }
            }
            guard let (index, converted) = chosen else {
                let (line, failure) = firstFailure!
                let suffix = copies.count > 1 ? " (and in all \(copies.count) copies)" : ""
                unmigratable.append(
                    UnmigratableEntry(
                        key: key, file: line.file, line: line.line, reason: failure.reason + suffix, code: failure.code)
                )
                continue
            }
            // A key deleted in the store (served from the exca files, then deleted: docs/EXCA.md) stays
            // deleted: migrating it again would bring it back. Unmigratable, so reclaim keeps its shard.
            if let store, try store.isDeleted(key) {
                let line = copies[index]
                unmigratable.append(
                    UnmigratableEntry(
                        key: key, file: line.file, line: line.line,
                        reason: "deleted in the store (its winner there is a tombstone); migrate never brings a "
                            + "deleted key back", code: .alreadyExists))
                continue
            }
            var losers = copies
            let winner = losers.remove(at: index)
            var item = PlannedKey(
                key: key, winner: winner, losers: losers, payloads: converted.payloads, alreadyMigrated: false,
                converted: converted)
            if let store, let entry = try? store.entry(key), entry.meta == item.meta,
                entry.blobs.allSatisfy({ store.blobs.contains($0.digest) })
            {
                item.alreadyMigrated = true
                already += 1
            }
            for payload in item.payloads where seen.insert(payload).inserted {
                unique += payload.length
                if !item.alreadyMigrated { toWrite += payload.length }
            }
            planned.append(item)
        }
        return MigrationPlan(
            cache: cache, keys: planned, unmigratable: unmigratable, entries: entries, duplicateCopies: duplicates,
            bytesOnDisk: Migrator.bytesOnDisk(cache.folder, top: true), uniqueBytes: unique, bytesToWrite: toWrite,
            alreadyMigrated: already, identities: converter.identities)
    }

    /// Bytes of every regular file under `folder` (symlinks not followed), the store's own folders at the
    /// top excluded.
    static func bytesOnDisk(_ folder: ConfinedFolder, top: Bool = false) -> Int64 {
        guard let entries = try? folder.entries() else { return 0 }
        var total: Int64 = 0
        for entry in entries where !(top && ExcaCache.storeNames.contains(entry.name)) {
            switch entry.status.kind {
            case .regular: total += entry.status.size
            case .directory:
                if let child = try? folder.folder(entry.name) { total += bytesOnDisk(child) }
            default: continue
            }
        }
        return total
    }

    /// Opens the destination store, creating it when missing.
    public func openOrCreateStore() throws(CasketError) -> CacheStore {
        do {
            return try CacheStore.open(at: destination)
        } catch let error where error.code == .notAStore || error.code == .notFound {
            return CacheStore(blobs: try BlobStore.create(at: destination))
        }
    }

    /// Migrates every planned key not already migrated: each distinct payload range is written once as a
    /// blob (streamed), then one index entry per key with `meta.migrated_from`.
    public func run(_ plan: MigrationPlan) throws(CasketError) -> MigrationReport {
        let started = Date()
        let store = try openOrCreateStore()
        // With a durable store, blobs and lines are written unflushed and flushed once per batch: all the
        // batch's blobs first (syncfs), then its lines. A line never reaches the disk before its blobs,
        // and a crash loses at most the unflushed batch, which a rerun redoes.
        let durable = store.blobs.config.durability != .none
        let writer = durable ? CacheStore(blobs: store.blobs.withDurability(.none)) : store
        let session = try writer.writeSession()
        // The plan has just read the store's index: one more read at the first write is enough.
        defer { try? session.close() }
        var stored: [PayloadSource: Digest] = [:]
        var report = MigrationReport(plan: plan)
        var done: Int64 = 0
        let total = plan.bytesToWrite
        let folder = plan.cache.folder
        var batch: [(key: String, node: JSONValue, meta: JSONValue?, sources: [Digest: PayloadSource])] = []
        var batchBytes: Int64 = 0

        func commit() throws(CasketError) {
            guard !batch.isEmpty else { return }
            if durable { try store.blobs.syncFileSystem() }
            for entry in batch {
                try session.set(entry.key, value: entry.node, meta: entry.meta) { (ref) throws(CasketError) in
                    guard let payload = entry.sources[ref.digest] else {
                        throw CasketError(
                            .notFound,
                            "blob \(ref.digest) of key \(KeyDisplay.quoted(entry.key)) vanished and has no known source"
                        )
                    }
                    let file = try folder.open(payload.path, expecting: plan.identities[IndexKey(payload.path)])
                    _ = try store.blobs.put(file, offset: payload.offset, length: payload.length)
                }
            }
            if durable { try session.flush() }
            report.keysMigrated += batch.count
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
        }

        options.progress?(0, total)
        for item in plan.keys {
            if item.alreadyMigrated {
                report.skippedAlreadyMigrated += 1
                continue
            }
            var digests: [Digest] = []
            for payload in item.payloads {
                if let digest = stored[payload] {
                    digests.append(digest)
                    continue
                }
                // Most payloads are new to the store: read each range once, hashing while copying.
                let file = try folder.open(payload.path, expecting: plan.identities[IndexKey(payload.path)])
                let result: PutResult
                if writer.blobs.packs(size: payload.length) {
                    // A small payload goes to the session's pack (docs/FORMAT.md 3.7), flushed with the batch.
                    result = try session.put(try file.read(offset: payload.offset, length: Int(payload.length)))
                } else {
                    result = try writer.blobs.put(
                        file, offset: payload.offset, length: payload.length, hashFirst: false)
                }
                stored[payload] = result.digest
                digests.append(result.digest)
                if result.deduplicated {
                    report.blobsDeduplicated += 1
                } else {
                    report.blobsWritten += 1
                    report.bytesWritten += result.storedBytes
                }
                report.bytesRead += payload.length
                done += payload.length
                batchBytes += payload.length
                options.progress?(done, total)
            }
            let node = item.converted.node(digests: digests)
            let sources = Dictionary(zip(digests, item.payloads), uniquingKeysWith: { first, _ in first })
            batch.append((item.key, node, item.meta, sources))
            // One syncfs per batch: each is a journal commit, so batches are large (bounded by what a
            // rerun after a crash would redo).
            if batch.count >= 4096 || batchBytes >= 512 << 20 { try commit() }
        }
        try commit()
        try session.close()
        if options.verifyDuplicates {
            report.differingDuplicates = try verifyDuplicates(plan, store: store)
        }
        report.seconds = Date().timeIntervalSince(started)
        report.storeBytesAfter = try store.blobs.statistics().blobBytes
        return report
    }

    /// Hashes every copy of every duplicated key and returns the keys whose copies are not identical values.
    func verifyDuplicates(_ plan: MigrationPlan, store: CacheStore) throws(CasketError) -> [String] {
        var differing: [String] = []
        let converter = converter ?? ExcaConverter(folder: plan.cache.folder)
        for item in plan.keys where !item.losers.isEmpty {
            let expected = try store.entry(item.key)?.value
            for loser in item.losers {
                guard case .success(let converted) = converter.convert(loser) else {
                    differing.append(item.key)
                    break
                }
                var digests: [Digest] = []
                for payload in converted.payloads {
                    let file = try plan.cache.folder.open(payload.path, expecting: converter.identity(of: payload.path))
                    digests.append(try BlobStore.digest(of: file, offset: payload.offset, length: payload.length))
                }
                if Migrator.comparable(converted.node(digests: digests)) != expected.map(Migrator.comparable) {
                    differing.append(item.key)
                    break
                }
            }
        }
        return differing
    }

    /// A node without the fields that name source files (they differ between writers' copies).
    static func comparable(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let elements): return .array(elements.map(comparable))
        case .object(let object):
            return .object(
                JSONObject(
                    object.fields.filter { $0.key != "filename" && $0.key != "name" }.map {
                        ($0.key, comparable($0.value))
                    }))
        default: return value
        }
    }
}
