import Foundation

/// Response fields that differ between identical requests (generated IDs, timestamps, tokens), per
/// endpoint (`POST /orders`): learned by replaying each request twice against the reference build, like
/// Twitter's Diffy, saved beside the session as `noise.json`, and left out of every later comparison.
public struct NoiseMasks: Sendable, Equatable {
    public struct Mask: Sendable, Equatable {
        /// JSON paths; array positions generalised to `*`.
        public var fields: Set<String> = []
        public var headers: Set<String> = []
        /// Regular expressions whose matches in a body are noise (written by hand; learning finds fields).
        public var patterns: Set<String> = []
    }

    public var endpoints: [String: Mask] = [:]

    public init() {}

    public static let fileName = "noise.json"

    /// Adds what differs between two answers to the same request.
    mutating func learn(endpoint: String, from differences: [ResponseDiff.Difference]) {
        for difference in differences {
            if difference.field.hasPrefix("body ") {
                let path = difference.field.dropFirst(5).split(separator: ".").map { Int($0) == nil ? String($0) : "*" }.joined(separator: ".")
                endpoints[endpoint, default: Mask()].fields.insert(path)
            } else if difference.field.hasPrefix("header ") {
                endpoints[endpoint, default: Mask()].headers.insert(difference.field.dropFirst(7).lowercased())
            }
        }
    }

    /// The comparison for one endpoint: `base` plus what was learned for it.
    func diff(for endpoint: String, base: ResponseDiff) -> ResponseDiff {
        guard let mask = endpoints[endpoint] else { return base }
        var diff = base
        diff.ignoredFields += mask.fields.sorted()
        diff.ignoredHeaders.formUnion(mask.headers)
        if !mask.patterns.isEmpty { diff.ignoredPatterns += mask.patterns.sorted() }
        return diff
    }

    public func save(to path: String) throws {
        let object = endpoints.mapValues { ["fields": $0.fields.sorted(), "headers": $0.headers.sorted(), "patterns": $0.patterns.sorted()] }
        try JSONSerialization.data(withJSONObject: ["endpoints": object], options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
    }

    /// nil when there is no file; a file that does not parse is an error worth reporting.
    public static func load(from path: String) throws -> NoiseMasks? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let endpoints = object["endpoints"] as? [String: [String: [String]]] else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path])
        }
        var masks = NoiseMasks()
        for (endpoint, mask) in endpoints {
            masks.endpoints[endpoint] = Mask(fields: Set(mask["fields"] ?? []), headers: Set(mask["headers"] ?? []), patterns: Set(mask["patterns"] ?? []))
        }
        return masks
    }
}
