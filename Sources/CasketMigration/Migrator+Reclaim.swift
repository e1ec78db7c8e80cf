public import Casket

extension Migrator {
    /// Deletes the source's shards whose keys are all verified in the store, one shard at a time.
    ///
    /// A shard is an info file, its writer's shared data files, and the per-key files its lines name.
    /// Before anything of a shard is deleted, every key with a line in it, and every key whose winner reads
    /// one of its files, must be in the store with the entry this migration writes: the payload ranges still
    /// in the source are hashed again and must give the stored blobs, which must exist. A shard holding a
    /// key that could not be migrated is kept, and so is a shard with a file that is not a plain regular file
    /// (a symlink, a folder, a hard link). The info file is deleted first, then the data files.
    ///
    /// Only files the plan judged inside the source are deleted, each by `unlinkat` in the folder it was
    /// reached through, and only while its name still names the file that was verified (same inode): nothing
    /// outside the source is ever deleted.
    ///
    /// - Returns: `run` with the reclaimed and kept shards filled in.
    public func reclaim(_ plan: MigrationPlan, run: MigrationReport) throws(CasketError) -> MigrationReport {
        var report = run
        let folder = plan.cache.folder
        let store = try CacheStore.open(at: destination)
        // Keys and file names are byte strings: NFC and NFD forms are two keys, two files.
        let byKey = Dictionary(uniqueKeysWithValues: plan.keys.map { (IndexKey($0.key), $0) })
        let unmigratable = Set(plan.unmigratable.map { IndexKey($0.key) })
        var verified: [IndexKey: Result<Void, Unmigratable>] = [:]
        // Which winners read which files.
        var readers: [IndexKey: Set<IndexKey>] = [:]
        for item in plan.keys {
            for payload in item.payloads { readers[IndexKey(payload.path), default: []].insert(IndexKey(item.key)) }
        }
        var linesOfShard: [IndexKey: [ExcaLine]] = [:]
        for (_, copies) in plan.cache.copies {
            for copy in copies { linesOfShard[IndexKey(copy.file), default: []].append(copy) }
        }
        for shard in plan.cache.shards {
            let lines = linesOfShard[IndexKey(shard.infoFile)] ?? []
            // Per-key files (and BrainVision folders) named by this shard's lines: whole-file payloads that are
            // not some writer's shared data file.
            var perKeyPaths = Set<IndexKey>()
            var directories = Set<IndexKey>()
            for line in lines {
                guard let item = byKey[IndexKey(line.key)] else { continue }
                for payload in item.payloads where payload.wholeFile && !isSharedDataFile(payload.path, plan) {
                    perKeyPaths.insert(IndexKey(payload.path))
                    if line.type == "MneRawBrainVision", let directory = line.fields["filename"]?.stringValue {
                        directories.insert(IndexKey(directory))
                    }
                }
            }
            var keys = Set(lines.map { IndexKey($0.key) })
            for file in shard.dataFiles.map({ IndexKey($0) }) + Array(perKeyPaths) {
                keys.formUnion(readers[file] ?? [])
            }
            var failure: String? = shard.refused.first
            for key in keys.sorted() where failure == nil {
                if unmigratable.contains(key) {
                    failure = "key \(KeyDisplay.quoted(key)) could not be migrated"
                    break
                }
                guard let item = byKey[key] else { continue }
                if verified[key] == nil {
                    verified[key] = verify(item, store: store, folder: folder, identities: plan.identities)
                }
                if case .failure(let reason) = verified[key]! {
                    failure = reason.reason
                    break
                }
            }
            if let failure {
                report.keptShards.append((shard.infoFile, failure))
                continue
            }
            // Every file to delete must still be the one verified, before any of them is deleted.
            let files = [shard.infoFile] + shard.dataFiles + perKeyPaths.sorted().map(\.string)
            var identities: [IndexKey: FileStatus] = [:]
            for file in files {
                guard let identity = shard.identities[IndexKey(file)] ?? plan.identities[IndexKey(file)] else {
                    failure = "'\(file)' was not judged by the plan"
                    break
                }
                let now: FileStatus
                do {
                    now = try folder.status(file)
                } catch let error where error.code == .notFound {
                    continue  // already deleted (a per-key file several shards name, an interrupted reclaim)
                } catch {
                    failure = error.message
                    break
                }
                guard now.kind == .regular, now.isSameFile(as: identity) else {
                    failure = "'\(file)' is no longer the file that was verified"
                    break
                }
                identities[IndexKey(file)] = identity
            }
            if let failure {
                report.keptShards.append((shard.infoFile, failure))
                continue
            }
            for file in files {
                guard let identity = identities[IndexKey(file)] else { continue }
                report.bytesReclaimed += try folder.remove(file, verified: identity)
            }
            for directory in directories.sorted().map(\.string) { _ = try folder.removeFolderIfEmpty(directory) }
            report.reclaimedShards.append(shard.infoFile)
        }
        return report
    }

    func isSharedDataFile(_ path: String, _ plan: MigrationPlan) -> Bool {
        plan.cache.shards.contains { $0.dataFiles.contains { $0.sameBytes(as: path) } }
    }

    /// Whether the store holds `item` as this migration writes it: same origin, blobs present, and payload
    /// ranges still in the source hashing to the stored blobs.
    func verify(
        _ item: PlannedKey, store: CacheStore, folder: ConfinedFolder, identities: [IndexKey: FileStatus]
    ) -> Result<Void, Unmigratable> {
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
                let file = try folder.open(payload.path, expecting: identities[IndexKey(payload.path)])
                digests.append(try BlobStore.digest(of: file, offset: payload.offset, length: payload.length))
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
        // Loose or packed: a new destination packs small payloads (docs/FORMAT.md 3.7).
        for ref in entry.blobs {
            guard store.blobs.contains(ref.digest, size: ref.size) else {
                return .failure(
                    Unmigratable(
                        reason: "blob \(ref.digest) of key \(KeyDisplay.quoted(item.key)) is missing from the store"))
            }
        }
        return .success(())
    }
}
