public import Casket
import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Migrator {
    /// Deletes the source's shards whose keys are all verified in the store, one shard at a time.
    ///
    /// A shard is an info file, its writer's shared data files, and the per-key files its lines name.
    /// Before anything of a shard is deleted, every key with a line in it, and every key whose winner reads
    /// one of its files, must be in the store with the entry this migration writes: the payload ranges still
    /// in the source are hashed again and must give the stored blobs, which must exist. A shard holding a
    /// key that could not be migrated is kept. The info file is deleted first, then the data files.
    ///
    /// - Returns: `run` with the reclaimed and kept shards filled in.
    public func reclaim(_ plan: MigrationPlan, run: MigrationReport) throws(CasketError) -> MigrationReport {
        var report = run
        let store = try CacheStore.open(at: destination)
        let byKey = Dictionary(uniqueKeysWithValues: plan.keys.map { ($0.key, $0) })
        let unmigratable = Set(plan.unmigratable.map(\.key))
        var verified: [String: Result<Void, Unmigratable>] = [:]
        // Which winners read which files.
        var readers: [String: Set<String>] = [:]
        for item in plan.keys {
            for payload in item.payloads { readers[payload.path, default: []].insert(item.key) }
        }
        var linesOfShard: [String: [ExcaLine]] = [:]
        for (_, copies) in plan.cache.copies {
            for copy in copies { linesOfShard[copy.file, default: []].append(copy) }
        }
        for shard in plan.cache.shards {
            let lines = linesOfShard[shard.infoFile] ?? []
            // Per-key files (and BrainVision folders) named by this shard's lines: whole-file payloads that are
            // not some writer's shared data file.
            var perKeyPaths = Set<String>()
            var directories = Set<String>()
            for line in lines {
                guard let item = byKey[line.key] else { continue }
                for payload in item.payloads where payload.wholeFile && !isSharedDataFile(payload.path, plan) {
                    perKeyPaths.insert(payload.path)
                    if line.type == "MneRawBrainVision", let directory = line.fields["filename"]?.stringValue {
                        directories.insert(directory)
                    }
                }
            }
            var keys = Set(lines.map(\.key))
            for file in shard.dataFiles + Array(perKeyPaths) { keys.formUnion(readers[file] ?? []) }
            var failure: String? = nil
            for key in keys.sorted() {
                if unmigratable.contains(key) {
                    failure = "key \(KeyDisplay.quoted(key)) could not be migrated"
                    break
                }
                guard let item = byKey[key] else { continue }
                if verified[key] == nil { verified[key] = verify(item, store: store) }
                if case .failure(let reason) = verified[key]! {
                    failure = reason.reason
                    break
                }
            }
            if let failure {
                report.keptShards.append((shard.infoFile, failure))
                continue
            }
            for file in [shard.infoFile] + shard.dataFiles + perKeyPaths.sorted() {
                let path = source + "/" + file
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                if unlink(path) != 0 {
                    throw CasketError(
                        .io, "cannot delete '\(path)' while reclaiming shard \(shard.infoFile)", path: path)
                }
                report.bytesReclaimed += Int64(st.st_size)
            }
            for directory in directories.sorted() {
                let path = source + "/" + directory
                if let rest = try? FileManager.default.contentsOfDirectory(atPath: path), rest.isEmpty { rmdir(path) }
            }
            report.reclaimedShards.append(shard.infoFile)
        }
        return report
    }

    func isSharedDataFile(_ path: String, _ plan: MigrationPlan) -> Bool {
        plan.cache.shards.contains { $0.dataFiles.contains(path) }
    }

    /// Whether the store holds `item` as this migration writes it: same origin, blobs present, and payload
    /// ranges still in the source hashing to the stored blobs.
    func verify(_ item: PlannedKey, store: CacheStore) -> Result<Void, Unmigratable> {
        guard let entry = try? store.entry(item.key), let value = entry.value else {
            return .failure(Unmigratable(reason: "key \(KeyDisplay.quoted(item.key)) is not in the store"))
        }
        guard entry.meta == item.meta else {
            return .failure(
                Unmigratable(
                    reason:
                        "key \(KeyDisplay.quoted(item.key)) in the store was not migrated from \(item.winner.file):\(item.winner.line)"
                ))
        }
        var digests: [Digest] = []
        for payload in item.payloads {
            do {
                digests.append(
                    try BlobStore.digest(
                        ofFileAt: source + "/" + payload.path, offset: payload.offset, length: payload.length))
            } catch {
                return .failure(
                    Unmigratable(
                        reason: "cannot hash '\(payload.path)' for key \(KeyDisplay.quoted(item.key)): \(error)"))
            }
        }
        guard item.converted.node(digests: digests) == value else {
            return .failure(
                Unmigratable(
                    reason:
                        "key \(KeyDisplay.quoted(item.key)) in the store does not match the hash of its source bytes"))
        }
        for ref in entry.blobs {
            guard let location = store.blobs.locate(ref.digest), location.size == nil || location.size == ref.size
            else {
                return .failure(
                    Unmigratable(
                        reason: "blob \(ref.digest) of key \(KeyDisplay.quoted(item.key)) is missing from the store"))
            }
        }
        return .success(())
    }
}
