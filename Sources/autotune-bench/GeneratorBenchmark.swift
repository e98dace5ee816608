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
        try await workloads(baseURL: baseURL, python: python, script: script)
    }

    /// The same comparison on workloads from files: the example ShareGPT chat dataset (closed loop, the chat
    /// endpoint, long-tailed answer lengths) and a bursty trace replayed at its own times (open loop), where
    /// what matters is how late each request goes out against its planned time. Both clients send the very
    /// same requests: the generator's plan, written as JSON lines for the Python client to replay.
    static func workloads(baseURL: String, python: String?, script: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("generator-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let chat = URL(fileURLWithPath: script).deletingLastPathComponent()
            .appendingPathComponent("../../examples/workloads/chat.json").standardizedFileURL.path
        let trace = directory.appendingPathComponent("trace.csv").path
        try burstyTrace(rows: 3000, rate: 400).write(toFile: trace, atomically: true, encoding: .utf8)
        func fingerprint(_ path: String) -> String {
            WorkloadFiles.fingerprint(FileManager.default.contents(atPath: path) ?? Data())
        }
        let cases: [(name: String, spec: LoadSpec)] = [
            (
                "ShareGPT chat, concurrency 64",
                LoadSpec(
                    endpoint: .chat, concurrency: [64], requests: 2000, warmupRequests: 8,
                    workload: Workload(
                        source: .dataset(
                            Workload.Dataset(path: chat, format: .sharegpt, fingerprint: fingerprint(chat)))))
            ),
            (
                "BurstGPT trace replay, 400 req/s mean",
                LoadSpec(
                    concurrency: [], rates: [400], requests: 3000, warmupRequests: 8,
                    workload: Workload(
                        source: .trace(
                            Workload.Trace(path: trace, format: .burstgpt, fingerprint: fingerprint(trace)))))
            ),
        ]
        print("")
        print(
            "| workload | client | requests | requests/s | streamed tokens/s | client CPU s | tokens per CPU-second | send lag p50 / p99 ms |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (name, spec) in cases {
            let generator = LoadGenerator(spec: spec, model: "sim", seed: 1)
            let plan = try generator.plannedRequests()
            let before = cpuSeconds()
            let level = try await generator.run(baseURL: baseURL)[0]
            let cpu = cpuSeconds() - before
            let streamed = Double(
                level.records.reduce(0) { $0 + $1.interTokenLatencies.count + ($1.timeToFirstToken == nil ? 0 : 1) })
            // Requests go out in their planned order, so the k-th sent is the k-th planned.
            let planned = plan.compactMap { line -> Double? in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["at"] as? Double
            }.sorted()
            let sent = level.records.map(\.sentAt).sorted()
            let lags = zip(sent, planned).map { $0 - $1 }.sorted()
            let lag =
                lags.isEmpty
                ? "" : milliseconds(lags[lags.count / 2]) + " / " + milliseconds(lags[lags.count * 99 / 100])
            workloadRow(
                name, "Autotune (Swift)", level.records.count, Double(level.records.count) / level.seconds,
                streamed / level.seconds, cpu, level.seconds, lag)
            guard let python else { continue }
            let file = directory.appendingPathComponent("plan.jsonl")
            try plan.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [script, baseURL, "--plan", file.path, spec.endpoint.rawValue, "64"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard let result = try? JSONDecoder().decode([String: Double].self, from: data) else {
                print("| \(name) | Python aiohttp | failed: \(String(decoding: data, as: UTF8.self)) | | | | | |")
                continue
            }
            let pythonLag = result["lag_p50_s"].map { milliseconds($0) + " / " + milliseconds(result["lag_p99_s"]!) }
            workloadRow(
                name, "Python aiohttp", Int(result["requests"]!), result["requests_per_s"]!, result["tokens_per_s"]!,
                result["cpu_s"]!, result["wall_s"]!, pythonLag ?? "")
        }
    }

    private static func milliseconds(_ seconds: Double) -> String { String(format: "%.1f", seconds * 1000) }

    private static func workloadRow(
        _ name: String, _ client: String, _ requests: Int, _ rate: Double, _ streamed: Double, _ cpu: Double,
        _ wall: Double, _ lag: String
    ) {
        let perCore = streamed * wall / max(cpu, 1e-9)
        print(
            "| \(name) | \(client) | \(requests) | \(Int(rate)) | \(Int(streamed)) | \(String(format: "%.2f", cpu)) | \(Int(perCore)) | \(lag) |"
        )
    }

    /// A BurstGPT-format trace of `rows` requests at `rate` per second on average, in bursts (gamma gaps of
    /// shape 0.3), with long-tailed prompt and answer lengths.
    private static func burstyTrace(rows: Int, rate: Double) -> String {
        var generator = SeededGenerator(seed: 42)
        var text = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        var clock = 0.0
        for _ in 0..<rows {
            clock += generator.nextGamma(shape: 0.3) / (0.3 * rate)
            let prompt = LengthDistribution.lognormal(median: 200, sigma: 0.8).sample(&generator)
            let answer = LengthDistribution.lognormal(median: 32, sigma: 0.6).sample(&generator)
            text += "\(clock),ChatGPT,\(prompt),\(answer),\(prompt + answer),Conversation log\n"
        }
        return text
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
    static func waitForServer(_ baseURL: String) async throws {
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
