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
    let publishCapabilities = AtomicFile.Capabilities()

    /// The store's folders, open: every file operation goes through them (none follows a link).
    let directories: StoreDirectories
    /// What this process knows of `packs/`, made on first use (a version 1 store may have no `packs/`).
    let shelf = Mutex<PackShelf?>(nil)

    init(root: String, config: StoreConfig, directories: StoreDirectories) {
        self.root = root
        self.config = config
        self.layout = StoreLayout(root: root)
        self.directories = directories
    }

    /// Opens an existing store.
    ///
    /// - Parameter root: The store's folder.
    /// - Throws: ``CasketError/Code/notAStore`` when the folder has no `casket.json`,
    ///   ``CasketError/Code/unsupportedVersion`` when a newer casket created it.
    public static func open(at root: String) throws(CasketError) -> BlobStore {
        let directory: Directory
        do {
            directory = try Directory.open(root)
        } catch let error where error.code == .notFound {
            throw CasketError(.notFound, "store folder '\(root)' does not exist", path: root, errno: error.errno)
        }
        let bytes: [UInt8]
        do {
            bytes = try directory.readSmallFile(StoreConfig.fileName, limit: 1 << 16)
        } catch let error where error.code == .notFound {
            throw CasketError(
                .notAStore,
                "'\(root)' is not a Casket store (it has no \(StoreConfig.fileName)); create one with 'casket init \(root)'",
                path: root
            )
        }
        return BlobStore(
            root: root, config: try StoreConfig(parsing: bytes, root: root),
            directories: StoreDirectories(root: directory))
    }

    /// Creates a new store in `root` (created if missing; it may exist but must not be a store already).
    ///
    /// Folders and files are created with modes 0777 and 0666 (0444 for blobs) less the process's umask,
    /// so a store made with umask 002 under a setgid folder can be written by every member of its group
    /// (docs/FORMAT.md, section 1).
    ///
    /// - Parameters:
    ///   - root: The folder to make a store of.
    ///   - config: Its settings.
    /// - Throws: ``CasketError/Code/alreadyExists`` when `root` is already a store, or when one of the
    ///   store's folder names (`blobs`, `tmp`, `index`, ...) is already taken by something that is not an
    ///   empty folder: a store never adopts files it did not write, which its garbage collector would
    ///   then delete.
    @discardableResult
    public static func create(at root: String, config: StoreConfig = StoreConfig()) throws(CasketError) -> BlobStore {
        let layout = StoreLayout(root: root)
        try makeDirectory(root, existingIsFine: true)
        let directory = try Directory.open(root)
        if try directory.statusIfPresent(StoreConfig.fileName) != nil {
            throw CasketError(.alreadyExists, "'\(root)' is already a Casket store", path: layout.config)
        }
        try refuseForeignContent(in: directory)
        let directories = StoreDirectories(root: directory)
        for folder in StoreDirectories.Folder.allCases { _ = try directories.folder(folder, create: true) }
        // All 256 fan-out folders now, so that no put pays for a mkdir (and a directory flush) later.
        let blobs = try directories.folder(.blobs)
        let digits = Array("0123456789abcdef")
        for high in digits {
            for low in digits { _ = try blobs.makeDirectory(String([high, low])) }
        }
        let store = BlobStore(root: root, config: config, directories: directories)
        // The config is published like a blob: a temp file, flushed, linked without replacing, so that of
        // two racing inits exactly one wins and the other is told.
        var file = try AtomicFile(in: directories.folder(.tmp), mode: 0o444)
        let out = file.io
        try typed { try config.encoded().withUnsafeBytes { try out.writeAll($0) } }
        if try file.publish(
            to: directory, as: StoreConfig.fileName, .exclusive(replaceIfUnsupported: false), durable: true)
            == .nameTaken
        {
            throw CasketError(.alreadyExists, "'\(root)' is already a Casket store", path: layout.config)
        }
        return store
    }

    /// Throws when a store folder name is taken by anything but what an interrupted `init` leaves: an empty
    /// folder, `blobs/` holding only empty fan-out folders, `tmp/` holding only temp files (finding: `init`
    /// over a folder holding `blobs/` or `tmp/` adopted them, and the next GC deleted their files; and an
    /// `init` killed while it made the fan-out folders left a folder no later `init` would take).
    static func refuseForeignContent(in root: Directory) throws(CasketError) {
        for folder in StoreDirectories.Folder.allCases {
            guard let status = try root.statusIfPresent(folder.rawValue) else { continue }
            let path = root.path(of: folder.rawValue)
            guard status.kind == .directory else {
                throw CasketError(
                    .alreadyExists,
                    "'\(path)' exists and is \(status.kind); a store needs that name for its own folder",
                    path: path)
            }
            let directory = try root.directory(folder.rawValue)
            var entries = 0
            try directory.forEachEntry { (name, kind) throws(CasketError) in
                if try !isLeftByInit(name, kind: kind, in: directory, of: folder) { entries += 1 }
            }
            if entries > 0 {
                throw CasketError(
                    .alreadyExists,
                    "'\(path)' already holds \(entries) entr\(entries == 1 ? "y" : "ies") that no Casket store wrote; move them away or choose another folder",
                    path: path)
            }
        }
    }

    /// Whether `name` in store folder `folder` is something `init` itself makes before it publishes
    /// `casket.json`: an empty fan-out folder of `blobs/`, or a temp file of `tmp/` (docs/FORMAT.md 1.1).
    private static func isLeftByInit(
        _ name: String, kind: FileStatus.Kind?, in directory: Directory, of folder: StoreDirectories.Folder
    ) throws(CasketError) -> Bool {
        // The listing's entry type when the file system gives one, else an lstat
        func kindOfEntry() throws(CasketError) -> FileStatus.Kind? {
            if let kind { return kind }
            return try directory.statusIfPresent(name)?.kind
        }
        switch folder {
        case .blobs:
            guard StoreDirectories.isFanOutName(name), try kindOfEntry() == .directory else { return false }
            var empty = true
            try directory.directory(name).forEachEntry { (_, _) throws(CasketError) in empty = false }
            return empty
        case .tmp:
            guard TempFile.isTempName(name) else { return false }
            return try kindOfEntry() == .regular
        default:
            return false
        }
    }

    var durable: Bool { config.durability != .none }

    /// The same store, with writes flushed or not regardless of `casket.json`.
    ///
    /// For bulk writers that flush in batches instead of per blob: write many blobs through
    /// `withDurability(.none)`, call ``syncFileSystem()``, and only then append the index lines that
    /// reference them (a line must never reach the disk before its blobs).
    public func withDurability(_ durability: StoreConfig.Durability) -> BlobStore {
        var config = self.config
        config.durability = durability
        return BlobStore(root: root, config: config, directories: directories)
    }

    /// Flushes everything written to the file system that holds the store (`syncfs(2)`): one flush for a
    /// whole batch of blobs and their directories.
    public func syncFileSystem() throws(CasketError) {
        if case .failure(let errno) = system_syncfs(directories.root.fd) { throw CasketError.sync(root, errno: errno) }
    }
}
