/// `POST /v1/traces` on the admin port: OTLP/HTTP trace export, protobuf or JSON (the answer in the same
/// encoding), gzip bodies accepted. Success is an empty `ExportTraceServiceResponse`; spans with invalid
/// IDs are reported as a partial success; a body that does not decode is a 400 with a `google.rpc.Status`.
struct OTLPReceiver {
    static let path = "/v1/traces"
    /// google.rpc.Code INVALID_ARGUMENT.
    private static let invalidArgument: UInt64 = 3
    let store: SpanStore

    func receive(contentType: String, contentEncoding: String, body raw: [UInt8]) -> AdminAPI.Reply {
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let isJSON = mediaType == "application/json"
        guard isJSON || mediaType == "application/x-protobuf" else {
            return AdminAPI.Reply(status: 415, json: AdminAPI.errorJSON("send application/x-protobuf or application/json"))
        }
        var body = raw
        switch contentEncoding.trimmingCharacters(in: .whitespaces).lowercased() {
        case "", "identity": break
        case "gzip":
            guard let inflated = Gzip.decompress(raw, limit: 64 << 20) else { return failure("the gzip body does not decode (or is over 64 MiB)", json: isJSON) }
            body = inflated
        default:
            return AdminAPI.Reply(status: 415, json: AdminAPI.errorJSON("Content-Encoding \(contentEncoding) is not supported (gzip is)"))
        }
        let decoded: OTLPDecoder.Decoded
        do { decoded = isJSON ? try OTLPDecoder.decodeJSON(body) : try OTLPDecoder.decodeProtobuf(body) } catch {
            return failure(error.description, json: isJSON)
        }
        store.add(decoded.spans)
        guard decoded.rejected > 0 else {
            return isJSON ? AdminAPI.Reply(status: 200, json: "{}") : AdminAPI.Reply(status: 200, contentType: "application/x-protobuf", body: [])
        }
        let message = "\(decoded.rejected) spans with an invalid trace or span ID"
        if isJSON { return AdminAPI.Reply(status: 200, json: #"{"partialSuccess":{"rejectedSpans":"\#(decoded.rejected)","errorMessage":\#(JSONText.quote(message))}}"#) }
        // ExportTraceServiceResponse { partial_success (1) { rejected_spans (1), error_message (2) } }
        let partial = [0x08] + ProtobufWriter.varint(UInt64(decoded.rejected)) + ProtobufWriter.field(2, Array(message.utf8))
        return AdminAPI.Reply(status: 200, contentType: "application/x-protobuf", body: ProtobufWriter.field(1, partial))
    }

    private func failure(_ message: String, json: Bool) -> AdminAPI.Reply {
        if json { return AdminAPI.Reply(status: 400, json: #"{"code":\#(Self.invalidArgument),"message":\#(JSONText.quote(message))}"#) }
        // google.rpc.Status { code (1), message (2) }
        return AdminAPI.Reply(status: 400, contentType: "application/x-protobuf",
                              body: [0x08] + ProtobufWriter.varint(Self.invalidArgument) + ProtobufWriter.field(2, Array(message.utf8)))
    }
}

/// The little protobuf the receiver writes: varints and length-delimited fields.
enum ProtobufWriter {
    static func varint(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        var rest = value
        while rest >= 0x80 {
            out.append(UInt8(rest & 0x7f) | 0x80)
            rest >>= 7
        }
        return out + [UInt8(rest)]
    }

    static func field(_ number: UInt64, _ bytes: [UInt8]) -> [UInt8] { varint(number << 3 | 2) + varint(UInt64(bytes.count)) + bytes }
}
