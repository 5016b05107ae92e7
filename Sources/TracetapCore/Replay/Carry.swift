/// A value a response produced that later requests use (an order ID, a CSRF token, a Location): when the
/// replay target produces a different one, later requests get the new value where they used the old.
///
///     json:$.id -> path               the `id` field of a JSON body, in later request paths
///     header:Location -> path         a response header's value
///     json:$.csrf -> header:X-CSRF-Token
///     json:$.id -> body               in later request bodies
///
/// `path:/orders/{id}` is accepted as a destination and means `path`. In a path only whole segments (or
/// whole runs of segments) are replaced, so `41` never turns `/items/1410` into something else.
public struct Carry: Sendable, Equatable {
    public enum Source: Sendable, Equatable { case json(String), header(String) }
    public enum Destination: Sendable, Equatable { case path, header(String), body }

    public let source: Source
    public let destination: Destination

    public init?(_ text: String) {
        let parts = text.components(separatedBy: "->").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { return nil }
        let (from, to) = (parts[0], parts[1])
        if from.hasPrefix("json:") {
            var path = String(from.dropFirst(5))
            if path.hasPrefix("$.") { path.removeFirst(2) } else if path.hasPrefix("$") { path.removeFirst() }
            guard !path.isEmpty else { return nil }
            source = .json(path)
        } else if from.hasPrefix("header:"), from.count > 7 {
            source = .header(String(from.dropFirst(7)).lowercased())
        } else {
            return nil
        }
        if to == "path" || to.hasPrefix("path:") { destination = .path }
        else if to == "body" { destination = .body }
        else if to.hasPrefix("header:"), to.count > 7 { destination = .header(String(to.dropFirst(7)).lowercased()) }
        else { return nil }
    }

    /// The source's value in a response, as text.
    func value(headers: [(name: String, value: String)], body: [UInt8]) -> String? {
        switch source {
        case .header(let name):
            return headers.first { $0.name.lowercased() == name }?.value
        case .json(let path):
            guard let json = try? LineJSON.parse(body), let found = json.value(at: path) else { return nil }
            switch found {
            case .string(let text, _): return text
            case .number(let number, _): return number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
            case .bool(let flag, _): return String(flag)
            default: return nil
            }
        }
    }
}

/// The values carried so far: recorded value -> the replay's value, per carry rule.
struct CarriedValues {
    let carries: [Carry]
    private var mappings: [(carry: Carry, recorded: String, replayed: String)] = []

    init(_ carries: [Carry]) { self.carries = carries }

    mutating func learn(recordedHeaders: [(name: String, value: String)], recordedBody: [UInt8],
                        replayedHeaders: [(name: String, value: String)], replayedBody: [UInt8]) {
        for carry in carries {
            guard let old = carry.value(headers: recordedHeaders, body: recordedBody), let new = carry.value(headers: replayedHeaders, body: replayedBody),
                  !old.isEmpty, old != new else { continue }
            mappings.removeAll { $0.carry == carry && $0.recorded == old }
            mappings.append((carry, old, new))
        }
    }

    func target(_ target: String) -> String {
        var path = Substring(target.prefix { $0 != "?" })
        let query = target.dropFirst(path.count)
        for mapping in mappings where mapping.carry.destination == .path {
            path = Substring(Self.replaceSegments(String(path), mapping.recorded, mapping.replayed))
        }
        return String(path) + query
    }

    func header(_ name: String, _ value: String) -> String {
        mappings.filter { $0.carry.destination == .header(name.lowercased()) }
            .reduce(value) { $0.replacingOccurrences(of: $1.recorded, with: $1.replayed) }
    }

    func body(_ body: [UInt8]) -> [UInt8] {
        let relevant = mappings.filter { $0.carry.destination == .body }
        guard !relevant.isEmpty, let text = String(validating: body, as: UTF8.self) else { return body }
        return Array(relevant.reduce(text) { $0.replacingOccurrences(of: $1.recorded, with: $1.replayed) }.utf8)
    }

    /// Replaces `old` where it stands as whole path segments: `/orders/41` and `/orders/41/items`, never `/items/1410`.
    static func replaceSegments(_ path: String, _ old: String, _ new: String) -> String {
        let oldSegments = old.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let newSegments = new.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !oldSegments.isEmpty else { return path }
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index + oldSegments.count <= segments.count {
            if Array(segments[index..<index + oldSegments.count]) == oldSegments {
                segments.replaceSubrange(index..<index + oldSegments.count, with: newSegments)
                index += newSegments.count
            } else {
                index += 1
            }
        }
        return segments.joined(separator: "/")
    }
}
