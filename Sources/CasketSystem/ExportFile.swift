#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a payload to a path outside the store (`casket get -o PATH`), by what PATH is (docs/FORMAT.md,
/// section 4.1), judged with `lstat` so that a symlink is never followed:
///
/// - absent or a regular file: the bytes go to a temp file beside PATH that is renamed over it only once
///   the payload is verified, so PATH never holds a partial or corrupt payload;
/// - a character or block device or a FIFO: written through (opened without creating or truncating it),
///   as standard output is; a corrupt payload is reported once its bytes are written;
/// - a symlink, a directory or a socket: refused, nothing touched (renaming over a link would replace the
///   link, following it would write a file the caller may not have meant).
///
/// The temp file is unnamed (Linux `O_TMPFILE`) until it is complete, so a process killed while writing
/// leaves nothing. It is named `.casket-export.<host>.<pid>.<random>.tmp` only for the instant between
/// naming and renaming, or for the whole write where the file system has no `O_TMPFILE`; the next export
/// into that folder removes such files of this host whose process is gone.
package enum ExportFile {
    static let prefix = ".casket-export."
    static let suffix = ".tmp"

    /// How PATH is written.
    package enum Method: Equatable {
        case replace
        case writeThrough
    }

    /// Writes what `produce` sends to its sink to `path`.
    package static func write(
        _ path: String, durable: Bool,
        _ produce: ((UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Int64
    ) throws(CasketError) -> Int64 {
        switch try method(for: path) {
        case .writeThrough: return try writeThrough(path, produce)
        case .replace: return try replace(path, durable: durable, produce)
        }
    }

    /// What `path` is, without following a symlink; throws for what is refused.
    package static func method(for path: String) throws(CasketError) -> Method {
        let st: stat
        switch system_lstat(path) {
        case .success(let value): st = value
        case .failure(let errno) where errno == .noSuchFileOrDirectory: return .replace
        case .failure(let errno): throw .stat(path, errno: errno)
        }
        switch FileStatus(st).kind {
        case .regular: return .replace
        case .characterDevice, .blockDevice, .fifo: return .writeThrough
        case let kind: throw refusal(path, "is \(kind)")
        }
    }

    static func refusal(_ path: String, _ what: String) -> CasketError {
        CasketError(
            .notARegularFile,
            "refusing to write '\(path)': '\(path)' \(what) (-o writes a regular file, a device or a FIFO, and never "
                + "follows a symbolic link)", path: path)
    }

    private static func writeThrough(
        _ path: String,
        _ produce: ((UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Int64
    ) throws(CasketError) -> Int64 {
        let handle: FileHandle
        switch system_openWriteThrough(path) {
        case .success(let fd): handle = FileHandle(fd: fd, path: path)
        case .failure(let errno) where errno == Errno(rawValue: ELOOP): throw refusal(path, "is a symbolic link")
        case .failure(let errno): throw .open(path, forWriting: true, errno: errno)
        }
        // Replaced between lstat and open: never write into the start of a regular file in place.
        let type = try handle.io.stat().st_mode & S_IFMT
        guard type == S_IFCHR || type == S_IFBLK || type == S_IFIFO else {
            throw CasketError(.changedWhileReading, "'\(path)' was replaced while being opened", path: path)
        }
        let out = handle.io
        return try produce { (bytes) throws(CasketError) in try out.writeAll(bytes) }
    }

    private static func replace(
        _ path: String, durable: Bool,
        _ produce: ((UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Int64
    ) throws(CasketError) -> Int64 {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let folder = directory.isEmpty ? "/" : directory
        removeDebris(in: folder)
        let name = "\(prefix)\(HostIdentity.host).\(HostIdentity.pid).\(HostIdentity.randomHex(bytes: 8))\(suffix)"
        let unique = (slash == nil ? "" : directory + "/") + name
        var named = false
        let handle: FileHandle
        switch system_openUnnamed(inDirectory: folder, mode: 0o666) {
        case .success(let fd): handle = FileHandle(fd: fd, path: unique)
        case .failure:
            handle = try FileHandle.createExclusive(unique, mode: 0o666)
            named = true
        }
        do throws(CasketError) {
            let out = handle.io
            let size = try produce { (bytes) throws(CasketError) in try out.writeAll(bytes) }
            if durable { try out.sync() }
            if !named {
                if case .failure(let errno) = system_linkUnnamed(handle.fd, to: unique) {
                    throw CasketError.publish(unique, to: unique, errno: errno)
                }
                named = true
            }
            // PATH may have become a symlink or a device while the payload was written: judge it again.
            guard try method(for: path) == .replace else {
                throw CasketError(
                    .changedWhileReading, "'\(path)' was replaced while the payload was written", path: path)
            }
            if case .failure(let errno) = system_rename(unique, path) {
                throw CasketError.publish(unique, to: path, errno: errno)
            }
            named = false
            if durable { try syncDirectory(folder) }
            return size
        } catch {
            if named { _ = system_unlink(unique) }
            throw error
        }
    }

    /// Removes export temp files of this host whose writer process is gone (best effort).
    static func removeDebris(in folder: String) {
        _ = try? system_forEachDirectoryEntry(folder) { name, _ in
            if isOrphan(name) { _ = system_unlink(folder + "/" + name) }
        }
    }

    /// Whether `name` is an export temp file of this host whose process no longer exists.
    static func isOrphan(_ name: String) -> Bool {
        guard name.hasPrefix(prefix) && name.hasSuffix(suffix) else { return false }
        let parts = name.dropFirst(prefix.count).dropLast(suffix.count).split(
            separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == HostIdentity.host, let pid = Int32(parts[1]), pid > 0,
            pid != HostIdentity.pid, parts[2].count == 16, parts[2].allSatisfy(\.isHexDigit)
        else { return false }
        if case .failure(let errno) = system_kill(pid, 0), errno == .noSuchProcess { return true }
        return false
    }
}
