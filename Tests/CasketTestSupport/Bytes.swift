import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Deterministic test data.
public enum TestBytes {
    /// The known-answer pattern: byte `i` is `(7 i + 13 (i >> 8) + 1) mod 256`.
    ///
    /// The same bytes in Python: `bytes(((i * 7) + (i >> 8) * 13 + 1) & 0xFF for i in range(n))`.
    public static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { i in UInt8(truncatingIfNeeded: i &* 7 &+ (i >> 8) &* 13 &+ 1) }
    }

    /// Incompressible pseudo-random bytes (xorshift64*), the same for the same seed.
    public static func random(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            while i < count {
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                var word = state &* 0x2545_F491_4F6C_DD1D
                for _ in 0..<8 where i < count {
                    raw[i] = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    i += 1
                }
            }
        }
        return out
    }

    /// Text-like bytes that LZ4 compresses well.
    public static func compressible(_ count: Int) -> [UInt8] {
        let line = Array("casket stores every payload once, under its XXH3-128 hash. ".utf8)
        return (0..<count).map { line[$0 % line.count] &+ UInt8(truncatingIfNeeded: ($0 / 4096) % 3) }
    }

    /// Writes a large file of incompressible bytes in 4 MiB pieces; `seed` makes its content unique.
    public static func writeLargeFile(_ path: String, size: Int, seed: UInt64) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let piece = 4 << 20
        let block = random(piece, seed: seed)
        var written = 0
        var index: UInt64 = 0
        while written < size {
            var chunk = Array(block[0..<min(piece, size - written)])
            // Make each piece distinct so that the file is not a repetition.
            withUnsafeBytes(of: index.littleEndian) {
                for (k, b) in $0.enumerated() where k < chunk.count { chunk[k] = b }
            }
            try handle.write(contentsOf: chunk)
            written += chunk.count
            index += 1
        }
    }
}

/// Small file-system helpers for tests.
public enum TestFiles {
    /// Writes bytes to a file, replacing it.
    public static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Reads a whole file.
    public static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Every regular file under `path`, as paths relative to it, sorted.
    public static func regularFiles(under path: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return [] }
        var files: [String] = []
        for case let relative as String in enumerator {
            var st = Glibc.stat()
            if lstat(path + "/" + relative, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { files.append(relative) }
        }
        return files.sorted()
    }

    /// The names in a directory (empty when it does not exist).
    public static func names(in path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// What `stat` says about a path.
    public struct Info: Sendable {
        /// Size in bytes.
        public var size: Int64
        /// Permission bits.
        public var mode: UInt32
        /// True for a regular file.
        public var isRegularFile: Bool
        /// Modification time in nanoseconds since the epoch.
        public var mtimeNanoseconds: Int64
    }

    /// `stat` of a path; nil when it does not exist.
    public static func info(_ path: String) -> Info? {
        var st = Glibc.stat()
        guard fstatat(AT_FDCWD, path, &st, 0) == 0 else { return nil }
        return Info(
            size: Int64(st.st_size), mode: UInt32(st.st_mode & 0o7777), isRegularFile: (st.st_mode & S_IFMT) == S_IFREG,
            mtimeNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    /// Sets a file's access and modification times to `secondsSinceEpoch`.
    public static func setMtime(_ path: String, secondsSinceEpoch: Int) {
        var times = [timespec(tv_sec: secondsSinceEpoch, tv_nsec: 0), timespec(tv_sec: secondsSinceEpoch, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    /// Truncates a file to `length` bytes (making it writable first: blobs are 0444).
    public static func truncate(_ path: String, to length: Int) {
        chmod(path, 0o644)
        _ = Glibc.truncate(path, off_t(length))
    }

    /// Flips every bit of the byte at `offset`.
    public static func flipByte(_ path: String, at offset: Int) throws {
        chmod(path, 0o644)
        var bytes = try read(path)
        bytes[offset] ^= 0xFF
        try write(path, bytes)
    }

    /// Whether the current process runs as root (and so ignores file permissions).
    public static var isRoot: Bool { geteuid() == 0 }
}
