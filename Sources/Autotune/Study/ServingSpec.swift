/// A serving experiment: start a model server, wait until it answers, warm it up, benchmark it, stop it.
public struct ServingSpec: Sendable, Hashable, Codable {
    /// How the server is started.
    public var server: ServerSpec
    /// How it is measured.
    public var benchmark: BenchmarkSpec
    /// Per-stage time limits, seconds.
    public var stageTimeouts: StageTimeouts

    /// Creates a spec.
    public init(server: ServerSpec, benchmark: BenchmarkSpec, stageTimeouts: StageTimeouts = StageTimeouts()) {
        self.server = server
        self.benchmark = benchmark
        self.stageTimeouts = stageTimeouts
    }
}

/// Time limits of a serving trial's stages.
public struct StageTimeouts: Sendable, Hashable, Codable {
    /// Starting the server process (or container).
    public var deploy: Duration
    /// From start until the health check answers 200.
    public var ready: Duration
    /// Warm-up and benchmark together.
    public var benchmark: Duration

    /// Creates limits; the defaults suit a small model on one GPU.
    public init(deploy: Duration = .seconds(60), ready: Duration = .seconds(600), benchmark: Duration = .seconds(1800))
    {
        self.deploy = deploy
        self.ready = ready
        self.benchmark = benchmark
    }

    private enum CodingKeys: String, CodingKey { case deploy, ready, benchmark }

    /// Decodes limits stored as seconds.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        deploy = try container.decodeSeconds(forKey: .deploy)
        ready = try container.decodeSeconds(forKey: .ready)
        benchmark = try container.decodeSeconds(forKey: .benchmark)
    }

    /// Encodes the limits as seconds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeSeconds(deploy, forKey: .deploy)
        try container.encodeSeconds(ready, forKey: .ready)
        try container.encodeSeconds(benchmark, forKey: .benchmark)
    }
}

/// A server started per trial: a local process from an argv template, or a `docker run` built from one.
public struct ServerSpec: Sendable, Hashable, Codable {
    /// How the server runs.
    public enum Launcher: Sendable, Hashable, Codable {
        /// A local process (the argv as given).
        case process
        /// `docker run` of `image` with the argv as the container's command.
        case docker(DockerSpec)
    }

    /// The server's program; placeholders as for commands plus `{model}`.
    public var program: ProgramTemplate
    /// The health path polled until it answers 200 (`/health`, `/v1/models`).
    public var healthPath: String
    /// The model name sent in requests and available as `{model}`.
    public var model: String
    /// Process or container.
    public var launcher: Launcher

    /// Creates a spec.
    public init(
        program: ProgramTemplate,
        healthPath: String = "/health",
        model: String = "model",
        launcher: Launcher = .process
    ) {
        self.program = program
        self.healthPath = healthPath
        self.model = model
        self.launcher = launcher
    }

    /// Creates a spec from the program's parts.
    public init(
        command: [Template],
        environment: [String: Template] = [:],
        workingDirectory: Template? = nil,
        appendFlags: Bool = true,
        healthPath: String = "/health",
        model: String = "model",
        launcher: Launcher = .process
    ) {
        self.init(
            program: ProgramTemplate(
                command: command, environment: environment, workingDirectory: workingDirectory,
                appendFlags: appendFlags),
            healthPath: healthPath,
            model: model,
            launcher: launcher
        )
    }

    private enum CodingKeys: String, CodingKey { case healthPath, model, launcher }

    /// Decodes the program's fields beside the server's own, the shape stored studies have always had.
    public init(from decoder: any Decoder) throws {
        program = try ProgramTemplate(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        healthPath = try container.decode(String.self, forKey: .healthPath)
        model = try container.decode(String.self, forKey: .model)
        launcher = try container.decode(Launcher.self, forKey: .launcher)
    }

    /// Encodes the program's fields beside the server's own.
    public func encode(to encoder: any Encoder) throws {
        try program.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(healthPath, forKey: .healthPath)
        try container.encode(model, forKey: .model)
        try container.encode(launcher, forKey: .launcher)
    }
}

/// How a `docker run` is built.
public struct DockerSpec: Sendable, Hashable, Codable {
    /// The image.
    public var image: String
    /// The port the server listens on inside the container (published on the trial's `{port}`).
    public var containerPort: Int
    /// Bind mounts, `host:container[:ro]`.
    public var mounts: [String]
    /// Extra `docker run` arguments (`--ipc=host`, `--shm-size=16g`).
    public var extraArguments: [String]

    /// Creates a spec.
    public init(image: String, containerPort: Int = 8000, mounts: [String] = [], extraArguments: [String] = []) {
        self.image = image
        self.containerPort = containerPort
        self.mounts = mounts
        self.extraArguments = extraArguments
    }
}

/// How a serving trial is measured.
public enum BenchmarkSpec: Sendable, Hashable, Codable {
    /// Autotune's own OpenAI-compatible load generator.
    case load(LoadSpec)
    /// An external tool (e.g. `vllm bench serve --save-result`) whose JSON output is read by key paths.
    case external(ExternalBenchmarkSpec)
}

/// The built-in load generator's settings.
public struct LoadSpec: Sendable, Hashable, Codable {
    /// Which API.
    public enum Endpoint: String, Sendable, Hashable, Codable {
        /// `/v1/completions` with a prompt.
        case completions
        /// `/v1/chat/completions` with one user message.
        case chat
    }

    /// The API used.
    public var endpoint: Endpoint
    /// Closed-loop levels: this many requests in flight at all times.
    public var concurrency: [Int]
    /// Open-loop levels: Poisson arrivals at this many requests per second.
    public var rates: [Double]
    /// Requests measured per level (when `duration` is not given).
    public var requests: Int
    /// How long each level lasts, instead of a request count.
    public var duration: Duration?
    /// Prompt length in words (about tokens).
    public var inputTokens: Int
    /// `max_tokens` of every request.
    public var outputTokens: Int
    /// Requests sent before measuring, not counted.
    public var warmupRequests: Int
    /// How long one request may take before it counts as an error.
    public var requestTimeout: Duration
    /// Instead of fixed levels, the highest load at which every SLO holds (``CapacitySearch``).
    public var search: CapacitySearch?
    /// Service-level objectives a level must meet: a level metric (`ttft_ms_p99`) and its largest allowed value.
    /// A level also fails them when under 99% of its requests succeeded. With percentile SLOs, a level whose
    /// SLO is already clearly broken ends early.
    public var slo: [String: Double]
    /// The traffic, when it is more than fixed lengths: a dataset, a trace, length distributions, shared
    /// prefixes, conversations, an arrival process. `nil`: synthetic prompts of ``inputTokens`` tokens asking for
    /// ``outputTokens``, Poisson arrivals.
    public var workload: Workload?

    /// The traffic sent: ``workload``, or the fixed lengths.
    public var effectiveWorkload: Workload {
        workload ?? Workload(source: .synthetic(input: .fixed(inputTokens), output: .fixed(outputTokens)))
    }

    /// Creates settings; by default one closed-loop level of 8.
    public init(
        endpoint: Endpoint = .completions,
        concurrency: [Int] = [8],
        rates: [Double] = [],
        requests: Int = 64,
        duration: Duration? = nil,
        inputTokens: Int = 256,
        outputTokens: Int = 128,
        warmupRequests: Int = 2,
        requestTimeout: Duration = .seconds(120),
        search: CapacitySearch? = nil,
        slo: [String: Double] = [:],
        workload: Workload? = nil
    ) {
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.rates = rates
        self.requests = requests
        self.duration = duration
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.warmupRequests = warmupRequests
        self.requestTimeout = requestTimeout
        self.search = search
        self.slo = slo
        self.workload = workload
    }

    /// The metrics a capacity search reports besides the chosen level's: the capacity, `goodput` (requests/s
    /// that met every per-request SLO), `slo_attainment` (their share), the levels run, those that ended
    /// early, and the benchmark seconds that saved.
    public static let searchMetrics = [
        "goodput", "slo_attainment", "capacity_levels", "early_stopped_levels", "benchmark_s_saved",
    ]

    /// The metric a capacity search reports its result as: `max_request_rate` or `max_concurrency`.
    public var capacityMetric: String? {
        search.map { $0.load == .rate ? "max_request_rate" : "max_concurrency" }
    }

    /// The metrics every level reports.
    public static let levelMetrics: [String] = {
        var names = [
            "requests", "errors", "success_rate", "duration_s", "requests_per_s", "output_tokens_per_s",
            "total_tokens_per_s", "output_tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu", "prompt_tokens_mean",
            "output_tokens_mean", "offered_rate", "achieved_rate", "sustained", "ttft_rise_ms",
        ]
        for distribution in ["ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"] {
            names += ["mean", "p50", "p90", "p99"].map { "\(distribution)_\($0)" }
        }
        return names
    }()

    /// The levels' names: `c64` for concurrency 64, `r4.5` for 4.5 requests per second.
    public var levelNames: [String] {
        concurrency.map { "c\($0)" } + rates.map { "r" + ($0 == $0.rounded() ? String(Int($0)) : String($0)) }
    }

    /// Every metric a trial benchmarked with these settings reports: each level's as `LEVEL.metric`, and the
    /// metric alone when there is one level.
    public var reportedMetrics: Set<String> {
        if let capacityMetric {
            return Set(Self.levelMetrics + Self.searchMetrics + [capacityMetric])
        }
        let perLevel =
            Self.levelMetrics + (slo.isEmpty ? [] : ["slo_met", "early_stopped", "goodput", "slo_attainment"])
        var names = Set(levelNames.flatMap { level in perLevel.map { "\(level).\($0)" } })
        if levelNames.count == 1 { names.formUnion(perLevel) }
        if !slo.isEmpty { names.insert("benchmark_s_saved") }
        return names
    }

    private enum CodingKeys: String, CodingKey {
        case endpoint, concurrency, rates, requests, duration, inputTokens, outputTokens, warmupRequests
        case requestTimeout, search, slo, workload
    }

    /// Decodes settings whose times are stored as seconds.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try container.decode(Endpoint.self, forKey: .endpoint)
        concurrency = try container.decode([Int].self, forKey: .concurrency)
        rates = try container.decode([Double].self, forKey: .rates)
        requests = try container.decode(Int.self, forKey: .requests)
        duration = try container.decodeSecondsIfPresent(forKey: .duration)
        inputTokens = try container.decode(Int.self, forKey: .inputTokens)
        outputTokens = try container.decode(Int.self, forKey: .outputTokens)
        warmupRequests = try container.decode(Int.self, forKey: .warmupRequests)
        requestTimeout = try container.decodeSeconds(forKey: .requestTimeout)
        search = try container.decodeIfPresent(CapacitySearch.self, forKey: .search)
        slo = try container.decodeIfPresent([String: Double].self, forKey: .slo) ?? [:]
        workload = try container.decodeIfPresent(Workload.self, forKey: .workload)
    }

    /// Encodes the settings, times as seconds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(endpoint, forKey: .endpoint)
        try container.encode(concurrency, forKey: .concurrency)
        try container.encode(rates, forKey: .rates)
        try container.encode(requests, forKey: .requests)
        try container.encodeSecondsIfPresent(duration, forKey: .duration)
        try container.encode(inputTokens, forKey: .inputTokens)
        try container.encode(outputTokens, forKey: .outputTokens)
        try container.encode(warmupRequests, forKey: .warmupRequests)
        try container.encodeSeconds(requestTimeout, forKey: .requestTimeout)
        try container.encodeIfPresent(search, forKey: .search)
        if !slo.isEmpty { try container.encode(slo, forKey: .slo) }
        try container.encodeIfPresent(workload, forKey: .workload)
    }
}

/// The search for the highest load a server sustains under its SLOs: a Poisson request rate or a concurrency
/// between two bounds, bracketed from a starting point (what the most similar trial of the study sustained, or
/// the bounds' geometric middle) and then bisected until the interval is within `tolerance`.
public struct CapacitySearch: Sendable, Hashable, Codable {
    /// What is raised.
    public enum Load: String, Sendable, Hashable, Codable {
        /// Open loop, requests per second.
        case rate
        /// Closed loop, requests in flight.
        case concurrency
    }

    /// What is raised.
    public var load: Load
    /// The lowest load tried.
    public var lower: Double
    /// The highest load tried.
    public var upper: Double
    /// The relative width at which the search stops (0.05: the capacity is known within 5%).
    public var tolerance: Double
    /// The most levels one search runs.
    public var maxLevels: Int

    /// Creates a search.
    public init(load: Load, lower: Double, upper: Double, tolerance: Double = 0.05, maxLevels: Int = 8) {
        self.load = load
        self.lower = lower
        self.upper = upper
        self.tolerance = tolerance
        self.maxLevels = maxLevels
    }
}

/// An external benchmark: a command run once the server is ready, whose JSON result gives the metrics.
public struct ExternalBenchmarkSpec: Sendable, Hashable, Codable {
    /// The argv (placeholders as for the server, including `{port}` and `{trial_dir}`).
    public var command: [Template]
    /// The JSON file it writes (a template); its stdout's last JSON object when `nil`.
    public var resultFile: Template?
    /// Metric name to dotted key path in the JSON (`output_throughput`, `percentiles.ttft.p99`).
    public var metrics: [String: String]

    /// Creates a spec.
    public init(command: [Template], resultFile: Template? = nil, metrics: [String: String]) {
        self.command = command
        self.resultFile = resultFile
        self.metrics = metrics
    }
}
