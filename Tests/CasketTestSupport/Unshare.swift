import Foundation

/// Runs a command as a container on this node would: its own UTS and PID namespaces (`unshare`), with a
/// host name of the test's choosing. Two such commands may share a host name and a boot, never a PID
/// namespace, so a pid written by one means nothing to the other.
public enum Unshare {
    /// The `unshare` program.
    public static let executable = "/usr/bin/unshare"

    /// Whether namespaces can be made here (root and `unshare`).
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: executable) && TestFiles.isRoot }

    /// The arguments for `unshare` that run `command` with host name `host`.
    ///
    /// - Parameters:
    ///   - host: The host name inside.
    ///   - burnPids: Short processes started first, so that the command's pid (about `burnPids + 2`) does
    ///     not exist in another fresh namespace; the shell stays pid 1 and returns the command's status.
    ///   - command: The program and its arguments (no quoting needed for paths without `'`).
    public static func arguments(host: String, burnPids: Int = 0, _ command: [String]) -> [String] {
        let words = command.map { "'\($0)'" }.joined(separator: " ")
        let burn = burnPids > 0 ? "for i in $(seq \(burnPids)); do /bin/true; done; " : ""
        return [
            "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", "hostname \(host); \(burn)\(words)",
        ]
    }

    /// Starts `command` in new namespaces without waiting; standard output goes to `stdoutFile` if given.
    public static func start(host: String, burnPids: Int = 0, _ command: [String], stdoutFile: String? = nil) throws
        -> Child
    {
        try Child(
            executable: executable, arguments: arguments(host: host, burnPids: burnPids, command),
            stdoutFile: stdoutFile)
    }

    /// Runs `command` in new namespaces and waits for it.
    public static func run(host: String, burnPids: Int = 0, _ command: [String]) throws -> ProcessOutput {
        try start(host: host, burnPids: burnPids, command).wait()
    }
}
