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
    /// A listing taken less than this after the folder's mtime may have missed a change in the same tick.
    static let racyWindow: Int64 = 2_000_000_000
    /// How often a dedup probe looks at the folder at most.
    static let probeInterval: Duration = .milliseconds(500)

    let folder: Directory
    private let state = Mutex(State())

    /// One pack, sealed or open. Mutated only under the shelf's lock.
    final class Pack: @unchecked Sendable {
        let id: String
        let handle: FileHandle
        var index: PackIndex?
        /// Open packs: where the scan stopped, and the records found before it.
        var scanned: Int64 = 0
        var records: [Digest: PackRecord] = [:]

        init(id: String, handle: consuming FileHandle) {
            self.id = id
            self.handle = handle
        }

        func lookup(_ digest: Digest) -> PackRecord? { index?.lookup(digest) ?? records[digest] }
    }

    private struct State {
        var packs: [String: Pack] = [:]
        /// The folder's mtime at the last listing, and whether that listing may have raced a change.
        var listedAt: Int64? = nil
        var racy = true
        /// When a dedup probe last looked at the folder.
        var probed: ContinuousClock.Instant? = nil
    }

    init(folder: Directory) {
        self.folder = folder
    }

    /// The pack and record that hold `digest`, or `nil`.
    public func find(_ digest: Digest) throws(CasketError) -> (pack: String, record: PackRecord)? {
        try state.withLock { (state) throws(CasketError) -> (pack: String, record: PackRecord)? in
            if let found = PackShelf.search(state.packs, digest) { return found }
            try refresh(&state)
            return PackShelf.search(state.packs, digest)
        }
    }

    /// ``find(_:)`` for a writer's dedup check, where a miss costs at most a copy of the payload: it looks
    /// at the folder again at most every ``probeInterval``, lists it only when its mtime changed (never for
    /// a change that may hide in the same clock tick), and does not scan other writers' open packs on.
    public func probe(_ digest: Digest) throws(CasketError) -> (pack: String, record: PackRecord)? {
        try state.withLock { (state) throws(CasketError) -> (pack: String, record: PackRecord)? in
            if let found = PackShelf.search(state.packs, digest) { return found }
            let now = ContinuousClock.now
            if let probed = state.probed, now - probed < PackShelf.probeInterval { return nil }
            state.probed = now
            try refresh(&state, thorough: false)
            return PackShelf.search(state.packs, digest)
        }
    }

    /// The verified payload of `digest` if a pack holds it, else `nil`.
    ///
    /// - Throws: ``CasketError/Code/corrupt`` when the record's header or bytes are wrong.
    public func read(_ digest: Digest) throws(CasketError) -> [UInt8]? {
        let found = try state.withLock { (state) throws(CasketError) -> (Pack, PackRecord)? in
            if let hit = PackShelf.locate(state.packs, digest) { return hit }
            try refresh(&state)
            return PackShelf.locate(state.packs, digest)
        }
        guard let (pack, record) = found else { return nil }
        return try PackScan.payload(pack.handle.io, record)
    }

    /// The ids of the packs known now, sealed or not (after a listing).
    public func packIDs() throws(CasketError) -> [(id: String, sealed: Bool)] {
        try state.withLock { (state) throws(CasketError) in
            try refresh(&state)
            return state.packs.values.map { ($0.id, $0.index != nil) }.sorted { $0.id < $1.id }
        }
    }

    private static func search(_ packs: [String: Pack], _ digest: Digest) -> (pack: String, record: PackRecord)? {
        locate(packs, digest).map { ($0.0.id, $0.1) }
    }

    private static func locate(_ packs: [String: Pack], _ digest: Digest) -> (Pack, PackRecord)? {
        for pack in packs.values {
            if let record = pack.lookup(digest) { return (pack, record) }
        }
        return nil
    }

    /// Lists the folder again if it changed (or, when `thorough`, may have changed unseen), then scans the
    /// open packs on.
    private func refresh(_ state: inout State, thorough: Bool = true) throws(CasketError) {
        let mtime = try folder.status().mtimeNanoseconds
        if (thorough && state.racy) || state.listedAt != mtime {
            try relist(&state)
            state.listedAt = mtime
            state.racy = system_wallClockNanoseconds() - mtime < PackShelf.racyWindow
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

    private func relist(_ state: inout State) throws(CasketError) {
        var packs = Set<String>()
        var indexes = Set<String>()
        try folder.forEachEntry { (name, kind) throws(CasketError) in
            guard kind == nil || kind == .regular else { return }
            if let id = PackShelf.id(of: name, suffix: PackShelf.packSuffix) { packs.insert(id) }
            if let id = PackShelf.id(of: name, suffix: PackShelf.indexSuffix) { indexes.insert(id) }
        }
        for id in state.packs.keys where !packs.contains(id) { state.packs[id] = nil }
        for id in packs {
            let known = state.packs[id]
            if let known, known.index != nil || !indexes.contains(id) { continue }
            let pack: Pack
            if let known {
                pack = known
            } else {
                guard let handle = try PackShelf.openRegular(folder, id + PackShelf.packSuffix) else { continue }
                pack = Pack(id: id, handle: handle)
            }
            if indexes.contains(id), let io = try PackShelf.openRegular(folder, id + PackShelf.indexSuffix) {
                pack.index = try PackIndex(io.io, length: io.io.status().size)
                pack.records = [:]
            }
            state.packs[id] = pack
        }
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
