import AsyncHTTPClient
public import Autotune
public import AutotuneRunner
public import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Deploys a model server, waits until it is ready, benchmarks it and tears it down, each stage timed and
/// with its own timeout.
///
/// The server runs in one child task, the stages in another: if the server exits first (a crash at start, an
/// out-of-memory mid-benchmark), the trial fails at the stage it was in, quoting the server's last log lines;
/// when the benchmark ends first, cancelling the server's task stops its whole process group. Its stdout and
/// stderr are kept in the trial's directory as `server.stdout.log` and `server.stderr.log`, the benchmark's
/// per-request records in `benchmark.json`. The launch permit is held from deploy until ready.
public struct ServingExperiment: Experiment {
    /// The server and the benchmark.
    public var spec: ServingSpec
    /// Where the server runs when the spec names no directory.
    public var defaultWorkingDirectory: URL
    /// Placeholders beyond the trial's own, e.g. `autotune` (this executable's path).
    public var extraPlaceholders: [String: String]
    /// How often readiness is polled.
    public var pollInterval: Duration
    /// Where the server runs: here, or as a Slurm job on the node Slurm picks.
    public var runner: any ProgramRunner

    /// Creates the experiment.
    public init(
        spec: ServingSpec,
        defaultWorkingDirectory: URL,
        extraPlaceholders: [String: String] = [:],
        pollInterval: Duration = .milliseconds(200),
        runner: any ProgramRunner = LocalProgramRunner()
    ) {
        self.spec = spec
        self.defaultWorkingDirectory = defaultWorkingDirectory
        self.extraPlaceholders = extraPlaceholders
        self.pollInterval = pollInterval
        self.runner = runner
    }

    /// Slurm gives a job its GPUs; here the runner leases them.
    public var schedulerAssignsGPUs: Bool { runner.assignsGPUs }

    /// A capacity search starts from the nearest finished trial's capacity.
    public var usesNeighbour: Bool {
        if case .load(let load) = spec.benchmark { return load.search != nil }
        return false
    }

    private enum Outcome: Sendable {
        case serverExited(ProcessLauncher.Outcome)
        case measured(ExperimentResult)
    }

    /// Placeholder values: the trial's, the model, and the extras.
    func placeholderValues(_ context: TrialContext) -> [String: String] {
        var values = context.placeholderValues
        values["model"] = spec.server.model
        values.merge(extraPlaceholders) { current, _ in current }
        return values
    }

    /// The server's process: the rendered program (unplaced parameters as flags), wrapped in `docker run` when
    /// the spec says so.
    func serverProgram(for context: TrialContext) throws(ExperimentError) -> RenderedProgram {
        let values = placeholderValues(context)
        var program = try context.program(
            spec.server.program, values: values, defaultWorkingDirectory: defaultWorkingDirectory, stage: .deploy)
        guard case .docker(let docker) = spec.server.launcher else { return program }
        var run = ["docker", "run", "--rm", "--name", Self.containerName(context)]
        if let gpus = context.gpus {
            run += ["--gpus", gpus.isEmpty ? "0" : "\"device=\(gpus.map(String.init).joined(separator: ","))\""]
        }
        if let port = context.port { run += ["-p", "127.0.0.1:\(port):\(docker.containerPort)"] }
        for mount in docker.mounts { run += ["-v", try render(Template(mount), values, stage: .deploy)] }
        // The container gets the template's own variables; the trial's standard ones stay with `docker run`.
        for name in spec.server.program.environment.keys.sorted() {
            run += ["-e", "\(name)=\(program.environment[name] ?? "")"]
        }
        program.arguments = run + docker.extraArguments + [docker.image] + program.arguments
        return program
    }

    /// The server's command line for a trial.
    public func commandLine(for context: TrialContext) throws -> [String] {
        var context = context
        context.port = context.port ?? 8000
        return try serverProgram(for: context).arguments
    }

    /// Ends what a dead runner left of the trial: its server's process group here, or its Slurm job.
    public func recover(_ trial: AbandonedTrial) async -> Bool {
        await runner.recover(trial)
    }

    static func containerName(_ context: TrialContext) -> String {
        "autotune-\(context.study)-\(context.trial.number)".map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" }
            .map(String.init).joined()
    }

    /// Runs the trial.
    public func run(_ context: TrialContext) async throws -> ExperimentResult {
        guard let port = context.port else {
            throw ExperimentError(stage: .deploy, message: "the serving experiment needs a reserved port")
        }
        let program = try serverProgram(for: context)
        let values = placeholderValues(context)
        let stdout = context.directory.appendingPathComponent("server.stdout.log")
        let stderr = context.directory.appendingPathComponent("server.stderr.log")
        try? Data((program.arguments.joined(separator: " ") + "\n").utf8).write(
            to: context.directory.appendingPathComponent("command.txt"))

        let stage = Locked(TrialStage.deploy)
        let placement = Locked<ProgramStart?>(nil)
        let timings = Locked([String: Double]())
        let (started, startedContinuation) = AsyncStream.makeStream(of: ProgramStart.self)
        let permit = PermitHolder(context.launches)
        try await context.launches.acquire()
        permit.taken()
        defer { permit.release() }
        let deployStart = ContinuousClock.now
        let spec = self.spec
        let runner = self.runner
        let pollInterval = self.pollInterval
        do {
            return try await withThrowingTaskGroup(of: Outcome.self) { group in
                group.addTask {
                    var scheduling = context.scheduling(program: "server")
                    // The experiment holds the launch permit itself, from deploy until ready.
                    scheduling.launches = nil
                    let outcome = try await runner.run(
                        ProgramRequest(
                            program,
                            standardOutput: stdout,
                            standardError: stderr,
                            killGrace: context.killGrace,
                            scheduling: scheduling
                        ),
                        onStart: { start in
                            placement.withLock { $0 = start }
                            startedContinuation.yield(start)
                            startedContinuation.finish()
                        }
                    )
                    startedContinuation.finish()
                    return .serverExited(outcome)
                }
                group.addTask {
                    // Deploy: the process exists.
                    let spawned = try await withStageTimeout(spec.stageTimeouts.deploy, stage: .deploy) {
                        await started.first { _ in true }
                    }
                    guard let spawned else { return .serverExited(.init(exitCode: nil, signal: nil, seconds: 0)) }
                    // A server Slurm placed is reached on its node; a local one on the loopback.
                    let baseURL = "http://\(spawned.address ?? "127.0.0.1"):\(port)"
                    let readyStart = ContinuousClock.now
                    timings.withLock { $0[TrialStage.deploy.rawValue] = (readyStart - deployStart).seconds }
                    stage.withLock { $0 = .ready }
                    let healthURL = baseURL + spec.server.healthPath
                    let probe = ReadinessProbe()
                    let readyLimit = spec.stageTimeouts.ready
                    try await withStageTimeout(
                        readyLimit, stage: .ready,
                        message: {
                            "the server did not answer GET \(healthURL) with 200 within \(Int(readyLimit.seconds)) s (\(probe.last ?? "no answer yet"))"
                        }
                    ) {
                        // Each try ends well inside the stage's limit, so the message can say what the last one got.
                        try await Self.waitUntilReady(
                            url: healthURL, interval: pollInterval,
                            tryTimeout: min(.seconds(2), max(.milliseconds(250), readyLimit / 4)), probe: probe)
                    }
                    let benchmarkStart = ContinuousClock.now
                    timings.withLock { $0[TrialStage.ready.rawValue] = (benchmarkStart - readyStart).seconds }
                    permit.release()
                    stage.withLock { $0 = .benchmark }
                    let (metrics, pruned) = try await withStageTimeout(spec.stageTimeouts.benchmark, stage: .benchmark)
                    {
                        try await Self.benchmark(
                            spec.benchmark, baseURL: baseURL, context: context, values: values, model: spec.server.model
                        )
                    }
                    timings.withLock {
                        $0[TrialStage.benchmark.rawValue] = (ContinuousClock.now - benchmarkStart).seconds
                    }
                    return .measured(
                        ExperimentResult(
                            metrics: metrics, timings: timings.withLock { $0 }, host: spawned.node, gpus: spawned.gpus,
                            pruned: pruned)
                    )
                }
                guard let first = try await group.next() else {
                    throw ExperimentError(stage: .deploy, message: "the server task ended without a result")
                }
                group.cancelAll()
                switch first {
                case .measured(let result):
                    return result
                case .serverExited(let outcome):
                    let during = stage.withLock { $0 }
                    throw ExperimentError(
                        stage: outcome.nodeLost ? .lost : during,
                        message: "the server exited (\(outcome.summary)) during \(during)",
                        signal: outcome.signal
                    )
                }
            }
        } catch let error as ExperimentError {
            // Whatever failed, the server's last words say most about why.
            throw ExperimentError(
                stage: error.stage,
                message: error.message,
                output: error.output ?? ExperimentError.tail(standardOutput: stdout, standardError: stderr),
                metrics: error.metrics,
                placement: placement.withLock { $0 },
                signal: error.signal
            )
        } catch let error as LaunchError {
            throw ExperimentError(stage: .deploy, message: error.description)
        }
    }

    /// Polls `url` until it answers 200, each try for at most `tryTimeout`, telling `probe` what each got, for the
    /// message when it never does.
    static func waitUntilReady(url: String, interval: Duration, tryTimeout: Duration, probe: ReadinessProbe)
        async throws
    {
        while true {
            try Task.checkCancellation()
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            do {
                let response = try await HTTPClient.shared.execute(
                    request, timeout: .milliseconds(Int64(tryTimeout.seconds * 1000)))
                _ = try? await response.body.collect(upTo: 1 << 20)
                if response.status == .ok { return }
                probe.record("it answered \(response.status.code) \(response.status.reasonPhrase)")
            } catch {
                probe.record(ReadinessProbe.describe(error))
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Runs the benchmark; returns its metrics and, when it stopped because a hard constraint broke, why.
    ///
    /// The built-in generator also writes `benchmark.json` (every level and request) and `result.json`, the level
    /// the trial's figures come from (a capacity search's highest passing level; a single level) in
    /// `vllm bench serve --save-result`'s format, so scripts that read those read these; `result-LEVEL.json` for
    /// each level when there are several.
    static func benchmark(
        _ benchmark: BenchmarkSpec,
        baseURL: String,
        context: TrialContext,
        values: [String: String],
        model: String
    ) async throws -> (metrics: [String: Double], pruned: String?) {
        switch benchmark {
        case .load(let load):
            // The study's seed alone: every trial of the study is measured on the same requests.
            let generator = LoadGenerator(spec: load, model: model, seed: context.seed)
            let outcome = try await generator.measure(
                baseURL: baseURL, gpus: max(1, context.gpus?.count ?? 1), neighbour: context.neighbour,
                constraints: context.constraints)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try? encoder.encode(outcome.levels).write(to: context.directory.appendingPathComponent("benchmark.json"))
            let levels = outcome.levels
            // The level the trial's figures come from, not the last one probed: in a capacity search that one
            // usually failed.
            if let chosen = outcome.chosen {
                try? VLLMResult(level: levels[chosen], spec: load, model: model, metrics: outcome.metrics).encoded()
                    .write(to: context.directory.appendingPathComponent("result.json"))
            }
            if levels.count > 1 {
                for level in levels {
                    try? VLLMResult(level: level, spec: load, model: model, metrics: level.metrics).encoded()
                        .write(to: context.directory.appendingPathComponent("result-\(level.name).json"))
                }
            }
            if levels.allSatisfy({ $0.metrics["success_rate"] == 0 }) {
                let reason = levels.first?.records.first?.error ?? "no request"
                throw ExperimentError(
                    stage: .benchmark, message: "every request failed: \(reason)", metrics: outcome.metrics)
            }
            return (outcome.metrics, outcome.pruned)
        case .external(let external):
            return (try await ExternalBenchmark(spec: external).run(context: context, values: values), nil)
        }
    }

    private func render(_ template: Template, _ values: [String: String], stage: TrialStage) throws(ExperimentError)
        -> String
    {
        do {
            return try template.render(values)
        } catch {
            throw ExperimentError(stage: stage, message: error.description)
        }
    }
}

/// Releases a launch permit exactly once, from whichever path gets there first.
private final class PermitHolder: Sendable {
    private let limiter: LaunchLimiter
    private let held = Mutex(false)

    init(_ limiter: LaunchLimiter) { self.limiter = limiter }

    func taken() { held.withLock { $0 = true } }

    func release() {
        let wasHeld = held.withLock { value in
            defer { value = false }
            return value
        }
        if wasHeld { limiter.release() }
    }
}

/// What the readiness polls got so far, for the message when the server is never ready: "nothing listens on the
/// port" and "it answered 503" call for different fixes.
final class ReadinessProbe: Sendable {
    private let state = Mutex<(tries: Int, last: String?)>((0, nil))

    /// How many tries ended and what the last one got, or `nil` before the first one ended.
    var last: String? {
        state.withLock { state in
            state.last.map { "\(state.tries) tr\(state.tries == 1 ? "y" : "ies"), the last: \($0)" }
        }
    }

    /// Counts a try that ended with `outcome`.
    func record(_ outcome: String) {
        state.withLock { $0 = ($0.tries + 1, outcome) }
    }

    /// A poll's error in words: a refused connection means the server has not opened its port (or uses another).
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("refused") {
            return "connection refused: nothing listens on the port yet (does the command use {port}?)"
        }
        if text.localizedCaseInsensitiveContains("timeout") || text.localizedCaseInsensitiveContains("timed out") {
            return "no answer in time"
        }
        return "no answer (\(text.prefix(160)))"
    }
}

/// Runs `operation`, failing at `stage` after `limit` with `message` (read when the limit passes), or with
/// "STAGE did not finish within N s".
func withStageTimeout<T: Sendable>(
    _ limit: Duration,
    stage: TrialStage,
    message: (@Sendable () -> String)? = nil,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withTimeout(
        limit,
        error: {
            ExperimentError(
                stage: stage, message: message?() ?? "\(stage) did not finish within \(Int(limit.seconds)) s")
        },
        operation
    )
}
