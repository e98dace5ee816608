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
    public var deploy: Double
    /// From start until the health check answers 200.
    public var ready: Double
    /// Warm-up and benchmark together.
    public var benchmark: Double

    /// Creates limits; the defaults suit a small model on one GPU.
    public init(deploy: Double = 60, ready: Double = 600, benchmark: Double = 1800) {
        self.deploy = deploy
        self.ready = ready
        self.benchmark = benchmark
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

    /// The server's argv; placeholders as for commands plus `{port}`, `{gpus}`, `{model}`.
    public var command: [Template]
    /// Extra environment variables.
    public var environment: [String: Template]
    /// The working directory (absolute, a template).
    public var workingDirectory: Template?
    /// Whether parameters the command does not place are appended as flags.
    public var appendFlags: Bool
    /// The health path polled until it answers 200 (`/health`, `/v1/models`).
    public var healthPath: String
    /// The model name sent in requests and available as `{model}`.
    public var model: String
    /// Process or container.
    public var launcher: Launcher

    /// Creates a spec.
    public init(
        command: [Template],
        environment: [String: Template] = [:],
        workingDirectory: Template? = nil,
        appendFlags: Bool = true,
        healthPath: String = "/health",
        model: String = "model",
        launcher: Launcher = .process
    ) {
        self.command = command
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.appendFlags = appendFlags
        self.healthPath = healthPath
        self.model = model
        self.launcher = launcher
    }

    /// The parameters the templates place themselves.
    public var placedParameters: Set<String> {
        Set(command.flatMap(\.placeholders)).union(environment.values.flatMap(\.placeholders))
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
    /// Seconds per level, instead of a request count.
    public var duration: Double?
    /// Prompt length in words (about tokens).
    public var inputTokens: Int
    /// `max_tokens` of every request.
    public var outputTokens: Int
    /// Requests sent before measuring, not counted.
    public var warmupRequests: Int
    /// Seconds one request may take before it counts as an error.
    public var requestTimeout: Double

    /// Creates settings; by default one closed-loop level of 8.
    public init(
        endpoint: Endpoint = .completions,
        concurrency: [Int] = [8],
        rates: [Double] = [],
        requests: Int = 64,
        duration: Double? = nil,
        inputTokens: Int = 256,
        outputTokens: Int = 128,
        warmupRequests: Int = 2,
        requestTimeout: Double = 120
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
