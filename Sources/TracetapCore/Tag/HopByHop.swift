import HTTPCodec

/// Which received fields stop at this hop (RFC 9110 §7.6.1), for requests and responses alike.
struct HopByHop {
    /// Connection options named by the message: fields with these names stop here too.
    let connectionOptions: [[UInt8]]
    let keepsUpgrade: Bool

    init(_ headers: HeaderFields, keepsUpgrade: Bool) {
        connectionOptions = headers.listElements(FieldName.connection)
        self.keepsUpgrade = keepsUpgrade
    }

    func isHopByHop(_ headers: HeaderFields, _ i: Int) -> Bool {
        let name = headers.name(at: i)
        if name.count >= 6, ASCII.equalsIgnoringCase(name.prefix(6), FieldName.proxyPrefix) { return true }
        if headers.name(at: i, is: FieldName.connection) || headers.name(at: i, is: FieldName.keepAlive)
            || headers.name(at: i, is: FieldName.te) || headers.name(at: i, is: FieldName.transferEncoding)
            || headers.name(at: i, is: FieldName.trailer) {
            return true
        }
        if headers.name(at: i, is: FieldName.upgrade) { return !keepsUpgrade }
        for option in connectionOptions where headers.name(at: i, is: option) {
            return !(keepsUpgrade && option == FieldName.upgrade)
        }
        return false
    }

    /// Whether the message asks to switch protocols (`Connection: upgrade` with an `Upgrade` field).
    static func requestsUpgrade(_ headers: HeaderFields) -> Bool {
        headers.listElements(FieldName.connection).contains(FieldName.upgrade) && headers.contains(FieldName.upgrade)
    }
}
