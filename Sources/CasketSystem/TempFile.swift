/// A uniquely named file in the store's `tmp/` folder that removes itself unless it was published.
///
/// Named `<host>.<pid>.<random>.tmp` (docs/FORMAT.md, section 4), so that a leftover from a killed
/// process is recognisable as debris and GC can remove it by age.
package struct TempFile: ~Copyable {
    package let handle: FileHandle
    /// The folder it was created in.
    package let directory: Directory
    /// Its name in that folder.
    package let name: String
    package var path: String { handle.path }
    private var published = false

    package static let suffix = ".tmp"

    package static func uniqueName() -> String {
        "\(HostIdentity.host).\(HostIdentity.pid).\(HostIdentity.randomHex(bytes: 8))\(TempFile.suffix)"
    }

    /// Whether `name` has the shape of ``uniqueName()``: `<host>.<pid>.<16 hex digits>.tmp`, the host part
    /// made of `[A-Za-z0-9_-]` (docs/FORMAT.md, section 4).
    package static func isTempName(_ name: String) -> Bool {
        guard name.hasSuffix(suffix) else { return false }
        let parts = name.dropLast(suffix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return false }
        let host = parts[0].utf8
        let pid = parts[1].utf8
        let random = parts[2].utf8
        func isWordByte(_ b: UInt8) -> Bool {
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x5F
                || b == 0x2D
        }
        return !host.isEmpty && host.allSatisfy(isWordByte) && !pid.isEmpty
            && pid.allSatisfy { (0x30...0x39).contains($0) } && random.count == 16
            && random.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Creates the file in `directory`, relative to its descriptor.
    package init(in directory: Directory, named name: String? = nil, mode: UInt32 = 0o444) throws(CasketError) {
        let name = name ?? TempFile.uniqueName()
        self.name = name
        self.directory = directory
        handle = try directory.createExclusive(name, mode: mode)
    }

    /// Records that the file now lives under another name (or was removed), so deinit leaves it alone.
    package mutating func markGone() { published = true }

    deinit {
        if published { return }
        _ = directory.remove(name)
    }
}
