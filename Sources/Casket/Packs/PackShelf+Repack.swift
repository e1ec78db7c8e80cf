import Synchronization

extension PackShelf {
    /// A sealed pack as garbage collection sees it (docs/GC.md, "Packs").
    @_spi(Maintenance) public struct SealedPack: Sendable {
        /// Its id.
        public var id: String
        /// Its index: every record it holds, one per hash.
        public var index: PackIndex
        /// The length of its pack file.
        public var length: Int64
        /// When GC retired it (file-system nanoseconds, docs/FORMAT.md 3.9), `nil` if it is not retired.
        public var retiredAt: Int64?
    }

    /// Every sealed pack, after a fresh listing, in id order.
    @_spi(Maintenance) public func sealedPacks() throws(CasketError) -> [SealedPack] {
        let known = try state.withLock { (state) throws(CasketError) -> [(String, PackIndex, FileRef)] in
            state.listedAt = nil
            try refresh(&state, thorough: false)
            return state.packs.values.compactMap { pack in pack.index.map { (pack.id, $0, pack.handle.io) } }
        }
        var packs: [SealedPack] = []
        for (id, index, io) in known.sorted(by: { $0.0 < $1.0 }) {
            let length = try io.status().size
            packs.append(SealedPack(id: id, index: index, length: length, retiredAt: try retirement(id)))
        }
        return packs
    }

    /// When the pack `id` was retired: the `retired` time its notice holds, else (a notice that cannot be
    /// read) the notice's mtime; `nil` when it has none.
    @_spi(Maintenance) public func retirement(_ id: String) throws(CasketError) -> Int64? {
        let name = id + PackShelf.retiredSuffix
        guard let status = try folder.statusIfPresent(name), status.isRegularFile else { return nil }
        if let bytes = try? folder.readSmallFile(name, limit: 4096), let value = try? JSONParser.parse(bytes),
            let time = value["retired"]?.intValue
        {
            return time
        }
        return status.mtimeNanoseconds
    }

    /// The verified payload of a record of the pack `id` (GC copying it into a new pack).
    @_spi(Maintenance) public func payload(of id: String, _ record: PackRecord) throws(CasketError) -> [UInt8] {
        let handle = try state.withLock { (state) throws(CasketError) -> Pack? in state.packs[id] }
        if let handle { return try PackScan.payload(handle.handle.io, record) }
        let opened = try folder.openForReading(id + PackShelf.packSuffix)
        return try PackScan.payload(opened.io, record)
    }

    /// Publishes `<id>.retired` (docs/FORMAT.md 3.9): from now on no writer dedups against the pack, and a
    /// later GC whose mark starts a grace after `time` may delete it. An existing notice is kept.
    @_spi(Maintenance) public func retire(_ id: String, at time: Int64, host: String, pid: Int32) throws(CasketError) {
        var object = JSONObject()
        object["retired"] = .number(String(time))
        object["host"] = .string(host)
        object["pid"] = .number(String(pid))
        var bytes: [UInt8] = []
        JSONValue.object(object).encode(into: &bytes)
        bytes.append(0x0A)
        try PackWriter.publishOnce(bytes, in: folder, as: id + PackShelf.retiredSuffix, durable: true)
    }

    /// Removes the pack `id`: its pack file first (a listing then finds no pack, whatever is left), then
    /// its index and its notice; a killed collector leaves only those, which ``strays()`` lists.
    ///
    /// - Returns: The bytes freed.
    @_spi(Maintenance) public func remove(_ id: String) throws(CasketError) -> Int64 {
        var freed: Int64 = 0
        for suffix in [PackShelf.packSuffix, PackShelf.indexSuffix, PackShelf.retiredSuffix] {
            let name = id + suffix
            guard let status = try folder.statusIfPresent(name), status.isRegularFile else { continue }
            switch folder.remove(name) {
            case .success: freed += status.size
            case .failure(.noSuchFileOrDirectory): break
            case .failure(let errno):
                throw CasketError(
                    .io, "cannot remove '\(folder.path(of: name))'", path: folder.path(of: name), errno: errno)
            }
        }
        state.withLock { $0.packs[id] = nil }
        return freed
    }

    /// Indexes and notices whose pack file is gone (left by a collector killed while it removed a pack),
    /// as (name, path, bytes).
    @_spi(Maintenance) public func strays() throws(CasketError) -> [(name: String, path: String, bytes: Int64)] {
        var names: [String] = []
        var packs = Set<String>()
        try folder.forEachEntry { (name, kind) throws(CasketError) in
            guard kind == nil || kind == .regular else { return }
            if let id = PackShelf.id(of: name, suffix: PackShelf.packSuffix) { packs.insert(id) }
            names.append(name)
        }
        var strays: [(name: String, path: String, bytes: Int64)] = []
        for name in names.sorted() {
            guard
                let id = PackShelf.id(of: name, suffix: PackShelf.indexSuffix)
                    ?? PackShelf.id(of: name, suffix: PackShelf.retiredSuffix),
                !packs.contains(id), try folder.statusIfPresent(id + PackShelf.packSuffix) == nil,
                let status = try folder.statusIfPresent(name), status.isRegularFile
            else { continue }
            strays.append((name, folder.path(of: name), status.size))
        }
        return strays
    }

    /// Removes one entry of `packs/` named by ``strays()``.
    @_spi(Maintenance) public func removeStray(_ name: String) -> Bool {
        if case .success = folder.remove(name) { return true }
        return false
    }
}
