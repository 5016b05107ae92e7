import Foundation

/// `tracetap probe authz`: every captured request replayed as recorded (the owner) and again under each
/// other identity, in a matrix endpoint x identity -> status and how alike the body is to the owner's.
/// Flags an identity that gets the owner's successful answer (a user reading another's order, an anonymous
/// request that succeeds) and revoked credentials (logged out, banned) that still get any success.
public struct AuthzProbe: Sendable {
    public struct Identity: Sendable {
        public var name: String
        /// `Cookie` and `Authorization` (or whatever the identity file gives) in place of the recorded ones.
        public var headers: [(name: String, value: String)]
        /// Expected to see everything (an admin): shown, never flagged for reaching the owner's data.
        public var privileged = false
        /// A session that must no longer work: any success is a finding.
        public var revoked = false

        public init(name: String, headers: [(name: String, value: String)], privileged: Bool = false, revoked: Bool = false) {
            self.name = name
            self.headers = headers
            self.privileged = privileged
            self.revoked = revoked
        }

        public static let anonymous = Identity(name: "anonymous", headers: [])

        /// An identity file: `Name: value` header lines, or a cookie jar as `curl -c` writes it (Netscape
        /// format: seven tab-separated fields, `#HttpOnly_` before the domain of HTTP-only cookies).
        /// Blank lines and other `#` lines are ignored.
        public static func parse(name: String, text: String) -> Identity? {
            var headers: [(name: String, value: String)] = []
            var cookies: [String] = []
            for raw in text.split(whereSeparator: \.isNewline) {
                var line = String(raw)
                if line.hasPrefix("#HttpOnly_") { line.removeFirst("#HttpOnly_".count) } else if line.hasPrefix("#") { continue }
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                if fields.count == 7 {
                    cookies.append("\(fields[5])=\(fields[6])")
                } else if let colon = line.firstIndex(of: ":"), colon != line.startIndex {
                    headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
                } else if !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    return nil
                }
            }
            if !cookies.isEmpty { headers.append(("Cookie", cookies.joined(separator: "; "))) }
            return headers.isEmpty ? nil : Identity(name: name, headers: headers)
        }

        /// The cookies a captured response set (a recorded login), as this identity's `Cookie`.
        public static func fromLogin(name: String, response: CapturedExchange.Message) -> Identity? {
            let pairs = response.headers.filter { $0.name.lowercased() == "set-cookie" }.map { String($0.value.prefix { $0 != ";" }) }
            return pairs.isEmpty ? nil : Identity(name: name, headers: [("Cookie", pairs.joined(separator: "; "))])
        }
    }

    public struct Cell: Sendable {
        public var status: Int
        /// How alike the body is to the owner's, 0...1.
        public var similarity: Double
        public var error: String?
        /// Why this cell is a finding.
        public var finding: String?
    }

    public struct Row: Sendable {
        public var exchange: CapturedExchange
        /// The recorded request carried no credentials: there is nothing to bypass.
        public var isPublic: Bool
        public var owner: Cell
        /// One per identity, in the probe's order.
        public var cells: [Cell]
        public var endpoint: String { "\(exchange.method) \(exchange.target)" }
    }

    public var target: UpstreamURL
    public var identities: [Identity]
    public var carries: [Carry] = []
    /// At least this alike to the owner's successful body counts as "the owner's answer".
    public var similarityThreshold = 0.9
    public var timeoutSeconds = 30
    public var caFile: String?
    public var insecure = false

    public init(target: UpstreamURL, identities: [Identity]) {
        self.target = target
        self.identities = identities
    }

    public func run(_ exchanges: [CapturedExchange], progress: (Row) -> Void = { _ in }) throws(SocketError) -> [Row] {
        let walker = try SessionWalker(target: target, carries: carries, timeoutSeconds: timeoutSeconds, caFile: caFile, insecure: insecure)
        var rows: [Row] = []
        for e in exchanges where e.request?.bodyTruncated != true {
            let credentialed = (e.request?.headers ?? []).contains { ReplayRequest.Credentials.credentialHeaders.contains($0.name.lowercased()) }
            // The owner goes first, so what the others may change (a DELETE) cannot hide the owner's answer.
            let ownerResponse: HTTPClient.Response
            do { ownerResponse = try walker.send(e) } catch {
                let failed = Cell(status: 0, similarity: 0, error: error.message)
                rows.append(Row(exchange: e, isPublic: !credentialed, owner: failed, cells: []))
                continue
            }
            let ownerSucceeded = (200..<300).contains(ownerResponse.status)
            var row = Row(exchange: e, isPublic: !credentialed, owner: Cell(status: ownerResponse.status, similarity: 1), cells: [])
            for identity in identities {
                var cell: Cell
                do {
                    let response = try walker.send(e, as: .replaced(by: identity.headers))
                    cell = Cell(status: response.status, similarity: BodySimilarity.score(ownerResponse.body, response.body))
                } catch {
                    cell = Cell(status: 0, similarity: 0, error: error.message)
                }
                let succeeded = (200..<300).contains(cell.status)
                if credentialed && succeeded {
                    if identity.revoked {
                        cell.finding = "\(identity.name): revoked credentials still accepted (\(cell.status))"
                    } else if !identity.privileged && ownerSucceeded && cell.similarity >= similarityThreshold {
                        cell.finding = "\(identity.name) gets the owner's answer (\(cell.status), \(Int((cell.similarity * 100).rounded()))% alike)"
                    }
                }
                row.cells.append(cell)
            }
            rows.append(row)
            progress(row)
        }
        return rows
    }
}

/// How alike two response bodies are, 0 (nothing shared) to 1 (the same): for JSON the share of leaf
/// fields (dotted path and value) both have, else the share of lines.
enum BodySimilarity {
    static func score(_ a: [UInt8], _ b: [UInt8]) -> Double {
        if a == b { return 1 }
        if let left = try? LineJSON.parse(a), let right = try? LineJSON.parse(b) {
            return overlap(leaves(JSONValue(left)), leaves(JSONValue(right)))
        }
        func lines(_ bytes: [UInt8]) -> [String] { String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init) }
        return overlap(lines(a), lines(b))
    }

    /// Dice coefficient over multisets: 2 x shared / (count a + count b).
    private static func overlap(_ a: [String], _ b: [String]) -> Double {
        guard !a.isEmpty || !b.isEmpty else { return 1 }
        var counts: [String: Int] = [:]
        for item in a { counts[item, default: 0] += 1 }
        var shared = 0
        for item in b where counts[item, default: 0] > 0 {
            counts[item]! -= 1
            shared += 1
        }
        return 2 * Double(shared) / Double(a.count + b.count)
    }

    private static func leaves(_ value: JSONValue, at path: String = "") -> [String] {
        func inner(_ key: String) -> String { path.isEmpty ? key : path + "." + key }
        switch value {
        case .object(let members) where !members.isEmpty:
            return members.flatMap { leaves($0.value, at: inner($0.key)) }
        case .array(let items) where !items.isEmpty:
            return items.enumerated().flatMap { leaves($0.element, at: inner(String($0.offset))) }
        default:
            return ["\(path)=\(value)"]
        }
    }
}
