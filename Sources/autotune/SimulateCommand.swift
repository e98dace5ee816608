import ArgumentParser
import AutotuneServing
import Foundation

/// `autotune simulate`: the simulated OpenAI-compatible engine, with vLLM's flag names, for the quickstart,
/// the tests, and trying Autotune without a GPU.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Serve a simulated OpenAI-compatible LLM engine whose speed follows vLLM-like flags.",
        discussion: """
            Continuous batching with a KV cache of limited size (preemption when it runs out), optional chunked \
            prefill, and a step time that grows with the batch, so the best flags lie inside the ranges. It \
            refuses to start, like vLLM, when memory is over-committed or tensor parallelism does not match the \
            visible GPUs (CUDA_VISIBLE_DEVICES).
            """
    )

    @Option(name: .long) var host = "127.0.0.1"
    @Option(name: .long) var port: Int
    @Option(name: .long) var model = "simulated-30b"
    @Option(name: .customLong("max-num-seqs")) var maxNumSeqs = 256
    @Option(name: .customLong("max-num-batched-tokens")) var maxNumBatchedTokens = 8192
    @Option(name: .customLong("gpu-memory-utilization")) var gpuMemoryUtilization = 0.9
    @Flag(name: .customLong("enable-chunked-prefill")) var enableChunkedPrefill = false
    @Flag(name: .customLong("enable-prefix-caching")) var enablePrefixCaching = false
    @Option(name: .customLong("tensor-parallel-size")) var tensorParallelSize = 1
    @Option(name: .customLong("block-size")) var blockSize = 16
    @Option(name: .customLong("max-model-len")) var maxModelLength = 4096
    @Option(name: .customLong("time-scale"), help: "Multiply every simulated step's duration (0.25: 4x faster).")
    var timeScale = 1.0
    @Option(name: .customLong("load-seconds"), help: "Seconds before the port opens, like loading weights.")
    var loadSeconds = 1.0
    @Option(
        name: .customLong("log-requests"), help: "Append every completion request's body to this file, a line each.")
    var logRequests: String?

    @Option(
        name: .customLong("stats-file"),
        help: "Write the engine's counters (GET /stats) to this file each time it runs out of work.")
    var statsFile: String?

    func run() async throws {
        var settings = EngineSettings()
        settings.maxNumSeqs = maxNumSeqs
        settings.maxNumBatchedTokens = maxNumBatchedTokens
        settings.gpuMemoryUtilization = gpuMemoryUtilization
        settings.enableChunkedPrefill = enableChunkedPrefill
        settings.enablePrefixCaching = enablePrefixCaching
        settings.tensorParallelSize = tensorParallelSize
        settings.blockSize = blockSize
        settings.maxModelLength = maxModelLength
        let visible = ProcessInfo.processInfo.environment["CUDA_VISIBLE_DEVICES"].map {
            $0.split(separator: ",").filter { !$0.isEmpty }.count
        }
        FileHandle.standardError.write(
            Data(
                "INFO simulated engine \(model): KV cache \(settings.kvCapacityTokens) tokens, tp=\(tensorParallelSize)\n"
                    .utf8)
        )
        if let problem = settings.startupProblem(visibleGPUs: visible) {
            // A real engine fails after loading weights, not before: keep the readiness stage honest.
            try await Task.sleep(for: .milliseconds(Int(min(loadSeconds, 0.5) * 1000)))
            FileHandle.standardError.write(Data("ERROR \(problem)\n".utf8))
            throw ExitCode(1)
        }
        let engine = SimulatedEngine(
            settings: settings, timeScale: timeScale, statsFile: statsFile.map { URL(fileURLWithPath: $0) })
        try await SimulatedEngineServer.serve(
            engine: engine, model: model, host: host, port: port, loadSeconds: loadSeconds,
            requestLog: logRequests.map { URL(fileURLWithPath: $0) })
    }
}
