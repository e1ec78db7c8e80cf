/// Durations on the command line and in reports: `24h`, `30m`, `2s`, `500ms`, `7d`, or plain seconds.
public enum GCDuration {
    /// Parses a duration into nanoseconds; `nil` when the text is not one.
    ///
    /// - Parameter text: A non-negative number followed by `ms`, `s`, `m`, `h` or `d` (seconds without a unit).
    public static func parse(_ text: String) -> Int64? {
        let units: [(suffix: String, nanoseconds: Double)] = [
            ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9), ("d", 86400e9),
        ]
        var number = Substring(text)
        var scale = 1e9
        for unit in units where text.hasSuffix(unit.suffix) {
            // "ms" must win over "s": it is listed first and "5ms" also ends in "s".
            number = text.dropLast(unit.suffix.count)
            scale = unit.nanoseconds
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(number), value >= 0, value * scale < 9e18
        else { return nil }
        return Int64(value * scale)
    }

    /// A duration for people: `24h`, `30m`, `2.5s`, `150ms`.
    public static func format(_ nanoseconds: Int64) -> String {
        let ns = Double(nanoseconds)
        if nanoseconds != 0 && nanoseconds % 86_400_000_000_000 == 0 { return "\(nanoseconds / 86_400_000_000_000)d" }
        if nanoseconds != 0 && nanoseconds % 3_600_000_000_000 == 0 { return "\(nanoseconds / 3_600_000_000_000)h" }
        if nanoseconds != 0 && nanoseconds % 60_000_000_000 == 0 { return "\(nanoseconds / 60_000_000_000)m" }
        if ns >= 1e9 || nanoseconds == 0 { return trimmed(ns / 1e9) + "s" }
        return trimmed(ns / 1e6) + "ms"
    }

    private static func trimmed(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        if rounded == rounded.rounded() { return String(Int64(rounded)) }
        return String(rounded)
    }
}
