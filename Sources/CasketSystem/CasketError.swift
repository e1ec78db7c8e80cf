/// The one error type of Casket's public API.
///
/// Every error carries a ``Code`` that scripts can switch on, a message that names the file or blob it
/// is about, and, when a system call failed, the ``Errno`` it returned.
public struct CasketError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added without breaking clients.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String, Sendable {
            case notAStore = "not_a_store"
            case unsupportedVersion = "unsupported_version"
            case invalidConfig = "invalid_config"
            case invalidHash = "invalid_hash"
            case invalidArgument = "invalid_argument"
            case notFound = "not_found"
            case alreadyExists = "already_exists"
            case corrupt = "corrupt"
            case permissionDenied = "permission_denied"
            case noSpace = "no_space"
            case notARegularFile = "not_a_regular_file"
            case io = "io"
            case compression = "compression"
            case changedWhileReading = "changed_while_reading"
            case unsupportedValue = "unsupported_value"
            case busy = "busy"
            case clockSkew = "clock_skew"
            case unsafePath = "unsafe_path"
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A stable snake_case name for the code, used in JSON output.
        public var description: String { wrapped.rawValue }

        /// The folder is not a Casket store (no valid `casket.json`).
        public static let notAStore = Code(.notAStore)
        /// The store was written by a newer Casket format version.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// `casket.json` exists but cannot be understood.
        public static let invalidConfig = Code(.invalidConfig)
        /// A string that should be a 32-digit lowercase hex XXH3-128 digest is not one.
        public static let invalidHash = Code(.invalidHash)
        /// An argument is out of its domain.
        public static let invalidArgument = Code(.invalidArgument)
        /// A file, blob or key does not exist.
        public static let notFound = Code(.notFound)
        /// Something that must be new already exists.
        public static let alreadyExists = Code(.alreadyExists)
        /// Stored bytes do not match their hash, or a stored structure is damaged.
        public static let corrupt = Code(.corrupt)
        /// The operating system refused access.
        public static let permissionDenied = Code(.permissionDenied)
        /// The disk or quota is full, or a file size limit was hit.
        public static let noSpace = Code(.noSpace)
        /// A path names a directory or another non-regular file where a regular file is needed.
        public static let notARegularFile = Code(.notARegularFile)
        /// Another input/output failure.
        public static let io = Code(.io)
        /// LZ4 compression or decompression failed.
        public static let compression = Code(.compression)
        /// A file changed between two passes over it.
        public static let changedWhileReading = Code(.changedWhileReading)
        /// A stored value cannot be returned the way it was asked for.
        public static let unsupportedValue = Code(.unsupportedValue)
        /// Another process holds a lock that this operation needs.
        public static let busy = Code(.busy)
        /// This host's clock and the file system's differ too much for a time-based decision (garbage
        /// collection) to be safe.
        public static let clockSkew = Code(.clockSkew)
        /// A path would leave the folder it must stay in, or passes through a symbolic link inside the
        /// store (or a migrated cache), which Casket never follows.
        public static let unsafePath = Code(.unsafePath)
    }

    /// What kind of failure this is.
    public var code: Code
    /// A sentence for a person, naming the path or blob concerned.
    public var message: String
    /// The file the error is about, when there is one.
    public var path: String?
    /// The system error behind this one, when a system call failed.
    public var errno: Errno?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: A sentence naming what failed.
    ///   - path: The file concerned, if any.
    ///   - errno: The system error behind it, if any.
    public init(_ code: Code, _ message: String, path: String? = nil, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.errno = errno
    }

    /// The message, followed by the system error's text when there is one.
    public var description: String {
        guard let errno else { return message }
        return "\(message): \(errno)"
    }
}
