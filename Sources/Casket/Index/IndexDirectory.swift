/// An entry of `index/` that is not an index file: reported, skipped, never read, never fatal.
public struct IndexDebris: Sendable, Equatable, CustomStringConvertible {
    /// The entry.
    public var path: String
    /// What it is: `a symbolic link`, `a directory`, `a FIFO`, `a hidden file`, ...
    public var kind: String

    /// `'PATH' is a symbolic link: not an index file, skipped`.
    public var description: String { "'\(path)' is \(kind): not an index file, skipped" }
}

/// The one rule for which entries of `index/` are index files (docs/FORMAT.md 5.1), applied by every
/// reader of the index: keys, statistics, compaction, garbage collection's mark and fsck.
///
/// An index file's name does not start with `.` (editors' backups, NFS silly-renames) and ends in
/// `.jsonl` or `.jsonl.folding`, and its own entry is a regular file (`lstat`): a symlink, dangling or
/// not, is never followed, and a directory, FIFO or device is never opened. Anything else is debris.
enum IndexDirectory {
    static let suffix = ".jsonl"
    static let foldingSuffix = ".jsonl.folding"
    /// Compaction's output before it is published: `compact-<time>-<random>.jsonl.tmp`.
    static let compactPrefix = "compact-"
    static let compactTempSuffix = ".jsonl.tmp"

    /// Whether `name` is an index file's name (its entry must still be a regular file).
    static func hasIndexName(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(suffix) || name.hasSuffix(foldingSuffix))
    }

    /// Whether `name` is compaction's unpublished output.
    static func isCompactionTemp(_ name: String) -> Bool {
        name.hasPrefix(compactPrefix) && name.hasSuffix(compactTempSuffix)
    }

    /// One listing of `index/`.
    struct Listing {
        /// The folder, open: index files are opened through it (`openat`, never following a link).
        var directory: Directory
        /// The index files, by name (compared as bytes, like keys), with what `lstat` said.
        var files: [IndexKey: FileStatus] = [:]
        /// Entries that are not index files.
        var debris: [IndexDebris] = []
        /// An index file's name vanished between `readdir` and `lstat` (compaction renamed it).
        var vanished = false
    }

    /// Opens `index/` through the store's root, so that `index` itself is never followed if it is a link.
    static func open(_ path: String) throws(CasketError) -> Directory {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return try Directory.open(path) }
        return try Directory.open(String(path[..<slash])).directory(String(path[path.index(after: slash)...]))
    }

    /// Lists `path` (which must exist) by the rule above.
    static func list(_ path: String) throws(CasketError) -> Listing {
        var listing = Listing(directory: try open(path))
        let directory = listing.directory
        try directory.forEachEntry { (name, _) throws(CasketError) in
            // Compaction's temp files are its own business; `.nfs*` files belong to the NFS client.
            if isCompactionTemp(name) || name.hasPrefix(".nfs") { return }
            guard let status = try directory.statusIfPresent(name) else {
                if hasIndexName(name) { listing.vanished = true }
                return
            }
            if hasIndexName(name) && status.isRegularFile {
                listing.files[IndexKey(name)] = status
                return
            }
            let kind =
                !status.isRegularFile
                ? status.kind.description
                : name.hasPrefix(".")
                    ? "a hidden file (its name starts with '.')" : "a file without an index file's name"
            listing.debris.append(IndexDebris(path: directory.path(of: name), kind: kind))
        }
        listing.debris.sort { $0.path < $1.path }
        return listing
    }
}
