/// Splits one direction of a PostgreSQL v3 connection into messages, as bytes arrive in any pieces. Pure:
/// it never changes or holds back the stream (the relay forwards every byte as read); it only reports each
/// message's type, length and the first bytes of its payload that the statement tracker reads, so a
/// megabyte of DataRows costs a header scan, not a copy.
struct PostgresFramer {
    struct Message: Equatable {
        /// The type byte; 0 for the untyped packets of the startup phase (startup, SSL, GSS, cancel).
        var type: UInt8
        /// Payload length (excluding the type byte and the length itself).
        var length: Int
        /// The payload, or its first `prefixLimit(type)` bytes.
        var prefix: [UInt8]
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    enum Side { case frontend, backend }

    /// Startup packets are at most 10,000 bytes (the server's own limit); other messages up to 1 GiB.
    static let maxStartupLength = 10_000
    static let maxMessageLength = 1 << 30

    let side: Side
    /// The next frontend packet is untyped (the first of a connection, or after an answered SSLRequest).
    var expectsStartup: Bool
    private var header: [UInt8] = []
    private var current: Message?
    private var remaining = 0

    init(side: Side) {
        self.side = side
        expectsStartup = side == .frontend
    }

    /// How much of a payload the tracker needs: SQL text, names, tags and error fields; nothing of rows.
    static func prefixLimit(side: Side, type: UInt8) -> Int {
        switch (side, type) {
        case (.frontend, 0): return maxStartupLength
        case (.frontend, UInt8(ascii: "Q")), (.frontend, UInt8(ascii: "P")): return 64 * 1024
        case (.frontend, UInt8(ascii: "B")), (.frontend, UInt8(ascii: "E")), (.frontend, UInt8(ascii: "D")), (.frontend, UInt8(ascii: "C")): return 1024
        case (.backend, UInt8(ascii: "C")), (.backend, UInt8(ascii: "Z")): return 256
        case (.backend, UInt8(ascii: "E")): return 8 * 1024
        default: return 0
        }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (Message) -> Void) throws(Malformed) {
        var at = 0
        while at < bytes.count {
            if var message = current {
                let take = min(remaining, bytes.count - at)
                let room = Self.prefixLimit(side: side, type: message.type) - message.prefix.count
                if room > 0 { message.prefix.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[at..<at + min(room, take)])) }
                at += take
                remaining -= take
                current = message
                if remaining == 0 {
                    current = nil
                    emit(message)
                }
                continue
            }
            // A header: type byte (none in the startup phase) and a big-endian Int32 length counting itself.
            let headerLength = expectsStartup ? 4 : 5
            let take = min(headerLength - header.count, bytes.count - at)
            header.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[at..<at + take]))
            at += take
            guard header.count == headerLength else { continue }
            let type: UInt8 = expectsStartup ? 0 : header[0]
            let lengthBytes = header.suffix(4)
            let length = lengthBytes.reduce(0) { $0 << 8 | Int($1) }
            header.removeAll(keepingCapacity: true)
            guard length >= 4, length <= (expectsStartup ? Self.maxStartupLength : Self.maxMessageLength) else {
                throw Malformed(description: "a message of \(length) bytes (type \(type)): not PostgreSQL, or out of sync")
            }
            if expectsStartup { expectsStartup = false }
            let message = Message(type: type, length: length - 4, prefix: [])
            if length == 4 {
                emit(message)
            } else {
                current = message
                remaining = length - 4
            }
        }
    }
}

/// Reading the fields of a message payload: big-endian integers and NUL-terminated strings.
struct PostgresPayload {
    let bytes: [UInt8]
    var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func string() -> String? {
        guard let end = bytes[at...].firstIndex(of: 0) else { return nil }
        defer { at = end + 1 }
        return String(decoding: bytes[at..<end], as: UTF8.self)
    }

    mutating func int32() -> Int? {
        guard bytes.count - at >= 4 else { return nil }
        defer { at += 4 }
        return bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }
    }

    mutating func byte() -> UInt8? {
        guard at < bytes.count else { return nil }
        defer { at += 1 }
        return bytes[at]
    }
}
