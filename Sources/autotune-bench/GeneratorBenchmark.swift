import Autotune
import AutotuneServing
import Foundation

/// How fast the load generator can go: against a simulated engine whose steps take (almost) no time, in the
/// same process, closed loop at rising concurrency. The server shares the 2 cores with the generator, so these
/// are lower bounds of the generator's own capacity.
enum GeneratorBenchmark {
    static func run(_ arguments: [String]) async throws {
        let port = 35_000 + Int.random(in: 0..<1000)
        let engine = SimulatedEngine(settings: EngineSettings(), timeScale: 0.0001)
        print("| concurrency | requests | output tokens each | requests/s | streamed tokens/s | success |")
        print("| --- | --- | --- | --- | --- | --- |")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await SimulatedEngineServer.serve(engine: engine, model: "sim", port: port) }
            defer { group.cancelAll() }
            try await Task.sleep(for: .milliseconds(300))
            for (concurrency, tokens) in [(1, 16), (16, 16), (64, 16), (256, 16), (64, 1)] {
                let spec = LoadSpec(
                    concurrency: [concurrency],
                    requests: max(400, concurrency * 8),
                    inputTokens: 16,
                    outputTokens: tokens,
                    warmupRequests: 4
                )
                let level = try await LoadGenerator(spec: spec, model: "sim").run(baseURL: "http://127.0.0.1:\(port)")[
                    0]
                let m = level.metrics
                print(
                    "| \(concurrency) | \(Int(m["requests"]!)) | \(tokens) | \(Int(m["requests_per_s"]!)) | \(Int(m["output_tokens_per_s"]!)) | \(m["success_rate"]!) |"
                )
            }
        }
    }
}
