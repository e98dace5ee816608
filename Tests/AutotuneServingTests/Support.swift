import AsyncHTTPClient
import Autotune
import Foundation
import NIOCore
import NIOHTTP1

@testable import AutotuneServing

/// Runs `body` against a simulated engine served in this process, with `settings` changed by `configure`;
/// `requestLog` receives every completion request's body.
func withEngine<T: Sendable>(
    timeScale: Double, maxNumSeqs: Int? = nil, requestLog: URL? = nil,
    configure: (inout EngineSettings) -> Void = { _ in }, _ body: @escaping @Sendable (String) async throws -> T
) async throws -> T {
    var settings = EngineSettings()
    if let maxNumSeqs { settings.maxNumSeqs = maxNumSeqs }
    configure(&settings)
    return try await withEngine(SimulatedEngine(settings: settings, timeScale: timeScale), requestLog: requestLog, body)
}

/// Runs `body` against `engine` served in this process on a port the system chose, and stops the engine after.
///
/// The port is the system's (port 0), never a random pick: suites run at once, and a pick that another test's
/// engine, or one of the load generator's own outgoing connections, already held made this engine fail to bind
/// while the body went on against a stranger's engine, or none (requests to a closed port wait out their
/// timeouts: a test that hung for minutes). Should the engine stop first, its error ends the body.
func withEngine<T: Sendable>(
    _ engine: SimulatedEngine, requestLog: URL? = nil, _ body: @escaping @Sendable (String) async throws -> T
) async throws -> T {
    let (ports, bound) = AsyncStream.makeStream(of: Int.self)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            defer { bound.finish() }
            try await SimulatedEngineServer.serve(
                engine: engine, model: "sim", port: 0, requestLog: requestLog, listening: { bound.yield($0) })
            return nil
        }
        defer { group.cancelAll() }
        var iterator = ports.makeAsyncIterator()
        if let port = await iterator.next() {
            group.addTask { try await body("http://127.0.0.1:\(port)") }
        }
        while let result = try await group.next() {
            if let result { return result }
            throw EngineStopped()
        }
        throw EngineStopped()
    }
}

/// The engine a test ran against stopped before the test was done.
struct EngineStopped: Error {}

/// The engine's own counters (`GET /stats`).
func engineStats(_ baseURL: String) async throws -> [String: Double] {
    let object = try JSONSerialization.jsonObject(with: try await get(baseURL + "/stats")) as? [String: Any] ?? [:]
    return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
}

/// A request's status and body.
func request(_ url: String, method: HTTPMethod = .GET, body: String? = nil) async throws -> (status: Int, body: Data) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let body {
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let data = try await response.body.collect(upTo: 1 << 24)
    return (Int(response.status.code), Data(data.readableBytesView))
}

/// A GET's body, failing unless it answered 200.
func get(_ url: String) async throws -> Data {
    let (status, body) = try await request(url)
    guard status == 200 else { throw URLError(.badServerResponse) }
    return body
}
