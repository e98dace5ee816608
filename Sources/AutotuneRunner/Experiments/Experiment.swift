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
}

extension Experiment {
    /// Local experiments run where the runner leases their GPUs.
    public var schedulerAssignsGPUs: Bool { false }
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
    /// Seconds between SIGTERM and SIGKILL when processes are stopped.
    public var killGrace: Double
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
    /// Seconds the whole trial may take, when it has a deadline; a scheduler's time limit follows it.
    public var deadline: Double?

    /// Creates a context.
    public init(
        study: String,
        trial: Trial,
        space: SearchSpace,
        seed: UInt64,
        directory: URL,
        killGrace: Double = 5,
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

    /// The name of the trial's job in a scheduler's listings: `autotune-STUDY-NUMBER`.
    public var jobName: String {
        let name = "autotune-\(study)-\(trial.number)"
        return String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "-" })
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

    /// Creates a result.
    public init(metrics: [String: Double], timings: [String: Double] = [:], host: String? = nil, gpus: [Int]? = nil) {
        self.metrics = metrics
        self.timings = timings
        self.host = host
        self.gpus = gpus
    }
}

/// An experiment's failure at a named stage, with what a person needs to see (exit status, log tail).
public struct ExperimentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stage that failed.
    public var stage: TrialStage
    /// What happened.
    public var message: String
    /// The metrics measured before the failure, if any.
    public var metrics: [String: Double]
    /// Where a scheduler had placed the trial, when it got that far, so a failure on a node is traceable.
    public var placement: ProgramStart?

    /// Creates an error.
    public init(stage: TrialStage, message: String, metrics: [String: Double] = [:], placement: ProgramStart? = nil) {
        self.stage = stage
        self.message = message
        self.metrics = metrics
        self.placement = placement
    }

    /// `stage: message`.
    public var description: String { "\(stage): \(message)" }
}
