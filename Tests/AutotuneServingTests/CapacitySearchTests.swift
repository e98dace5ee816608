import Autotune
import AutotuneRunner
import Foundation
import Logging
import Testing

@testable import AutotuneServing

@Suite(.serialized, .timeLimit(.minutes(5))) struct CapacitySearchTests {
    /// The capacity a search finds is the engine's: 8 sequences at a time serve 8 requests in flight with no
    /// wait for a slot, while from 10 on a fifth of the requests wait a whole request's time before their first
    /// token, so p90 TTFT jumps tenfold (9 is the boundary: one request in nine waits). The engine runs at four
    /// times its simulated step times, so the jump (about 40 ms to 400 ms) is far wider than what a loaded host
    /// adds, and the SLO sits in the middle of it. At three times, with the SLO at 150 ms, a run beside the other
    /// tests and two spinning cores once measured concurrency 8 over it and found 7.
    @Test func theSearchFindsTheEnginesCapacity() async throws {
        let slo = ["ttft_ms_p90": 200.0]
        try await withEngine(timeScale: 4, maxNumSeqs: 8) { baseURL in
            var sweep = LoadSpec(
                concurrency: Array(6...11), requests: 40, inputTokens: 64, outputTokens: 16, warmupRequests: 2)
            sweep.slo = slo
            let levels = try await LoadGenerator(spec: sweep, model: "sim").run(baseURL: baseURL)
            let passing = levels.filter { $0.metrics["slo_met"] == 1 }.compactMap { VLLMResult.load(of: $0) }
            let p90 = levels.map { Int($0.metrics["ttft_ms_p90"] ?? -1) }
            #expect(passing.max().map { (8...9).contains($0) } == true, "concurrency 6 to 11, p90 TTFT ms: \(p90)")
            var spec = LoadSpec(concurrency: [], requests: 40, inputTokens: 64, outputTokens: 16, warmupRequests: 2)
            spec.slo = slo
            spec.search = CapacitySearch(load: .concurrency, lower: 1, upper: 64, tolerance: 0.05)
            let outcome = try await LoadGenerator(spec: spec, model: "sim").measure(baseURL: baseURL)
            let found = try #require(outcome.metrics["max_concurrency"])
            #expect((8...9).contains(found), "search found \(found)")
            #expect(outcome.metrics["capacity_levels"]! <= 8)
            #expect((outcome.metrics["ttft_ms_p90"] ?? .infinity) <= 200, "the reported level met the SLO")
            #expect(outcome.metrics["goodput"]! > 0 && outcome.metrics["slo_attainment"]! >= 0.85)
            // Started next to the answer (a similar trial's capacity), it needs fewer levels.
            let warm = try await LoadGenerator(spec: spec, model: "sim").measure(
                baseURL: baseURL, neighbour: ["max_concurrency": found])
            #expect(warm.metrics["capacity_levels"]! < outcome.metrics["capacity_levels"]!)
            #expect((8...9).contains(warm.metrics["max_concurrency"]!), "\(warm.metrics)")
        }
    }

    /// A level whose percentile SLO is already clearly broken ends early, keeping only the requests that had
    /// finished, and says how much benchmark time it saved.
    @Test func aClearlyBrokenLevelEndsEarly() async throws {
        try await withEngine(timeScale: 1) { baseURL in
            var spec = LoadSpec(
                concurrency: [], rates: [40], requests: 200, inputTokens: 64, outputTokens: 16, warmupRequests: 0)
            spec.slo = ["ttft_ms_p99": 1]
            let outcome = try await LoadGenerator(spec: spec, model: "sim").measure(baseURL: baseURL)
            let level = try #require(outcome.levels.first)
            #expect(level.metrics["early_stopped"] == 1)
            #expect(level.records.count < 200 && level.records.count >= LevelMonitor.minimumRequests)
            #expect(level.metrics["slo_met"] == 0)
            #expect((outcome.metrics["benchmark_s_saved"] ?? 0) > 1, "\(outcome.metrics)")
            // Without an SLO nothing stops.
            spec.slo = [:]
            let full = try await LoadGenerator(spec: spec, model: "sim").run(baseURL: baseURL)
            #expect(full[0].records.count == 200)
        }
    }

    /// Fixed levels stop once the first breaks one of the study's hard constraints: the trial is pruned.
    @Test func aFirstLevelThatBreaksAHardConstraintPrunesTheTrial() async throws {
        try await withEngine(timeScale: 0.2) { baseURL in
            let spec = LoadSpec(
                concurrency: [2, 8, 16], requests: 8, inputTokens: 16, outputTokens: 4, warmupRequests: 0)
            let outcome = try await LoadGenerator(spec: spec, model: "sim").measure(
                baseURL: baseURL, constraints: [MetricConstraint(metric: "c2.ttft_ms_p99", maximum: 0.001)])
            #expect(outcome.levels.map(\.name) == ["c2"])
            let reason = try #require(outcome.pruned)
            #expect(reason.contains("c2.ttft_ms_p99 <= 0.001") && reason.contains("not run"), "\(reason)")
            let kept = try await LoadGenerator(spec: spec, model: "sim").measure(
                baseURL: baseURL, constraints: [MetricConstraint(metric: "c2.ttft_ms_p99", maximum: 1e9)])
            #expect(kept.pruned == nil && kept.levels.count == 3)
        }
    }

    /// The vLLM result format round-trips to Autotune's names, so an external `vllm bench serve` needs no map.
    @Test func vllmResultsReadBackUnderAutotunesNames() throws {
        let record = RequestRecord(
            sentAt: 0, timeToFirstToken: 0.05, interTokenLatencies: [0.01, 0.01], endToEnd: 0.07, promptTokens: 8,
            outputTokens: 3, succeeded: true, error: nil)
        let generator = LoadGenerator(spec: LoadSpec(), model: "m")
        let level = generator.summarize(name: "r4", records: Array(repeating: record, count: 10), seconds: 2, gpus: 1)
        let result = VLLMResult(level: level, spec: LoadSpec(), model: "m", metrics: ["max_request_rate": 4])
        #expect(result.fields["request_rate"] == .number(4))
        #expect(result.fields["p99_ttft_ms"] == level.metrics["ttft_ms_p99"].map(JSONValue.number))
        let metrics = VLLMResult.metrics(from: .object(result.fields))
        for name in [
            "requests_per_s", "output_tokens_per_s", "ttft_ms_p99", "ttft_ms_p50", "tpot_ms_mean", "e2e_ms_p90",
        ] {
            #expect(metrics[name] == level.metrics[name], "\(name)")
        }
        #expect(metrics["max_request_rate"] == 4)
    }
}

/// What a capacity search reports must hold: the level its figures come from is the one that passed, its
/// result file describes that level, the time early stops saved is counted, and the rate it reports is one the
/// server sustains for longer than a search's levels last.
@Suite(.serialized, .timeLimit(.minutes(5))) struct CapacityTruthTests {
    /// A search at a request rate on an engine of 16 sequences; levels of `requests` requests, SLO p99 TTFT ≤ 400 ms.
    private func search(requests: Int) -> LoadSpec {
        var spec = LoadSpec(
            concurrency: [], requests: requests, inputTokens: 128, outputTokens: 16, warmupRequests: 2)
        spec.slo = ["ttft_ms_p99": 400]
        spec.search = CapacitySearch(load: .rate, lower: 2, upper: 256, tolerance: 0.1, maxLevels: 8)
        return spec
    }

    /// The truth is a level four times as long at the reported rate, judged by what it measured: p99 TTFT within
    /// the SLO, every request served, and requests completing as fast as they arrived. A search that passed a short
    /// burst the server cannot keep up reports a rate where the long level's queue grows: completions fall behind
    /// arrivals and p99 passes the limit. The rising-TTFT sign is the search's early warning on short levels, not
    /// the truth: within the search's tolerance of the engine's capacity the queue wanders for longer than a level
    /// lasts, and it flagged a CI run whose median TTFT went from 48 to 98 ms with p99 at 225 ms of 400. The
    /// search promises capacity within its tolerance (10%), so where the long level at the reported rate misses,
    /// one at 10% less must hold: with both cores spinning and other suites running beside it, one search
    /// reported 76 req/s where the long level reached p99 465 ms, while other runs report 58.7 and hold.
    @Test func theReportedCapacityHoldsAtALevelFourTimesAsLong() async throws {
        try await withEngine(timeScale: 1, maxNumSeqs: 16) { baseURL in
            let spec = search(requests: 150)
            let outcome = try await LoadGenerator(spec: spec, model: "sim").measure(baseURL: baseURL)
            let capacity = try #require(outcome.metrics["max_request_rate"])
            #expect(capacity > 2, "no level passed: \(outcome.levels.map { ($0.name, $0.unsustained ?? "") })")
            func long(at rate: Double) async throws -> LevelResult {
                var truth = spec
                truth.search = nil
                truth.rates = [rate]
                truth.requests = 600
                return try #require(try await LoadGenerator(spec: truth, model: "sim").run(baseURL: baseURL).first)
            }
            let holds = { (level: LevelResult) in
                (level.metrics["ttft_ms_p99"] ?? .infinity) <= 400 && (level.metrics["success_rate"] ?? 0) >= 0.99
                    && level.unsustained?.contains("completed at") != true
            }
            var level = try await long(at: capacity)
            var context = "at \(capacity)/s for 600 requests: \(level.metrics) \(level.unsustained ?? "")"
            if !holds(level) {
                let lower = capacity * (1 - (spec.search?.tolerance ?? 0.1))
                level = try await long(at: lower)
                context += "; at \(lower)/s: \(level.metrics) \(level.unsustained ?? "")"
            }
            #expect((level.metrics["ttft_ms_p99"] ?? .infinity) <= 400, "\(context)")
            #expect((level.metrics["success_rate"] ?? 0) >= 0.99, "\(context)")
            #expect(level.unsustained?.contains("completed at") != true, "\(context)")
        }
    }

    /// An overloaded open-loop level says so even when its percentiles look fine: the requests complete more
    /// slowly than they arrive and the queue grows.
    @Test func anOverloadedRateIsNotSustained() async throws {
        try await withEngine(timeScale: 1, maxNumSeqs: 4) { baseURL in
            var spec = LoadSpec(concurrency: [], rates: [200], requests: 120, inputTokens: 128, outputTokens: 32)
            spec.warmupRequests = 0
            let level = try #require(try await LoadGenerator(spec: spec, model: "sim").run(baseURL: baseURL).first)
            #expect(level.metrics["sustained"] == 0)
            #expect((level.metrics["achieved_rate"] ?? .infinity) < (level.metrics["offered_rate"] ?? 0))
            #expect(level.unsustained?.contains("completed at") == true, "\(level.unsustained ?? "")")
        }
    }

    /// `result.json` describes the level the trial's figures come from — the highest that passed — not the last
    /// level the search probed, which failed.
    @Test func theResultFileDescribesTheLevelThatPassed() async throws {
        try await withEngine(timeScale: 1, maxNumSeqs: 8) { baseURL in
            var spec = LoadSpec(concurrency: [], requests: 40, inputTokens: 64, outputTokens: 16, warmupRequests: 2)
            spec.slo = ["ttft_ms_p90": 100]
            spec.search = CapacitySearch(load: .concurrency, lower: 1, upper: 64, tolerance: 0.05)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("capacity-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let space = try SearchSpace([Parameter("x", .int(lower: 1, upper: 2))])
            let context = TrialContext(
                study: "s", trial: Trial(number: 0, configuration: Configuration(["x": .int(1)])), space: space,
                seed: 1, directory: directory, logger: .init(label: "test"))
            let (metrics, _) = try await ServingExperiment.benchmark(
                .load(spec), baseURL: baseURL, context: context, values: [:], model: "sim")
            let levels = try JSONDecoder().decode(
                [LevelResult].self, from: Data(contentsOf: directory.appendingPathComponent("benchmark.json")))
            let capacity = try #require(metrics["max_concurrency"])
            // The search ends on a failing level (it brackets the capacity from above).
            #expect(levels.last?.metrics["slo_met"] == 0, "\(levels.map(\.name))")
            let result = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: directory.appendingPathComponent("result.json")))
                    as? [String: Any])
            #expect(result["max_concurrency"] as? Double == capacity)
            let passed = try #require(levels.first { $0.name == "c\(Int(capacity))" && $0.metrics["slo_met"] == 1 })
            let p90 = try #require(result["p90_ttft_ms"] as? Double)
            #expect(abs(p90 - passed.metrics["ttft_ms_p90"]!) < 1e-6)
            #expect((result["p90_ttft_ms"] as? Double ?? .infinity) <= 100)
            #expect(result["completed"] as? Double == Double(passed.records.filter(\.succeeded).count))
        }
    }

    /// A closed-loop level that ends early counts the time its remaining requests would have taken, and a search
    /// reports the sum over its levels.
    @Test func earlyStopsCountTheTimeTheySavedAndASearchSumsIt() async throws {
        try await withEngine(timeScale: 1, maxNumSeqs: 4) { baseURL in
            var spec = LoadSpec(
                concurrency: [], requests: 120, inputTokens: 64, outputTokens: 16, warmupRequests: 0)
            spec.slo = ["ttft_ms_p99": 30]
            spec.search = CapacitySearch(load: .concurrency, lower: 2, upper: 64, tolerance: 0.1, maxLevels: 5)
            let outcome = try await LoadGenerator(spec: spec, model: "sim").measure(baseURL: baseURL)
            let stopped = outcome.levels.filter { $0.metrics["early_stopped"] == 1 }
            #expect(!stopped.isEmpty, "\(outcome.levels.map(\.name))")
            #expect(stopped.allSatisfy { ($0.metrics["benchmark_s_saved"] ?? 0) > 0 }, "\(stopped.map(\.metrics))")
            let sum = outcome.levels.reduce(0) { $0 + ($1.metrics["benchmark_s_saved"] ?? 0) }
            #expect(outcome.metrics["benchmark_s_saved"] == sum)
            #expect(outcome.metrics["early_stopped_levels"] == Double(stopped.count))
        }
    }
}
