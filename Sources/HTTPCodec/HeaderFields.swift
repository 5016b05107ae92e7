/// Header fields as received: names keep their case and order, duplicates stay separate lines.
/// Names and values are ranges into one byte array, so parsing allocates once per head.
public struct HeaderFields: Sendable {
    struct Entry: Sendable {
        var nameStart: Int32, nameEnd: Int32, valueStart: Int32, valueEnd: Int32
    }

    public private(set) var storage: [UInt8]
    var entries: [Entry] = []

    public init() { storage = [] }
    init(storage: [UInt8]) { self.storage = storage }

    public init<S: Sequence>(_ pairs: S) where S.Element == (String, String) {
        storage = []
        for (name, value) in pairs { append(name: Array(name.utf8), value: Array(value.utf8)) }
    }

    public var count: Int { entries.count }

    public func name(at index: Int) -> ArraySlice<UInt8> {
        let e = entries[index]
        return storage[Int(e.nameStart)..<Int(e.nameEnd)]
    }

    public func value(at index: Int) -> ArraySlice<UInt8> {
        let e = entries[index]
        return storage[Int(e.valueStart)..<Int(e.valueEnd)]
    }

    /// Compares the name at `index` with `lowercaseName` ignoring ASCII case.
    public func name(at index: Int, is lowercaseName: [UInt8]) -> Bool {
        let e = entries[index]
        let length = Int(e.nameEnd - e.nameStart)
        guard length == lowercaseName.count else { return false }
        return storage.withUnsafeBufferPointer { p in
            var i = 0
            var j = Int(e.nameStart)
            while i < length {
                if ASCII.lower(p[j]) != lowercaseName[i] { return false }
                i += 1; j += 1
            }
            return true
        }
    }

    public func contains(_ lowercaseName: [UInt8]) -> Bool {
        firstIndex(of: lowercaseName) != nil
    }

    public func firstIndex(of lowercaseName: [UInt8]) -> Int? {
        for i in 0..<entries.count where name(at: i, is: lowercaseName) { return i }
        return nil
    }

    public func first(_ lowercaseName: [UInt8]) -> ArraySlice<UInt8>? {
        firstIndex(of: lowercaseName).map { value(at: $0) }
    }

    public func values(_ lowercaseName: [UInt8]) -> [ArraySlice<UInt8>] {
        (0..<entries.count).filter { name(at: $0, is: lowercaseName) }.map { value(at: $0) }
    }

    /// The comma-separated elements of every line named `lowercaseName`, trimmed and lowercased (RFC 9110 §5.6.1).
    public func listElements(_ lowercaseName: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        for i in 0..<entries.count where name(at: i, is: lowercaseName) {
            for element in value(at: i).split(separator: ASCII.comma, omittingEmptySubsequences: true) {
                let trimmed = ASCII.trimmingWhitespace(element)
                if !trimmed.isEmpty { result.append(trimmed.map(ASCII.lower)) }
            }
        }
        return result
    }

    public mutating func append(name: [UInt8], value: [UInt8]) {
        let nameStart = Int32(storage.count)
        storage.append(contentsOf: name)
        let valueStart = Int32(storage.count)
        storage.append(contentsOf: value)
        entries.append(Entry(nameStart: nameStart, nameEnd: valueStart, valueStart: valueStart, valueEnd: Int32(storage.count)))
    }

    public mutating func append(name: String, value: String) {
        append(name: Array(name.utf8), value: Array(value.utf8))
    }

    public mutating func removeAll(where shouldRemove: (Int) -> Bool) {
        var kept: [Entry] = []
        kept.reserveCapacity(entries.count)
        for i in 0..<entries.count where !shouldRemove(i) { kept.append(entries[i]) }
        entries = kept
    }

    public mutating func remove(_ lowercaseName: [UInt8]) {
        let names = self
        removeAll { names.name(at: $0, is: lowercaseName) }
    }

    /// Replaces every line named `name` with one line holding `value`.
    public mutating func set(name: [UInt8], value: [UInt8]) {
        remove(name.map(ASCII.lower))
        append(name: name, value: value)
    }

    /// Stores bytes that are not a field (a replaced reason phrase) and returns where they are.
    mutating func appendRaw(_ bytes: [UInt8]) -> Range<Int> {
        let start = storage.count
        storage.append(contentsOf: bytes)
        return start..<storage.count
    }

    public var pairs: [(name: String, value: String)] {
        (0..<count).map { (String(decoding: name(at: $0), as: UTF8.self), String(decoding: value(at: $0), as: UTF8.self)) }
    }

    mutating func appendParsed(nameStart: Int, nameEnd: Int, valueStart: Int, valueEnd: Int) {
        entries.append(Entry(nameStart: Int32(nameStart), nameEnd: Int32(nameEnd),
                             valueStart: Int32(valueStart), valueEnd: Int32(valueEnd)))
    }
}
