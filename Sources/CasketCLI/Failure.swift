import ArgumentParser
import Casket

/// The one place that decides a failed command's exit status and what it prints (README, "The command
/// line"): every command, every kind of failure.
///
/// - usage errors (a bad option, a bad value, an argument that is not UTF-8, `invalid_argument`): exit 2;
/// - `busy` (another collector or compaction holds the lock): exit 3; `clock_skew`: exit 4;
/// - any other failure: exit 1.
///
/// The message goes to standard error; with `--json` the same error is also printed on standard output
/// as `{"error":{"code":…,"message":…,"path":…}}` (code `usage` for usage errors).
enum Failure {
    static let usage: Int32 = 2

    /// The exit status of a store error.
    static func status(for error: CasketError) -> Int32 {
        if error.code == .invalidArgument { return usage }
        if error.code == .busy { return MaintenanceExit.lockHeld }
        if error.code == .clockSkew { return MaintenanceExit.clockSkew }
        return 1
    }

    /// Prints a store error and returns the exit status to end with.
    static func report(_ error: CasketError, json: Bool) -> Int32 {
        Output.failure(error, json: json)
        return status(for: error)
    }

    /// Prints a usage error and returns exit status 2.
    /// - Parameter short: The message without the usage text, for the JSON object.
    static func reportUsage(_ message: String, json: Bool, short: String? = nil) -> Int32 {
        if json { Output.json(["error": ["code": "usage", "message": short ?? message]]) }
        Output.standardError(
            message.hasPrefix("Error:") || message.hasPrefix("Usage:") ? message : "casket: error: \(message)")
        return usage
    }

    /// The command-line arguments as the kernel passed them, refusing any that is not valid UTF-8.
    ///
    /// Swift's `CommandLine.arguments` repairs invalid UTF-8 to U+FFFD, so the keys `k\xff` and `k\xfe`
    /// would become one key and a second `set` would overwrite the first. Keys are UTF-8 text
    /// (docs/FORMAT.md, section 5.2): such an argument is a usage error naming it, byte for byte.
    static func invalidArgument() -> String? {
        for index in 1..<Int(CommandLine.argc) {
            guard let pointer = CommandLine.unsafeArgv[index] else { continue }
            var length = 0
            while pointer[length] != 0 { length += 1 }
            let bytes = Array(UnsafeBufferPointer(start: pointer, count: length)).map { UInt8(bitPattern: $0) }
            if String(validating: bytes, as: UTF8.self) == nil {
                return "argument \(index) is not valid UTF-8: \(KeyDisplay.quoted(bytes: bytes)) (keys, paths and "
                    + "options must be UTF-8 text)"
            }
        }
        return nil
    }
}
