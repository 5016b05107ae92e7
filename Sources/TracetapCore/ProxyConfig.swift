import HTTPCodec

/// Where requests go: `http://host:port` over our own sockets, `https://...` through libcurl.
public struct UpstreamURL: Sendable, CustomStringConvertible {
    public var isTLS: Bool
    public var hostPort: HostPort
    /// `host[:port]` as written, for the Host header the upstream sees.
    public var authority: String

    public init?(_ text: String) {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") { isTLS = false; rest = text.dropFirst(7) }
        else if lower.hasPrefix("https://") { isTLS = true; rest = text.dropFirst(8) }
        else { return nil }
        let authority = String(rest.prefix { $0 != "/" })
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        let hasPort = authority.hasPrefix("[") ? authority.contains("]:") : authority.contains(":")
        guard let hp = HostPort(hasPort ? authority : "\(authority):\(isTLS ? 443 : 80)") else { return nil }
        self.hostPort = hp
        self.authority = authority
    }

    public var description: String { "\(isTLS ? "https" : "http")://\(authority)" }
}

public struct ProxyConfig: Sendable {
    public var listen = HostPort(host: "127.0.0.1", port: 8080)
    public var upstream = UpstreamURL("http://127.0.0.1:3000")!
    /// nil turns the admin listener off.
    public var admin: HostPort? = HostPort(host: "127.0.0.1", port: 9901)
    public var adminToken: String?
    public var threads = 2
    public var headerTimeout = 10.0
    public var idleTimeout = 60.0
    public var connectTimeout = 5.0
    public var responseTimeout = 30.0
    public var upstreamIdleTimeout = 30.0
    public var gracePeriod = 10.0
    public var accessLog = true
    public var preserveHost = false
    /// For https upstreams: a PEM file of CA certificates to trust instead of the system's.
    public var upstreamCAFile: String?
    /// For https upstreams: skip certificate verification (self-signed development backends).
    public var upstreamInsecure = false
    public var maxIdleUpstreamPerThread = 256
    public var limits = HeadLimits()
    /// Where exchanges are recorded (a new session folder per run); nil turns capture off.
    public var captureDirectory: String? = "Captures"
    /// Bytes kept per body; the rest is counted and the body marked truncated.
    public var captureBodyCapBytes = 1 << 20
    /// A session's file is closed and the next one started past this size.
    public var captureRotateBytes = 64 << 20
    /// A session keeps at most this many bytes on disk; past it the oldest files go.
    public var captureMaxBytes = 4 << 30
    /// Records (bodies included) waiting for the capture writer; past it they are dropped and counted...
    public var captureQueueBytes = 64 << 20
    /// ...unless this is set: then the event loops wait for the writer, and the proxy runs at the disk's speed.
    public var captureLossless = false
    /// The fault rules in force; nil for none.
    public var rules: RuleBook?
    /// Honour `X-Tracetap-Fault: delay=300ms, duplicate=2` (any fault but modify) on single requests.
    public var allowHeaderFaults = false
    /// PostgreSQL pass-throughs that time each statement: clients connect to `listen`, the relay to `upstream`.
    public var databaseLegs: [(listen: HostPort, upstream: HostPort)] = []
    /// Keep the literals in recorded SQL (masked as `?` by default).
    public var databaseShowValues = false
    /// Exchanges the admin port keeps in memory for the web UI's live list (`/api/events`).
    public var liveFeedCapacity = 10_000
    /// An OpenTelemetry collector's OTLP/HTTP endpoint that gets every span (`http://127.0.0.1:4318`).
    public var otlpExport: String?
    var captureBodyCap: Int { captureDirectory == nil ? 0 : captureBodyCapBytes }
    /// Called with every finished exchange, on the loop thread that served it: the hook that recording
    /// (capture, tests) attaches to. It must return quickly.
    public var onExchange: (@Sendable (ExchangeRecord) -> Void)?

    public init() {}
}

extension Double {
    var nanos: UInt64 { UInt64(max(0, self) * 1e9) }
}
