/// Everything a study needs to run, as read from a task file and kept in the store, so `resume` works
/// even when the task file has changed or gone.
public struct StudyDefinition: Sendable, Hashable, Codable {
    /// The study's name, unique in its store.
    public var name: String
    /// The parameters searched.
    public var space: SearchSpace
    /// What is optimised.
    public var objective: Objective
    /// Which strategy proposes configurations, with its options.
    public var strategy: StrategySpec
    /// When the study stops asking.
    public var budget: Budget
    /// The most experiments running at once.
    public var parallel: Int
    /// The seed every random choice derives from.
    public var seed: UInt64
    /// Time limits.
    public var timeouts: Timeouts
    /// What a trial runs.
    public var experiment: ExperimentSpec
    /// What happens to a trial that was running when the runner died.
    public var lostTrials: LostTrialPolicy
    /// GPUs, ports and launch slots.
    public var resources: Resources
    /// A configuration run first, as trial 0, before the strategy proposes anything: typically the engine's
    /// defaults, so the study shows how much tuning gained.
    public var baseline: Configuration?
    /// When the study's first this-many trials all fail at the same stage with the same message, it stops with
    /// that message instead of spending its budget; `nil` never stops.
    public var failFast: Int?
    /// The best configurations re-measured once the search is over, when asked for.
    public var confirm: ConfirmationPhase?
    /// Where the trials' programs run, when the task file says (`execution:`); the command line's flags win.
    public var execution: ExecutionSpec?

    /// Creates a definition.
    public init(
        name: String,
        space: SearchSpace,
        objective: Objective,
        strategy: StrategySpec,
        budget: Budget,
        parallel: Int = 1,
        seed: UInt64 = 0,
        timeouts: Timeouts = Timeouts(),
        experiment: ExperimentSpec,
        lostTrials: LostTrialPolicy = .requeue,
        resources: Resources = Resources(),
        baseline: Configuration? = nil,
        failFast: Int? = 5,
        confirm: ConfirmationPhase? = nil,
        execution: ExecutionSpec? = nil
    ) {
        self.name = name
        self.space = space
        self.objective = objective
        self.strategy = strategy
        self.budget = budget
        self.parallel = parallel
        self.seed = seed
        self.timeouts = timeouts
        self.experiment = experiment
        self.lostTrials = lostTrials
        self.resources = resources
        self.baseline = baseline
        self.failFast = failFast
        self.confirm = confirm
        self.execution = execution
    }

    private enum CodingKeys: String, CodingKey {
        case name, space, objective, strategy, budget, parallel, seed, timeouts, experiment, lostTrials, resources
        case baseline, failFast, confirm, execution
    }

    /// Decodes a definition; one stored before `failFast` existed stops early at 5 like a new one.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        space = try container.decode(SearchSpace.self, forKey: .space)
        objective = try container.decode(Objective.self, forKey: .objective)
        strategy = try container.decode(StrategySpec.self, forKey: .strategy)
        budget = try container.decode(Budget.self, forKey: .budget)
        parallel = try container.decode(Int.self, forKey: .parallel)
        seed = try container.decode(UInt64.self, forKey: .seed)
        timeouts = try container.decode(Timeouts.self, forKey: .timeouts)
        experiment = try container.decode(ExperimentSpec.self, forKey: .experiment)
        lostTrials = try container.decode(LostTrialPolicy.self, forKey: .lostTrials)
        resources = try container.decode(Resources.self, forKey: .resources)
        baseline = try container.decodeIfPresent(Configuration.self, forKey: .baseline)
        failFast = container.contains(.failFast) ? try container.decodeIfPresent(Int.self, forKey: .failFast) : 5
        confirm = try container.decodeIfPresent(ConfirmationPhase.self, forKey: .confirm)
        execution = try container.decodeIfPresent(ExecutionSpec.self, forKey: .execution)
    }

    /// Encodes the definition; `failFast` is written as `null` when off, so it reads back off.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(space, forKey: .space)
        try container.encode(objective, forKey: .objective)
        try container.encode(strategy, forKey: .strategy)
        try container.encode(budget, forKey: .budget)
        try container.encode(parallel, forKey: .parallel)
        try container.encode(seed, forKey: .seed)
        try container.encode(timeouts, forKey: .timeouts)
        try container.encode(experiment, forKey: .experiment)
        try container.encode(lostTrials, forKey: .lostTrials)
        try container.encode(resources, forKey: .resources)
        try container.encodeIfPresent(baseline, forKey: .baseline)
        try container.encode(failFast, forKey: .failFast)
        try container.encodeIfPresent(confirm, forKey: .confirm)
        try container.encodeIfPresent(execution, forKey: .execution)
    }

    /// The context a strategy of this study is built from.
    public var strategyContext: StrategyContext { strategyContext(constants: [:]) }

    /// The context a strategy of this study is built from, with the values of constants such as `gpus`.
    public func strategyContext(constants: [String: Double]) -> StrategyContext {
        StrategyContext(space: space, objective: objective, seed: seed, options: strategy.options, constants: constants)
    }
}

/// A strategy's name and options, as the task file gives them.
public struct StrategySpec: Sendable, Hashable, Codable {
    /// The registered name (`grid`, `random`, or a custom one).
    public var name: String
    /// The other keys of the `strategy:` section.
    public var options: [String: JSONValue]

    /// Creates a spec.
    public init(name: String, options: [String: JSONValue] = [:]) {
        self.name = name
        self.options = options
    }
}

/// When a study stops asking for new trials.
public struct Budget: Sendable, Hashable, Codable {
    /// The most trials the study creates; re-queued trials count once.
    public var maxTrials: Int?
    /// The most running time, summed over every run and resume of the study.
    public var maxTime: Duration?

    /// Creates a budget; `nil` fields do not limit.
    public init(maxTrials: Int? = nil, maxTime: Duration? = nil) {
        self.maxTrials = maxTrials
        self.maxTime = maxTime
    }

    /// Whether `elapsed` running time uses up the time budget.
    public func timeIsUp(after elapsed: Duration) -> Bool {
        maxTime.map { elapsed >= $0 } ?? false
    }

    private enum CodingKeys: String, CodingKey { case maxTrials, maxSeconds }

    /// Decodes a budget whose time is stored as seconds.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxTrials = try container.decodeIfPresent(Int.self, forKey: .maxTrials)
        maxTime = try container.decodeSecondsIfPresent(forKey: .maxSeconds)
    }

    /// Encodes the budget, its time as seconds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(maxTrials, forKey: .maxTrials)
        try container.encodeSecondsIfPresent(maxTime, forKey: .maxSeconds)
    }
}

/// Time limits of a study's trials.
public struct Timeouts: Sendable, Hashable, Codable {
    /// How long a whole trial may take before it is stopped and failed.
    public var trial: Duration?
    /// How long a stopped trial's processes get between SIGTERM and SIGKILL.
    public var killGrace: Duration

    /// Creates time limits.
    public init(trial: Duration? = nil, killGrace: Duration = .seconds(5)) {
        self.trial = trial
        self.killGrace = killGrace
    }

    private enum CodingKeys: String, CodingKey { case trial, killGrace }

    /// Decodes limits stored as seconds.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        trial = try container.decodeSecondsIfPresent(forKey: .trial)
        killGrace = try container.decodeSeconds(forKey: .killGrace)
    }

    /// Encodes the limits as seconds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeSecondsIfPresent(trial, forKey: .trial)
        try container.encodeSeconds(killGrace, forKey: .killGrace)
    }
}

/// What `resume` does with a trial that was running when the runner died.
public enum LostTrialPolicy: String, Sendable, Hashable, Codable {
    /// Run it again with the same configuration and number; its attempt count goes up.
    case requeue
    /// Mark it failed (stage `lost`) and tell the strategy.
    case fail
}

/// What one trial runs.
public enum ExperimentSpec: Sendable, Hashable, Codable {
    /// A command run to its end, whose metrics are read from its output.
    case command(CommandSpec)
    /// A model server deployed, benchmarked and torn down.
    case serving(ServingSpec)

    /// Whether each trial needs a reserved host port: always for a server, for a command when it uses `{port}`.
    public var usesPort: Bool {
        switch self {
        case .command(let spec): spec.usesPort
        case .serving: true
        }
    }
}

/// A command experiment: a program run to its end, without a shell, whose metrics are read from its output.
public struct CommandSpec: Sendable, Hashable, Codable {
    /// The program; placeholders are parameter names and `trial`, `trial_dir`, `study`, `seed`, `port`, `gpus`.
    public var program: ProgramTemplate
    /// Where the metrics come from.
    public var metrics: MetricsSource

    /// Creates a command spec.
    public init(program: ProgramTemplate, metrics: MetricsSource = MetricsSource()) {
        self.program = program
        self.metrics = metrics
    }

    /// Creates a command spec from the program's parts.
    public init(
        command: [Template],
        environment: [String: Template] = [:],
        workingDirectory: Template? = nil,
        appendFlags: Bool = true,
        metrics: MetricsSource = MetricsSource()
    ) {
        self.init(
            program: ProgramTemplate(
                command: command, environment: environment, workingDirectory: workingDirectory,
                appendFlags: appendFlags),
            metrics: metrics
        )
    }

    /// Whether any template uses `{port}`, so each trial needs a reserved port.
    public var usesPort: Bool {
        program.placeholders.union(metrics.file?.placeholders ?? []).contains("port")
    }

    private enum CodingKeys: String, CodingKey { case metrics }

    /// Decodes the program's fields beside `metrics`, the shape stored studies have always had.
    public init(from decoder: any Decoder) throws {
        program = try ProgramTemplate(from: decoder)
        metrics = try decoder.container(keyedBy: CodingKeys.self).decode(MetricsSource.self, forKey: .metrics)
    }

    /// Encodes the program's fields beside `metrics`.
    public func encode(to encoder: any Encoder) throws {
        try program.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(metrics, forKey: .metrics)
    }
}

/// Where a command's metrics are read from; the command's `wall_time` (seconds) is always added.
public struct MetricsSource: Sendable, Hashable, Codable {
    /// Read the last JSON object the command prints on stdout.
    public var stdoutJSON: Bool
    /// A JSON file the command writes (a template, e.g. `{trial_dir}/metrics.json`).
    public var file: Template?
    /// Regular expressions searched in stdout then stderr; the first capture group of the last match is the
    /// metric's value.
    public var patterns: [String: String]

    /// Creates a source.
    public init(stdoutJSON: Bool = true, file: Template? = nil, patterns: [String: String] = [:]) {
        self.stdoutJSON = stdoutJSON
        self.file = file
        self.patterns = patterns
    }
}

/// The machine resources a study's trials use.
public struct Resources: Sendable, Hashable, Codable {
    /// Where the GPU pool comes from.
    public enum GPUSource: Sendable, Hashable, Codable {
        /// Discovered with `nvidia-smi` when the study starts.
        case discover
        /// These indexes, for machines without `nvidia-smi` and for tests.
        case declared([Int])
    }

    /// The pool; only used when ``gpusPerTrial`` is set.
    public var gpus: GPUSource
    /// How many GPUs each trial leases; `nil` when trials use none.
    public var gpusPerTrial: GPURequest?
    /// The host ports trials that use `{port}` reserve from.
    public var ports: ClosedRange<Int>
    /// The most launches (process starts, server deploys) at once.
    public var maxConcurrentLaunches: Int

    /// Creates resources; by default trials take no GPU, ports come from 30000–31999, two launch at once.
    public init(
        gpus: GPUSource = .discover,
        gpusPerTrial: GPURequest? = nil,
        ports: ClosedRange<Int> = 30000...31999,
        maxConcurrentLaunches: Int = 2
    ) {
        self.gpus = gpus
        self.gpusPerTrial = gpusPerTrial
        self.ports = ports
        self.maxConcurrentLaunches = maxConcurrentLaunches
    }
}

/// Where a study's programs run, as a task file's `execution:` section says.
public enum ExecutionSpec: Sendable, Hashable, Codable {
    /// On the runner's machine.
    case local
    /// As Slurm batch jobs, in `partition` (the cluster's default when `nil`) with more `sbatch` arguments.
    case slurm(partition: String?, arguments: [String])
    /// As Ray jobs on the cluster whose dashboard is at `address`.
    case ray(RayExecution)

    /// Whether a scheduler, not the runner, places trials and gives them GPUs.
    public var schedulerAssignsGPUs: Bool {
        if case .local = self { return false }
        return true
    }
}

/// Trials as Ray jobs: the cluster and what each job gets.
public struct RayExecution: Sendable, Hashable, Codable {
    /// The dashboard's address, `HOST:8265` or `http://HOST:8265`.
    public var address: String
    /// Ray's `runtime_env` for every job; the trial's variables are added to its `env_vars`.
    public var runtimeEnvironment: [String: JSONValue]
    /// CPUs reserved for each job's program, when given.
    public var cpus: Double?
    /// Custom Ray resources each job needs.
    public var resources: [String: Double]

    /// Creates a description.
    public init(
        address: String, runtimeEnvironment: [String: JSONValue] = [:], cpus: Double? = nil,
        resources: [String: Double] = [:]
    ) {
        self.address = address
        self.runtimeEnvironment = runtimeEnvironment
        self.cpus = cpus
        self.resources = resources
    }
}
