public import Autotune
public import Foundation
public import Logging

/// What a trial runs: given a configuration, produce metrics or fail at a named stage.
///
/// An experiment must stop promptly when its task is cancelled (the trial's deadline, Ctrl-C), leaving no
/// process behind.
public protocol Experiment: Sendable {
    /// Runs the trial and returns its metrics and the time spent per stage.
    func run(_ context: TrialContext) async throws -> ExperimentResult

    /// Whether a cluster scheduler (Slurm) places the trial and gives it GPUs, so the runner leases none.
    var schedulerAssignsGPUs: Bool { get }

    /// The command line a trial of `context` runs (the server's, for a serving experiment), as `autotune best`
    /// prints it.
    func commandLine(for context: TrialContext) throws -> [String]

    /// Ends whatever a runner that died left running for `trial` (processes on this machine, a cluster job),
    /// before the trial runs again or is failed; returns whether there was something to end.
    @discardableResult
    func recover(_ trial: AbandonedTrial) async -> Bool

    /// Whether it reads ``TrialContext/neighbour`` (a capacity search starts from the nearest trial's capacity):
    /// finding the nearest finished trial costs a pass over them all for every trial started, so it is done only
    /// for experiments that use it.
    var usesNeighbour: Bool { get }
}

extension Experiment {
    /// Local experiments run where the runner leases their GPUs.
    public var schedulerAssignsGPUs: Bool { false }

    /// An experiment that starts no program has no command line.
    public func commandLine(for context: TrialContext) throws -> [String] { [] }

    /// An experiment that starts no program leaves nothing behind.
    public func recover(_ trial: AbandonedTrial) async -> Bool { false }

    /// Most experiments measure each trial on its own.
    public var usesNeighbour: Bool { false }
}

/// A trial whose runner died while it ran, as the runner that takes it back knows it.
public struct AbandonedTrial: Sendable, Hashable {
    /// The trial's directory, with the records its programs left (process group, Slurm job).
    public var directory: URL
    /// The token its programs carry in their environment (``TrialProcesses``).
    public var token: String
    /// The process that ran it, when known: processes are only looked for on its machine, and only once it is
    /// gone.
    public var previousRunner: RunnerIdentity?

    /// Creates a record.
    public init(directory: URL, token: String, previousRunner: RunnerIdentity?) {
        self.directory = directory
        self.token = token
        self.previousRunner = previousRunner
    }
}

/// What an experiment knows of the trial it runs.
public struct TrialContext: Sendable {
    /// The study's name.
    public var study: String
    /// The trial, in state running.
    public var trial: Trial
    /// The study's search space, for rendering the configuration.
    public var space: SearchSpace
    /// The study's seed.
    public var seed: UInt64
    /// A directory of the trial's own for logs and outputs; created before the experiment runs.
    public var directory: URL
    /// The time between SIGTERM and SIGKILL when processes are stopped.
    public var killGrace: Duration
    /// A logger with the trial's number in its metadata.
    public var logger: Logger
    /// The GPU indexes leased to the trial; `nil` when the study uses no GPUs.
    public var gpus: [Int]?
    /// The host port reserved for the trial, when it uses `{port}`.
    public var port: Int?
    /// Bounds the launches of all trials; an experiment holds a permit while it starts its process or server.
    public var launches: LaunchLimiter
    /// GPUs to ask a cluster scheduler for, when it assigns them (``Experiment/schedulerAssignsGPUs``).
    public var gpuCount: Int?
    /// How long the whole trial may take, when it has a deadline; a scheduler's time limit follows it.
    public var deadline: Duration?
    /// The token the trial's programs carry in their environment, so they can be found whatever happens to the
    /// runner (``TrialProcesses``); `nil` outside a study's loop.
    public var token: String?
    /// The study's constraints on metrics, so an experiment that measures in steps can stop once a hard one
    /// is broken (the trial is then pruned).
    public var constraints: [MetricConstraint] = []
    /// The metrics of the study's finished trial most like this one (nearest in the unit cube), when there is
    /// one: where a search inside the trial (a capacity search) can start.
    public var neighbour: [String: Double]?

    /// Creates a context.
    public init(
        study: String,
        trial: Trial,
        space: SearchSpace,
        seed: UInt64,
        directory: URL,
        killGrace: Duration = .seconds(5),
        logger: Logger,
        gpus: [Int]? = nil,
        port: Int? = nil,
        launches: LaunchLimiter = LaunchLimiter(limit: 2)
    ) {
        self.study = study
        self.trial = trial
        self.space = space
        self.seed = seed
        self.directory = directory
        self.killGrace = killGrace
        self.logger = logger
        self.gpus = gpus
        self.port = port
        self.launches = launches
    }

    /// What a program runner needs to place the trial's `program` (`command`, `server`, …): the trial's
    /// directory and token, a name, the GPU count, the time limit and the launch limiter.
    public func scheduling(program: String) -> SchedulingHints {
        SchedulingHints(
            trialDirectory: directory, name: jobName, gpuCount: gpuCount, timeLimit: deadline, launches: launches,
            token: token.map { TrialProcesses.value(trial: $0, program: program) })
    }

    /// The name of the trial's job in a scheduler's listings: `autotune-STUDY-NUMBER`.
    public var jobName: String {
        let name = "autotune-\(study)-\(trial.number)"
        return String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "-" })
    }

    /// The process a trial runs for `template`: its rendered argv, variables and working directory, plus the
    /// variables every trial's program gets: `AUTOTUNE_STUDY`, `AUTOTUNE_TRIAL`, `AUTOTUNE_TRIAL_DIR`, and
    /// `CUDA_VISIBLE_DEVICES` when the trial leased GPUs.
    ///
    /// A template that cannot be rendered fails the trial at `stage`.
    public func program(
        _ template: ProgramTemplate,
        values: [String: String],
        defaultWorkingDirectory: URL,
        stage: TrialStage
    ) throws(ExperimentError) -> RenderedProgram {
        var program: RenderedProgram
        do {
            program = try template.render(values, configuration: trial.configuration, space: space)
        } catch {
            throw ExperimentError(stage: stage, message: error.description)
        }
        var environment = [
            "AUTOTUNE_STUDY": study,
            "AUTOTUNE_TRIAL": String(trial.number),
            "AUTOTUNE_TRIAL_DIR": directory.path,
        ]
        if let gpus { environment["CUDA_VISIBLE_DEVICES"] = gpus.map(String.init).joined(separator: ",") }
        program.environment.merge(environment) { own, _ in own }
        program.workingDirectory = program.workingDirectory ?? defaultWorkingDirectory.path
        return program
    }

    /// The values of the placeholders a template may use: the parameters, then `trial`, `trial_dir`,
    /// `study`, `seed`, `port`, `gpus` (comma-separated indexes) and `env.NAME` (an environment variable).
    public var placeholderValues: [String: String] {
        var values = trial.configuration.placeholderValues
        values["trial"] = String(trial.number)
        values["trial_dir"] = directory.path
        values["study"] = study
        values["seed"] = String(seed)
        // {env.NAME}: the runner's environment, for paths that differ per machine (models, binaries).
        for (name, value) in ProcessInfo.processInfo.environment { values["env." + name] = value }
        if let port { values["port"] = String(port) }
        if let gpus { values["gpus"] = gpus.map(String.init).joined(separator: ",") }
        return values
    }
}

/// What a finished experiment reports.
public struct ExperimentResult: Sendable, Hashable {
    /// The named measurements.
    public var metrics: [String: Double]
    /// Seconds spent per stage.
    public var timings: [String: Double]
    /// The machine the trial ran on, when a scheduler chose it.
    public var host: String?
    /// The GPUs the trial ran on, when a scheduler gave them.
    public var gpus: [Int]?
    /// Set when the experiment stopped early because its first measurements broke a hard constraint: the trial
    /// is pruned, with this reason.
    public var pruned: String?
    /// Where the metrics were looked for and what was there instead, for the message when one the objective
    /// needs is missing (a program that printed `score=3` instead of a JSON object). `{metric}` in it stands for
    /// the missing metric's name.
    public var metricsHint: String?

    /// Creates a result.
    public init(
        metrics: [String: Double], timings: [String: Double] = [:], host: String? = nil, gpus: [Int]? = nil,
        pruned: String? = nil, metricsHint: String? = nil
    ) {
        self.metrics = metrics
        self.timings = timings
        self.host = host
        self.gpus = gpus
        self.pruned = pruned
        self.metricsHint = metricsHint
    }
}

/// An experiment's failure at a named stage, with what a person needs to see (exit status, log tail).
public struct ExperimentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stage that failed.
    public var stage: TrialStage
    /// What happened.
    public var message: String
    /// The last lines the program printed, when it printed any.
    public var output: String?
    /// The metrics measured before the failure, if any.
    public var metrics: [String: Double]
    /// Where a scheduler had placed the trial, when it got that far, so a failure on a node is traceable.
    public var placement: ProgramStart?
    /// The signal that ended the trial's program, when one did.
    public var signal: Int32?

    /// Creates an error.
    public init(
        stage: TrialStage,
        message: String,
        output: String? = nil,
        metrics: [String: Double] = [:],
        placement: ProgramStart? = nil,
        signal: Int32? = nil
    ) {
        self.stage = stage
        self.message = message
        self.output = output
        self.metrics = metrics
        self.placement = placement
        self.signal = signal
    }

    /// Whether the program was stopped from outside rather than failing: SIGINT (a Ctrl-C at the terminal reaches
    /// the whole process group, the trial's programs included), SIGTERM or SIGHUP (a person, a scheduler's
    /// preemption, a closed terminal). A program's own failures end it otherwise: an exit status, or SIGSEGV,
    /// SIGABRT, SIGBUS, SIGKILL from the OOM killer.
    public var stoppedFromOutside: Bool {
        guard let signal else { return false }
        return [SIGINT, SIGTERM, SIGHUP].contains(signal)
    }

    /// `stage: message`, then the output's last lines.
    public var description: String { "\(stage): \(fullMessage)" }

    /// The message followed by the output's last lines, as a trial records it.
    public var fullMessage: String {
        guard let output, !output.isEmpty else { return message }
        return message + "; last output:\n" + output
    }

    /// The last `count` lines of a program's output, or `nil` when it printed nothing.
    public static func tail(of text: String, lines count: Int = 15) -> String? {
        let lines = text.split(whereSeparator: \.isNewline).suffix(count)
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    /// The tail of a program's standard error, or of its standard output when it wrote no errors.
    public static func tail(standardOutput: URL, standardError: URL) -> String? {
        let read = { (url: URL) in
            FileManager.default.contents(atPath: url.path).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let errors = read(standardError)
        return tail(of: errors.isEmpty ? read(standardOutput) : errors)
    }
}
