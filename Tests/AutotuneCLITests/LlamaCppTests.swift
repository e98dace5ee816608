import Foundation
import Testing

/// llama.cpp's real `llama-server`, built by `scripts/llama-cpp` (CI does it before the tests).
enum LlamaCpp {
    static let server = ProcessInfo.processInfo.environment["LLAMA_SERVER"]
    static let model = ProcessInfo.processInfo.environment["LLAMA_MODEL"]
    static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"

    static var available: Bool {
        guard let server, let model else { return false }
        return FileManager.default.isExecutableFile(atPath: server) && FileManager.default.fileExists(atPath: model)
    }
}

@Suite(.serialized) struct LlamaCppTests {
    /// A short real study: one server at a time (two would fight for the 2 cores), slots 1 against 4 at 4
    /// concurrent requests. Continuous batching over 4 slots must serve more tokens per second than 1 slot.
    @Test(
        .enabled(
            if: LlamaCpp.available || LlamaCpp.inCI,
            "LLAMA_SERVER and LLAMA_MODEL are not set: run `eval \"$(scripts/llama-cpp env)\"` to build llama.cpp (CI does)"
        )
    )
    func moreSlotsServeMoreTokensOnARealLlamaServer() async throws {
        try #require(
            LlamaCpp.available,
            "CI must build llama.cpp first (scripts/llama-cpp); LLAMA_SERVER=\(LlamaCpp.server ?? "unset")")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        name: llama
        parallel: 1
        parameters:
          slots: {type: categorical, values: [1, 4], flag: -np}
          threads: {type: fixed, value: 2, flag: -t}
        objective: {maximize: output_tokens_per_s}
        strategy: {name: grid, order: declared}
        resources: {ports: 36000-36999}
        experiment:
          kind: serving
          server:
            command: ["{env.LLAMA_SERVER}", -m, "{env.LLAMA_MODEL}", --host, 127.0.0.1, --port, "{port}", -c, "2048"]
            model: random-53m
            health: /health
          benchmark: {concurrency: 4, requests: 12, input_tokens: 16, output_tokens: 32, warmup: 2}
          timeouts: {deploy: 30s, ready: 60s, benchmark: 5m}
        """.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "t.yaml", "--quiet"], in: directory)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let json = try await autotune(["trials", "llama", "--format", "json"], in: directory)
        let trials = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(trials.count == 2)
        var throughput: [Int: Double] = [:]
        for trial in trials {
            #expect(trial["state"] as? String == "completed", "\(trial)")
            let metrics = try #require(trial["metrics"] as? [String: Double])
            #expect(metrics["success_rate"] == 1)
            let slots = try #require((trial["configuration"] as? [String: Any])?["slots"] as? Int)
            throughput[slots] = metrics["output_tokens_per_s"]
        }
        let one = try #require(throughput[1])
        let four = try #require(throughput[4])
        #expect(four > 1.3 * one, "1 slot: \(one) tok/s, 4 slots: \(four) tok/s")
        #expect(processes(containing: try #require(LlamaCpp.model)).isEmpty)
    }
}
