import Autotune
import AutotuneServing
import Foundation

/// What prefix caching does on the simulated engine, from the engine's own counters: the same requests with it
/// off and on, on traffic behind shared system prompts and on traffic that shares nothing.
///
/// `prefix-caching`: each row is one closed-loop run against an engine served in this process, at time scale 0.25
/// (a simulated second takes 250 ms, so the engine, not this process, sets the pace); engine seconds are simulated.
enum PrefixCachingBenchmark {
    static func run() async throws {
        var shared = Workload(source: .synthetic(input: .lognormal(median: 200, sigma: 0.5), output: .fixed(16)))
        shared.sharedPrefix = Workload.SharedPrefix(count: 4, tokens: 1024)
        let unique = Workload(source: .synthetic(input: .lognormal(median: 1200, sigma: 0.5), output: .fixed(16)))
        print(
            "| workload | prefix caching | prompt tokens computed | prompt tokens from cache | engine seconds | TTFT p50 ms | TTFT p99 ms | output tokens/s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (name, workload) in [
            ("4 shared prefixes of 1024 + lognormal(200)", shared), ("lognormal(1200), nothing shared", unique),
        ] {
            for caching in [false, true] {
                var settings = EngineSettings()
                // vLLM's own default without chunked prefill: a step holds the longest prompt.
                settings.maxNumBatchedTokens = settings.maxModelLength
                settings.enablePrefixCaching = caching
                let engine = SimulatedEngine(settings: settings, timeScale: 0.25)
                let port = 36_000 + Int.random(in: 0..<1000)
                let (level, stats) = try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await SimulatedEngineServer.serve(engine: engine, model: "sim", port: port) }
                    defer { group.cancelAll() }
                    let baseURL = "http://127.0.0.1:\(port)"
                    try await GeneratorBenchmark.waitForServer(baseURL)
                    let spec = LoadSpec(concurrency: [16], requests: 400, warmupRequests: 0, workload: workload)
                    let level = try await LoadGenerator(spec: spec, model: "sim", seed: 1).run(baseURL: baseURL)[0]
                    return (level, await engine.statsJSON())
                }
                let counters =
                    (try JSONSerialization.jsonObject(with: Data(stats.utf8)) as? [String: Any] ?? [:])
                    .compactMapValues { ($0 as? NSNumber)?.doubleValue }
                let m = level.metrics
                print(
                    "| \(name) | \(caching ? "on" : "off") | \(Int(counters["computed_prompt_tokens"] ?? 0)) | \(Int(counters["cached_prompt_tokens"] ?? 0)) | \(String(format: "%.1f", counters["engine_seconds"] ?? 0)) | \(Int(m["ttft_ms_p50"] ?? 0)) | \(Int(m["ttft_ms_p99"] ?? 0)) | \(Int(m["output_tokens_per_s"] ?? 0)) |"
                )
            }
        }
    }
}
