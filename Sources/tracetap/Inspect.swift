import Foundation
import Glibc
import TracetapCore

/// `tracetap ls`, `tracetap show`, `tracetap export`: reading the capture store from the terminal.
enum Inspect {
    static let help = """
    Usage:
      tracetap ls [SESSION] [--status 5xx|404] [--path '/api/*'] [--exclude '/static/*'] [--method POST] [--trace ID] [--slower 200ms]
      tracetap show ID [--show-secrets] [--mask-field NAME]...
      tracetap export SESSION --format har|curl|jsonl|otlp [--out FILE] [--show-secrets] [--mask-field NAME]...

    SESSION is a folder name under the store (default: the newest). ID is SESSION:SEQ, SEQ (newest session),
    a trace ID or a request ID. --capture DIR reads another store (default Captures).
    Authorization, Cookie, Set-Cookie, Proxy-Authorization and the JSON fields password, passwd, secret, token,
    access_token, refresh_token, api_key (plus any --mask-field) are masked unless --show-secrets is given.
    """

    /// Options shared by the three commands.
    struct Options {
        var store = "Captures"
        var positional: [String] = []
        var filter = ExchangeFilter()
        var mask = SecretMask()
        var format: Export.Format?
        var out: String?
    }

    /// The flags every reading command shares; `extra` takes a command's own flags (true: it took this one).
    static func parse(_ args: inout Arguments,
                      extra: (String, String?, inout Arguments) throws(UsageError) -> Bool = { _, _, _ in false }) throws(UsageError) -> Options {
        var options = Options()
        while let arg = args.next() {
            let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
            let flag = parts[0]
            let inline = parts.count > 1 ? parts[1] : nil
            switch flag {
            case "--capture": options.store = try args.value(for: flag, inline: inline)
            case "--status": options.filter.status = try args.value(for: flag, inline: inline)
            case "--path": options.filter.path = try args.value(for: flag, inline: inline)
            case "--exclude": options.filter.excluded.append(try args.value(for: flag, inline: inline))
            case "--method": options.filter.method = try args.value(for: flag, inline: inline)
            case "--trace": options.filter.trace = try args.value(for: flag, inline: inline)
            case "--slower":
                options.filter.slowerThanMicros = Int(try parseDuration(args.value(for: flag, inline: inline), flag: flag) * 1e6)
            case "--show-secrets": options.mask.enabled = false
            case "--mask-field": options.mask.jsonFields.insert(try args.value(for: flag, inline: inline).lowercased())
            case "--out": options.out = try args.value(for: flag, inline: inline)
            case "--format":
                let text = try args.value(for: flag, inline: inline)
                guard let format = Export.Format(rawValue: text) else { throw UsageError(message: "--format: '\(text)' is not har, curl, jsonl or otlp") }
                options.format = format
            default:
                if try extra(flag, inline, &args) { continue }
                if arg.hasPrefix("--") { throw UsageError(message: "unknown flag \(arg) (see tracetap ls --help)") }
                options.positional.append(arg)
            }
        }
        return options
    }

    static func session(_ options: Options, reader: CaptureReader) throws(UsageError) -> String {
        let sessions = reader.sessions()
        guard let chosen = options.positional.first ?? sessions.last else {
            throw UsageError(message: "no capture sessions in \(options.store)")
        }
        guard sessions.contains(chosen) else { throw UsageError(message: "no session '\(chosen)' in \(options.store)") }
        return chosen
    }

    static func list(_ args: inout Arguments) throws(UsageError) {
        let options = try parse(&args)
        let reader = CaptureReader(directory: options.store)
        let session = try session(options, reader: reader)
        let (exchanges, skipped) = reader.exchanges(in: session)
        let shown = exchanges.filter(options.filter.matches)
        print("session \(session): \(shown.count) of \(exchanges.count) exchanges" + (skipped > 0 ? " (\(skipped) unreadable lines skipped)" : "")
              + (reader.rulesSeed(of: session).map { "; fault rules seed \($0) (repeat with --seed \($0))" } ?? ""))
        print(row(["#", "TIME", "METHOD", "PATH", "STATUS", "DURATION", "TRACE"]))
        for e in shown {
            let time = e.started.split(separator: "T").last.map { String($0.dropLast()) } ?? e.started
            let status = e.status == 0 ? "---" : "\(e.status)" + (e.error.map { " \($0)" } ?? "")
            print(row(["\(e.sequence)", time, e.method, String(e.target.prefix(48)), status, millis(e.durationMicros), e.traceID]))
        }
    }

    private static func row(_ cells: [String]) -> String {
        let widths = [5, 13, 7, 49, 24, 11]
        return cells.enumerated().map { index, cell in
            // Padded by hand: Foundation's padding(toLength:) goes through NSString, a sixth of `ls` on a large session.
            index < widths.count ? cell + String(repeating: " ", count: max(1, widths[index] - cell.count)) : cell
        }.joined()
    }

    static func millis(_ micros: Int) -> String {
        micros < 0 ? "-" : String(format: "%.1fms", Double(micros) / 1000)
    }

    static func show(_ args: inout Arguments) throws(UsageError) {
        let options = try parse(&args)
        guard let id = options.positional.first else { throw UsageError(message: "show needs an ID (see tracetap show --help)") }
        let reader = CaptureReader(directory: options.store)
        guard let e = reader.find(id) else {
            throw UsageError(message: "no exchange '\(id)' in \(options.store)")
        }
        print("\(e.id)  \(e.started)  trace \(e.traceID)  span \(e.spanID)  request \(e.requestID)")
        print("client \(e.client) -> upstream \(e.upstream) (\(e.upstreamReused ? "reused" : "new") connection)"
              + (e.faults.isEmpty ? "" : "  faults: \(e.faults.joined(separator: ", "))"))
        if let error = e.error { print("error: \(error): \(e.errorMessage ?? "")") }
        if let mark = e.duplicate { printDuplicates(of: e, mark: mark, reader: reader, mask: options.mask) }
        print("\n> \(e.method) \(e.target) \(e.request?.version ?? "")")
        if let request = e.request { printMessage(request, prefix: "> ", mask: options.mask) }
        if let response = e.response {
            print("\n< \(response.version) \(e.responseStatus) \(e.responseReason)")
            printMessage(response, prefix: "< ", mask: options.mask)
        } else {
            print("\n< (no response from the upstream; the client got \(e.status == 0 ? "none" : "\(e.status)"))")
        }
        print("\ntimings (from the first byte of the request):")
        for (key, label) in [("head_received", "request head received"), ("body_received", "request body received"),
                             ("connect", "upstream connect"), ("tls", "  of which TLS"), ("request_sent", "request sent"),
                             ("first_response_byte", "first response byte"), ("response_complete", "response complete")] {
            if let value = e.timings[key], value >= 0 { print("  \(label.padding(toLength: 24, withPad: " ", startingAt: 0)) \(millis(value))") }
        }
        if let view = Trace.views(of: [e.traceID], reader: reader)[e.traceID] { print("\n" + view.waterfall(), terminator: "") }
    }

    /// A `duplicate` group side by side: each copy's status, time and response body, and the verdict.
    private static func printDuplicates(of e: CapturedExchange, mark: (copy: Int, of: Int, difference: String?), reader: CaptureReader, mask: SecretMask) {
        print("duplicate: copy \(mark.copy) of \(mark.of); " + (mark.difference.map { "responses DIFFER: \($0)" } ?? "responses agree"))
        let group = reader.exchanges(in: e.session, traceID: e.traceID, withBodies: true).filter { $0.duplicate != nil }
        for copy in group.sorted(by: { ($0.duplicate?.copy ?? 0) < ($1.duplicate?.copy ?? 0) }) {
            let body = copy.response.map { String(decoding: mask.body($0.body).prefix(60), as: UTF8.self).replacingOccurrences(of: "\n", with: " ") } ?? ""
            let status = copy.status == 0 ? (copy.error ?? "---") : "\(copy.status)"
            print("  copy \(copy.duplicate?.copy ?? 0)  #\(copy.sequence)  \(status)  \(millis(copy.durationMicros))  \(body)")
        }
    }

    private static func printMessage(_ message: CapturedExchange.Message, prefix: String, mask: SecretMask) {
        for header in mask.headers(message.headers) { print("\(prefix)\(header.name): \(header.value)") }
        guard message.bodySize > 0 else { return }
        let decoded = message.gunzipped
        let body = mask.body(decoded ?? message.body)
        print("")
        if decoded != nil { print("(gzip: \(message.body.count) bytes as sent, shown decoded)") }
        if let object = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]),
           let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) {
            print(String(decoding: pretty, as: UTF8.self))
        } else if let text = String(validating: body, as: UTF8.self) {
            print(text)
        } else {
            print("(\(body.count) bytes of binary data)")
        }
        if message.bodyTruncated { print("... (\(message.bodySize) bytes in all; the capture kept \(message.body.count))") }
    }

    static func export(_ args: inout Arguments) throws(UsageError) {
        let options = try parse(&args)
        guard let format = options.format else { throw UsageError(message: "export needs --format har, curl, jsonl or otlp") }
        let reader = CaptureReader(directory: options.store)
        let session = try session(options, reader: reader)
        let exchanges = reader.exchanges(in: session).exchanges.filter(options.filter.matches)
        let spans = format == .otlp ? SpanFile.read(sessionPath: options.store + "/" + session) : []
        var bytes = Export.render(exchanges, as: format, mask: options.mask, spans: spans)
        if let out = options.out {
            guard FileManager.default.createFile(atPath: out, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
                throw UsageError(message: "cannot write \(out)")
            }
            writeLine(2, "tracetap: wrote \(exchanges.count) exchanges to \(out)")
        } else {
            writeAll(1, &bytes)
        }
    }
}
