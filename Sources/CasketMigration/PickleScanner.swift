import Casket

/// A minimal pickle reader that finds the exca info dicts an `AutoPickle` pickle embeds.
///
/// It runs the pickle machine on a small model of values (strings, integers, dicts, lists and tuples;
/// everything else is opaque) and never executes anything: `GLOBAL`, `REDUCE` and the like only produce
/// opaque values. Every dict built is kept, and those with a string `filename` and a string `#type` are
/// returned, their values translated to JSON.
enum PickleScanner {
    final class Box {
        var items: [(Value, Value)] = []
        var elements: [Value] = []
        let isDict: Bool
        init(isDict: Bool) { self.isDict = isDict }
    }

    enum Value {
        case string(String)
        case int(Int64)
        case float(Double)
        case bool(Bool)
        case none
        case container(Box)
        case opaque
        case mark
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The embedded info dicts, as JSON objects, in the order they were built.
    static func infoDicts(in bytes: [UInt8]) throws(Failure) -> [JSONObject] {
        var machine = Machine(bytes: bytes)
        try machine.run()
        var found: [JSONObject] = []
        for box in machine.dicts {
            var object = JSONObject()
            for (key, value) in box.items {
                guard case .string(let name) = key, let json = json(value, depth: 0) else { continue }
                object[name] = json
            }
            if object["filename"]?.stringValue != nil, object["#type"]?.stringValue != nil { found.append(object) }
        }
        return found
    }

    static func json(_ value: Value, depth: Int) -> JSONValue? {
        guard depth < 32 else { return nil }
        switch value {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .float(let d): return .number(String(d))
        case .bool(let b): return .bool(b)
        case .none: return .null
        case .container(let box) where !box.isDict:
            var out: [JSONValue] = []
            for element in box.elements {
                guard let item = json(element, depth: depth + 1) else { return nil }
                out.append(item)
            }
            return .array(out)
        default: return nil
        }
    }

    struct Machine {
        let bytes: [UInt8]
        var position = 0
        var stack: [Value] = []
        var memo: [Int: Value] = [:]
        var dicts: [Box] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func fail(_ why: String) -> Failure { Failure(description: "\(why) at byte \(position)") }

        mutating func take(_ n: Int) throws(Failure) -> ArraySlice<UInt8> {
            guard n >= 0, position + n <= bytes.count else { throw fail("truncated pickle") }
            defer { position += n }
            return bytes[position..<(position + n)]
        }

        mutating func uint(_ n: Int) throws(Failure) -> Int {
            var value = 0
            for (i, byte) in try take(n).enumerated() { value |= Int(byte) << (8 * i) }
            return value
        }

        mutating func line() throws(Failure) -> String {
            guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("unterminated line") }
            defer { position = end + 1 }
            return String(decoding: bytes[position..<end], as: UTF8.self)
        }

        mutating func pop() throws(Failure) -> Value {
            guard let value = stack.popLast() else { throw fail("stack underflow") }
            return value
        }

        mutating func popToMark() throws(Failure) -> [Value] {
            guard let index = stack.lastIndex(where: { if case .mark = $0 { return true } else { return false } })
            else { throw fail("no mark") }
            let items = Array(stack[(index + 1)...])
            stack.removeSubrange(index...)
            return items
        }

        mutating func top() throws(Failure) -> Value {
            guard let value = stack.last else { throw fail("stack underflow") }
            return value
        }

        mutating func newContainer(dict: Bool) -> Value {
            let box = Box(isDict: dict)
            if dict { dicts.append(box) }
            return .container(box)
        }

        mutating func setItems(_ items: [Value]) throws(Failure) {
            guard case .container(let box) = try top(), box.isDict else {
                return  // a dict subclass or an object's state: opaque
            }
            var index = 0
            while index + 1 < items.count {
                box.items.append((items[index], items[index + 1]))
                index += 2
            }
        }

        mutating func append(_ items: [Value]) throws(Failure) {
            if case .container(let box) = try top(), !box.isDict { box.elements.append(contentsOf: items) }
        }

        mutating func tuple(_ items: [Value]) -> Value {
            let box = Box(isDict: false)
            box.elements = items
            return .container(box)
        }

        mutating func run() throws(Failure) {
            while position < bytes.count {
                let op = bytes[position]
                position += 1
                switch op {
                case 0x80: _ = try take(1)  // PROTO
                case 0x95: _ = try take(8)  // FRAME
                case 0x2E: return  // STOP
                case 0x7D: stack.append(newContainer(dict: true))  // EMPTY_DICT
                case 0x5D: stack.append(newContainer(dict: false))  // EMPTY_LIST
                case 0x29: stack.append(tuple([]))  // EMPTY_TUPLE
                case 0x8F: stack.append(.opaque)  // EMPTY_SET
                case 0x28: stack.append(.mark)  // MARK
                case 0x8C: stack.append(.string(try utf8(try uint(1))))  // SHORT_BINUNICODE
                case 0x58: stack.append(.string(try utf8(try uint(4))))  // BINUNICODE
                case 0x8D: stack.append(.string(try utf8(try uint(8))))  // BINUNICODE8
                case 0x43, 0x55: _ = try take(try uint(1)); stack.append(.opaque)  // SHORT_BINBYTES, SHORT_BINSTRING
                case 0x42, 0x54: _ = try take(try uint(4)); stack.append(.opaque)  // BINBYTES, BINSTRING
                case 0x8E, 0x96: _ = try take(try uint(8)); stack.append(.opaque)  // BINBYTES8, BYTEARRAY8
                case 0x4A:  // BININT
                    stack.append(.int(Int64(Int32(truncatingIfNeeded: UInt32(try uint(4))))))
                case 0x4B: stack.append(.int(Int64(try uint(1))))  // BININT1
                case 0x4D: stack.append(.int(Int64(try uint(2))))  // BININT2
                case 0x8A, 0x8B:  // LONG1, LONG4
                    let n = op == 0x8A ? try uint(1) : try uint(4)
                    let digits = try take(n)
                    if n <= 8 {
                        var value: UInt64 = 0
                        for (i, byte) in digits.enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
                        if n > 0 && n < 8 && digits.last! & 0x80 != 0 { value |= ~0 << (8 * UInt64(n)) }
                        stack.append(.int(Int64(bitPattern: value)))
                    } else {
                        stack.append(.opaque)
                    }
                case 0x47:  // BINFLOAT, big-endian
                    var raw: UInt64 = 0
                    for byte in try take(8) { raw = raw << 8 | UInt64(byte) }
                    stack.append(.float(Double(bitPattern: raw)))
                case 0x4E: stack.append(.none)
                case 0x88: stack.append(.bool(true))
                case 0x89: stack.append(.bool(false))
                case 0x94: memo[memo.count] = try top()  // MEMOIZE
                case 0x71: memo[try uint(1)] = try top()  // BINPUT
                case 0x72: memo[try uint(4)] = try top()  // LONG_BINPUT
                case 0x68, 0x6A:  // BINGET, LONG_BINGET
                    let index = op == 0x68 ? try uint(1) : try uint(4)
                    guard let value = memo[index] else { throw fail("memo \(index) unset") }
                    stack.append(value)
                case 0x73:  // SETITEM
                    let value = try pop()
                    let key = try pop()
                    try setItems([key, value])
                case 0x75: try setItems(try popToMark())  // SETITEMS
                case 0x61: try append([try pop()])  // APPEND
                case 0x65: try append(try popToMark())  // APPENDS
                case 0x90: _ = try popToMark()  // ADDITEMS
                case 0x91: _ = try popToMark(); stack.append(.opaque)  // FROZENSET
                case 0x74: let items = try popToMark(); stack.append(tuple(items))  // TUPLE
                case 0x85: let a = try pop(); stack.append(tuple([a]))
                case 0x86:
                    let b = try pop()
                    let a = try pop()
                    stack.append(tuple([a, b]))
                case 0x87:
                    let c = try pop()
                    let b = try pop()
                    let a = try pop()
                    stack.append(tuple([a, b, c]))
                case 0x63: _ = try line(); _ = try line(); stack.append(.opaque)  // GLOBAL
                case 0x93: _ = try pop(); _ = try pop(); stack.append(.opaque)  // STACK_GLOBAL
                case 0x52, 0x81: _ = try pop(); _ = try pop(); stack.append(.opaque)  // REDUCE, NEWOBJ
                case 0x92: _ = try pop(); _ = try pop(); _ = try pop(); stack.append(.opaque)  // NEWOBJ_EX
                case 0x62: _ = try pop()  // BUILD: the state (possibly a dict, already collected) is consumed
                case 0x6F: _ = try popToMark(); stack.append(.opaque)  // OBJ
                case 0x69: _ = try line(); _ = try line(); _ = try popToMark(); stack.append(.opaque)  // INST
                case 0x30: _ = try pop()  // POP
                case 0x32: stack.append(try top())  // DUP
                case 0x31: _ = try popToMark()  // POP_MARK
                case 0x51: _ = try pop(); stack.append(.opaque)  // BINPERSID
                case 0x50: _ = try line(); stack.append(.opaque)  // PERSID
                case 0x97, 0x98: throw fail("out-of-band buffers are not supported")
                case 0x49: stack.append(Int64(try line()).map { .int($0) } ?? .opaque)  // INT (protocol 0)
                case 0x4C: _ = try line(); stack.append(.opaque)  // LONG (protocol 0)
                case 0x46: stack.append(Double(try line()).map { .float($0) } ?? .opaque)  // FLOAT
                case 0x53, 0x56: _ = try line(); stack.append(.opaque)  // STRING, UNICODE (protocol 0)
                case 0x70: memo[Int(try line()) ?? -1] = try top()  // PUT
                case 0x67:  // GET
                    let index = Int(try line()) ?? -1
                    guard let value = memo[index] else { throw fail("memo \(index) unset") }
                    stack.append(value)
                case 0x64: try setItemsIntoNew(try popToMark())  // DICT
                case 0x6C: let items = try popToMark(); stack.append(listOf(items))  // LIST
                default: throw fail("unknown pickle opcode 0x\(String(op, radix: 16))")
                }
            }
            throw fail("no STOP opcode")
        }

        mutating func setItemsIntoNew(_ items: [Value]) throws(Failure) {
            stack.append(newContainer(dict: true))
            try setItems(items)
        }

        func listOf(_ items: [Value]) -> Value {
            let box = Box(isDict: false)
            box.elements = items
            return .container(box)
        }

        mutating func utf8(_ n: Int) throws(Failure) -> String {
            String(decoding: try take(n), as: UTF8.self)
        }
    }
}
