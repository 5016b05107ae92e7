import Foundation
import TracetapCore

/// `tracetap probe idempotency|authz`: a captured session turned into findings.
enum Probe {
    static let help = """
    Usage: tracetap probe idempotency [SESSION | FILE.har] --target URL [flags]
           tracetap probe authz [SESSION | FILE.har] --target URL --as NAME=FILE... [flags]

    Both replay the session (default: the newest) against URL, never the backend it was captured from
    unless you name it: the probes send requests twice or as other people.

    idempotency   each unsafe endpoint (POST, PUT, PATCH, DELETE, its first request) sent twice as a retry
                  would, reading the state after each with a GET of the same capture (the resource or its
                  collection); then, if the second copy changed the state, twice with the same
                  Idempotency-Key. Verdict: idempotent, idempotent with key, not idempotent (with evidence);
                  a PUT or DELETE that is not idempotent violates RFC 9110.
      --check PATH            the GET that reads the state (default: picked from the capture)
      --key-header NAME       the idempotency key header (default Idempotency-Key)

    authz         each request as recorded (the owner), then under every identity: a matrix of statuses
                  and how alike each body is to the owner's. Flags an identity that gets the owner's answer
                  to a request that carried credentials, and revoked credentials that get any success.
      --as NAME=FILE          an identity: FILE holds 'Cookie: ...' / 'Authorization: ...' lines, or is a
                              cookie jar written by curl -c
      --as NAME=@ID           an identity from a captured login: the cookies exchange ID's response set
      --as anonymous          no credentials at all
      --privileged NAME       this identity may see everything (an admin): shown, not flagged
      --revoked FILE          a session that was logged out or banned (also NAME=FILE): any success is flagged
      --similar PERCENT       how alike a body must be to count as the owner's (default 90)

    Common flags:
    \(TargetFlags.help)
      --capture DIR           the capture store (default Captures)
      --status, --path, --method, --trace, --exclude GLOB   probe only some exchanges (as in tracetap ls)

    Exit status: 1 when a probe found something, 0 when it found nothing, 2 on usage errors.
    """

    static func run(_ args: inout Arguments) throws(UsageError) -> Int32 {
        switch args.next() {
        case "idempotency": return try idempotency(&args)
        case "authz": return try authz(&args)
        default: throw UsageError(message: "probe: expected idempotency or authz (see tracetap probe --help)")
        }
    }

    private static func idempotency(_ args: inout Arguments) throws(UsageError) -> Int32 {
        var targetFlags = TargetFlags()
        var checkPath: String?
        var keyHeader = "Idempotency-Key"
        let options = try Inspect.parse(&args) { (flag, inline, args) throws(UsageError) -> Bool in
            if try targetFlags.parse(flag, inline, &args) { return true }
            switch flag {
            case "--check": checkPath = try args.value(for: flag, inline: inline)
            case "--key-header": keyHeader = try args.value(for: flag, inline: inline)
            default: return false
            }
            return true
        }
        var probe = IdempotencyProbe(target: try targetFlags.required(by: "probe idempotency"))
        let source = try ReplaySource.load(options)
        probe.carries = targetFlags.carries
        probe.caFile = targetFlags.caFile
        probe.insecure = targetFlags.insecure
        probe.timeoutSeconds = targetFlags.timeoutSeconds
        probe.checkPath = checkPath
        probe.keyHeader = keyHeader
        if let noise = try source.noise() { probe.noise = noise }
        print("idempotency: \(source.exchanges.count) exchanges of \(source.session) against \(probe.target)")
        let findings: [IdempotencyProbe.Finding]
        do {
            findings = try probe.run(source.exchanges) { f in
                print("  \(f.endpoint): \(f.verdict.rawValue.uppercased())" + (f.check.map { "  (state read with \($0))" } ?? "  (no GET of it in the capture: answers compared)")
                      + (f.violatesRFC9110 ? "  violates RFC 9110 §9.2.2: \(f.exchange.method) must be idempotent" : ""))
                for line in f.evidence { print("      \(line)") }
            }
        } catch {
            throw UsageError(message: error.message)
        }
        let bad = findings.filter { $0.verdict == .notIdempotent || $0.verdict == .failed }
        print("\n\(findings.count) unsafe endpoint\(findings.count == 1 ? "" : "s"): " + [IdempotencyProbe.Verdict.idempotent, .idempotentWithKey, .notIdempotent, .failed]
            .map { v in "\(findings.filter { $0.verdict == v }.count) \(v.rawValue)" }.joined(separator: ", "))
        return bad.isEmpty ? 0 : 1
    }

    private static func authz(_ args: inout Arguments) throws(UsageError) -> Int32 {
        var targetFlags = TargetFlags()
        var identitySpecs: [(name: String, source: String?, revoked: Bool)] = []
        var privileged: Set<String> = []
        var similar = 90.0
        let options = try Inspect.parse(&args) { (flag, inline, args) throws(UsageError) -> Bool in
            if try targetFlags.parse(flag, inline, &args) { return true }
            switch flag {
            case "--as", "--revoked":
                let text = try args.value(for: flag, inline: inline)
                let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { identitySpecs.append((parts[0], parts[1], flag == "--revoked")) }
                else if flag == "--revoked" { identitySpecs.append(("revoked", text, true)) }
                else if text == "anonymous" { identitySpecs.append((text, nil, false)) }
                else { throw UsageError(message: "--as: '\(text)' is not NAME=FILE, NAME=@ID or anonymous") }
            case "--privileged": privileged.insert(try args.value(for: flag, inline: inline))
            case "--similar":
                let text = try args.value(for: flag, inline: inline)
                guard let value = Double(text.hasSuffix("%") ? String(text.dropLast()) : text), (0...100).contains(value) else {
                    throw UsageError(message: "--similar: '\(text)' is not a percentage")
                }
                similar = value
            default: return false
            }
            return true
        }
        let target = try targetFlags.required(by: "probe authz")
        guard !identitySpecs.isEmpty else { throw UsageError(message: "probe authz needs at least one --as or --revoked (see tracetap probe --help)") }
        let reader = CaptureReader(directory: options.store)
        var identities: [AuthzProbe.Identity] = []
        for spec in identitySpecs {
            var identity: AuthzProbe.Identity
            if let source = spec.source, source.hasPrefix("@") {
                guard let login = reader.find(String(source.dropFirst())), let response = login.response,
                      let found = AuthzProbe.Identity.fromLogin(name: spec.name, response: response) else {
                    throw UsageError(message: "--as \(spec.name): exchange \(source.dropFirst()) is not a captured response that set cookies")
                }
                identity = found
            } else if let source = spec.source {
                guard let data = FileManager.default.contents(atPath: source) else { throw UsageError(message: "--as \(spec.name): cannot read \(source)") }
                guard let parsed = AuthzProbe.Identity.parse(name: spec.name, text: String(decoding: data, as: UTF8.self)) else {
                    throw UsageError(message: "\(source): expected 'Name: value' header lines or a curl cookie jar")
                }
                identity = parsed
            } else {
                identity = .anonymous
            }
            identity.revoked = spec.revoked
            identity.privileged = privileged.contains(spec.name)
            identities.append(identity)
        }
        var probe = AuthzProbe(target: target, identities: identities)
        let source = try ReplaySource.load(options)
        probe.carries = targetFlags.carries
        probe.caFile = targetFlags.caFile
        probe.insecure = targetFlags.insecure
        probe.timeoutSeconds = targetFlags.timeoutSeconds
        probe.similarityThreshold = similar / 100
        print("authz: \(source.exchanges.count) exchanges of \(source.session) against \(target), as the owner and "
              + identities.map { $0.name + ($0.revoked ? " (revoked)" : $0.privileged ? " (privileged)" : "") }.joined(separator: ", "))
        let rows: [AuthzProbe.Row]
        do { rows = try probe.run(source.exchanges) } catch { throw UsageError(message: error.message) }
        printMatrix(rows, identities: identities)
        let findings = rows.flatMap { row in row.cells.compactMap { $0.finding.map { "\(row.endpoint): \($0)" } } }
        print(findings.isEmpty ? "\nno findings" : "\n\(findings.count) finding\(findings.count == 1 ? "" : "s"):")
        for finding in findings { print("  " + finding) }
        return findings.isEmpty ? 0 : 1
    }

    /// One line per request: the owner's status, then each identity's status and body likeness
    /// (`200 100%`), `!` after a finding; public requests (no credentials recorded) marked as such.
    private static func printMatrix(_ rows: [AuthzProbe.Row], identities: [AuthzProbe.Identity]) {
        let first = max(8, rows.map { $0.endpoint.count }.max() ?? 0) + 2
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
        func cell(_ c: AuthzProbe.Cell) -> String {
            c.error != nil ? "error" : "\(c.status) \(Int((c.similarity * 100).rounded()))%" + (c.finding == nil ? "" : " !")
        }
        let widths = identities.map { max(12, $0.name.count + 2) }
        func line(_ text: String) { print(text.replacingOccurrences(of: " +$", with: "", options: .regularExpression)) }
        line("\n" + pad("request", first) + pad("owner", 8) + zip(identities, widths).map { pad($0.name, $1) }.joined())
        for row in rows {
            line(pad(row.endpoint, first) + pad(row.owner.error == nil ? "\(row.owner.status)" : "error", 8)
                 + zip(row.cells, widths).map { pad(cell($0), $1) }.joined() + (row.isPublic ? "(public)" : ""))
        }
    }
}
