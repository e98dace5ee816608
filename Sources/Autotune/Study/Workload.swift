import Foundation

/// The traffic a serving benchmark sends: where prompts come from, how long they and their answers are, how
/// requests arrive, and what they share.
///
/// The simplest workload is today's fixed one (`input_tokens`, `output_tokens`); the others follow the load
/// generators serving engineers use (`vllm bench serve`'s datasets and `--burstiness`, SGLang's trace replay,
/// AIPerf's arrival processes). Whatever the workload, the requests a trial sends are a pure function of it and
/// the study's seed (``RequestPlan``), so every trial of a study is measured on the same traffic.
public struct Workload: Sendable, Hashable, Codable {
    /// Where prompts come from.
    public var source: Source
    /// How requests arrive in an open-loop level (a rate level, or a trace): the rate comes from the level.
    public var arrivals: Arrivals
    /// System prompts shared by the requests, so prefix caching has something to reuse; `nil`: nothing shared.
    public var sharedPrefix: SharedPrefix?
    /// Conversations: each session sends this many turns, each with the previous turns as its history.
    public var turns: Int
    /// Drop prompts (dataset or trace rows) longer than this many tokens, as a model's context would refuse them.
    public var maxPromptTokens: Int?
    /// Drop rows whose answer is longer than this.
    public var maxOutputTokens: Int?

    /// Creates a workload.
    public init(
        source: Source, arrivals: Arrivals = .poisson, sharedPrefix: SharedPrefix? = nil, turns: Int = 1,
        maxPromptTokens: Int? = nil, maxOutputTokens: Int? = nil
    ) {
        self.source = source
        self.arrivals = arrivals
        self.sharedPrefix = sharedPrefix
        self.turns = turns
        self.maxPromptTokens = maxPromptTokens
        self.maxOutputTokens = maxOutputTokens
    }

    /// Where prompts come from.
    public enum Source: Sendable, Hashable, Codable {
        /// Prompts made up here, every one distinct, of lengths drawn from `input`, asking for answers of
        /// lengths drawn from `output`.
        case synthetic(input: LengthDistribution, output: LengthDistribution)
        /// Prompts from a file the user brings.
        case dataset(Dataset)
        /// A trace: when requests came and how long they were, replayed with synthetic prompts of those lengths.
        case trace(Trace)
    }

    /// A prompt dataset file.
    public struct Dataset: Sendable, Hashable, Codable {
        /// Its format.
        public enum Format: String, Sendable, Hashable, Codable, CaseIterable {
            /// ShareGPT's JSON: a list of conversations, each with `conversations: [{from, value}]`.
            case sharegpt
            /// One request per line: `prompt` or chat `messages`, optional `output_tokens`.
            case jsonl
        }

        /// The file (absolute).
        public var path: String
        /// Its format.
        public var format: Format
        /// Draw with replacement (the default; a small file is oversampled) or without (each row at most once,
        /// cycling through the file again only when a level asks for more).
        public var replacement: Bool
        /// The answer length when a row does not give one (ShareGPT without a reply, JSONL without
        /// `output_tokens`).
        public var outputTokens: Int
        /// The file's content hash, recorded with the study so `resume` refuses a changed file.
        public var fingerprint: String

        /// Creates a dataset reference.
        public init(
            path: String, format: Format, replacement: Bool = true, outputTokens: Int = 128, fingerprint: String
        ) {
            self.path = path
            self.format = format
            self.replacement = replacement
            self.outputTokens = outputTokens
            self.fingerprint = fingerprint
        }
    }

    /// A request trace file.
    public struct Trace: Sendable, Hashable, Codable {
        /// Its format.
        public enum Format: String, Sendable, Hashable, Codable, CaseIterable {
            /// BurstGPT's CSV: `Timestamp, Model, Request tokens, Response tokens, …` (seconds).
            case burstgpt
            /// Mooncake's JSONL: `{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}`.
            case mooncake
        }

        /// How the trace's times are used.
        public enum Timing: Sendable, Hashable, Codable {
            /// At its own times, divided by `speed` (2 replays twice as fast).
            case replay(speed: Double)
            /// Its gaps between requests, rescaled so they arrive at each level's rate: a capacity search sweeps
            /// the rate while the trace keeps its burstiness.
            case shape
        }

        /// The file (absolute).
        public var path: String
        /// Its format.
        public var format: Format
        /// How its times are used.
        public var timing: Timing
        /// The file's content hash, recorded with the study so `resume` refuses a changed file.
        public var fingerprint: String

        /// Creates a trace reference.
        public init(path: String, format: Format, timing: Timing = .replay(speed: 1), fingerprint: String) {
            self.path = path
            self.format = format
            self.timing = timing
            self.fingerprint = fingerprint
        }
    }

    /// How requests arrive in an open loop at a rate of λ per second.
    public enum Arrivals: Sendable, Hashable, Codable {
        /// Evenly spaced, 1/λ apart.
        case constant
        /// A Poisson process: exponential gaps of mean 1/λ.
        case poisson
        /// Gamma-distributed gaps of mean 1/λ and shape `burstiness` (vLLM's `--burstiness`): 1 is Poisson,
        /// below 1 burstier, above 1 more even.
        case gamma(burstiness: Double)
    }

    /// System prompts shared across requests (vLLM's `prefix_repetition`): each request starts with one of
    /// `count` prefixes of `tokens` tokens, chosen at random, then its own text.
    public struct SharedPrefix: Sendable, Hashable, Codable {
        /// How many distinct prefixes.
        public var count: Int
        /// Each one's length in tokens.
        public var tokens: Int

        /// Creates a shared prefix.
        public init(count: Int, tokens: Int) {
            self.count = count
            self.tokens = tokens
        }
    }

    /// The dataset or trace file the workload reads, with the fingerprint it had when the study began.
    public var file: (path: String, fingerprint: String)? {
        switch source {
        case .synthetic: nil
        case .dataset(let dataset): (dataset.path, dataset.fingerprint)
        case .trace(let trace): (trace.path, trace.fingerprint)
        }
    }

    /// The same workload with its file's fingerprint replaced, to compare two workloads apart from their files'
    /// contents.
    public func withFingerprint(_ fingerprint: String) -> Workload {
        var copy = self
        switch source {
        case .synthetic: break
        case .dataset(var dataset):
            dataset.fingerprint = fingerprint
            copy.source = .dataset(dataset)
        case .trace(var trace):
            trace.fingerprint = fingerprint
            copy.source = .trace(trace)
        }
        return copy
    }

    /// A short description for results and reports: `synthetic lognormal(512, 0.8) → fixed(128), poisson`.
    public var description: String {
        var text: String
        switch source {
        case .synthetic(let input, let output): text = "synthetic \(input) → \(output)"
        case .dataset(let dataset): text = "\(dataset.format.rawValue) \(dataset.path)"
        case .trace(let trace):
            text = "\(trace.format.rawValue) trace \(trace.path)"
            switch trace.timing {
            case .replay(let speed): text += speed == 1 ? ", replayed" : ", replayed ×\(speed)"
            case .shape: text += ", its gaps at each level's rate"
            }
        }
        // A trace's arrivals are its own: the arrival process applies to every other source.
        if case .trace = source {
        } else {
            text += arrivalsDescription
        }
        if let sharedPrefix { text += ", \(sharedPrefix.count) shared prefixes of \(sharedPrefix.tokens) tokens" }
        if turns > 1 { text += ", \(turns) turns" }
        return text
    }

    private var arrivalsDescription: String {
        var text = ""
        switch arrivals {
        case .constant: text += ", constant arrivals"
        case .poisson: text += ", poisson arrivals"
        case .gamma(let burstiness): text += ", gamma arrivals (burstiness \(burstiness))"
        }
        return text
    }
}

/// A distribution of lengths in tokens, for synthetic prompts and answers.
public enum LengthDistribution: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Always this many.
    case fixed(Int)
    /// Uniform from `low` to `high` (vLLM's range ratio r: `[n(1 − r), n(1 + r)]`).
    case uniform(low: Int, high: Int)
    /// Normal, rounded, at least 1.
    case normal(mean: Double, sd: Double)
    /// Log-normal with this median and `sigma` (the log's standard deviation): chat's long tail.
    case lognormal(median: Double, sigma: Double)
    /// An empirical histogram: each value with its weight.
    case histogram(values: [Int], weights: [Double])

    /// A draw, between 1 and `limit`.
    public func sample(_ generator: inout SeededGenerator, limit: Int = 1 << 20) -> Int {
        let value: Double
        switch self {
        case .fixed(let n): value = Double(n)
        case .uniform(let low, let high): value = Double(low + generator.nextInt(below: max(1, high - low + 1)))
        case .normal(let mean, let sd): value = mean + sd * generator.nextNormal()
        case .lognormal(let median, let sigma): value = median * exp(sigma * generator.nextNormal())
        case .histogram(let values, let weights):
            let total = weights.reduce(0, +)
            var u = generator.nextUnit() * total
            var chosen = values.last ?? 1
            for (value, weight) in zip(values, weights) {
                if u < weight {
                    chosen = value
                    break
                }
                u -= weight
            }
            value = Double(chosen)
        }
        return min(max(1, Int(value.rounded())), limit)
    }

    /// The mean length, for sizing.
    public var mean: Double {
        switch self {
        case .fixed(let n): Double(n)
        case .uniform(let low, let high): Double(low + high) / 2
        case .normal(let mean, _): mean
        case .lognormal(let median, let sigma): median * exp(sigma * sigma / 2)
        case .histogram(let values, let weights):
            zip(values, weights).reduce(0) { $0 + Double($1.0) * $1.1 } / max(weights.reduce(0, +), 1e-300)
        }
    }

    /// `fixed(512)`, `lognormal(512, 0.8)`.
    public var description: String {
        switch self {
        case .fixed(let n): "fixed(\(n))"
        case .uniform(let low, let high): "uniform(\(low)–\(high))"
        case .normal(let mean, let sd): "normal(\(ParameterValue.format(mean)), \(ParameterValue.format(sd)))"
        case .lognormal(let median, let sigma):
            "lognormal(\(ParameterValue.format(median)), \(ParameterValue.format(sigma)))"
        case .histogram(let values, _): "histogram(\(values.count) values)"
        }
    }
}
