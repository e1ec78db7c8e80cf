import Casket
import Foundation

/// Printing helpers: human text, JSON, errors.
enum Output {
    static func standardError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Prints one JSON value (object or array) on a line, keys sorted for stable output.
    static func json(_ value: Any) {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        else {
            standardError("casket: internal error: value is not JSON")
            return
        }
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// Prints a `JSONValue` exactly (field order and number text kept).
    static func json(_ value: JSONValue) {
        FileHandle.standardOutput.write(Data((value.encoded + "\n").utf8))
    }

    static func errorObject(_ error: CasketError) -> [String: Any] {
        var object: [String: Any] = ["code": error.code.description, "message": error.description]
        if let path = error.path { object["path"] = path }
        return object
    }

    static func failure(_ error: CasketError, json: Bool) {
        if json { Output.json(["error": errorObject(error)]) }
        standardError("casket: error: \(error)")
    }

    /// A byte count for people: 1.5 GiB.
    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.2f %@", value, units[unit])
    }
}
