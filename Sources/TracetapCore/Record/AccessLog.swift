import Glibc
import HTTPCodec

/// One line per exchange on stderr: time, client, method, target, status, duration, trace and request id,
/// upstream connection (new or reused, connect time), wait for the first response byte, body bytes
/// each way (request/response), and the failure if any. Lines collect per loop wake-up and go out in one write.
final class AccessLog: ExchangeObserver {
    private var buffer: [UInt8] = []
    private var cachedSecond = -1
    private var cachedStamp: [UInt8] = []

    func exchangeFinished(_ r: ExchangeRecord) {
        appendTimestamp(r.startedAt)
        buffer.append(contentsOf: r.clientAddress.utf8)
        buffer.append(ASCII.space)
        if let request = r.request {
            buffer.append(contentsOf: request.method)
            buffer.append(ASCII.space)
            buffer.append(contentsOf: request.target.prefix(512))
        } else {
            buffer.append(contentsOf: "- -".utf8)
        }
        buffer.append(ASCII.space)
        buffer.append(contentsOf: r.status == 0 ? Array("---".utf8) : ASCII.decimal(r.status))
        let micros = r.timings.responseComplete >= 0 ? r.timings.responseComplete : r.timings.headReceived
        buffer.append(contentsOf: " \(formatMillis(micros)) trace=\(r.trace.traceID) rid=".utf8)
        buffer.append(contentsOf: r.trace.requestID)
        buffer.append(contentsOf: r.upstreamReused ? " up=reused".utf8 : r.timings.connect >= 0 ? " up=new".utf8 : " up=-".utf8)
        if r.timings.connect > 0 { buffer.append(contentsOf: " connect=\(formatMillis(r.timings.connect))".utf8) }
        if r.timings.wait >= 0 { buffer.append(contentsOf: " wait=\(formatMillis(r.timings.wait))".utf8) }
        buffer.append(contentsOf: " bytes=\(r.requestBodyBytes)/\(r.responseBodyBytes)".utf8)
        if r.retried { buffer.append(contentsOf: " retried".utf8) }
        if !r.faults.isEmpty { buffer.append(contentsOf: " faults=\(r.faults.joined(separator: ","))".utf8) }
        if let mark = r.duplicate {
            buffer.append(contentsOf: " copy=\(mark.copy)/\(mark.of)".utf8)
            if mark.copy == mark.of { buffer.append(contentsOf: (mark.difference.map { " DIFFER \"\($0)\"" } ?? " same").utf8) }
        }
        if let failure = r.failure {
            buffer.append(contentsOf: " error=\(failure.rawValue)".utf8)
            if let message = r.failureMessage { buffer.append(contentsOf: " \"\(message)\"".utf8) }
        }
        buffer.append(ASCII.lf)
        if buffer.count > 32 * 1024 { flush() }
    }

    func note(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(ASCII.lf)
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        writeAll(2, &buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    private func formatMillis(_ micros: Int64) -> String {
        guard micros >= 0 else { return "-" }
        let whole = micros / 1000
        let fraction = micros % 1000
        return "\(whole).\(fraction < 10 ? "00" : fraction < 100 ? "0" : "")\(fraction)ms"
    }

    /// ISO 8601 UTC to the millisecond; the seconds part is formatted once per second.
    private func appendTimestamp(_ seconds: Double) {
        let whole = Int(seconds)
        if whole != cachedSecond {
            cachedSecond = whole
            var t = time_t(whole)
            var parts = tm()
            gmtime_r(&t, &parts)
            let stamp = "\(Int(parts.tm_year) + 1900)-\(pad2(parts.tm_mon + 1))-\(pad2(parts.tm_mday))T"
                + "\(pad2(parts.tm_hour)):\(pad2(parts.tm_min)):\(pad2(parts.tm_sec))"
            cachedStamp = Array(stamp.utf8)
        }
        buffer.append(contentsOf: cachedStamp)
        let millis = Int((seconds - Double(whole)) * 1000)
        buffer.append(contentsOf: ".\(millis < 10 ? "00" : millis < 100 ? "0" : "")\(millis)Z ".utf8)
    }

    private func pad2(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
