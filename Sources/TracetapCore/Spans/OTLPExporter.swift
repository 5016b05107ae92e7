import Dispatch
import Foundation
import Synchronization

/// `--otlp-export URL`: every span of every trace, the proxy's own (the exchange and its phases) and those it
/// received or timed (backend spans, SQL statements), sent on to an OpenTelemetry collector's OTLP/HTTP
/// endpoint (Jaeger, Tempo, the Collector) as OTLP JSON, in batches, from a thread of its own. If the
/// collector is down, spans wait (up to `maxQueued`, then the oldest are dropped and counted).
final class OTLPExporter: Sendable {
    private struct Queue {
        var spans: [Span] = []
        var dropped = 0
        var stopping = false
    }

    static let batchSize = 512
    static let maxQueued = 100_000
    let endpoint: UpstreamURL
    private let path: String
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(url: String) throws(StartupError) {
        guard let endpoint = UpstreamURL(url) else { throw StartupError(message: "--otlp-export: '\(url)' is not an http(s):// URL") }
        self.endpoint = endpoint
        let afterScheme = url.range(of: "://").map { url[$0.upperBound...] } ?? Substring(url)
        let rest = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? ""
        // A bare endpoint gets the standard path, as OTEL_EXPORTER_OTLP_ENDPOINT does.
        path = rest.isEmpty || rest == "/" ? "/v1/traces" : rest
    }

    func enqueue(_ spans: [Span]) {
        let valid = spans.filter { !$0.traceID.isEmpty }
        guard !valid.isEmpty else { return }
        let wakeUp = queue.withLock { q -> Bool in
            q.spans += valid
            if q.spans.count > Self.maxQueued {
                q.dropped += q.spans.count - Self.maxQueued
                q.spans.removeFirst(q.spans.count - Self.maxQueued)
            }
            return q.spans.count >= Self.batchSize
        }
        if wakeUp { wake.signal() }
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "tracetap-otlp-export"
        thread.start()
    }

    /// Sends what is queued (for at most a few seconds), then ends the thread.
    func stop() {
        queue.withLock { $0.stopping = true }
        wake.signal()
        _ = finished.wait(timeout: .now() + 10)
    }

    private func run() {
        var failing = false
        var client: HTTPClient?
        while true {
            _ = wake.wait(timeout: .now() + 1)
            while true {
                let (batch, stopping) = queue.withLock { q -> ([Span], Bool) in
                    let batch = Array(q.spans.prefix(Self.batchSize))
                    q.spans.removeFirst(batch.count)
                    return (batch, q.stopping)
                }
                if batch.isEmpty {
                    if stopping {
                        finished.signal()
                        return
                    }
                    break
                }
                let body = Array(OTLPEncoder.request(batch).utf8)
                let head = "POST \(path) HTTP/1.1\r\nHost: \(endpoint.authority)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
                var status = 0
                var problem = ""
                do throws(SocketError) {
                    if client == nil { client = try HTTPClient.connecting(to: endpoint, timeoutSeconds: 10) }
                    status = try client!.exchange(Array(head.utf8) + body, isHead: false).status
                } catch {
                    client = nil
                    problem = error.message
                }
                if (200..<300).contains(status) {
                    if failing {
                        let dropped = queue.withLock { q in defer { q.dropped = 0 }; return q.dropped }
                        writeStderr("tracetap: OTLP export to \(endpoint)\(path) works again" + (dropped > 0 ? " (\(dropped) spans dropped meanwhile)" : "") + "\n")
                    }
                    failing = false
                    continue
                }
                if !failing { writeStderr("tracetap: OTLP export to \(endpoint)\(path) failed (\(problem.isEmpty ? "HTTP \(status)" : problem)); keeping the spans and retrying\n") }
                failing = true
                // Put the batch back in front and try again later (when stopping: give up on it).
                if stopping {
                    finished.signal()
                    return
                }
                queue.withLock { $0.spans.insert(contentsOf: batch, at: 0) }
                break
            }
        }
    }
}
