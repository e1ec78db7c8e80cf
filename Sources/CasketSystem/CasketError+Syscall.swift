// One factory per system call, mapping errno to a code and a message that names the path.
// See the "ERRORS" section of each call's man page.

extension CasketError {
    package static func code(for errno: Errno) -> Code {
        switch errno {
        case .noSuchFileOrDirectory, .notDirectory: return .notFound
        case .permissionDenied, .notPermitted: return .permissionDenied
        case .noSpace, .diskQuotaExceeded, .fileTooLarge: return .noSpace
        case .isDirectory: return .notARegularFile
        case .fileExists: return .alreadyExists
        default: return .io
        }
    }

    package static func syscall(_ what: String, path: String, errno: Errno) -> CasketError {
        CasketError(code(for: errno), "cannot \(what) '\(path)'", path: path, errno: errno)
    }

    // man 2 open
    package static func open(_ path: String, forWriting: Bool = false, errno: Errno) -> CasketError {
        syscall(forWriting ? "create" : "open", path: path, errno: errno)
    }

    // man 2 read
    package static func read(_ path: String, errno: Errno) -> CasketError { syscall("read", path: path, errno: errno) }

    // man 2 write; ENOSPC/EDQUOT/EFBIG are the full-disk cases a caller must see clearly.
    package static func write(_ path: String, errno: Errno) -> CasketError {
        syscall("write to", path: path, errno: errno)
    }

    // man 2 fsync
    package static func sync(_ path: String, errno: Errno) -> CasketError { syscall("flush", path: path, errno: errno) }

    // man 2 stat
    package static func stat(_ path: String, errno: Errno) -> CasketError { syscall("stat", path: path, errno: errno) }

    // man 2 rename, man 2 link
    package static func publish(_ from: String, to: String, errno: Errno) -> CasketError {
        CasketError(code(for: errno), "cannot publish '\(from)' as '\(to)'", path: to, errno: errno)
    }

    // man 2 unlink
    package static func remove(_ path: String, errno: Errno) -> CasketError {
        syscall("remove", path: path, errno: errno)
    }

    // man 2 mkdir
    package static func mkdir(_ path: String, errno: Errno) -> CasketError {
        syscall("create directory", path: path, errno: errno)
    }

    // man 3 opendir
    package static func list(_ path: String, errno: Errno) -> CasketError { syscall("list", path: path, errno: errno) }
}

/// Runs a closure through a standard-library API that only `rethrows` (untyped), restoring the typed error.
@inline(__always)
package func typed<R>(_ body: () throws -> R) throws(CasketError) -> R {
    do {
        return try body()
    } catch let error as CasketError {
        throw error
    } catch {
        throw CasketError(.io, "unexpected error: \(error)")
    }
}
