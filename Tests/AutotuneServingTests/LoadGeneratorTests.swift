import Autotune
import AutotuneServing
import Foundation
import Testing

/// A random port in a range no other test uses (the CLI tests use 33000-33999).
private func freePort() -> Int {
    Int.random(in: 34000...34999)
}

@Suite(.serialized) struct LoadGeneratorTests {
    /// The generator against a simulated engine in this process: what it measures must match what the engine
    /// was told to do.
    @Test func itMeasuresWhatTheEngineWasToldToDo() async throws {
        var settings = EngineSettings()
        settings.maxNumBatchedTokens = 8192
        let engine = SimulatedEngine(settings: settings, timeScale: 4)
        let port = freePort()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await SimulatedEngineServer.serve(engine: engine, model: "sim", port: port) }
            defer { group.cancelAll() }
            let spec = LoadSpec(concurrency: [1, 4], requests: 8, inputTokens: 32, outputTokens: 20, warmupRequests: 1)
            var levels: [LevelResult] = []
            for _ in 0..<50 {
                if let result = try? await LoadGenerator(spec: spec, model: "sim").run(
                    baseURL: "http://127.0.0.1:\(port)")
                {
                    levels = result
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(levels.map(\.name) == ["c1", "c4"])
            for level in levels {
                #expect(level.metrics["success_rate"] == 1)
                #expect(level.records.count == 8)
                #expect(level.records.allSatisfy { $0.outputTokens == 20 && $0.promptTokens == 32 })
                #expect(level.records.allSatisfy { $0.interTokenLatencies.count == 19 })
            }
            // One sequence decodes one token per step: 4 × (6 ms + 0.08 ms) ≈ 24.3 ms between tokens.
            let step = 4 * settings.stepSecondsForTest(decodes: 1, prefill: 0) * 1000
            let itl = try #require(levels[0].metrics["itl_ms_p50"])
            #expect(itl > step * 0.9 && itl < step * 2, "inter-token latency \(itl) ms, engine step \(step) ms")
            // Four at once share each step: about four times the tokens per second.
            let one = try #require(levels[0].metrics["output_tokens_per_s"])
            let four = try #require(levels[1].metrics["output_tokens_per_s"])
            #expect(four > 2.5 * one, "1 at a time: \(one) tok/s, 4 at a time: \(four) tok/s")
        }
    }

    @Test func errorsAreCountedNotFatal() async throws {
        let spec = LoadSpec(
            concurrency: [2], requests: 4, inputTokens: 4, outputTokens: 4, warmupRequests: 0,
            requestTimeout: .seconds(2))
        let levels = try await LoadGenerator(spec: spec, model: "m").run(baseURL: "http://127.0.0.1:9")
        #expect(levels.count == 1)
        #expect(levels[0].metrics["success_rate"] == 0)
        #expect(levels[0].metrics["errors"] == 4)
        #expect(levels[0].records.allSatisfy { $0.error != nil })
    }

    @Test func openLoopRatesAreNamedAndCounted() async throws {
        let engine = SimulatedEngine(settings: EngineSettings(), timeScale: 0.2)
        let port = freePort()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await SimulatedEngineServer.serve(engine: engine, model: "sim", port: port) }
            defer { group.cancelAll() }
            let spec = LoadSpec(
                concurrency: [], rates: [20], requests: 10, inputTokens: 8, outputTokens: 4, warmupRequests: 0)
            var levels: [LevelResult] = []
            for _ in 0..<50 {
                if let result = try? await LoadGenerator(spec: spec, model: "sim").run(
                    baseURL: "http://127.0.0.1:\(port)"),
                    result.first?.metrics["success_rate"] == 1
                {
                    levels = result
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(levels.first?.name == "r20")
            #expect(levels.first?.records.count == 10)
            // Poisson arrivals at 20/s: ten requests are sent over about half a second, not all at once.
            let sent = levels.first?.records.map(\.sentAt).max() ?? 0
            #expect(sent > 0.1)
        }
    }
}
