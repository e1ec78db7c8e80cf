import Foundation

extension TestFiles {
    /// Appends bytes to a file (creating it), as an index writer does.
    public static func append(_ path: String, _ bytes: [UInt8]) throws {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
    }
}

extension Casket {
    /// The path of the `casket-testhelper` load generator built beside `casket`.
    public static func helper() throws -> String {
        let path = (try executable() as NSString).deletingLastPathComponent + "/casket-testhelper"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw NotBuilt(description: "casket-testhelper was not found at \(path): run 'swift build' first")
        }
        return path
    }
}
