/// Reads protocol buffers' wire format (varints, fixed 32/64-bit, length-delimited fields), field by
/// field, so a decoder can take the fields it knows and skip the others. Pure and bounds-checked: any
/// input either decodes or throws.
struct ProtobufReader {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    enum WireType: Int {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    private let bytes: ArraySlice<UInt8>
    private var at: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        at = bytes.startIndex
    }

    var isAtEnd: Bool { at >= bytes.endIndex }

    /// The next field's number and wire type; nil at the end.
    mutating func nextField() throws(Malformed) -> (number: Int, wire: WireType)? {
        guard !isAtEnd else { return nil }
        let tag = try varint()
        guard let wire = WireType(rawValue: Int(tag & 7)) else { throw Malformed(description: "wire type \(tag & 7) (groups and unknown types are not OTLP)") }
        let number = tag >> 3
        guard number > 0, number < 1 << 29 else { throw Malformed(description: "field number \(number)") }
        return (Int(number), wire)
    }

    mutating func varint() throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard at < bytes.endIndex else { throw Malformed(description: "a varint runs past the end") }
            let byte = bytes[at]
            at += 1
            guard shift < 63 || byte <= 1 else { throw Malformed(description: "a varint overflows 64 bits") }
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte < 0x80 { return value }
        }
        throw Malformed(description: "a varint longer than 10 bytes")
    }

    mutating func fixed64() throws(Malformed) -> UInt64 { try littleEndian(8) }

    mutating func fixed32() throws(Malformed) -> UInt32 { UInt32(try littleEndian(4)) }

    private mutating func littleEndian(_ count: Int) throws(Malformed) -> UInt64 {
        guard bytes.endIndex - at >= count else { throw Malformed(description: "a fixed\(count * 8) runs past the end") }
        var value: UInt64 = 0
        for index in 0..<count { value |= UInt64(bytes[at + index]) << UInt64(8 * index) }
        at += count
        return value
    }

    mutating func lengthDelimited() throws(Malformed) -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(bytes.endIndex - at) else { throw Malformed(description: "a field of \(length) bytes runs past the end") }
        defer { at += Int(length) }
        return bytes[at..<at + Int(length)]
    }

    mutating func string() throws(Malformed) -> String { String(decoding: try lengthDelimited(), as: UTF8.self) }

    mutating func skip(_ wire: WireType) throws(Malformed) {
        switch wire {
        case .varint: _ = try varint()
        case .fixed64: _ = try fixed64()
        case .fixed32: _ = try fixed32()
        case .lengthDelimited: _ = try lengthDelimited()
        }
    }
}
