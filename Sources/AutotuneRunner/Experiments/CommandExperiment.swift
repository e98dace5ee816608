public import Autotune
public import Foundation
import Logging

/// Runs a command per trial (argv, no shell) and reads its metrics from its output.
///
/// Parameters the command template places (`{name}`) are substituted; the others are appended as flags
/// unless ``CommandSpec/appendFlags`` is off. stdout and stderr go to `stdout.log` and `stderr.log` in the
/// trial's directory. The command's own wall time is always the metric `wall_time` (seconds), so any
/// program's flags can be tuned for speed without a wrapper.
public struct CommandExperiment: Experiment {
    /// The command and where its metrics come from.
    public var spec: CommandSpec
    /// The directory commands run in when the spec names none.
    public var defaultWorkingDirectory: URL
    /// Where the command runs: here, or as a Slurm job.
    public var runner: any ProgramRunner
    /// Placeholders beyond the trial's own, e.g. `autotune` (this executable's path).
    public var extraPlaceholders: [String: String]

    /// Creates the experiment.
    public init(
        spec: CommandSpec,
        defaultWorkingDirectory: URL,
        runner: any ProgramRunner = LocalProgramRunner(),
        extraPlaceholders: [String: String] = [:]
    ) {
        self.spec = spec
        self.defaultWorkingDirectory = defaultWorkingDirectory
        self.runner = runner
        self.extraPlaceholders = extraPlaceholders
    }

    private func placeholderValues(_ context: TrialContext) -> [String: String] {
        context.placeholderValues.merging(extraPlaceholders) { own, _ in own }
    }

    /// Slurm gives a job its GPUs; here the runner leases them.
    public var schedulerAssignsGPUs: Bool { runner.assignsGPUs }

    /// The argv for a trial: the rendered template plus the flags of parameters it does not place.
    public func commandLine(for context: TrialContext) throws -> [String] {
        try program(for: context).arguments
    }

    private func program(for context: TrialContext) throws(ExperimentError) -> RenderedProgram {
        try context.program(
            spec.program, values: placeholderValues(context), defaultWorkingDirectory: defaultWorkingDirectory,
            stage: .launch)
    }

    /// Ends what a dead runner left of the trial: its process group here, or its Slurm job.
    public func recover(_ trial: AbandonedTrial) async -> Bool {
        await runner.recover(trial)
    }

    /// Runs the command and reads its metrics.
    public func run(_ context: TrialContext) async throws -> ExperimentResult {
        let values = placeholderValues(context)
        let program = try program(for: context)
        let stdoutURL = context.directory.appendingPathComponent("stdout.log")
        let stderrURL = context.directory.appendingPathComponent("stderr.log")
        let command = program.arguments.joined(separator: " ")
        try? Data((command + "\n").utf8).write(to: context.directory.appendingPathComponent("command.txt"))
        context.logger.debug("Trial command started", metadata: ["trial.command": "\(command)"])

        let placement = Locked<ProgramStart?>(nil)
        let outcome: ProcessLauncher.Outcome
        do {
            outcome = try await runner.run(
                ProgramRequest(
                    program,
                    standardOutput: stdoutURL,
                    standardError: stderrURL,
                    killGrace: context.killGrace,
                    scheduling: context.scheduling(program: "command")
                ),
                onStart: { start in placement.withLock { $0 = start } }
            )
        } catch let error as LaunchError {
            throw ExperimentError(stage: .launch, message: error.description)
        }
        let stdout = Self.read(stdoutURL)
        let stderr = Self.read(stderrURL)
        let start = placement.withLock { $0 }
        guard outcome.succeeded else {
            throw ExperimentError(
                stage: outcome.nodeLost ? .lost : .run,
                message: outcome.summary,
                output: ExperimentError.tail(of: stderr.isEmpty ? stdout : stderr),
                metrics: ["wall_time": outcome.seconds],
                placement: start,
                signal: outcome.signal
            )
        }
        var metrics: [String: Double]
        let printedJSON: Bool
        do {
            (metrics, printedJSON) = try readMetrics(stdout: stdout, stderr: stderr, values: values)
        } catch var error as ExperimentError {
            error.placement = start
            throw error
        }
        metrics["wall_time"] = outcome.seconds
        return ExperimentResult(
            metrics: metrics,
            timings: [TrialStage.run.rawValue: outcome.seconds],
            host: start?.node,
            gpus: start?.gpus,
            metricsHint: metricsHint(stdout: stdout, printedJSON: printedJSON)
        )
    }

    /// What a person needs when a metric is missing: whether stdout held a JSON object, and its last line when
    /// it did not.
    private func metricsHint(stdout: String, printedJSON: Bool) -> String {
        if printedJSON { return "the last JSON object on stdout does not have it" }
        if spec.metrics.stdoutJSON, let bad = MetricsExtraction.nonFiniteValue(in: stdout) {
            let named = bad.key.map { "'\($0)' is " } ?? "a value is "
            return
                "stdout's last JSON object line cannot be read: \(named)\(bad.value), which is not a finite number (JSON has no NaN or infinity, and a double ends near 1.8e308): print a finite number, or leave the metric out"
        }
        let printed = Self.lastLine(of: stdout).map { "its last line: '\($0.prefix(120))'" } ?? "it printed nothing"
        guard spec.metrics.stdoutJSON else {
            return "stdout_json is off: metrics come only from experiment.metrics (file, patterns); stdout: \(printed)"
        }
        return
            "stdout has no JSON object line (\(printed)): print one, as {\"{metric}\": 1.5}, or read it with experiment.metrics (file, patterns)"
    }

    /// The last line of `text` that is not blank, found from the end: a program's stdout may be megabytes.
    static func lastLine(of text: String) -> Substring? {
        var end = text.endIndex
        while end > text.startIndex, text[text.index(before: end)].isWhitespace { end = text.index(before: end) }
        guard end > text.startIndex else { return nil }
        let start = text[..<end].lastIndex(where: \.isNewline).map { text.index(after: $0) } ?? text.startIndex
        return text[start..<end]
    }

    /// The metrics from every source the task names, and whether stdout held a JSON object.
    private func readMetrics(stdout: String, stderr: String, values: [String: String]) throws -> (
        [String: Double], Bool
    ) {
        var metrics: [String: Double] = [:]
        var printedJSON = false
        if spec.metrics.stdoutJSON, let reported = MetricsExtraction.lastJSONObject(in: stdout) {
            metrics.merge(reported) { _, new in new }
            printedJSON = true
        }
        if let file = spec.metrics.file {
            let path = try render(file, values)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ExperimentError(stage: .metrics, message: "the metrics file \(path) was not written")
            }
            guard let reported = MetricsExtraction.jsonObject(data) else {
                throw ExperimentError(stage: .metrics, message: "the metrics file \(path) is not a JSON object")
            }
            metrics.merge(reported) { _, new in new }
        }
        if !spec.metrics.patterns.isEmpty {
            metrics.merge(try MetricsExtraction.patterns(spec.metrics.patterns, in: [stdout, stderr])) { _, new in new }
        }
        return (metrics, printedJSON)
    }

    private func render(_ template: Template, _ values: [String: String]) throws(ExperimentError) -> String {
        do {
            return try template.render(values)
        } catch {
            throw ExperimentError(stage: .metrics, message: error.description)
        }
    }

    /// How much of the end of a program's output is read for its metrics and messages: metrics are printed at the
    /// end, and a program that printed 50 MB must not make reading them cost more than running it.
    static let outputTail = 4 << 20

    /// The last ``outputTail`` bytes of `url`, from the first whole line in them.
    private static func read(_ url: URL) -> String {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > UInt64(outputTail) ? size - UInt64(outputTail) : 0
        try? handle.seek(toOffset: start)
        var data = (try? handle.readToEnd()) ?? Data()
        if start > 0, let newline = data.firstIndex(of: 0x0A) { data = data[(newline + 1)...] }
        return String(decoding: data, as: UTF8.self)
    }
}
