@_spi(Maintenance) import Casket

/// The packs phase of a collection (docs/GC.md step 5, docs/FORMAT.md 3.9): seal dead writers' packs,
/// copy the records worth keeping out of victim packs into new packs, publish those, and only then
/// remove or retire the victims.
///
/// The rule that keeps I4 for packed payloads: a record is removed only when another copy is kept (a
/// pack that is neither retired nor removed in this run, or a sound blob file this run freshened), or
/// after two marks one grace apart both found it unreferenced: the first retires its pack (a `.retired`
/// notice, after which no writer dedups against it), the second, whose mark starts more than a grace
/// after the notice, copies out what its own mark finds live and deletes the pack.
final class Repack {
    /// A victim's live bytes below this fraction of its record bytes make it worth repacking.
    static let liveFraction = 0.5
    /// A sealed pack smaller than this fraction of `pack_size` is small: two or more are combined.
    static let smallFraction: Int64 = 4
    /// Added to the grace before a retired pack may go: a notice is published a moment after the time it
    /// holds, and a writer may dedup against the pack until it looks at `packs/` again (every 0.5 s).
    static let retireMargin: Int64 = 1_000_000_000

    let store: BlobStore
    let shelf: PackShelf
    let live: DigestSet
    let markStart: Int64
    let options: Collector.Options
    let lock: GCLock
    var report: GCReport
    let onRemoval: (Collector.Removal) -> Void

    /// One victim: what it is, and what happens to it once the new packs are published.
    private struct Plan {
        var pack: PackShelf.SealedPack
        /// Every record it holds is held elsewhere now (or it is a retired pack past its grace).
        var removable: Bool
        /// A live record it alone holds does not verify: it is left as it is, for fsck to report.
        var damaged = false
    }

    init(
        store: BlobStore, shelf: PackShelf, live: DigestSet, markStart: Int64, options: Collector.Options,
        lock: GCLock, report: GCReport, onRemoval: @escaping (Collector.Removal) -> Void
    ) {
        self.store = store
        self.shelf = shelf
        self.live = live
        self.markStart = markStart
        self.options = options
        self.lock = lock
        self.report = report
        self.onRemoval = onRemoval
    }

    func run() throws(CasketError) {
        if !options.dryRun {
            for (id, sealed) in try shelf.packIDs() where !sealed {
                if case .sealed = try shelf.seal(id, durable: store.config.durability != .none) {
                    report.packsSealed += 1
                }
            }
        }
        var (holders, plans) = try choose(shelf.sealedPacks())
        var written = Set<String>()
        var writer: PackWriter? = nil
        for index in plans.indices {
            guard let held = try copyOut(plans[index].pack, holders: &holders, writer: &writer, written: &written)
            else {
                plans[index].damaged = true
                continue
            }
            plans[index].removable = plans[index].removable || held
        }
        plans.removeAll(where: \.damaged)
        // The new packs are flushed and indexed (and packs/ flushed) before any victim is touched: a crash or
        // a full disk before this line leaves every victim as it was.
        try writer?.seal()
        report.packsWritten = written.count
        let now = options.dryRun ? markStart : try store.fileSystemNow()
        for plan in plans {
            guard !lock.isLost || options.dryRun else {
                throw CasketError(.busy, "the garbage collection lock was taken over by another collector; stopping")
            }
            let path = store.packsDirectory + "/" + plan.pack.id + ".pack"
            report.packsRepacked += 1
            if plan.removable || options.offline {
                let freed = options.dryRun ? plan.pack.length : try shelf.remove(plan.pack.id)
                report.packsRemoved += 1
                report.packBytesFreed += freed
                report.bytesReclaimed += freed
                onRemoval(Collector.Removal(path: path, bytes: freed, reason: .pack))
            } else if plan.pack.retiredAt == nil {
                if !options.dryRun {
                    try shelf.retire(plan.pack.id, at: now, host: StoreFiles.hostName, pid: StoreFiles.pid)
                }
                report.packsRetired += 1
                onRemoval(Collector.Removal(path: path, bytes: plan.pack.length, reason: .retire))
            }
        }
        try strays()
    }

    /// Picks the victims among the sealed packs, and the hashes the kept ones hold.
    ///
    /// Packs are taken in a fixed order (most live bytes first, then id), so every run on the same store
    /// picks the same survivor of a duplicated payload: a pack is kept unless its live bytes are under
    /// ``liveFraction`` of its records, it holds a hash a pack kept before it holds, or it is one of two or
    /// more small packs (combined toward `pack_size`). A retired pack is a victim once its grace is over;
    /// until then it is left alone and holds nothing for the others (it is going).
    private func choose(_ packs: [PackShelf.SealedPack]) throws(CasketError) -> (Set<Digest>, [Plan]) {
        var plans: [Plan] = []
        var candidates: [(pack: PackShelf.SealedPack, live: Int64, total: Int64)] = []
        for pack in packs {
            if let retired = pack.retiredAt {
                if options.offline || markStart - retired > options.grace + Repack.retireMargin {
                    plans.append(Plan(pack: pack, removable: true))
                } else {
                    report.packsRetiredWaiting += 1
                }
                continue
            }
            var (live, total): (Int64, Int64) = (0, 0)
            for index in 0..<pack.index.count {
                let record = pack.index.entry(index)
                let bytes = Int64(PackRecord.headerSize) + record.stored
                total += bytes
                if self.live.contains(record.digest) { live += bytes }
            }
            candidates.append((pack, live, total))
        }
        candidates.sort { ($0.live, $1.pack.id) > ($1.live, $0.pack.id) }
        let smallLimit = store.config.packSize / Repack.smallFraction
        let small = Set(candidates.filter { $0.pack.length < smallLimit }.map(\.pack.id))
        var holders = Set<Digest>()
        var victims: [Plan] = []
        for (pack, live, total) in candidates {
            let entries = (0..<pack.index.count).lazy.map { pack.index.entry($0).digest }
            if (small.count >= 2 && small.contains(pack.id)) || Double(live) < Repack.liveFraction * Double(total)
                || entries.contains(where: holders.contains)
            {
                victims.append(Plan(pack: pack, removable: false))
            } else {
                holders.formUnion(entries)
            }
        }
        return (holders, victims + plans)
    }

    /// Copies into `writer`'s packs every live record of `pack` that nothing kept holds, and tells whether
    /// every record of it (live or dead) is then held elsewhere, so that it can go at once; `nil` when a
    /// live record to copy is damaged (the pack is then left alone).
    private func copyOut(
        _ pack: PackShelf.SealedPack, holders: inout Set<Digest>, writer: inout PackWriter?, written: inout Set<String>
    ) throws(CasketError) -> Bool? {
        var records = (0..<pack.index.count).map { pack.index.entry($0) }
        records.sort { $0.offset < $1.offset }  // one forward pass over the pack file
        var allHeld = true
        for record in records where !holders.contains(record.digest) {
            if store.looseHolds(record.digest, size: record.size, freshen: !options.dryRun) {
                holders.insert(record.digest)
                continue
            }
            guard live.contains(record.digest) else {
                allHeld = false
                continue
            }
            if !options.dryRun {
                let payload: [UInt8]
                do {
                    payload = try shelf.payload(of: pack.id, record)
                } catch  where error.code == .corrupt {
                    report.damagedPacks.append(error.message)
                    return nil
                }
                if writer == nil {
                    writer = try store.packWriter(
                        writerID: "gc-\(StoreFiles.hostName)-\(StoreFiles.pid)-\(StoreFiles.randomHex(bytes: 4))",
                        durable: true)
                }
                let appended = payload.withUnsafeBytes { (bytes) in
                    Result { () throws(CasketError) in try writer!.append(bytes, digest: record.digest) }
                }
                written.insert(try appended.get().pack)
            }
            report.recordsCopied += 1
            holders.insert(record.digest)
        }
        return allHeld
    }

    /// Indexes and notices whose pack is gone (a collector killed while it removed a pack).
    private func strays() throws(CasketError) {
        for stray in try shelf.strays() {
            if options.dryRun || shelf.removeStray(stray.name) {
                report.bytesReclaimed += stray.bytes
                onRemoval(Collector.Removal(path: stray.path, bytes: stray.bytes, reason: .stray))
                report.strayFilesRemoved += 1
            }
        }
    }
}
