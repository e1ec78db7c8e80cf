import Casket

/// numpy dtype strings as exca writes them (`str(np.dtype)`): their item size, and whether they can be migrated.
enum ExcaDType {
    /// The bytes of one item, or the reason the dtype cannot be migrated.
    static func itemSize(_ text: String) -> Result<Int64, Unmigratable> {
        if text == "object" || text == "O" || text.hasSuffix("|O") || text == "<O" {
            return .failure(
                Unmigratable(reason: "object dtype: exca wrote raw PyObject pointers, which cannot be loaded"))
        }
        if text.hasPrefix("[") || text.hasPrefix("{") || text.hasPrefix("(") {
            return .failure(Unmigratable(reason: "structured dtype \(text): exca writes it but cannot load it"))
        }
        let named: [String: Int64] = [
            "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2, "int32": 4, "uint32": 4,
            "float32": 4, "int64": 8, "uint64": 8, "float64": 8, "complex64": 8, "complex128": 16,
            "float128": 16, "longdouble": 16, "complex256": 32, "clongdouble": 32,
        ]
        if let size = named[text] { return .success(size) }
        var body = Substring(text)
        if let first = body.first, "<>|=".contains(first) { body = body.dropFirst() }
        guard let kind = body.first else { return .failure(Unmigratable(reason: "unknown dtype '\(text)'")) }
        var rest = body.dropFirst()
        if kind == "M" || kind == "m" {  // datetime64 / timedelta64: <M8[ns]
            if let bracket = rest.firstIndex(of: "[") { rest = rest[..<bracket] }
        }
        guard let count = Int64(rest), count > 0 else {
            return .failure(Unmigratable(reason: "unknown dtype '\(text)'"))
        }
        switch kind {
        case "b", "i", "u", "f", "c", "S", "V", "M", "m", "a": return .success(count)
        case "U": return .success(count * 4)
        case "O":
            return .failure(
                Unmigratable(reason: "object dtype: exca wrote raw PyObject pointers, which cannot be loaded"))
        default: return .failure(Unmigratable(reason: "unknown dtype '\(text)'"))
        }
    }

    /// `prod(shape) * itemsize`, or the reason it cannot be computed.
    static func byteCount(shape: JSONValue?, dtype: JSONValue?) -> Result<Int64, Unmigratable> {
        guard let dtypeText = dtype?.stringValue else { return .failure(Unmigratable(reason: "no string \"dtype\"")) }
        guard let dims = shape?.arrayValue else { return .failure(Unmigratable(reason: "no array \"shape\"")) }
        var count: Int64 = 1
        for dim in dims {
            guard let n = dim.intValue, n >= 0 else {
                return .failure(Unmigratable(reason: "shape \(shape!.encoded) is not integers"))
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { return .failure(Unmigratable(reason: "shape \(shape!.encoded) overflows")) }
            count = product
        }
        switch itemSize(dtypeText) {
        case .failure(let reason): return .failure(reason)
        case .success(let size):
            let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
            return overflow ? .failure(Unmigratable(reason: "shape \(shape!.encoded) overflows")) : .success(bytes)
        }
    }
}
