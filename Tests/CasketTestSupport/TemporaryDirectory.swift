import Foundation

/// A fresh directory under the system temp folder, removed (with everything in it) when released.
///
/// ```swift
/// try withTemporaryDirectory { dir in
///     try Data().write(to: URL(fileURLWithPath: dir + "/file"))
/// }
/// ```
public final class TemporaryDirectory: @unchecked Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Creates a new, empty directory whose name starts with `prefix`.
    public init(prefix: String = "casket-test") throws {
        let base = ProcessInfo.processInfo.environment["CASKET_TEST_TMPDIR"] ?? NSTemporaryDirectory()
        let name = "\(prefix)-\(UUID().uuidString.prefix(12))"
        path = (base as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside the directory (not created).
    public func child(_ name: String) -> String { path + "/" + name }

    deinit {
        // Published blobs are 0444 and a test may have chmod'ed things to 000: make it all removable first.
        if let enumerator = FileManager.default.enumerator(atPath: path) {
            for case let relative as String in enumerator {
                chmod(path + "/" + relative, 0o755)
            }
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs `body` with a fresh temporary directory that is removed afterwards, whatever happens.
public func withTemporaryDirectory<R>(
    prefix: String = "casket-test", _ body: (String) throws -> R
) throws -> R {
    let directory = try TemporaryDirectory(prefix: prefix)
    return try withExtendedLifetime(directory) { try body(directory.path) }
}
