import Foundation
import HTTPCodec

/// Who may use the admin port. Captures hold cookies and passwords, so:
/// - with a token (required off loopback), every route wants it: `Authorization: Bearer TOKEN` from
///   scripts, or the `tracetap_token` cookie a browser gets by opening `/?token=TOKEN` once;
/// - on loopback without a token, the Host header must name a loopback address, so that a web page whose
///   name was re-pointed at 127.0.0.1 (DNS rebinding) cannot read the API from the user's browser;
/// - a request that changes something and carries an Origin must come from the admin page's own origin
///   (another site's form or fetch cannot switch rules or start replays).
struct AdminAuth {
    static let cookieName = "tracetap_token"
    let token: String?

    /// nil: go ahead; otherwise the answer to send instead.
    func check(_ request: RequestHead, method: String, path: String, query: AdminQuery) -> AdminAPI.Reply? {
        let host = request.headerText("host")
        let origin = request.headerText("origin")
        if !origin.isEmpty, method != "GET", method != "HEAD", origin.lowercased().split(separator: "/").last.map(String.init) != host.lowercased() {
            return .error(403, "cross-origin request refused (Origin \(origin) is not this admin port)")
        }
        guard let token else {
            return HostPort.hostHeader(host).isLoopback ? nil : .error(403, "Host '\(host)' is not a loopback name: use http://127.0.0.1:PORT/")
        }
        let bearer = request.headerText("authorization")
        if bearer.hasPrefix("Bearer "), Self.constantTimeEqual(bearer.dropFirst(7), token) { return nil }
        if let cookie = Self.cookie(Self.cookieName, in: request.headerText("cookie")), Self.constantTimeEqual(cookie[...], token) { return nil }
        if path == "/", method == "GET", let given = query["token"] {
            guard Self.constantTimeEqual(given[...], token) else { return WebUI.tokenPage(status: 401, wrong: true) }
            // The token leaves the address bar (and the history) at once; the cookie carries it from here.
            return AdminAPI.Reply(status: 303, contentType: "text/plain", body: [], headers: [
                ("Location", "/"), ("Set-Cookie", "\(Self.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict"),
            ])
        }
        if path == "/" && method == "GET" { return WebUI.tokenPage(status: 401, wrong: false) }
        return .error(401, "missing or wrong admin token (Authorization: Bearer TOKEN)")
    }

    static func cookie(_ name: String, in header: String) -> String? {
        for pair in header.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// Compares every byte whatever the first difference, so the time taken says nothing about the token.
    static func constantTimeEqual(_ given: Substring, _ expected: String) -> Bool {
        let given = Array(given.utf8)
        var difference = UInt8(truncatingIfNeeded: given.count ^ expected.utf8.count)
        for (index, byte) in expected.utf8.enumerated() {
            difference |= byte ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}
