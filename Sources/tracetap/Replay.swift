import Foundation
import Glibc
import TracetapCore

/// `tracetap replay`: re-send a captured session to a build and report what changed.
enum Replay {
    static let help = """
    Usage: tracetap replay [SESSION | FILE.har] --target URL [flags]

    Re-sends the session's requests (default: the newest session) to URL one after another, in capture
    order: same method, target, headers and body; Host rewritten; a fresh traceparent and
    X-Tracetap-Replay-Of: ORIGINAL_TRACE_ID; cookies the target sets carried into later requests.
    Each response is compared with the recorded one. A HAR 1.2 file (Chrome DevTools, Firefox, Playwright,
    tracetap export) replays the same way.

    \(TargetFlags.help)
      --capture DIR           the capture store (default Captures)
      --status, --path, --method, --trace, --exclude GLOB   replay only some exchanges (as in tracetap ls)
      --ignore-header NAME    a response header whose value is noise (Date, Server, ETag, Set-Cookie... already are)
      --ignore-field PATH     a JSON field whose value is noise: id, user.created_at, items.*.id
      --ignore-pattern REGEX  text in bodies that is noise, e.g. '[0-9a-f]{8}-[0-9a-f-]{27}' for UUIDs
      --learn-noise           send every request twice to the target (a reference build), save the fields that
                              differ between the two answers as SESSION/noise.json; later replays ignore them
      --via URL               send through a running tracetap proxy (its fault rules apply) in front of the target
      --pace recorded         keep the recorded gaps between requests; --speed 2x plays them twice as fast
      --max                   as fast as possible (the default)
      --concurrency N         N connections at once, each recorded client connection replayed in its own order
      --report FILE           write the results as JSON
      --junit FILE            write the results as JUnit XML (one test case per request)

    Exit status: 0 when every response matched (noise aside), 1 when some regressed or failed, 2 on usage errors.
    """

    static func run(_ args: inout Arguments) throws(UsageError) -> Int32 {
        var targetFlags = TargetFlags()
        var diff = ResponseDiff()
        var reportPath: String?
        var junitPath: String?
        var via: UpstreamURL?
        var recordedPace = false
        var learnNoise = false
        var concurrency = 1
        var speed = 1.0
        let options = try Inspect.parse(&args) { (flag, inline, args) throws(UsageError) -> Bool in
            if try targetFlags.parse(flag, inline, &args) { return true }
            switch flag {
            case "--ignore-header": diff.ignoredHeaders.insert(try args.value(for: flag, inline: inline).lowercased())
            case "--ignore-field": diff.ignoredFields.append(try args.value(for: flag, inline: inline))
            case "--ignore-pattern":
                let pattern = try args.value(for: flag, inline: inline)
                guard ResponseDiff.isValidPattern(pattern) else { throw UsageError(message: "--ignore-pattern: '\(pattern)' is not a regular expression") }
                diff.ignoredPatterns.append(pattern)
            case "--report": reportPath = try args.value(for: flag, inline: inline)
            case "--junit": junitPath = try args.value(for: flag, inline: inline)
            case "--via":
                let text = try args.value(for: flag, inline: inline)
                guard let url = UpstreamURL(text) else { throw UsageError(message: "--via: '\(text)' is not an http:// URL") }
                via = url
            case "--pace":
                let text = try args.value(for: flag, inline: inline)
                guard text == "recorded" else { throw UsageError(message: "--pace: only 'recorded' (or --max)") }
                recordedPace = true
            case "--speed":
                let text = try args.value(for: flag, inline: inline)
                guard let value = Double(text.hasSuffix("x") ? String(text.dropLast()) : text), value > 0 else {
                    throw UsageError(message: "--speed: '\(text)' is not a factor such as 2x or 0.5x")
                }
                speed = value
                recordedPace = true
            case "--max": recordedPace = false
            case "--learn-noise": learnNoise = true
            case "--concurrency":
                let text = try args.value(for: flag, inline: inline)
                guard let value = Int(text), (1...256).contains(value) else { throw UsageError(message: "--concurrency: '\(text)' is not 1 to 256") }
                concurrency = value
            default: return false
            }
            return true
        }
        let target = try targetFlags.required(by: "replay")
        let source = try ReplaySource.load(options)
        let (session, exchanges, noisePath) = (source.session, source.exchanges, source.noisePath)
        if learnNoise { return try learn(exchanges, target: target, via: via, timeoutSeconds: targetFlags.timeoutSeconds, saveTo: noisePath) }
        print("replaying \(exchanges.count) exchanges of \(session) to \(target)" + (via.map { " via \($0)" } ?? ""))
        var replayer = Replayer(target: target)
        replayer.diff = diff
        replayer.via = via
        replayer.carries = targetFlags.carries
        replayer.concurrency = concurrency
        replayer.caFile = targetFlags.caFile
        replayer.insecure = targetFlags.insecure
        if let masks = try source.noise() {
            replayer.noise = masks
            print("ignoring the noise learned in \(noisePath) (\(masks.endpoints.count) endpoints)")
        }
        replayer.pace = recordedPace ? speed : nil
        replayer.timeoutSeconds = targetFlags.timeoutSeconds
        let results: [Replayer.Result]
        do {
            results = try replayer.run(exchanges) { print(line($0)) }
        } catch {
            throw UsageError(message: error.message)
        }
        summarize(results)
        if let reportPath {
            guard FileManager.default.createFile(atPath: reportPath, contents: Replayer.reportJSON(results, target: target)) else {
                throw UsageError(message: "cannot write \(reportPath)")
            }
        }
        if let junitPath {
            guard FileManager.default.createFile(atPath: junitPath, contents: Data(Replayer.junitXML(results).utf8)) else {
                throw UsageError(message: "cannot write \(junitPath)")
            }
        }
        return results.contains { $0.verdict == .regression || $0.verdict == .error } ? 1 : 0
    }

    private static func learn(_ exchanges: [CapturedExchange], target: UpstreamURL, via: UpstreamURL?, timeoutSeconds: Int,
                              saveTo path: String) throws(UsageError) -> Int32 {
        print("learning noise: each of \(exchanges.count) requests twice to \(target)")
        var replayer = Replayer(target: target)
        replayer.via = via
        replayer.timeoutSeconds = timeoutSeconds
        let masks: NoiseMasks
        do { masks = try replayer.learnNoise(exchanges) } catch { throw UsageError(message: error.message) }
        for (endpoint, mask) in masks.endpoints.sorted(by: { $0.key < $1.key }) {
            print("  \(endpoint): " + (mask.fields.sorted().map { "body \($0)" } + mask.headers.sorted().map { "header \($0)" }).joined(separator: ", "))
        }
        do { try masks.save(to: path) } catch { throw UsageError(message: "cannot write \(path): \(error)") }
        print("saved to \(path); later replays of this session ignore these fields")
        return 0
    }

    private static func line(_ r: Replayer.Result) -> String {
        let recorded = r.exchange.status == 0 ? "---" : "\(r.exchange.status)"
        let now = r.status == 0 ? "---" : "\(r.status)"
        var text = "  #\(r.exchange.sequence) \(r.endpoint) \(recorded) -> \(now)  "
        switch r.verdict {
        case .identical: text += "identical"
        case .noise: text += "identical (noise aside)"
        case .regression: text += "REGRESSION  " + r.differences.prefix(3).map(\.description).joined(separator: "; ")
        case .error: text += "ERROR  \(r.message ?? "")"
        case .skipped: text += "skipped: \(r.message ?? "")"
        }
        return text
    }

    private static func summarize(_ results: [Replayer.Result]) {
        func count(_ verdict: Replayer.Result.Verdict) -> Int { results.filter { $0.verdict == verdict }.count }
        print("\n\(results.count) requests: \(count(.identical)) identical, \(count(.noise)) differ only in noise, "
              + "\(count(.regression)) regressions, \(count(.error)) errors, \(count(.skipped)) skipped")
        let failing = results.filter { $0.verdict == .regression || $0.verdict == .error }
        guard !failing.isEmpty else { return }
        print("by endpoint:")
        for (endpoint, group) in Dictionary(grouping: failing, by: \.endpoint).sorted(by: { $0.key < $1.key }) {
            let total = results.filter { $0.endpoint == endpoint }.count
            let first = group[0].differences.first?.description ?? group[0].message ?? ""
            print("  \(endpoint)  \(group.count) of \(total)  first: \(first)")
        }
    }
}

/// `--target URL` and what goes with it, shared by replay and the probes.
struct TargetFlags {
    static let help = """
      --target URL            where to send them (http://HOST:PORT or https://HOST:PORT)
      --target-ca FILE        https targets: trust the CA certificates in this PEM file
      --insecure              https targets: do not verify the certificate
      --carry 'SOURCE -> DEST' a value later requests take from an earlier response (cookies are carried anyway):
                              SOURCE json:$.id or header:Location; DEST path, header:NAME or body
      --timeout DUR           per response (default 30s)
    """

    var target: UpstreamURL?
    var caFile: String?
    var insecure = false
    var carries: [Carry] = []
    var timeout = 30.0
    var timeoutSeconds: Int { max(1, Int(timeout.rounded(.up))) }

    /// true when `flag` was one of ours.
    mutating func parse(_ flag: String, _ inline: String?, _ args: inout Arguments) throws(UsageError) -> Bool {
        switch flag {
        case "--target":
            let text = try args.value(for: flag, inline: inline)
            guard let url = UpstreamURL(text) else { throw UsageError(message: "--target: '\(text)' is not an http:// URL") }
            target = url
        case "--target-ca": caFile = try args.value(for: flag, inline: inline)
        case "--insecure": insecure = true
        case "--carry":
            let text = try args.value(for: flag, inline: inline)
            guard let carry = Carry(text) else {
                throw UsageError(message: "--carry: '\(text)' is not SOURCE -> DEST (json:$.id -> path, header:Location -> path, json:$.csrf -> header:X-CSRF-Token)")
            }
            carries.append(carry)
        case "--timeout": timeout = try parseDuration(args.value(for: flag, inline: inline), flag: flag)
        default: return false
        }
        return true
    }

    func required(by command: String) throws(UsageError) -> UpstreamURL {
        guard let target else { throw UsageError(message: "\(command) needs --target URL (see tracetap \(command) --help)") }
        return target
    }
}

/// The exchanges to send: a HAR file, or a capture session (default the newest), filtered.
struct ReplaySource {
    var session: String
    var exchanges: [CapturedExchange]
    /// Where the session's learned noise lives (it may not exist yet).
    var noisePath: String

    static func load(_ options: Inspect.Options) throws(UsageError) -> ReplaySource {
        if let file = options.positional.first, file.lowercased().hasSuffix(".har") {
            do {
                return ReplaySource(session: file, exchanges: try HARImport.load(path: file).filter(options.filter.matches),
                                    noisePath: file + "." + NoiseMasks.fileName)
            } catch { throw UsageError(message: error.description) }
        }
        let reader = CaptureReader(directory: options.store)
        let session = try Inspect.session(options, reader: reader)
        return ReplaySource(session: session, exchanges: reader.exchanges(in: session).exchanges.filter(options.filter.matches),
                            noisePath: options.store + "/" + session + "/" + NoiseMasks.fileName)
    }

    func noise() throws(UsageError) -> NoiseMasks? {
        do { return try NoiseMasks.load(from: noisePath) } catch {
            throw UsageError(message: "\(noisePath) does not parse; fix or delete it (tracetap replay --learn-noise writes it)")
        }
    }
}
