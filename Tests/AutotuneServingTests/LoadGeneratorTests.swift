import Autotune
import AutotuneServing
import Foundation
import Testing

@Suite(.serialized, .timeLimit(.minutes(5))) struct LoadGeneratorTests {
    /// The generator against a simulated engine in this process: what it measures must match what the engine
    /// was told to do.
    @Test func itMeasuresWhatTheEngineWasToldToDo() async throws {
        let settings = {
            var settings = EngineSettings()
            settings.maxNumBatchedTokens = 8192
            return settings
        }()
        let engine = SimulatedEngine(settings: settings, timeScale: 4)
        try await withEngine(engine) { baseURL in
            let spec = LoadSpec(concurrency: [1, 4], requests: 8, inputTokens: 32, outputTokens: 20, warmupRequests: 1)
            let levels = try await LoadGenerator(spec: spec, model: "sim").run(baseURL: baseURL)
            #expect(levels.map(\.name) == ["c1", "c4"])
            for level in levels {
                #expect(level.metrics["success_rate"] == 1)
                #expect(level.records.count == 8)
                #expect(level.records.allSatisfy { $0.outputTokens == 20 && $0.promptTokens == 32 })
                #expect(level.records.allSatisfy { $0.interTokenLatencies.count == 19 })
            }
            // One sequence decodes one token per step, so the time between its tokens is at least the engine's
            // step, 4 × (6 ms + 0.08 ms) ≈ 24.3 ms (a loaded host can only make it longer).
            let step = 4 * settings.stepSecondsForTest(decodes: 1, prefill: 0) * 1000
            let itl = try #require(levels[0].metrics["itl_ms_p50"])
            #expect(itl > step * 0.9, "inter-token latency \(itl) ms, engine step \(step) ms")
            // Four at once share each step: the engine's own counters say how many tokens each step made, which
            // the host's load cannot move (a throughput ratio in wall-clock time could).
            func counters() async throws -> [String: Double] {
                let object = try JSONSerialization.jsonObject(with: Data(await engine.statsJSON().utf8))
                return (object as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
            }
            var perStep: [Int: Double] = [:]
            for concurrency in [1, 4] {
                let before = try await counters()
                let level = LoadSpec(
                    concurrency: [concurrency], requests: 8, inputTokens: 32, outputTokens: 20, warmupRequests: 0)
                _ = try await LoadGenerator(spec: level, model: "sim").run(baseURL: baseURL)
                let after = try await counters()
                let tokens = (after["generated_tokens"] ?? 0) - (before["generated_tokens"] ?? 0)
                let steps = (after["steps"] ?? 0) - (before["steps"] ?? 0)
                #expect(tokens == 160, "\(after)")
                perStep[concurrency] = tokens / max(steps, 1)
            }
            #expect((perStep[1] ?? 0) <= 1.0 && (perStep[4] ?? 0) > 2.5, "tokens per engine step: \(perStep)")
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
        try await withEngine(engine) { baseURL in
            let spec = LoadSpec(
                concurrency: [], rates: [20], requests: 10, inputTokens: 8, outputTokens: 4, warmupRequests: 0)
            let levels = try await LoadGenerator(spec: spec, model: "sim").run(baseURL: baseURL)
            #expect(levels.first?.metrics["success_rate"] == 1)
            #expect(levels.first?.name == "r20")
            #expect(levels.first?.records.count == 10)
            // Poisson arrivals at 20/s: ten requests are sent over about half a second, not all at once.
            let sent = levels.first?.records.map(\.sentAt).max() ?? 0
            #expect(sent > 0.1)
        }
    }
}
