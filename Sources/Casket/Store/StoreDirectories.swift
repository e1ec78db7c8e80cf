import Synchronization

/// The store's folders, each opened once, never through a symbolic link, and kept open: every blob and
/// temp-file operation is made relative to one of them (docs/FORMAT.md, section 1).
///
/// A link planted as `blobs/`, `tmp/` or a fan-out folder is refused as
/// ``CasketError/Code/unsafePath`` the first time the folder is needed, so no write, freshen or delete
/// can reach the folder it points to.
final class StoreDirectories: Sendable {
    /// The folders directly under the root.
    enum Folder: String, CaseIterable, Sendable {
        case blobs, tmp, index, gc, quarantine, claims, packs
    }

    let root: Directory
    private let folders = Mutex<[Folder: Directory]>([:])
    /// Fan-out folders by the digest's first byte, opened on first use.
    private let fanouts = Mutex<[Directory?]>(Array(repeating: nil, count: 256))
    /// When a small put last found each fan-out folder empty (``fanoutLooksEmpty(_:)``), else `nil`.
    let emptyFanouts = Mutex<[ContinuousClock.Instant?]>(Array(repeating: nil, count: 256))

    init(root: Directory) {
        self.root = root
    }

    /// Opens a folder of the store, creating it first when `create` (the umask applies).
    func folder(_ folder: Folder, create: Bool = false) throws(CasketError) -> Directory {
        if let open = folders.withLock({ $0[folder] }) { return open }
        let directory = create ? try root.makeDirectory(folder.rawValue).0 : try root.directory(folder.rawValue)
        return folders.withLock { cache in
            if let raced = cache[folder] { return raced }
            cache[folder] = directory
            return directory
        }
    }

    /// Whether `name` is exactly two lowercase hex digits, the name of a fan-out folder (`UInt8(_:radix:)`
    /// alone would also take `+f` or `F0`).
    static func isFanOutName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return bytes.count == 2 && bytes.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// The fan-out folder named `hh` (two lowercase hex digits); `nil` when it does not exist. Any other
    /// name is not a fan-out folder and is opened as a plain sub-folder of `blobs/` by the caller.
    func fanout(named name: String) throws(CasketError) -> Directory? {
        guard Self.isFanOutName(name), let byte = UInt8(name, radix: 16) else {
            return try folder(.blobs).directory(name)
        }
        return try fanout(Digest(high: UInt64(byte) << 56, low: 0))
    }

    /// The fan-out folder `blobs/<hh>/` of a digest. With `create`, a missing one is made (and `blobs/`
    /// flushed when `durable`); without, a missing one is `nil`.
    func fanout(_ digest: Digest, create: Bool = false, durable: Bool = false) throws(CasketError) -> Directory? {
        let slot = Int(digest.high >> 56)
        if create { emptyFanouts.withLock { $0[slot] = nil } }  // this process is about to publish a blob in it
        if let open = fanouts.withLock({ $0[slot] }) { return open }
        let digits = Array("0123456789abcdef".utf8)
        let name = String(decoding: [digits[slot >> 4], digits[slot & 15]], as: UTF8.self)
        let blobs = try folder(.blobs)
        let directory: Directory
        if create {
            let (made, created) = try blobs.makeDirectory(name)
            if created && durable { try blobs.sync() }
            directory = made
        } else {
            guard let present = try blobs.directoryIfPresent(name) else { return nil }
            directory = present
        }
        return fanouts.withLock { cache in
            if let raced = cache[slot] { return raced }
            cache[slot] = directory
            return directory
        }
    }
}
