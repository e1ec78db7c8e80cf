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
