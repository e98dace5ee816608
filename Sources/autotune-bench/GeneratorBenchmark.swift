import Autotune
import AutotuneServing
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How fast the load generator streams, side by side with a plain Python aiohttp client (the kind
/// `vllm bench serve` is) against the same `autotune simulate` process with a near-zero step time.
///
/// `generator [--python PATH] [--autotune PATH]`: each row is one closed-loop run; CPU seconds are the client
/// process's own (user + system), so tokens per CPU-second is the per-core figure. The server is a separate
/// process sharing the machine's cores with whichever client runs.
enum GeneratorBenchmark {
    static func run(python: String?, autotune: String?) async throws {
        let autotune =
            autotune
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("autotune").path
        let port = 35_000 + Int.random(in: 0..<1000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: autotune)
        server.arguments = [
            "simulate", "--port", "\(port)", "--model", "sim", "--time-scale", "0.00001", "--load-seconds", "0",
            "--max-num-seqs", "512",
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        let baseURL = "http://127.0.0.1:\(port)"
        try await waitForServer(baseURL)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../scripts/benchmarks/stream_client.py").standardizedFileURL.path
        print(
            "| client | concurrency | output tokens each | requests | requests/s | streamed tokens/s | client CPU s | tokens per CPU-second |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (concurrency, tokens) in [(64, 64), (256, 64), (64, 1)] {
            let requests = max(2000, concurrency * 16)
            let spec = LoadSpec(
                concurrency: [concurrency], requests: requests, inputTokens: 16, outputTokens: tokens,
                warmupRequests: 8)
            let before = cpuSeconds()
            let level = try await LoadGenerator(spec: spec, model: "sim").run(baseURL: baseURL)[0]
            let cpu = cpuSeconds() - before
            let m = level.metrics
            let streamed = Double(
                level.records.reduce(0) { $0 + $1.interTokenLatencies.count + ($1.timeToFirstToken == nil ? 0 : 1) })
            row(
                "Autotune (Swift)", concurrency, tokens, Int(m["requests"]!), m["requests_per_s"]!,
                streamed / level.seconds, cpu)
            if let python {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: python)
                process.arguments = [script, baseURL, "\(concurrency)", "\(requests)", "\(tokens)"]
                let pipe = Pipe()
                process.standardOutput = pipe
                try process.run()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                if let result = try? JSONDecoder().decode([String: Double].self, from: data) {
                    row(
                        "Python aiohttp", concurrency, tokens, Int(result["requests"]!), result["requests_per_s"]!,
                        result["tokens_per_s"]!, result["cpu_s"]!)
                } else {
                    print(
                        "| Python aiohttp | \(concurrency) | \(tokens) | failed: \(String(decoding: data, as: UTF8.self)) | | | | |"
                    )
                }
            }
        }
    }

    private static func row(
        _ client: String, _ concurrency: Int, _ tokens: Int, _ requests: Int, _ rate: Double, _ streamed: Double,
        _ cpu: Double
    ) {
        let wall = Double(requests) / rate
        let perCore = streamed * wall / max(cpu, 1e-9)
        print(
            "| \(client) | \(concurrency) | \(tokens) | \(requests) | \(Int(rate)) | \(Int(streamed)) | \(String(format: "%.2f", cpu)) | \(Int(perCore)) |"
        )
    }

    /// This process's user and system CPU seconds so far.
    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// Waits until one streamed request succeeds.
    private static func waitForServer(_ baseURL: String) async throws {
        let probe = LoadSpec(concurrency: [1], requests: 1, inputTokens: 4, outputTokens: 1, warmupRequests: 0)
        for _ in 0..<100 {
            let level = try await LoadGenerator(spec: probe, model: "sim").run(baseURL: baseURL)[0]
            if level.metrics["success_rate"] == 1 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RunnerErrorText("the simulated engine did not start")
    }
}

/// A benchmark that could not run.
struct RunnerErrorText: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
