import TracetapCore

/// A usage error: one line on stderr, exit code 2.
struct UsageError: Error {
    let message: String
}

/// Reads `--flag value` and `--flag=value` arguments, one command at a time.
struct Arguments {
    private var items: [String]

    init(_ items: [String]) { self.items = items }

    var isEmpty: Bool { items.isEmpty }

    mutating func next() -> String? { items.isEmpty ? nil : items.removeFirst() }

    /// The value of a flag: after `=`, or the next argument.
    mutating func value(for flag: String, inline: String?) throws(UsageError) -> String {
        if let inline { return inline }
        guard let value = next(), !value.hasPrefix("--") else { throw UsageError(message: "\(flag) needs a value") }
        return value
    }
}

/// `10`, `10s`, `1.5s`, `500ms`, `2m` -> seconds.
func parseDuration(_ text: String, flag: String) throws(UsageError) -> Double {
    let (number, scale): (Substring, Double) =
        text.hasSuffix("ms") ? (text.dropLast(2), 0.001) :
        text.hasSuffix("s") ? (text.dropLast(1), 1) :
        text.hasSuffix("m") ? (text.dropLast(1), 60) : (text[...], 1)
    guard let value = Double(number), value >= 0 else { throw UsageError(message: "\(flag): '\(text)' is not a duration (e.g. 10s, 500ms)") }
    return value * scale
}

func parseCount(_ text: String, flag: String, range: ClosedRange<Int>) throws(UsageError) -> Int {
    guard let value = Int(text), range.contains(value) else {
        throw UsageError(message: "\(flag): '\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
    }
    return value
}

enum ProxyFlags {
    static let help = """
    Usage: tracetap proxy [flags]

    A reverse proxy that traces every request to one HTTP upstream.

      --upstream URL            where requests go (default http://127.0.0.1:3000)
      --listen HOST:PORT        where clients connect (default 127.0.0.1:8080; port 0 picks a free one)
      --admin HOST:PORT|off     web UI and admin API (default 127.0.0.1:9901); off disables it
      --admin-token TOKEN       require this token for the UI and every API call (off loopback one is made
                                at start and printed when not given)
      --threads N               event-loop threads (default: half the cores, at least 1)
      --upstream-ca FILE        https upstreams: trust the CA certificates in this PEM file
      --upstream-insecure       https upstreams: do not verify the certificate (self-signed dev backends)
      --preserve-host           send the client's Host upstream instead of the upstream's authority
      --header-timeout DUR      time to receive a request head, and between body reads (default 10s) -> 408
      --idle-timeout DUR        idle keep-alive client connections close after this (default 60s)
      --connect-timeout DUR     upstream connect timeout (default 5s) -> 502
      --response-timeout DUR    upstream response timeout, and between response reads (default 30s) -> 504
      --upstream-idle DUR       pooled upstream connections close after this idle time (default 30s)
      --grace DUR               on SIGINT/SIGTERM, time for in-flight exchanges to finish (default 10s)
      --max-request-line BYTES  longest request line (default 8192) -> 414
      --max-header-bytes BYTES  largest header section (default 65536) -> 431
      --max-header-fields N     most header fields (default 100) -> 431
      --capture DIR             record every exchange under DIR, one folder per run (default Captures)
      --no-capture              do not record
      --capture-body-cap BYTES  bytes kept per body (default 1048576); the rest is counted, marked truncated
      --capture-rotate BYTES    start a new capture file past this size (default 67108864)
      --capture-max-bytes BYTES keep at most this much of a session on disk, removing its oldest files
                                (default 4294967296); nothing is written with under 1 GiB free
      --capture-lossless        when the disk falls behind, slow the proxy down instead of dropping records
      --rules DIR               fault rule files (*.json, reloaded on change; default Rules)
      --no-rules                no fault rules
      --seed N                  seed for every probabilistic choice (default: random, printed at start)
      --allow-header-faults     honour 'X-Tracetap-Fault: delay=300ms, duplicate=2, ...' on single requests
      --db-listen HOST:PORT     a PostgreSQL pass-through that times each statement into the traces, with
      --db-upstream HOST:PORT   the database it forwards to (pairs, repeatable, in order)
      --db-show-values          keep literals in recorded SQL (masked as ? by default)
      --otlp-export URL         send every span (the proxy's, the backend's, the SQL) to an OTLP/HTTP collector,
                                as JSON (e.g. http://127.0.0.1:4318; /v1/traces is added to a bare endpoint)
      --quiet                   no access log on stderr
      -h, --help                this help

    Durations: 10, 10s, 500ms, 2m.
    """

    static func parse(_ args: inout Arguments, defaultThreads: Int) throws(UsageError) -> ProxyConfig {
        var config = ProxyConfig()
        config.threads = defaultThreads
        var rulesDirectory: String? = "Rules"
        var seed = UInt64.random(in: 1...UInt64(UInt32.max))
        var databaseListens: [HostPort] = []
        var databaseUpstreams: [HostPort] = []
        while let arg = args.next() {
            let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
            let flag = parts[0]
            let inline = parts.count > 1 ? parts[1] : nil
            switch flag {
            case "--upstream":
                let text = try args.value(for: flag, inline: inline)
                guard let url = UpstreamURL(text) else { throw UsageError(message: "--upstream: '\(text)' is not an http:// or https:// URL") }
                config.upstream = url
            case "--listen":
                config.listen = try hostPort(args.value(for: flag, inline: inline), flag: flag)
            case "--admin":
                let text = try args.value(for: flag, inline: inline)
                config.admin = text == "off" ? nil : try hostPort(text, flag: flag)
            case "--admin-token": config.adminToken = try args.value(for: flag, inline: inline)
            case "--threads": config.threads = try parseCount(args.value(for: flag, inline: inline), flag: flag, range: 1...64)
            case "--upstream-ca": config.upstreamCAFile = try args.value(for: flag, inline: inline)
            case "--upstream-insecure": config.upstreamInsecure = true
            case "--preserve-host": config.preserveHost = true
            case "--header-timeout": config.headerTimeout = try parseDuration(args.value(for: flag, inline: inline), flag: flag)
            case "--idle-timeout": config.idleTimeout = try parseDuration(args.value(for: flag, inline: inline), flag: flag)
            case "--connect-timeout": config.connectTimeout = try parseDuration(args.value(for: flag, inline: inline), flag: flag)
            case "--response-timeout": config.responseTimeout = try parseDuration(args.value(for: flag, inline: inline), flag: flag)
            case "--upstream-idle": config.upstreamIdleTimeout = try parseDuration(args.value(for: flag, inline: inline), flag: flag)
            case "--grace": config.gracePeriod = try parseDuration(args.value(for: flag, inline: inline), flag: flag)
            case "--max-request-line":
                config.limits.maxStartLine = try parseCount(args.value(for: flag, inline: inline), flag: flag, range: 64...1 << 20)
            case "--max-header-bytes":
                config.limits.maxHeadBytes = try parseCount(args.value(for: flag, inline: inline), flag: flag, range: 256...1 << 24)
            case "--max-header-fields":
                config.limits.maxFields = try parseCount(args.value(for: flag, inline: inline), flag: flag, range: 1...10_000)
            case "--capture": config.captureDirectory = try args.value(for: flag, inline: inline)
            case "--no-capture": config.captureDirectory = nil
            case "--capture-body-cap":
                config.captureBodyCapBytes = try parseCount(args.value(for: flag, inline: inline), flag: flag, range: 0...1 << 30)
            case "--capture-rotate":
                config.captureRotateBytes = try parseCount(args.value(for: flag, inline: inline), flag: flag, range: 4096...1 << 40)
            case "--capture-lossless": config.captureLossless = true
            case "--capture-max-bytes":
                config.captureMaxBytes = try parseCount(args.value(for: flag, inline: inline), flag: flag, range: 1 << 20...1 << 50)
            case "--rules": rulesDirectory = try args.value(for: flag, inline: inline)
            case "--no-rules": rulesDirectory = nil
            case "--allow-header-faults": config.allowHeaderFaults = true
            case "--seed":
                let text = try args.value(for: flag, inline: inline)
                guard let value = UInt64(text) else { throw UsageError(message: "--seed: '\(text)' is not a whole number") }
                seed = value
            case "--quiet": config.accessLog = false
            case "--db-listen": databaseListens.append(try hostPort(args.value(for: flag, inline: inline), flag: flag))
            case "--db-upstream": databaseUpstreams.append(try hostPort(args.value(for: flag, inline: inline), flag: flag))
            case "--db-show-values": config.databaseShowValues = true
            case "--otlp-export": config.otlpExport = try args.value(for: flag, inline: inline)
            default: throw UsageError(message: "unknown flag \(arg) (see tracetap proxy --help)")
            }
        }
        guard databaseListens.count == databaseUpstreams.count else {
            throw UsageError(message: "--db-listen and --db-upstream come in pairs (\(databaseListens.count) and \(databaseUpstreams.count) given)")
        }
        config.databaseLegs = Array(zip(databaseListens, databaseUpstreams))
        if let rulesDirectory {
            do throws(RuleError) { config.rules = try RuleBook(directory: rulesDirectory, seed: seed) } catch {
                throw UsageError(message: "rules: \(error)")
            }
        }
        return config
    }

    private static func hostPort(_ text: String, flag: String) throws(UsageError) -> HostPort {
        guard let hp = HostPort(text) else { throw UsageError(message: "\(flag): '\(text)' is not HOST:PORT") }
        return hp
    }
}
