/// `Server-Timing` response headers (W3C Server Timing): `db;dur=53, app;dur=47.2;desc="render"`.
public enum ServerTiming {
    public struct Metric: Equatable, Sendable {
        public var name: String
        /// Milliseconds; nil when absent or not a number.
        public var duration: Double?
        public var description: String
    }

    /// Every metric of the header values, in order. Elements split on commas outside quoted strings;
    /// unknown parameters and stray characters are ignored; of a repeated parameter the first counts.
    public static func parse(_ values: [String]) -> [Metric] {
        values.flatMap { split($0, on: ",") }.compactMap { element in
            let parts = split(element, on: ";")
            let name = parts.first?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !name.isEmpty, !name.contains("=") else { return nil }
            var metric = Metric(name: name, duration: nil, description: "")
            var seen: Set<String> = []
            for parameter in parts.dropFirst() {
                guard let equals = parameter.firstIndex(of: "=") else { continue }
                let key = parameter[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                var value = parameter[parameter.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if value.hasPrefix("\""), value.count >= 2, value.hasSuffix("\"") {
                    value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
                }
                guard seen.insert(key).inserted else { continue }
                switch key {
                case "dur": metric.duration = Double(value)
                case "desc": metric.description = value
                default: break
                }
            }
            return metric
        }
    }

    private static func split(_ text: String, on separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in text {
            if escaped { escaped = false } else if character == "\\" && quoted { escaped = true } else if character == "\"" { quoted.toggle() }
            else if character == separator && !quoted {
                parts.append(current)
                current = ""
                continue
            }
            current.append(character)
        }
        parts.append(current)
        return parts
    }
}
