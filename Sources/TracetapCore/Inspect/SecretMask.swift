import Foundation

/// Secrets stay in the store (replay needs them) and are masked in every display and export unless the
/// user asks for them (`--show-secrets`).
public struct SecretMask: Sendable {
    public static let masked = "[masked]"
    public static let secretHeaders: Set<String> = ["authorization", "cookie", "set-cookie", "proxy-authorization"]
    public static let defaultJSONFields: Set<String> = ["password", "passwd", "secret", "token", "access_token", "refresh_token", "api_key"]

    /// Off: everything shown as stored.
    public var enabled: Bool
    /// JSON object keys (any depth, compared case-insensitively) whose values are masked in bodies.
    public var jsonFields: Set<String>

    public init(enabled: Bool = true, jsonFields: Set<String> = SecretMask.defaultJSONFields) {
        self.enabled = enabled
        self.jsonFields = Set(jsonFields.map { $0.lowercased() })
    }

    public func headers(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        guard enabled else { return headers }
        return headers.map { Self.secretHeaders.contains($0.name.lowercased()) ? ($0.name, maskedCookieValue($0)) : $0 }
    }

    /// Cookies keep their names (useful for debugging) and lose their values.
    private func maskedCookieValue(_ header: (name: String, value: String)) -> String {
        switch header.name.lowercased() {
        case "cookie":
            return header.value.split(separator: ";").map { pair in
                let name = pair.split(separator: "=", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                return "\(name)=\(Self.masked)"
            }.joined(separator: "; ")
        case "set-cookie":
            let name = header.value.prefix { $0 != "=" }
            let attributes = header.value.firstIndex(of: ";").map { String(header.value[$0...]) } ?? ""
            return "\(name)=\(Self.masked)\(attributes)"
        default:
            return Self.masked
        }
    }

    /// A JSON body with the configured fields' values replaced; any other body unchanged.
    public func body(_ bytes: [UInt8]) -> [UInt8] {
        guard enabled, !jsonFields.isEmpty, let first = bytes.first(where: { !$0.isASCIIWhitespace }),
              first == UInt8(ascii: "{") || first == UInt8(ascii: "["),
              let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return bytes }
        var changed = false
        let masked = mask(object, changed: &changed)
        guard changed, let data = try? JSONSerialization.data(withJSONObject: masked, options: [.sortedKeys, .fragmentsAllowed]) else { return bytes }
        return [UInt8](data)
    }

    private func mask(_ value: Any, changed: inout Bool) -> Any {
        if let object = value as? [String: Any] {
            var out: [String: Any] = [:]
            for (key, inner) in object {
                if jsonFields.contains(key.lowercased()) { out[key] = Self.masked; changed = true } else { out[key] = mask(inner, changed: &changed) }
            }
            return out
        }
        if let array = value as? [Any] { return array.map { mask($0, changed: &changed) } }
        return value
    }
}

extension UInt8 {
    var isASCIIWhitespace: Bool { self == 0x20 || self == 0x09 || self == 0x0A || self == 0x0D }
}
