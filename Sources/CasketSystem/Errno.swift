#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX error number, as returned by a failed system call.
///
/// Casket's syscall layer reports failures as `Errno`; the public API wraps them in ``CasketError``
/// together with the path the call was about.
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    /// The C `errno` value.
    public let rawValue: CInt

    /// Creates an error number from its C value.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// The system's text for this error, as `strerror(3)` gives it.
    public var description: String { String(cString: strerror(rawValue)) }

    /// Interrupted system call. The corresponding C error is `EINTR`.
    public static let interrupted = Errno(rawValue: EINTR)
    /// No such file or directory. The corresponding C error is `ENOENT`.
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    /// File exists. The corresponding C error is `EEXIST`.
    public static let fileExists = Errno(rawValue: EEXIST)
    /// Permission denied. The corresponding C error is `EACCES`.
    public static let permissionDenied = Errno(rawValue: EACCES)
    /// Operation not permitted. The corresponding C error is `EPERM`.
    public static let notPermitted = Errno(rawValue: EPERM)
    /// Is a directory. The corresponding C error is `EISDIR`.
    public static let isDirectory = Errno(rawValue: EISDIR)
    /// Not a directory. The corresponding C error is `ENOTDIR`.
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    /// No space left on device. The corresponding C error is `ENOSPC`.
    public static let noSpace = Errno(rawValue: ENOSPC)
    /// Disk quota exceeded. The corresponding C error is `EDQUOT`.
    public static let diskQuotaExceeded = Errno(rawValue: EDQUOT)
    /// File too large. The corresponding C error is `EFBIG`.
    public static let fileTooLarge = Errno(rawValue: EFBIG)
    /// Invalid argument. The corresponding C error is `EINVAL`.
    public static let invalidArgument = Errno(rawValue: EINVAL)
    /// Function not implemented. The corresponding C error is `ENOSYS`.
    public static let notImplemented = Errno(rawValue: ENOSYS)
    /// Operation not supported. The corresponding C error is `ENOTSUP` (`EOPNOTSUPP`).
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    /// Cross-device link. The corresponding C error is `EXDEV`.
    public static let crossDevice = Errno(rawValue: EXDEV)
    /// No such process. The corresponding C error is `ESRCH`.
    public static let noSuchProcess = Errno(rawValue: ESRCH)
    /// Too many links. The corresponding C error is `EMLINK`.
    public static let tooManyLinks = Errno(rawValue: EMLINK)
    /// Too many levels of symbolic links; what `O_NOFOLLOW` returns for a link. The C error is `ELOOP`.
    public static let tooManySymbolicLinks = Errno(rawValue: ELOOP)
    /// No such device or address; what a non-blocking open for writing of a FIFO without a reader
    /// returns. The C error is `ENXIO`.
    public static let noSuchDevice = Errno(rawValue: ENXIO)
    /// Directory not empty. The C error is `ENOTEMPTY`.
    public static let directoryNotEmpty = Errno(rawValue: ENOTEMPTY)
}
