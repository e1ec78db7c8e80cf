/// A JSON value that keeps what index and exca lines need kept exactly: the order of object fields and
/// the text of numbers (so an integer beyond 2^53 or a float such as `2000.0` survives a round trip).
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, as its JSON text.
    case number(String)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, fields in their order of appearance.
    case object(JSONObject)

    /// Structural equality; strings compare as their UTF-8 bytes (keys, file names and values are byte
    /// strings: `String ==` would make "café" in NFC and NFD one value).
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a.sameBytes(as: b)
        case (.string(let a), .string(let b)): return a.sameBytes(as: b)
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }

    /// A number from an integer.
    public static func int<I: BinaryInteger>(_ value: I) -> JSONValue { .number(String(value)) }

    /// The field `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// The string, when this is one.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer, when this is a number written as an integer that fits in 64 bits.
    public var intValue: Int64? {
        if case .number(let text) = self { return Int64(text) }
        return nil
    }

    /// The number as a double, when this is a number.
    public var doubleValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    /// The Boolean, when this is one.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The object, when this is one.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }
}

/// A JSON object that keeps its fields in order. Lookup is linear: objects here have a handful of fields.
public struct JSONObject: Sendable, Equatable, Sequence {
    /// The fields in order.
    public var fields: [(key: String, value: JSONValue)]

    /// Creates an object from fields in order.
    public init(_ fields: [(key: String, value: JSONValue)] = []) { self.fields = fields }

    /// The value of the first field named `key`; setting replaces it in place or appends it.
    public subscript(key: String) -> JSONValue? {
        get { fields.first { $0.key.sameBytes(as: key) }?.value }
        set {
            if let index = fields.firstIndex(where: { $0.key.sameBytes(as: key) }) {
                if let newValue { fields[index].value = newValue } else { fields.remove(at: index) }
            } else if let newValue {
                fields.append((key, newValue))
            }
        }
    }

    /// Iterates over the fields in order.
    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> { fields.makeIterator() }

    /// Field-by-field equality, order included.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.key.sameBytes(as: $1.key) && $0.value == $1.value }
    }
}
