import AsyncHTTPClient
import Autotune
import AutotuneRunner
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The Ray Jobs REST API of one cluster (the dashboard's `/api/jobs/`), as the Ray runner uses it.
///
/// Ray's own Python SDK speaks the same endpoints; talking HTTP directly keeps Python out of the runner.
struct RayJobsClient: Sendable {
    /// The dashboard's base URL, `http://HOST:8265`.
    var baseURL: String
    /// How long one request may take.
    var requestTimeout: Duration = .seconds(10)

    /// `HOST:PORT`, `HOST` (port 8265) or an `http(s)://` URL, as the base URL of its dashboard.
    static func baseURL(for address: String) throws(AutotuneError) -> String {
        var text = address.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasPrefix("ray://") {
            throw AutotuneError(
                .invalidArgument,
                "'\(address)' is a Ray Client address; give the dashboard's, e.g. http://HEAD:8265 (Ray Jobs run through it)"
            )
        }
        if !text.hasPrefix("http://") && !text.hasPrefix("https://") { text = "http://" + text }
        guard let url = URL(string: text), let host = url.host, !host.isEmpty, url.path.isEmpty || url.path == "/"
        else {
            throw AutotuneError(.invalidArgument, "'\(address)' is not a Ray address (HOST:8265 or http://HOST:8265)")
        }
        return url.port == nil ? text + ":8265" : text
    }

    /// A job as `GET /api/jobs/ID` describes it (the fields read here; Ray sends more).
    struct Details: Sendable, Decodable, Hashable {
        var submission_id: String?
        var status: String
        var message: String?
        var error_type: String?
        var driver_node_id: String?
        var driver_agent_http_address: String?
        var driver_exit_code: Int32?
        var metadata: [String: String]?

        /// Whether the job has ended: Ray's terminal states.
        var isFinished: Bool { ["SUCCEEDED", "FAILED", "STOPPED"].contains(status) }

        /// The node's address, from its job agent's URL (`http://10.0.0.5:52365`).
        var nodeAddress: String? {
            driver_agent_http_address.flatMap { URL(string: $0)?.host }
        }
    }

    /// Submits a job; throws ``RayError`` with Ray's own words when it is refused.
    func submit(_ body: [String: JSONValue]) async throws -> String {
        let data = try JSONEncoder().encode(JSONValue.object(body))
        let (status, reply) = try await send(.POST, "/api/jobs/", body: data)
        guard status == .ok else { throw RayError(message: "Ray refused the job (\(status.code)): \(text(reply))") }
        struct Reply: Decodable { var submission_id: String }
        guard let decoded = try? JSONDecoder().decode(Reply.self, from: reply) else {
            throw RayError(message: "Ray's answer names no submission id: \(text(reply))")
        }
        return decoded.submission_id
    }

    /// The job, or `nil` when Ray does not know it.
    func details(_ id: String) async throws -> Details? {
        let (status, reply) = try await send(.GET, "/api/jobs/\(escaped(id))")
        if status == .notFound { return nil }
        guard status == .ok else { throw RayError(message: "Ray answered \(status.code): \(text(reply))") }
        do {
            return try JSONDecoder().decode(Details.self, from: reply)
        } catch {
            throw RayError(message: "Ray's job description could not be read: \(error)")
        }
    }

    /// Every job the cluster knows.
    func list() async throws -> [Details] {
        let (status, reply) = try await send(.GET, "/api/jobs/")
        guard status == .ok else { throw RayError(message: "Ray answered \(status.code): \(text(reply))") }
        return try JSONDecoder().decode([Details].self, from: reply)
    }

    /// The job's output so far (standard output and error together, as Ray keeps them).
    func logs(_ id: String) async throws -> String {
        let (status, reply) = try await send(.GET, "/api/jobs/\(escaped(id))/logs")
        guard status == .ok else { throw RayError(message: "Ray answered \(status.code): \(text(reply))") }
        struct Reply: Decodable { var logs: String }
        return (try? JSONDecoder().decode(Reply.self, from: reply).logs) ?? ""
    }

    /// Whether Ray's control store counts the node alive (`ALIVE`, as against `DEAD`); `nil` when it does not
    /// know the node. The store marks a node dead only once its health checks have failed for a while (about 15
    /// seconds with Ray's defaults), so `true` soon after a node went away is not the last word.
    func nodeIsAlive(_ nodeID: String) async throws -> Bool? {
        let query = "filter_keys=node_id&filter_predicates=%3D&filter_values=\(escaped(nodeID))"
        let (status, reply) = try await send(.GET, "/api/v0/nodes?" + query)
        guard status == .ok else { throw RayError(message: "Ray answered \(status.code): \(text(reply))") }
        struct Node: Decodable { var node_id: String, state: String }
        struct Page: Decodable { var result: [Node] }
        struct Body: Decodable { var result: Page? }
        struct Reply: Decodable { var data: Body }
        let nodes: [Node]
        do {
            nodes = try JSONDecoder().decode(Reply.self, from: reply).data.result?.result ?? []
        } catch {
            throw RayError(message: "Ray's node list could not be read: \(error)")
        }
        return nodes.first { $0.node_id == nodeID }.map { $0.state == "ALIVE" }
    }

    /// Whether a node's own agent (`http://HOST:PORT`, a job's `driver_agent_http_address`) answers that its
    /// raylet is healthy: a quick yes for a node that lives, where the control store would take seconds to say
    /// no for one that died. No answer within `timeout` is `false`, which proves nothing alone (the agent may be
    /// out of this machine's reach).
    func rayletIsHealthy(agent: String, timeout: Duration = .seconds(2)) async -> Bool {
        var base = agent
        while base.hasSuffix("/") { base.removeLast() }
        let request = HTTPClientRequest(url: base + "/api/local_raylet_healthz")
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout.seconds)))
        else { return false }
        _ = try? await response.body.collect(upTo: 1 << 16)
        return response.status == .ok
    }

    /// Asks Ray to stop the job (SIGTERM, then SIGKILL after Ray's own grace).
    func stop(_ id: String) async throws {
        let (status, reply) = try await send(.POST, "/api/jobs/\(escaped(id))/stop")
        guard status == .ok || status == .notFound else {
            throw RayError(message: "Ray did not stop job \(id) (\(status.code)): \(text(reply))")
        }
    }

    private func send(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> (
        HTTPResponseStatus, Data
    ) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(requestTimeout.seconds)))
        } catch {
            throw RayError(message: "cannot reach Ray at \(baseURL): \(error)", isTransient: true)
        }
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return (response.status, Data(buffer: buffer))
    }

    private func escaped(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? id
    }

    private func text(_ data: Data) -> String {
        String(decoding: data.prefix(2000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A Ray Jobs request that failed.
public struct RayError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What failed, with Ray's words when it answered.
    public var message: String
    /// Whether Ray did not answer at all (a head restarting, a network blip), as opposed to refusing.
    public var isTransient: Bool = false
    /// The message.
    public var description: String { message }
}
