/// A folder a command was given (the exca cache of `casket migrate`), and the one way to reach the files
/// that its own files name by relative path: nothing outside it is ever read or deleted.
///
/// The folder itself is opened as named, through symlinks (the user chose it). Every path below it is
/// judged by one rule, ``components(of:)`` (relative, plain names), then walked one component at a time
/// through ``Directory`` (`openat` with `O_NOFOLLOW`, `O_DIRECTORY` for folders), so that no symlink below
/// the folder is ever followed, whatever races with the walk. A file is read only when `lstat` and then
/// `fstat` agree that it is a regular file with one link (a FIFO or a device is never opened; a hard link
/// may share the bytes of a file outside the folder), and a name is deleted only while it still is the file
/// that was verified (same device and inode).
package final class ConfinedFolder: Sendable {
    /// The folder, open.
    package let directory: Directory
    /// The folder as named by the caller.
    package var path: String { directory.path }

    init(_ directory: Directory) { self.directory = directory }

    /// Opens the folder a command was given; links in `path` are followed.
    ///
    /// - Throws: ``CasketError/Code/notFound`` when it does not exist, ``CasketError/Code/notARegularFile``
    ///   when it is not a folder.
    package static func open(_ path: String) throws(CasketError) -> ConfinedFolder {
        ConfinedFolder(try Directory.open(path))
    }

    /// The rule for a path named by a file inside the folder: relative, made of plain names (no empty,
    /// `.` or `..` component, no leading `/`, no NUL byte). Returns its components.
    ///
    /// - Throws: ``CasketError/Code/unsafePath`` naming the path and what is wrong with it.
    package static func components(of relative: String) throws(CasketError) -> [String] {
        func refuse(_ why: String) -> CasketError {
            CasketError(.unsafePath, "'\(shown(relative))' \(why)", path: relative)
        }
        if relative.isEmpty { throw refuse("is an empty path") }
        if relative.utf8.contains(0) { throw refuse("contains a NUL byte") }
        if relative.hasPrefix("/") { throw refuse("is an absolute path: only paths relative to the folder are read") }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.contains("..") { throw refuse("has a '..' component: it would leave the folder") }
        if parts.contains(where: { $0.isEmpty || $0 == "." }) { throw refuse("has an empty or '.' component") }
        return parts
    }

    /// A path for messages, NUL bytes shown as `\0`.
    static func shown(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return String(decoding: text.utf8.flatMap { $0 == 0 ? Array("\\0".utf8) : [$0] }, as: UTF8.self)
    }

    /// The folder holding `relative`'s last component, reached through real folders only, and that name.
    private func parent(of relative: String) throws(CasketError) -> (Directory, String) {
        let parts = try ConfinedFolder.components(of: relative)
        var current = directory
        for (index, part) in parts.dropLast().enumerated() {
            let through = parts[...index].joined(separator: "/")
            switch current.status(part) {
            case .failure(.noSuchFileOrDirectory):
                throw CasketError(.notFound, "'\(relative)' does not exist", path: current.path(of: part))
            case .success(let status) where status.kind == .symbolicLink:
                throw CasketError(
                    .unsafePath,
                    "'\(relative)' goes through '\(through)', a symbolic link: links below the folder a command "
                        + "was given are never followed", path: current.path(of: part))
            case .success(let status) where status.kind != .directory:
                throw CasketError(
                    .notARegularFile, "'\(relative)' goes through '\(through)', which is \(status.kind), not a folder",
                    path: current.path(of: part))
            default:
                // Opened without following a link: a link swapped in after the lstat fails here.
                current = try current.directory(part)
            }
        }
        return (current, parts.last!)
    }

    /// `lstat` of `relative`, reached through real folders only.
    ///
    /// - Throws: ``CasketError/Code/notFound`` when it does not exist, the errors of ``components(of:)``, and
    ///   ``CasketError/Code/unsafePath`` when a component above it is a symlink.
    package func status(_ relative: String) throws(CasketError) -> FileStatus {
        let (folder, name) = try parent(of: relative)
        switch folder.status(name) {
        case .success(let status): return status
        case .failure(.noSuchFileOrDirectory):
            throw CasketError(.notFound, "'\(relative)' does not exist", path: folder.path(of: name))
        case .failure(let errno): throw .stat(folder.path(of: name), errno: errno)
        }
    }

    /// Refuses what is not a regular file with one link.
    private func check(_ status: FileStatus, _ relative: String) throws(CasketError) {
        let where_ = path + "/" + relative
        switch status.kind {
        case .regular: break
        case .symbolicLink:
            throw CasketError(
                .unsafePath,
                "'\(relative)' is a symbolic link: links below the folder a command was given are never followed",
                path: where_)
        case .directory:
            throw CasketError(.notARegularFile, "'\(relative)' is a folder, not a regular file", path: where_)
        default:
            throw CasketError(.notARegularFile, "'\(relative)' is \(status.kind), not a regular file", path: where_)
        }
        guard status.linkCount == 1 else {
            throw CasketError(
                .unsafePath,
                "'\(relative)' has \(status.linkCount) hard links: another name, maybe outside the folder, shares "
                    + "its bytes (copy the folder without hard links to use it)", path: where_)
        }
    }

    /// The status of a regular file with one link: what may be read.
    ///
    /// - Throws: the errors of ``status(_:)``, ``CasketError/Code/unsafePath`` for a symlink or a file with
    ///   several hard links, ``CasketError/Code/notARegularFile`` for a folder, a FIFO, a socket, a device.
    package func file(_ relative: String) throws(CasketError) -> FileStatus {
        let found = try status(relative)
        try check(found, relative)
        return found
    }

    /// Opens a regular file for reading. A FIFO or a device is never opened (judged by `lstat` first); the
    /// open itself does not follow a symlink nor block, and `fstat` must then agree.
    ///
    /// - Parameter expected: The file it must be (the one planned or verified earlier).
    /// - Throws: the errors of ``file(_:)``, and ``CasketError/Code/changedWhileReading`` when the name now
    ///   names another file.
    package func open(_ relative: String, expecting expected: FileStatus? = nil) throws(CasketError) -> ConfinedFile {
        let (folder, name) = try parent(of: relative)
        let before: FileStatus
        switch folder.status(name) {
        case .success(let status): before = status
        case .failure(.noSuchFileOrDirectory):
            throw CasketError(.notFound, "'\(relative)' does not exist", path: folder.path(of: name))
        case .failure(let errno): throw .stat(folder.path(of: name), errno: errno)
        }
        try check(before, relative)
        let handle = try folder.openForReading(name)
        let opened = try handle.io.status()
        try check(opened, relative)
        guard opened.isSameFile(as: before), expected.map({ opened.isSameFile(as: $0) }) ?? true else {
            throw CasketError(
                .changedWhileReading, "'\(relative)' was replaced by another file; it is not read", path: handle.path)
        }
        return ConfinedFile(handle: handle, status: opened)
    }

    /// Opens a folder below this one (no symlink followed, the last component included).
    package func folder(_ relative: String) throws(CasketError) -> ConfinedFolder {
        let (folder, name) = try parent(of: relative)
        switch folder.status(name) {
        case .failure(.noSuchFileOrDirectory):
            throw CasketError(.notFound, "'\(relative)' does not exist", path: folder.path(of: name))
        case .success(let status) where status.kind == .symbolicLink:
            throw CasketError(
                .unsafePath,
                "'\(relative)' is a symbolic link: links below the folder a command was given are never followed",
                path: folder.path(of: name))
        case .success(let status) where status.kind != .directory:
            throw CasketError(
                .notARegularFile, "'\(relative)' is \(status.kind), not a folder", path: folder.path(of: name))
        default:
            return ConfinedFolder(try folder.directory(name))
        }
    }

    /// The names in this folder with what `lstat` says of each, sorted by name (bytes). Names that vanish
    /// while listing are left out.
    package func entries() throws(CasketError) -> [(name: String, status: FileStatus)] {
        var names: [String] = []
        try directory.forEachEntry { (name, _) throws(CasketError) in names.append(name) }
        names.sort { Array($0.utf8).lexicographicallyPrecedes($1.utf8) }
        return names.compactMap { name in
            guard case .success(let status) = directory.status(name) else { return nil }
            return (name, status)
        }
    }

    /// Deletes the regular file `relative` if it still is the file `verified` (`unlinkat` in the folder it
    /// was reached through). Returns the bytes removed, 0 when it is already gone.
    ///
    /// - Throws: ``CasketError/Code/changedWhileReading`` when the name now names another file (nothing is
    ///   deleted), the errors of ``status(_:)``, and the `unlinkat` error.
    package func remove(_ relative: String, verified: FileStatus) throws(CasketError) -> Int64 {
        let (folder, name) = try parent(of: relative)
        let found: FileStatus
        switch folder.status(name) {
        case .success(let status): found = status
        case .failure(.noSuchFileOrDirectory): return 0
        case .failure(let errno): throw .stat(folder.path(of: name), errno: errno)
        }
        guard found.kind == .regular, found.isSameFile(as: verified) else {
            throw CasketError(
                .changedWhileReading, "'\(relative)' is no longer the file that was verified; it is not deleted",
                path: folder.path(of: name))
        }
        if case .failure(let errno) = folder.remove(name) { throw .remove(folder.path(of: name), errno: errno) }
        return found.size
    }

    /// Deletes the folder `relative` if it is empty (a symlink is never followed nor removed); true if it did.
    package func removeFolderIfEmpty(_ relative: String) throws(CasketError) -> Bool {
        let (folder, name) = try parent(of: relative)
        guard case .success(let status) = folder.status(name), status.kind == .directory else { return false }
        switch folder.removeDirectory(name) {
        case .success: return true
        case .failure(.directoryNotEmpty), .failure(.fileExists), .failure(.noSuchFileOrDirectory): return false
        case .failure(let errno): throw .remove(folder.path(of: name), errno: errno)
        }
    }
}
