import Synchronization

/// A new file written under a unique temp name and then published under its final name in one step: the
/// one way Casket makes a file that others may read (blobs, `casket.json`, compacted index files, GC
/// reports, lock and claim files, `get -o` output). A reader sees the whole file or nothing, and a file
/// that was never published removes itself.
///
/// 1. ``init(in:mode:)`` creates `<host>.<pid>.<random>.tmp` (`O_EXCL`) in a folder of the same file
///    system; the caller writes through ``io``.
/// 2. ``publish(to:as:_:durable:capabilities:)`` flushes it (when `durable`), renames or links it under
///    its name, and flushes the folder (when `durable`).
package struct AtomicFile: ~Copyable {
    private var temp: TempFile

    /// How to treat a file that already has the final name.
    package enum Publish: Sendable {
        /// Never replace it: `renameat2(RENAME_NOREPLACE)`, else `link` then `unlink` where the file
        /// system lacks the flag (NFS), with the temp file's link count deciding after a lost NFS reply.
        /// `replaceIfUnsupported` allows a plain `rename` where neither exists (safe only when both files
        /// hold the same bytes, as two copies of one blob do).
        case exclusive(replaceIfUnsupported: Bool)
        /// Replace it (`rename`).
        case replace
    }

    /// What ``publish(to:as:_:durable:capabilities:)`` did.
    package enum Outcome: Sendable, Equatable {
        /// The file is now under its name.
        case published
        /// `.exclusive` only: the name was taken; the temp file is still there (``discard()`` it, or
        /// publish it again with `.replace`).
        case nameTaken
    }

    /// Which exclusive primitive works on a file system, learnt once per store: a file system that
    /// refuses `RENAME_NOREPLACE` (NFS: `EINVAL`) is not asked again.
    package final class Capabilities: Sendable {
        private let level = Atomic<UInt8>(0)
        package init() {}
        var current: UInt8 { level.load(ordering: .relaxed) }
        func downgrade(from value: UInt8) {
            _ = level.compareExchange(expected: value, desired: value + 1, ordering: .relaxed)
        }
    }

    /// Creates the temp file in `folder`, which must be on the file system of the final name's folder,
    /// under a unique name, or under `name` where the format gives the temp file a name of its own
    /// (compaction's `compact-*.jsonl.tmp`).
    package init(in folder: Directory, named name: String? = nil, mode: UInt32 = 0o666) throws(CasketError) {
        temp = try TempFile(in: folder, named: name, mode: mode)
    }

    /// Where the bytes go.
    package var io: FileRef { temp.handle.io }
    /// The temp file's path, for messages.
    package var path: String { temp.path }
    /// The temp file's name in its folder.
    package var name: String { temp.name }

    /// Publishes the file under `name` in `target` (see ``Publish``). After `.published` the value is
    /// spent; after `.nameTaken` it still owns the temp file.
    package mutating func publish(
        to target: Directory, as name: String, _ mode: Publish, durable: Bool, capabilities: Capabilities? = nil
    ) throws(CasketError) -> Outcome {
        let folder = temp.directory
        if durable { try temp.handle.io.sync() }
        let finalPath = target.path(of: name)
        let tempName = temp.name
        switch mode {
        case .replace:
            if case .failure(let errno) = folder.rename(tempName, to: target, as: name) {
                throw CasketError.publish(temp.path, to: finalPath, errno: errno)
            }
        case .exclusive(let replaceIfUnsupported):
            let capabilities = capabilities ?? Capabilities()
            publishing: while true {
                let level = capabilities.current
                // A plain rename replaces: only for callers that allow it, whatever others have learnt.
                switch replaceIfUnsupported ? level : min(level, 1) {
                case 0:
                    switch folder.renameNoReplace(tempName, to: target, as: name) {
                    case .success: break publishing
                    case .failure(.fileExists): return .nameTaken
                    case .failure(let errno) where AtomicFile.isUnsupported(errno): capabilities.downgrade(from: level)
                    case .failure(let errno): throw CasketError.publish(temp.path, to: finalPath, errno: errno)
                    }
                case 1:
                    let linked = folder.link(tempName, to: target, as: name)
                    // A lost NFS reply can report EEXIST for a link that happened: the link count decides.
                    if (try? temp.handle.io.status().linkCount) == 2 {
                        _ = folder.remove(tempName)
                        break publishing
                    }
                    switch linked {
                    case .success:
                        _ = folder.remove(tempName)
                        break publishing
                    case .failure(.fileExists): return .nameTaken
                    case .failure(let errno) where AtomicFile.isUnsupported(errno) && replaceIfUnsupported:
                        capabilities.downgrade(from: max(level, 1))
                    case .failure(let errno): throw CasketError.publish(temp.path, to: finalPath, errno: errno)
                    }
                default:
                    if case .failure(let errno) = folder.rename(tempName, to: target, as: name) {
                        throw CasketError.publish(temp.path, to: finalPath, errno: errno)
                    }
                    break publishing
                }
            }
        }
        temp.markGone()
        if durable { try target.sync() }
        return .published
    }

    /// Removes the temp file now (deinit would too).
    package consuming func discard() {}

    /// Errors that mean "this file system has no such primitive", not "this call failed".
    package static func isUnsupported(_ errno: Errno) -> Bool {
        errno == .invalidArgument || errno == .notImplemented || errno == .notSupported || errno == .notPermitted
            || errno == .tooManyLinks
    }
}
