/// gzip (RFC 1952) and DEFLATE (RFC 1951) decoding, for showing captured `Content-Encoding: gzip` bodies
/// decoded; the store keeps them as sent. Returns nil for anything malformed, truncated, failing its CRC,
/// or growing past `limit`.
public enum Gzip {
    public static func decompress(_ data: [UInt8], limit: Int = 64 << 20) -> [UInt8]? {
        var output: [UInt8] = []
        var position = 0
        repeat {
            guard let start = headerEnd(data, from: position) else { return nil }
            var inflater = Inflater(input: data, position: start, limit: limit)
            guard inflater.run(into: &output) else { return nil }
            position = inflater.bytePosition
            guard position + 8 <= data.count else { return nil }
            let crc = UInt32(data[position]) | UInt32(data[position + 1]) << 8 | UInt32(data[position + 2]) << 16 | UInt32(data[position + 3]) << 24
            guard crc == CRC32.checksum(output[inflater.memberStart...]) else { return nil }
            position += 8
        } while position < data.count && data[position] == 0x1f
        return output
    }

    /// Skips the member header: magic, method 8, flags with their optional fields.
    private static func headerEnd(_ d: [UInt8], from start: Int) -> Int? {
        guard start + 10 <= d.count, d[start] == 0x1f, d[start + 1] == 0x8b, d[start + 2] == 8 else { return nil }
        let flags = d[start + 3]
        var p = start + 10
        if flags & 4 != 0 {
            guard p + 2 <= d.count else { return nil }
            p += 2 + (Int(d[p]) | Int(d[p + 1]) << 8)
        }
        for bit: UInt8 in [8, 16] where flags & bit != 0 {
            while p < d.count && d[p] != 0 { p += 1 }
            p += 1
        }
        if flags & 2 != 0 { p += 2 }
        return p <= d.count ? p : nil
    }
}

/// One DEFLATE stream, decoded the canonical-Huffman way (as zlib's `puff` does: count codes per length,
/// walk lengths bit by bit).
private struct Inflater {
    let input: [UInt8]
    var position: Int
    let limit: Int
    var bitBuffer: UInt32 = 0
    var bitCount = 0
    var memberStart = 0

    init(input: [UInt8], position: Int, limit: Int) {
        self.input = input
        self.position = position
        self.limit = limit
    }

    /// The byte after the stream (the stream ends byte-aligned for the trailer).
    var bytePosition: Int { position }

    struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int]

        init?(lengths: ArraySlice<Int>) {
            symbols = [Int](repeating: 0, count: lengths.count)
            for length in lengths { counts[length] += 1 }
            counts[0] = 0
            var left = 1
            for length in 1..<16 {
                left = left * 2 - counts[length]
                if left < 0 { return nil }
            }
            var offsets = [Int](repeating: 0, count: 16)
            for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
            for (symbol, length) in lengths.enumerated() where length != 0 {
                symbols[offsets[length]] = symbol
                offsets[length] += 1
            }
        }
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                               4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    static let fixed: (Huffman, Huffman) = {
        var lengths = [Int](repeating: 8, count: 288)
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        return (Huffman(lengths: lengths[...])!, Huffman(lengths: [Int](repeating: 5, count: 30)[...])!)
    }()

    mutating func bits(_ need: Int) -> Int? {
        while bitCount < need {
            guard position < input.count else { return nil }
            bitBuffer |= UInt32(input[position]) << UInt32(bitCount)
            position += 1
            bitCount += 8
        }
        let value = Int(bitBuffer & ((1 << UInt32(need)) - 1))
        bitBuffer >>= UInt32(need)
        bitCount -= need
        return value
    }

    mutating func decode(_ h: Huffman) -> Int? {
        var code = 0, first = 0, index = 0
        for length in 1..<16 {
            guard let bit = bits(1) else { return nil }
            code |= bit
            let count = h.counts[length]
            if code - count < first { return h.symbols[index + (code - first)] }
            index += count
            first = (first + count) << 1
            code <<= 1
        }
        return nil
    }

    mutating func run(into out: inout [UInt8]) -> Bool {
        memberStart = out.count
        var last = 0
        repeat {
            guard let final = bits(1), let type = bits(2) else { return false }
            last = final
            switch type {
            case 0: guard stored(into: &out) else { return false }
            case 1: guard codes(Self.fixed.0, Self.fixed.1, into: &out) else { return false }
            case 2: guard dynamic(into: &out) else { return false }
            default: return false
            }
        } while last == 0
        bitBuffer = 0
        bitCount = 0
        return true
    }

    mutating func stored(into out: inout [UInt8]) -> Bool {
        bitBuffer = 0
        bitCount = 0
        guard position + 4 <= input.count else { return false }
        let length = Int(input[position]) | Int(input[position + 1]) << 8
        let complement = Int(input[position + 2]) | Int(input[position + 3]) << 8
        position += 4
        guard length == ~complement & 0xffff, position + length <= input.count, out.count + length <= limit else { return false }
        out.append(contentsOf: input[position..<position + length])
        position += length
        return true
    }

    mutating func dynamic(into out: inout [UInt8]) -> Bool {
        guard let literalCount = bits(5).map({ $0 + 257 }), let distanceCount = bits(5).map({ $0 + 1 }),
              let codeCount = bits(4).map({ $0 + 4 }), literalCount <= 286, distanceCount <= 30 else { return false }
        var lengths = [Int](repeating: 0, count: 19)
        for i in 0..<codeCount {
            guard let length = bits(3) else { return false }
            lengths[Self.codeLengthOrder[i]] = length
        }
        guard let lengthCode = Huffman(lengths: lengths[...]) else { return false }
        var all: [Int] = []
        while all.count < literalCount + distanceCount {
            guard let symbol = decode(lengthCode) else { return false }
            if symbol < 16 { all.append(symbol); continue }
            var repeated = 0, times = 0
            switch symbol {
            case 16:
                guard let previous = all.last, let extra = bits(2) else { return false }
                repeated = previous; times = 3 + extra
            case 17:
                guard let extra = bits(3) else { return false }
                times = 3 + extra
            default:
                guard let extra = bits(7) else { return false }
                times = 11 + extra
            }
            guard all.count + times <= literalCount + distanceCount else { return false }
            all += [Int](repeating: repeated, count: times)
        }
        guard all[256] != 0, let literals = Huffman(lengths: all[0..<literalCount]),
              let distances = Huffman(lengths: all[literalCount...]) else { return false }
        return codes(literals, distances, into: &out)
    }

    mutating func codes(_ literals: Huffman, _ distances: Huffman, into out: inout [UInt8]) -> Bool {
        while true {
            guard var symbol = decode(literals) else { return false }
            if symbol < 256 {
                guard out.count < limit else { return false }
                out.append(UInt8(symbol))
                continue
            }
            if symbol == 256 { return true }
            symbol -= 257
            guard symbol < 29, let extra = bits(Self.lengthExtra[symbol]) else { return false }
            let length = Self.lengthBase[symbol] + extra
            guard let distanceSymbol = decode(distances), distanceSymbol < 30,
                  let distanceExtra = bits(Self.distanceExtra[distanceSymbol]) else { return false }
            let distance = Self.distanceBase[distanceSymbol] + distanceExtra
            guard distance <= out.count - memberStart, out.count + length <= limit else { return false }
            let from = out.count - distance
            for i in 0..<length { out.append(out[from + i]) }
        }
    }
}

/// CRC-32 (ISO-HDLC, as gzip uses it).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
