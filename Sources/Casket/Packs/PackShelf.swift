import Synchronization

/// What a process knows of a store's `packs/` folder (docs/FORMAT.md 3.8): the listing, each sealed
/// pack's index (mapped), and the records of open packs scanned so far.
///
/// The listing is read again only when a payload is not found in what is known and the folder's mtime
/// has changed since (or changed so recently that a change in the same clock tick could hide behind
/// it); open packs are scanned on from where the last scan stopped. So a lookup that hits costs no
/// system call, and one that misses costs a `stat` of the folder and an `fstat` per open pack.
public final class PackShelf: Sendable {
    static let packSuffix = ".pack"
    static let indexSuffix = ".idx"
    static let leaseSuffix = ".lease"
    static let retiredSuffix = ".retired"
    /// A listing taken less than this after the folder's mtime may have missed a change in the same tick.
    static let racyWindow: Int64 = 2_000_000_000
    /// How often a dedup probe looks at the folder at most.
    static let probeInterval: Duration = .milliseconds(500)

    let folder: Directory
    let state = Mutex(State())

    /// One pack, sealed or open. Mutated only under the shelf's lock.
    final class Pack: @unchecked Sendable {
        let id: String
        let handle: FileHandle
        var index: PackIndex?
        /// Open packs: where the scan stopped, and the records found before it.
        var scanned: Int64 = 0
        var records: [Digest: PackRecord] = [:]
        /// Whether `<id>.retired` was listed: GC is replacing the pack, so no writer dedups against it.
        var retired = false

        init(id: String, handle: consuming FileHandle) {
            self.id = id
            self.handle = handle
        }

        func lookup(_ digest: Digest) -> PackRecord? { index?.lookup(digest) ?? records[digest] }
    }

    struct State {
        var packs: [String: Pack] = [:]
        /// The folder's mtime at the last listing, and whether that listing may have raced a change.
        var listedAt: Int64? = nil
        var racy = true
        /// When a dedup probe last looked at the folder.
        var probed: ContinuousClock.Instant? = nil
        /// The sealed packs known at some listing, by hash; `uncovered` holds every other pack of `packs`.
        var directory = PackDirectory()
        var uncovered: [Pack] = []
    }

    /// How many listings one refresh takes at most while packs vanish or the folder changes under it.
    static let relistAttempts = 5

    init(folder: Directory) {
        self.folder = folder
    }

    /// The pack and record that hold `digest`, or `nil`.
    public func find(_ digest: Digest) throws(CasketError) -> (pack: String, record: PackRecord)? {
        try state.withLock { (state) throws(CasketError) -> (pack: String, record: PackRecord)? in
            if let found = PackShelf.search(state, digest) { return found }
            try refresh(&state)
            return PackShelf.search(state, digest)
        }
    }

    /// ``find(_:)`` for a writer's dedup check, where a miss costs at most a copy of the payload. It never
    /// answers from a retired pack (docs/FORMAT.md 3.9: GC may delete it once a grace has passed), and it
    /// looks at the folder before answering whenever its last look is ``probeInterval`` old, hit or miss,
    /// so a `.retired` notice is seen within that bound. A look lists the folder only when its mtime
    /// changed or the listing may have raced a change; other writers' open packs are not scanned on.
    public func probe(_ digest: Digest) throws(CasketError) -> (pack: String, record: PackRecord)? {
        try state.withLock { (state) throws(CasketError) -> (pack: String, record: PackRecord)? in
            let now = ContinuousClock.now
            if state.probed.map({ now - $0 >= PackShelf.probeInterval }) ?? true {
                state.probed = now
                try refresh(&state, thorough: false)
            }
            return PackShelf.search(state, digest, retired: false)
        }
    }

    /// The verified payload of `digest` if a pack holds it, else `nil`.
    ///
    /// - Throws: ``CasketError/Code/corrupt`` when the record's header or bytes are wrong.
    public func read(_ digest: Digest) throws(CasketError) -> [UInt8]? {
        var lost: String? = nil
        while true {
            let found = try state.withLock { (state) throws(CasketError) -> (Pack, PackRecord)? in
                if let lost {
                    // A pack that failed under a read (ESTALE on NFS once GC removed it): list again.
                    state.packs[lost] = nil
                    state.listedAt = nil
                }
                if let hit = PackShelf.locate(state, digest) { return hit }
                try refresh(&state)
                return PackShelf.locate(state, digest)
            }
            guard let (pack, record) = found else { return nil }
            do {
                return try PackScan.payload(pack.handle.io, record)
            } catch  where error.code != .corrupt && lost == nil {
                lost = pack.id
            }
        }
    }

    /// The ids of the packs known now, sealed or not (after a listing).
    public func packIDs() throws(CasketError) -> [(id: String, sealed: Bool)] {
        try state.withLock { (state) throws(CasketError) in
            try refresh(&state)
            return state.packs.values.map { ($0.id, $0.index != nil) }.sorted { $0.id < $1.id }
        }
    }

    private static func search(_ state: State, _ digest: Digest, retired: Bool = true) -> (
        pack: String, record: PackRecord
    )? {
        locate(state, digest, retired: retired).map { ($0.0.id, $0.1) }
    }

    /// The pack and record of `digest`: the directory's candidates, then the packs it does not cover. A pack
    /// dropped since (a vanished pack, or one replaced under its id) is never answered from.
    private static func locate(_ state: State, _ digest: Digest, retired: Bool = true) -> (Pack, PackRecord)? {
        for pack in state.directory.candidates(digest) where retired || !pack.retired {
            if state.packs[pack.id] === pack, let record = pack.lookup(digest) { return (pack, record) }
        }
        for pack in state.uncovered where retired || !pack.retired {
            if state.packs[pack.id] === pack, let record = pack.lookup(digest) { return (pack, record) }
        }
        return nil
    }

    /// After a listing: the packs the directory does not cover, and a new directory once enough sealed
    /// packs are among them.
    private static func reindex(_ state: inout State) {
        var uncovered = state.packs.values.filter { !state.directory.covers($0) }
        if state.directory.isStale(uncoveredSealed: uncovered.count(where: { $0.index != nil })) {
            state.directory = PackDirectory(state.packs.values.filter { $0.index != nil })
            uncovered = uncovered.filter { $0.index == nil }
        }
        state.uncovered = uncovered
    }

    /// Lists the folder again if it changed (or may have changed unseen), then, when `thorough`, scans the
    /// open packs on. A listing is taken again while packs vanish under it (a known pack is gone, or one
    /// listed could not be opened) or the folder changed while it ran: GC publishes a repacked pack before
    /// it removes the old one, so a listing that starts after the removal holds the new pack, and
    /// `readdir` may miss both names while they change.
    func refresh(_ state: inout State, thorough: Bool = true) throws(CasketError) {
        var before = try folder.status().mtimeNanoseconds
        if state.racy || state.listedAt != before {
            for _ in 1...PackShelf.relistAttempts {
                let lost = try relist(&state)
                let after = try folder.status().mtimeNanoseconds
                state.listedAt = before
                state.racy = system_wallClockNanoseconds() - after < PackShelf.racyWindow
                if !lost && after == before { break }
                before = after
            }
            PackShelf.reindex(&state)
        }
        guard thorough else { return }
        for pack in state.packs.values where pack.index == nil {
            let length = try pack.handle.io.status().size
            guard length > pack.scanned else { continue }
            pack.scanned = try PackScan.records(pack.handle.io, from: pack.scanned, length: length, verify: false) {
                (record, _) throws(CasketError) in
                if pack.records[record.digest] == nil { pack.records[record.digest] = record }
            }
        }
    }

    /// - Returns: Whether a pack vanished: one known before is not listed, or one listed could not be opened.
    private func relist(_ state: inout State) throws(CasketError) -> Bool {
        var packs = Set<String>()
        var indexes = Set<String>()
        var retired = Set<String>()
        try folder.forEachEntry { (name, kind) throws(CasketError) in
            guard kind == nil || kind == .regular else { return }
            if let id = PackShelf.id(of: name, suffix: PackShelf.packSuffix) { packs.insert(id) }
            if let id = PackShelf.id(of: name, suffix: PackShelf.indexSuffix) { indexes.insert(id) }
            if let id = PackShelf.id(of: name, suffix: PackShelf.retiredSuffix) { retired.insert(id) }
        }
        var lost = false
        for id in state.packs.keys where !packs.contains(id) {
            state.packs[id] = nil
            lost = true
        }
        for id in packs {
            let known = state.packs[id]
            known?.retired = retired.contains(id)
            if let known, known.index != nil || !indexes.contains(id) { continue }
            let pack: Pack
            if let known {
                pack = known
            } else {
                guard let handle = try PackShelf.openRegular(folder, id + PackShelf.packSuffix) else {
                    lost = true
                    continue
                }
                pack = Pack(id: id, handle: handle)
                pack.retired = retired.contains(id)
            }
            if indexes.contains(id) {
                if let io = try PackShelf.openRegular(folder, id + PackShelf.indexSuffix) {
                    pack.index = try PackIndex(io.io, length: io.io.status().size)
                    pack.records = [:]
                } else {
                    lost = true
                }
            }
            state.packs[id] = pack
        }
        return lost
    }

    /// Opens a regular file of the folder; `nil` when it vanished or is not a regular file (debris).
    static func openRegular(_ folder: Directory, _ name: String) throws(CasketError) -> FileHandle? {
        do throws(CasketError) {
            return try folder.openForReading(name)
        } catch let error where error.code == .notFound || error.code == .notARegularFile || error.code == .unsafePath {
            return nil
        }
    }

    /// The pack id of a `packs/` entry name with `suffix`: one or more of `[A-Za-z0-9_-]`, no leading dot.
    static func id(of name: String, suffix: String) -> String? {
        guard name.hasSuffix(suffix) else { return nil }
        let id = name.utf8.dropLast(suffix.utf8.count)
        guard !id.isEmpty,
            id.allSatisfy({ byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x5F
            })
        else { return nil }
        return String(decoding: id, as: UTF8.self)
    }
}
