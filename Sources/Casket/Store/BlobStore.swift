#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A content-addressed blob store in a folder: every payload kept once, under its XXH3-128 hash.
///
/// Safe to share between threads and between processes on one or several hosts that mount the same
/// file system: all coordination happens through atomic file-system operations (docs/DESIGN.md).
///
/// ```swift
/// let store = try BlobStore.open(at: "/data/cache")
/// let result = try store.put(Array("hello".utf8))
/// let bytes = try store.readAll(result.digest)
/// ```
public final class BlobStore: Sendable {
    /// The store's root folder, as given.
    public let root: String
    /// The settings read from `casket.json`.
    public let config: StoreConfig
    let layout: StoreLayout
    /// Which publish primitive works on this file system; moves down the list on EINVAL/ENOSYS/EPERM.
    let publishMethod = Atomic<UInt8>(PublishMethod.renameNoReplace.rawValue)

    enum PublishMethod: UInt8 {
        case renameNoReplace = 0
        case link = 1
        case rename = 2
    }

    init(root: String, config: StoreConfig) {
        self.root = root
        self.config = config
        self.layout = StoreLayout(root: root)
    }

    /// Opens an existing store.
    ///
    /// - Parameter root: The store's folder.
    /// - Throws: ``CasketError/Code/notAStore`` when the folder has no `casket.json`,
    ///   ``CasketError/Code/unsupportedVersion`` when a newer casket created it.
    public static func open(at root: String) throws(CasketError) -> BlobStore {
        let layout = StoreLayout(root: root)
        let bytes: [UInt8]
        do {
            bytes = try readSmallFile(layout.config, limit: 1 << 16)
        } catch let error where error.code == .notFound {
            if case .failure = system_stat(root) {
                throw CasketError(.notFound, "store folder '\(root)' does not exist", path: root)
            }
            throw CasketError(
                .notAStore,
                "'\(root)' is not a Casket store (it has no \(StoreConfig.fileName)); create one with 'casket init \(root)'",
                path: root
            )
        }
        return BlobStore(root: root, config: try StoreConfig(parsing: bytes, root: root))
    }

    /// Creates a new store in `root` (created if missing; it may exist but must not be a store already).
    ///
    /// - Parameters:
    ///   - root: The folder to make a store of.
    ///   - config: Its settings.
    /// - Throws: ``CasketError/Code/alreadyExists`` when `root` is already a store.
    @discardableResult
    public static func create(at root: String, config: StoreConfig = StoreConfig()) throws(CasketError) -> BlobStore {
        let layout = StoreLayout(root: root)
        try makeDirectory(root, existingIsFine: true)
        if case .success = system_stat(layout.config) {
            throw CasketError(.alreadyExists, "'\(root)' is already a Casket store", path: layout.config)
        }
        for directory in [layout.blobs, layout.tmp, layout.index, layout.gc, layout.quarantine, layout.claims] {
            try makeDirectory(directory, existingIsFine: true)
        }
        // All 256 fan-out folders now, so that no put pays for a mkdir (and a directory flush) later.
        let digits = Array("0123456789abcdef")
        for high in digits {
            for low in digits { try makeDirectory(layout.blobs + "/" + String([high, low]), existingIsFine: true) }
        }
        let store = BlobStore(root: root, config: config)
        // The config is published like a blob: a temp file, flushed, linked without replacing.
        let temp = try TempFile(in: layout.tmp)
        let out = temp.handle.io
        try typed { try config.encoded().withUnsafeBytes { try out.writeAll($0) } }
        try out.sync()
        switch system_link(temp.path, layout.config) {
        case .success: break
        case .failure(.fileExists):
            throw CasketError(.alreadyExists, "'\(root)' is already a Casket store", path: layout.config)
        case .failure(let errno): throw CasketError.publish(temp.path, to: layout.config, errno: errno)
        }
        _ = temp
        try syncDirectory(root)
        return store
    }

    var durable: Bool { config.durability == .fsync }

    /// The same store, with writes flushed or not regardless of `casket.json`.
    ///
    /// For bulk writers that flush in batches instead of per blob: write many blobs through
    /// `withDurability(.none)`, call ``syncFileSystem()``, and only then append the index lines that
    /// reference them (a line must never reach the disk before its blobs).
    public func withDurability(_ durability: StoreConfig.Durability) -> BlobStore {
        var config = self.config
        config.durability = durability
        return BlobStore(root: root, config: config)
    }

    /// Flushes everything written to the file system that holds the store (`syncfs(2)`): one flush for a
    /// whole batch of blobs and their directories.
    public func syncFileSystem() throws(CasketError) {
        switch system_open(root, O_RDONLY | O_DIRECTORY) {
        case .success(let fd):
            defer { system_close(fd) }
            if case .failure(let errno) = system_syncfs(fd) { throw CasketError.sync(root, errno: errno) }
        case .failure(let errno):
            throw CasketError.open(root, errno: errno)
        }
    }
}
