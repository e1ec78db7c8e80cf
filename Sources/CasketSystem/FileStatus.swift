#if canImport(Glibc)
package import Glibc
#elseif canImport(Darwin)
package import Darwin
#endif

/// What `lstat` (or `fstat`) says about a file: the facts the store judges files by, without Glibc's types.
public struct FileStatus: Sendable, Equatable {
    /// The type of a directory entry, from its mode bits; a symbolic link is never resolved.
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        case regular, directory, symbolicLink, fifo, socket, characterDevice, blockDevice, unknown

        /// A phrase for messages: "a symbolic link", "a FIFO".
        public var description: String {
            switch self {
            case .regular: "a regular file"
            case .directory: "a directory"
            case .symbolicLink: "a symbolic link"
            case .fifo: "a FIFO"
            case .socket: "a socket"
            case .characterDevice: "a character device"
            case .blockDevice: "a block device"
            case .unknown: "a file of unknown type"
            }
        }
    }

    /// The entry's type.
    public var kind: Kind
    /// Size in bytes.
    public var size: Int64
    /// Modification time, nanoseconds since the epoch.
    public var mtimeNanoseconds: Int64
    /// Hard links to the inode.
    public var linkCount: Int
    /// The inode number; with ``device``, the file's identity.
    public var inode: UInt64
    /// The device holding the file.
    public var device: UInt64
    /// Permission bits (and setuid, setgid, sticky).
    public var permissions: UInt32
    /// The owner's user id.
    public var user: UInt32
    /// The owning group's id.
    public var group: UInt32

    /// True for a regular file.
    public var isRegularFile: Bool { kind == .regular }
    /// True for a directory.
    public var isDirectory: Bool { kind == .directory }

    package init(_ st: stat) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symbolicLink
        case S_IFIFO: kind = .fifo
        case S_IFSOCK: kind = .socket
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        default: kind = .unknown
        }
        size = Int64(st.st_size)
        mtimeNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        linkCount = Int(st.st_nlink)
        inode = UInt64(st.st_ino)
        device = UInt64(st.st_dev)
        permissions = UInt32(st.st_mode & 0o7777)
        user = UInt32(st.st_uid)
        group = UInt32(st.st_gid)
    }

    /// Whether two statuses describe the same file (device and inode).
    public func isSameFile(as other: FileStatus) -> Bool { inode == other.inode && device == other.device }
}
