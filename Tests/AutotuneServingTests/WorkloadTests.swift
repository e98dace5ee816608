import Autotune
import Foundation
import NIOHTTP1
import Testing

@testable import AutotuneServing

/// The requests a workload plans: a pure function of the workload, the seed and the level; distinct prompts
/// unless a prefix is shared; lengths, turns and arrivals as asked.
@Suite struct RequestPlanTests {
    private func plan(_ workload: Workload, rows: [WorkloadRow] = [], seed: UInt64 = 7, tokensPerWord: Double = 1)
        -> RequestPlan
    {
        RequestPlan(workload: workload, rows: rows, seed: seed, tokensPerWord: tokensPerWord)
    }

    private let synthetic = Workload(source: .synthetic(input: .fixed(64), output: .fixed(16)))

    @Test func theSamePlanTwiceIsByteIdenticalAndEveryPromptDistinct() throws {
        let a = (0..<300).flatMap { plan(synthetic).session($0, level: 0) }
        let b = (0..<300).flatMap { plan(synthetic).session($0, level: 0) }
        #expect(a == b, "a pure function of the workload, the seed and the level")
        #expect(Set(a.map(\.promptText)).count == 300, "no two prompts the same")
        // Not even their first block of words: nothing a prefix cache could serve.
        #expect(Set(a.map { $0.promptText.split(separator: " ").prefix(1) }).count == 300)
        #expect(a.allSatisfy { WorkloadFiles.words($0.promptText) == 64 && $0.maxTokens == 16 })
        // Another seed (another study), or another level, sends other prompts.
        #expect(plan(synthetic, seed: 8).session(0, level: 0) != a[0...0].map { $0 })
        #expect(plan(synthetic).session(0, level: 1).first?.promptText != a[0].promptText)
    }

    @Test func theServersTokensPerWordSetsTheLengthInWords() {
        let request = plan(synthetic, tokensPerWord: 1.6).session(0, level: 0)[0]
        #expect(WorkloadFiles.words(request.promptText) == 40, "64 tokens at 1.6 tokens a word")
        #expect(request.promptTokens == 64)
    }

    @Test func sharedPrefixesAreSharedAndNothingElse() {
        var workload = synthetic
        workload.sharedPrefix = Workload.SharedPrefix(count: 3, tokens: 100)
        let requests = (0..<60).flatMap { plan(workload).session($0, level: 0) }
        let prefixes = Set(requests.map { $0.messages[0].content })
        #expect(prefixes.count == 3 && requests.allSatisfy { $0.messages[0].role == "system" })
        #expect(requests.allSatisfy { WorkloadFiles.words($0.messages[0].content) == 100 })
        #expect(Set(requests.map { $0.messages[1].content }).count == 60, "the rest of each prompt is its own")
        #expect(requests.allSatisfy { $0.promptTokens == 164 })
    }

    @Test func conversationsCarryTheirHistory() {
        var workload = synthetic
        workload.turns = 3
        let session = plan(workload).session(4, level: 0)
        #expect(session.map(\.turn) == [0, 1, 2] && Set(session.map(\.session)) == [4])
        #expect(session.map { $0.messages.count } == [1, 3, 5], "each turn with the previous turns and answers")
        #expect(session[2].messages[0] == session[0].messages[0] && session[2].messages[2] == session[1].messages[2])
        #expect(session.map(\.promptTokens) == [64, 64 + 16 + 64, 64 + 16 + 64 + 16 + 64])
        #expect(plan(workload).sessionCount(forRequests: 10) == 4)
    }

    @Test func datasetsAreSampledWithOrWithoutReplacementAndUseTheirOwnTurns() throws {
        let rows = (0..<5).map { index in
            WorkloadRow(
                turns: [
                    WorkloadRow.Turn(role: "user", content: "question \(index)"),
                    WorkloadRow.Turn(role: "assistant", content: "one two three four five six seven eight nine ten"),
                    WorkloadRow.Turn(role: "user", content: "and then?"),
                ], outputTokens: 13, line: index + 1)
        }
        var dataset = Workload.Dataset(path: "d.json", format: .sharegpt, replacement: false, fingerprint: "x")
        let without = plan(Workload(source: .dataset(dataset)), rows: rows)
        let first = (0..<5).map { without.session($0, level: 0)[0].messages[0].content }
        #expect(Set(first).count == 5, "without replacement every row once before any twice")
        dataset.replacement = true
        let with = plan(Workload(source: .dataset(dataset)), rows: rows)
        let drawn = (0..<200).map { with.session($0, level: 0)[0].messages[0].content }
        #expect(Set(drawn).count == 5 && drawn.count == 200, "a small file oversampled")
        var twoTurns = Workload(source: .dataset(dataset))
        twoTurns.turns = 2
        let session = plan(twoTurns, rows: rows).session(0, level: 0)
        #expect(session.count == 2 && session[1].messages.count == 3, "the second turn has the first and its reply")
        #expect(session[0].maxTokens == Int((10 * WorkloadFiles.tokensPerWord)), "the conversation's own reply")
    }

    @Test func arrivalsFollowTheirProcess() {
        func gaps(_ arrivals: Workload.Arrivals) -> (mean: Double, cv: Double) {
            var workload = synthetic
            workload.arrivals = arrivals
            let times = plan(workload).arrivals(count: 4000, rate: 10, level: 0)
            let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
            let mean = gaps.reduce(0, +) / Double(gaps.count)
            let sd = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)).squareRoot()
            return (mean, sd / mean)
        }
        let constant = gaps(.constant)
        #expect(abs(constant.mean - 0.1) < 1e-9 && constant.cv < 1e-6)
        let poisson = gaps(.poisson)
        #expect(abs(poisson.mean - 0.1) < 0.005 && abs(poisson.cv - 1) < 0.06)
        // vLLM's burstiness: the gaps' coefficient of variation is 1/√burstiness.
        let bursty = gaps(.gamma(burstiness: 0.25))
        #expect(abs(bursty.mean - 0.1) < 0.01 && abs(bursty.cv - 2) < 0.2, "\(bursty)")
        let even = gaps(.gamma(burstiness: 4))
        #expect(abs(even.cv - 0.5) < 0.05, "\(even)")
    }

    @Test func tracesReplayAtTheirTimesOrTheirShapeAtARate() {
        let rows = [0.0, 1, 1.5, 4].enumerated().map { index, time in
            WorkloadRow(turns: [], promptTokens: 100 + index, outputTokens: 20, timestamp: time, line: index + 2)
        }
        let replay = plan(
            Workload(
                source: .trace(
                    Workload.Trace(path: "t.csv", format: .burstgpt, timing: .replay(speed: 2), fingerprint: ""))),
            rows: rows)
        #expect(replay.arrivals(count: 4, rate: 999, level: 0) == [0, 0.5, 0.75, 2], "its own times over its speed")
        #expect(replay.session(3, level: 0)[0].promptTokens == 103)
        #expect(WorkloadFiles.words(replay.session(3, level: 0)[0].promptText) == 103)
        let shape = plan(
            Workload(source: .trace(Workload.Trace(path: "t.csv", format: .burstgpt, timing: .shape, fingerprint: ""))),
            rows: rows)
        let times = shape.arrivals(count: 4, rate: 3, level: 0)
        // Gaps 1, 0.5, 2.5 (mean 4/3) rescaled to a mean of 1/3: 0.25, 0.125, 0.625.
        #expect(zip(times, [0, 0.25, 0.375, 1]).allSatisfy { abs($0 - $1) < 1e-9 }, "\(times)")
    }

    @Test func mooncakeBlocksBecomeSharedPrefixes() {
        let rows = [
            WorkloadRow(turns: [], promptTokens: 1100, outputTokens: 5, timestamp: 0, blocks: [7, 8, 9], line: 1),
            WorkloadRow(turns: [], promptTokens: 900, outputTokens: 5, timestamp: 1, blocks: [7, 12], line: 2),
        ]
        let trace = plan(
            Workload(source: .trace(Workload.Trace(path: "m.jsonl", format: .mooncake, fingerprint: ""))), rows: rows)
        let a = trace.session(0, level: 0)[0].promptText.split(separator: " ")
        let b = trace.session(1, level: 0)[0].promptText.split(separator: " ")
        #expect(a.count == 1100 && b.count == 900)
        #expect(a.prefix(512) == b.prefix(512), "block 7 is shared")
        #expect(a[512..<900] != b[512..<900], "block 8 and block 12 differ")
    }
}

/// The simulated engine follows the workload: its tokens are the prompt's words, it refuses what vLLM refuses, and
/// with prefix caching a shared prefix is cheaper — read from its own counters, which the host's load cannot move.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EngineWorkloadTests {
    @Test func itRefusesAnUnknownModelAndAPromptLongerThanItsContext() async throws {
        try await withEngine(timeScale: 0.1, configure: { $0.maxModelLength = 100 }) { baseURL in
            let unknown = try await request(
                baseURL + "/v1/completions", method: .POST,
                body: #"{"model": "other", "prompt": "hi", "max_tokens": 2}"#)
            #expect(unknown.status == 404)
            #expect(String(decoding: unknown.body, as: UTF8.self).contains("The model `other` does not exist"))
            let words = Array(repeating: "word", count: 95).joined(separator: " ")
            let long = try await request(
                baseURL + "/v1/completions", method: .POST,
                body: #"{"model": "sim", "prompt": "\#(words)", "max_tokens": 10}"#)
            #expect(long.status == 400)
            #expect(String(decoding: long.body, as: UTF8.self).contains("maximum context length is 100 tokens"))
            let fits = try await request(
                baseURL + "/v1/completions", method: .POST,
                body: #"{"model": "sim", "prompt": "\#(words)", "max_tokens": 5}"#)
            #expect(fits.status == 200)
            let tokenized = try await request(
                baseURL + "/tokenize", method: .POST, body: #"{"model": "sim", "prompt": "one two three"}"#)
            #expect(String(decoding: tokenized.body, as: UTF8.self).contains(#""count":3"#))
        }
    }

    /// The same requests against the same engine with and without prefix caching: with a shared prefix, caching
    /// computes far fewer prompt tokens and the engine spends less time; with nothing shared, it changes nothing.
    @Test func prefixCachingPaysOnASharedPrefixAndNotOnUniqueTraffic() async throws {
        func run(_ workload: Workload, caching: Bool) async throws -> [String: Double] {
            try await withEngine(timeScale: 0.05, configure: { $0.enablePrefixCaching = caching }) { baseURL in
                let spec = LoadSpec(concurrency: [8], requests: 96, warmupRequests: 0, workload: workload)
                _ = try await LoadGenerator(spec: spec, model: "sim", seed: 3).run(baseURL: baseURL)
                return try await engineStats(baseURL)
            }
        }
        var shared = Workload(source: .synthetic(input: .fixed(200), output: .fixed(8)))
        shared.sharedPrefix = Workload.SharedPrefix(count: 2, tokens: 800)
        let sharedOff = try await run(shared, caching: false)
        let sharedOn = try await run(shared, caching: true)
        #expect(sharedOff["cached_prompt_tokens"] == 0)
        #expect((sharedOn["cached_prompt_tokens"] ?? 0) > 80 * 700, "\(sharedOn)")
        #expect((sharedOn["computed_prompt_tokens"] ?? .infinity) < 0.4 * (sharedOff["computed_prompt_tokens"] ?? 0))
        let speedup = (sharedOff["engine_seconds"] ?? 0) / (sharedOn["engine_seconds"] ?? .infinity)
        #expect(speedup > 1.3, "engine seconds without caching over with: \(speedup)")

        let unique = Workload(source: .synthetic(input: .uniform(low: 600, high: 1000), output: .fixed(8)))
        let uniqueOff = try await run(unique, caching: false)
        let uniqueOn = try await run(unique, caching: true)
        #expect(uniqueOn["cached_prompt_tokens"] == 0, "distinct prompts share no block: \(uniqueOn)")
        #expect(uniqueOn["computed_prompt_tokens"] == uniqueOff["computed_prompt_tokens"])
    }

    /// What the engine received: calibrated lengths, every prompt distinct, and the same requests from two
    /// generators with the study's seed (two trials).
    @Test func twoTrialsSendTheSameDistinctPrompts() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("requests-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var spec = LoadSpec(concurrency: [6], requests: 60, warmupRequests: 2)
        spec.workload = Workload(source: .synthetic(input: .lognormal(median: 40, sigma: 0.5), output: .fixed(4)))
        let planned = spec
        var received: [[String]] = []
        for trial in 0..<2 {
            let log = directory.appendingPathComponent("trial-\(trial).jsonl")
            let levels = try await withEngine(timeScale: 0.05, requestLog: log) { baseURL in
                try await LoadGenerator(spec: planned, model: "sim", seed: 11).run(baseURL: baseURL)
            }
            // The lengths the server counted are the lengths planned.
            let records = try #require(levels.first?.records)
            #expect(records.allSatisfy { $0.promptTokens == $0.plannedPromptTokens }, "\(records.prefix(3))")
            let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map(String.init)
            received.append(lines.filter { $0.contains("\"stream\":true") })
        }
        #expect(received[0].count == 62, "two warm-up requests and sixty measured")
        #expect(received[0].sorted() == received[1].sorted(), "byte-identical requests in both trials")
        #expect(Set(received[0]).count == 62, "no two the same")
    }
}
