import Foundation
import PostgresNIO

/// A `postgres://` URL taken apart, with errors that say which part is wrong.
struct PostgresURL {
    var user: String
    var password: String?
    var host: String
    var port: Int
    var database: String?
    /// `?host=/dir`: the directory of the server's Unix socket, as libpq reads it.
    var socketDirectory: String?
    var tls: PostgresClient.Configuration.TLS

    /// The URL without its password, for messages.
    var redacted: String {
        "postgres://\(user)@\(socketDirectory ?? host):\(port)/\(database ?? "")"
    }

    init(_ text: String) throws {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else {
            throw StoreURLError("'\(text)' is not a postgres:// URL (postgres://user[:password]@host[:port]/database)")
        }
        guard let user = components.user, !user.isEmpty else {
            throw StoreURLError("the PostgreSQL URL names no user (postgres://USER@host/database)")
        }
        self.user = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        port = components.port ?? 5432
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? nil : path
        var host = components.host ?? ""
        var socketDirectory: String?
        var tls = PostgresClient.Configuration.TLS.disable
        for item in components.queryItems ?? [] {
            switch item.name {
            case "host":
                guard let value = item.value, value.hasPrefix("/") else {
                    throw StoreURLError("the PostgreSQL URL's host= must be a socket directory starting with /")
                }
                socketDirectory = value
            case "sslmode":
                switch item.value {
                case "disable": tls = .disable
                case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
                case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
                default:
                    throw StoreURLError(
                        "the PostgreSQL URL's sslmode '\(item.value ?? "")' is not one of disable, prefer, require")
                }
            default:
                throw StoreURLError("the PostgreSQL URL has an unknown parameter '\(item.name)' (known: host, sslmode)")
            }
        }
        if host.isEmpty && socketDirectory == nil { host = "localhost" }
        self.host = host
        self.socketDirectory = socketDirectory
        self.tls = tls
    }
}

/// A `--db` URL that cannot be used.
struct StoreURLError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
