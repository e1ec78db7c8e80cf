import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a finished subprocess left behind.
public struct ProcessOutput: Sendable, CustomStringConvertible {
    /// The exit status, or 128 + the signal number when a signal ended it.
    public var status: Int32
    /// True when a signal ended the process.
    public var signalled: Bool
    /// Everything written to standard output (empty when it was redirected to a file).
    public var stdout: String
    /// Everything written to standard error.
    public var stderr: String

    /// A summary for failure messages.
    public var description: String {
        "exit \(status)\(signalled ? " (signal)" : "")\nstdout: \(stdout.prefix(2000))\nstderr: \(stderr.prefix(2000))"
    }
}

/// Locates and runs the built `casket` executable as a real subprocess.
public enum Casket {
    /// Why the binary cannot be used.
    public struct NotBuilt: Error, CustomStringConvertible {
        /// The explanation.
        public var description: String
    }

    /// The folder of the running test bundle: `.build/<triple>/debug` under `swift test`.
    public static var buildDirectory: String {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var directory = (exe as NSString).deletingLastPathComponent
        // On Linux the test runner may be `<dir>/casketPackageTests.xctest`; on macOS a bundle's MacOS folder.
        while !directory.isEmpty && directory != "/" && !FileManager.default.fileExists(atPath: directory + "/casket")
            && directory.contains(".xctest")
        {
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory
    }

    /// The path of the `casket` executable: `$CASKET_BINARY` if set, else `casket` beside the test bundle.
    ///
    /// - Throws: ``NotBuilt`` with a message that says how to build it.
    public static func executable() throws -> String {
        if let override = ProcessInfo.processInfo.environment["CASKET_BINARY"], !override.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: override) else {
                throw NotBuilt(description: "CASKET_BINARY=\(override) is not an executable file")
            }
            return override
        }
        let path = buildDirectory + "/casket"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw NotBuilt(
                description: "the casket executable was not found at \(path): run 'swift build' (or 'swift test', "
                    + "which builds it) first, or set CASKET_BINARY")
        }
        return path
    }

    /// Runs `casket` with `arguments` and waits for it.
    ///
    /// - Parameters:
    ///   - arguments: The command line after the program name.
    ///   - stdinFile: A file to connect to standard input (default: /dev/null).
    ///   - stdoutFile: A file to receive standard output instead of capturing it.
    public static func run(
        _ arguments: [String], stdinFile: String? = nil, stdoutFile: String? = nil
    ) throws -> ProcessOutput {
        try runProgram(try executable(), arguments, stdinFile: stdinFile, stdoutFile: stdoutFile)
    }

    /// Starts `casket` without waiting; see ``Child``.
    public static func start(_ arguments: [String]) throws -> Child {
        try Child(executable: try executable(), arguments: arguments)
    }
}

/// Runs any program and waits for it, capturing standard output and error through files (no pipe deadlock).
public func runProgram(
    _ executable: String, _ arguments: [String], stdinFile: String? = nil, stdoutFile: String? = nil
) throws -> ProcessOutput {
    let child = try Child(executable: executable, arguments: arguments, stdinFile: stdinFile, stdoutFile: stdoutFile)
    return child.wait()
}

/// A running subprocess whose output goes to temp files, so that it can be killed at any moment.
public final class Child: @unchecked Sendable {
    private let process = Process()
    private let outputs: TemporaryDirectory
    private let stdoutPath: String
    private let capturesStdout: Bool

    /// The child's process id.
    public var pid: Int32 { process.processIdentifier }

    /// Starts `executable` with `arguments`; standard output goes to `stdoutFile` if given, else is captured.
    public init(executable: String, arguments: [String], stdinFile: String? = nil, stdoutFile: String? = nil) throws {
        outputs = try TemporaryDirectory(prefix: "casket-proc")
        capturesStdout = stdoutFile == nil
        stdoutPath = stdoutFile ?? outputs.child("stdout")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: outputs.child("stderr"), contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: stdinFile ?? "/dev/null"))
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: outputs.child("stderr")))
        try process.run()
    }

    /// Sends a signal (for example `SIGKILL`).
    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Whether the process is still running.
    public var isRunning: Bool { process.isRunning }

    /// Waits for the process to end and collects its output.
    public func wait() -> ProcessOutput {
        process.waitUntilExit()
        let signalled = process.terminationReason == .uncaughtSignal
        let status = signalled ? 128 + process.terminationStatus : process.terminationStatus
        let out = capturesStdout ? (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" : ""
        let err = (try? String(contentsOfFile: outputs.child("stderr"), encoding: .utf8)) ?? ""
        return ProcessOutput(status: status, signalled: signalled, stdout: out, stderr: err)
    }
}

/// A start barrier for child processes: each child blocks reading a FIFO until ``release()``, which closes
/// the only write end so that every child sees end-of-file at the same instant.
public final class StartBarrier: @unchecked Sendable {
    /// The FIFO's path.
    public let fifo: String
    /// The folder where each child drops a ready file once it holds the FIFO open.
    public let readyDirectory: String
    private var fd: Int32

    /// Creates the FIFO inside `directory` and holds it open read-write (so that children can open it).
    public init(in directory: String) throws {
        fifo = directory + "/barrier.fifo"
        readyDirectory = directory + "/ready"
        try FileManager.default.createDirectory(atPath: readyDirectory, withIntermediateDirectories: true)
        guard mkfifo(fifo, 0o600) == 0 else { throw CLI.NotBuilt(description: "mkfifo \(fifo) failed") }
        fd = open(fifo, O_RDWR)
        guard fd >= 0 else { throw CLI.NotBuilt(description: "open \(fifo) failed") }
    }

    /// A `sh -c` script that waits at the barrier, then execs `"$@"`; pass a unique `id` per child.
    public func script(id: Int) -> String {
        "exec 3<'\(fifo)'; : > '\(readyDirectory)/\(id)'; cat <&3 >/dev/null; exec 3<&-; exec \"$@\""
    }

    /// Waits until `count` children are at the barrier, then lets them all go.
    public func release(waitingFor count: Int, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while TestFiles.names(in: readyDirectory).count < count {
            guard Date() < deadline else {
                throw CLI.NotBuilt(
                    description:
                        "only \(TestFiles.names(in: readyDirectory).count) of \(count) children reached the barrier")
            }
            usleep(2_000)
        }
        close(fd)
        fd = -1
    }

    deinit { if fd >= 0 { close(fd) } }
}

/// Another name for ``Casket`` (the CLI runner), unambiguous where the `Casket` module is imported too.
public typealias CLI = Casket
