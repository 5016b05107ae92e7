import Glibc
import HTTPCodec
import Synchronization
import TraceContext

/// State every loop thread can read: configuration, counters, the sockets bound at start-up.
final class ProxyShared: Sendable {
    let config: ProxyConfig
    let stats: ProxyStats
    let upstreamAddress: Result<SocketAddress, SocketError>
    let listenFD: Int32
    let adminFD: Int32?
    let wakeFDs: [Int32]
    let shutdownRequested = Atomic<Bool>(false)
    let capture: CaptureStore?
    /// Spans the backend sends to the admin port (OTLP) and the database legs' statements, kept with the capture.
    let spans: SpanStore
    let databaseLegs: [DatabaseLeg]
    /// Numbers database connections across loops.
    let databaseConnections = Atomic<UInt64>(0)
    /// Set for an https upstream, whose connections go through libcurl.
    let tlsSettings: TLSBridge.Settings?

    /// Sends every span on to a collector (`--otlp-export`).
    let exporter: OTLPExporter?
    /// The last exchanges, for the web UI's live list; nil with the admin port off.
    let feed: LiveFeed?
    /// Worker threads' answers to admin requests, for loop 0 (which serves the admin port).
    let adminMailbox: AdminMailbox
    /// This proxy's own address, where the admin API's replays go.
    let replayTarget: UpstreamURL

    init(config: ProxyConfig, upstreamAddress: Result<SocketAddress, SocketError>, listenFD: Int32, adminFD: Int32?, wakeFDs: [Int32],
         databaseLegs: [DatabaseLeg], exporter: OTLPExporter?, replayTarget: UpstreamURL) {
        self.config = config
        self.replayTarget = replayTarget
        feed = adminFD == nil ? nil : LiveFeed(capacity: config.liveFeedCapacity)
        adminMailbox = AdminMailbox(wakeFD: wakeFDs[0])
        self.exporter = exporter
        self.databaseLegs = databaseLegs
        let stats = ProxyStats()
        self.stats = stats
        capture = config.captureDirectory.map {
            CaptureStore(directory: $0, rotateBytes: config.captureRotateBytes, maxBytes: config.captureMaxBytes,
                         queueBytes: config.captureQueueBytes, lossless: config.captureLossless, stats: stats, startedAt: stats.startedAt,
                         rulesSeed: config.rules?.seed)
        }
        spans = SpanStore(sessionPath: capture?.sessionPath, exporter: exporter)
        self.upstreamAddress = upstreamAddress
        self.listenFD = listenFD
        self.adminFD = adminFD
        self.wakeFDs = wakeFDs
        tlsSettings = config.upstream.isTLS
            ? TLSBridge.Settings(url: config.upstream.description + "/", caFile: config.upstreamCAFile,
                                 insecure: config.upstreamInsecure, connectTimeoutMillis: Int(config.connectTimeout * 1000))
            : nil
    }
}

/// Everything one thread owns: its epoll loop, its client connections, its upstream pool.
final class ProxyLoop {
    let index: Int
    let shared: ProxyShared
    let config: ProxyConfig
    let events: EventLoop
    let tagger: RequestTagger
    var random = FastRandom()
    var rules: LoopRules
    private(set) var pool: UpstreamPool!
    private let accessLog = AccessLog()
    private var observers: [ExchangeObserver] = []
    private var clients: [Int32: ClientConnection] = [:]
    private var adminConnections: [Int32: AdminConnection] = [:]
    private var databaseLinks: [ObjectIdentifier: DatabaseLink] = [:]
    private var listeners: [Listener] = []
    private var clientListener: Listener?
    /// The descriptors the process may open, less a reserve for capture files, the admin port and the
    /// upstream connections of clients just accepted.
    private let descriptorBudget: Int
    private(set) var shuttingDown = false
    private var forceStopAt: UInt64 = 0
    private var exchangeCounter: UInt64 = 0
    private var connectionCounter: UInt64 = 0
    private var adminTickets: UInt64 = 0

    init(index: Int, shared: ProxyShared) {
        self.index = index
        self.shared = shared
        config = shared.config
        events = EventLoop(wakeFD: shared.wakeFDs[index])
        rules = LoopRules(book: shared.config.rules, allowHeaderFaults: shared.config.allowHeaderFaults)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        descriptorBudget = max(16, Int(clamping: min(limit.rlim_cur, 1 << 24)) - 128)
        tagger = RequestTagger(upstreamAuthority: Array(shared.config.upstream.authority.utf8), preserveHost: shared.config.preserveHost)
        pool = UpstreamPool(loop: self, address: shared.upstreamAddress)
        if config.accessLog {
            observers.append(accessLog)
            events.afterEvents.append { [accessLog] in accessLog.flush() }
        }
        let clientListener = Listener(fd: shared.listenFD, loop: self, hasRoom: { [unowned self] in
            // Clients and upstream connections, all loops: a client accepted now must still be able to connect upstream.
            shared.stats.clientConnections.load(ordering: .relaxed) + shared.stats.upstreamOpen.load(ordering: .relaxed) < descriptorBudget
        }) { [unowned self] fd, peer in
            clients[fd] = ClientConnection(fd: fd, peer: peer, loop: self)
        }
        self.clientListener = clientListener
        listeners.append(clientListener)
        for leg in shared.databaseLegs {
            listeners.append(Listener(fd: leg.listenFD, loop: self) { [unowned self] fd, _ in
                let link = DatabaseLink(clientFD: fd, leg: leg, id: shared.databaseConnections.add(1, ordering: .relaxed).newValue, loop: self)
                if !link.isClosed { databaseLinks[ObjectIdentifier(link)] = link }
            })
        }
        if index == 0, let adminFD = shared.adminFD {
            listeners.append(Listener(fd: adminFD, loop: self) { [unowned self] fd, _ in
                adminTickets += 1
                adminConnections[fd] = AdminConnection(fd: fd, ticket: adminTickets, loop: self)
            })
        }
        events.onWake = { [unowned self] in
            if shared.shutdownRequested.load(ordering: .acquiring) { beginShutdown() }
            guard index == 0 else { return }
            for (fd, ticket, reply) in shared.adminMailbox.take() {
                if let connection = adminConnections[fd], connection.ticket == ticket { connection.deliver(reply) }
            }
        }
    }

    func run() {
        events.run { shuttingDown && (clients.isEmpty || events.now >= forceStopAt) }
        for client in Array(clients.values) { client.teardown(reason: "shutting down") }
        for admin in Array(adminConnections.values) { admin.closeSocket() }
        for link in Array(databaseLinks.values) { link.close() }
        pool.closeAll()
        accessLog.flush()
    }

    /// Stop accepting; idle connections close now, busy ones after their exchange, all by the grace period.
    private func beginShutdown() {
        guard !shuttingDown else { return }
        shuttingDown = true
        forceStopAt = events.now + config.gracePeriod.nanos
        for listener in listeners { listener.stop() }
        pool.closeAll()
        for client in Array(clients.values) { client.shutdownIfIdle() }
    }

    func newRecord(tag: TraceTag, request: RequestHead?, clientAddress: String, connection: UInt64) -> ExchangeRecord {
        exchangeCounter += 1
        return ExchangeRecord(id: UInt64(index) << 48 | exchangeCounter, startedAt: Sockets.wallClockSeconds(), trace: tag,
                              request: request, clientAddress: clientAddress, connection: connection, upstreamAddress: config.upstream.authority)
    }

    /// Numbers client connections across all loops of this run (the loop's index in the high bits).
    func nextConnectionID() -> UInt64 {
        connectionCounter += 1
        return UInt64(index) << 48 | connectionCounter
    }

    func exchangeFinished(_ record: ExchangeRecord) {
        shared.stats.exchanges.add(1)
        if record.failure != nil { shared.stats.errors.add(1) }
        shared.stats.responseBodyBytes.add(Int(record.responseBodyBytes))
        for observer in observers { observer.exchangeFinished(record) }
        shared.capture?.submit(record)
        shared.feed?.add(record)
        shared.exporter?.enqueue(TraceView.proxySpans(ExchangeFacts(record)))
        config.onExchange?(record)
    }

    func clientClosed(_ client: ClientConnection) {
        clients[client.fd] = nil
        clientListener?.roomMade()
    }
    func adminClosed(_ connection: AdminConnection) { adminConnections[connection.fd] = nil }
    func databaseLinkClosed(_ link: DatabaseLink) { databaseLinks[ObjectIdentifier(link)] = nil }

    func logIncompleteRequest(from host: String, bytes: Int) {
        if config.accessLog { accessLog.note("tracetap: \(host) closed the connection after \(bytes) bytes of an incomplete request") }
    }

    /// Runs `work` once after `nanos`, on this loop.
    func after(nanos: UInt64, _ work: @escaping () -> Void) {
        let timer = OneShotTimer(work)
        events.timers.schedule(timer, at: events.now + nanos)
    }
}

final class OneShotTimer: TimerTarget {
    var timer = TimerSlot()
    private let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }
    func deadlineReached() { work() }
}
