import TraceContext

/// Replays a session's requests one at a time, as `tracetap replay` does (cookies the target sets, carried
/// values), so that a probe can step in at any request: send it again, with an extra header, or as someone
/// else. Only the recorded identity's responses feed the cookie jar and the carried values.
final class SessionWalker {
    private let client: HTTPClient
    private let authority: String
    private var cookies = CookieJar()
    private var carried: CarriedValues
    private var random = FastRandom()

    init(target: UpstreamURL, carries: [Carry], timeoutSeconds: Int, caFile: String? = nil, insecure: Bool = false) throws(SocketError) {
        client = try HTTPClient.connecting(to: target, timeoutSeconds: timeoutSeconds, caFile: caFile, insecure: insecure)
        authority = target.authority
        carried = CarriedValues(carries)
    }

    func send(_ e: CapturedExchange, as credentials: ReplayRequest.Credentials = .recorded,
              extra: [(name: String, value: String)] = []) throws(SocketError) -> HTTPClient.Response {
        let request = ReplayRequest.bytes(for: e, authority: authority, cookies: cookies, carried: carried, random: &random,
                                          credentials: credentials, extra: extra)
        let response = try client.exchange(request, isHead: e.method == "HEAD")
        if case .recorded = credentials {
            cookies.remember(response.headers)
            carried.learn(recordedHeaders: e.response?.headers ?? [], recordedBody: e.response.map { $0.gunzipped ?? $0.body } ?? [],
                          replayedHeaders: response.headers, replayedBody: response.body)
        }
        return response
    }
}
