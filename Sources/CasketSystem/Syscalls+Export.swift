import CCasketShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The system calls of exporting a payload to a file outside the store (`get -o PATH`).

/// Opens an unnamed file in `directory` (Linux `O_TMPFILE`); it gets a name only once complete.
internal func system_openUnnamed(inDirectory directory: String, mode: mode_t) -> Result<CInt, Errno> {
    valueOrErrno { casket_open_tmpfile(directory, UInt32(mode)) }
}

/// Gives an unnamed file (from ``system_openUnnamed(inDirectory:mode:)``) the name `path`.
internal func system_linkUnnamed(_ fd: CInt, to path: String) -> Result<Void, Errno> {
    nothingOrErrno { casket_link_tmpfile(fd, path) }
}

/// Opens an existing device or FIFO for writing without creating, truncating or following a symlink.
internal func system_openWriteThrough(_ path: String) -> Result<CInt, Errno> {
    valueOrErrno { open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC) }
}
