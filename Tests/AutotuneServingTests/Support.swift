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
    configure: (inout EngineSettings) -> Void = { _ in }, _ body: @Sendable (String) async throws -> T
) async throws -> T {
    var settings = EngineSettings()
    if let maxNumSeqs { settings.maxNumSeqs = maxNumSeqs }
    configure(&settings)
    let engine = SimulatedEngine(settings: settings, timeScale: timeScale)
    let port = Int.random(in: 34000...34999)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await SimulatedEngineServer.serve(engine: engine, model: "sim", port: port, requestLog: requestLog)
            return nil
        }
        defer { group.cancelAll() }
        let baseURL = "http://127.0.0.1:\(port)"
        for _ in 0..<100 {
            if (try? await get(baseURL + "/health")) != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await body(baseURL)
    }
}

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
