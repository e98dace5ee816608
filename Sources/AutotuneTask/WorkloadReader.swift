import Autotune
import Foundation
import Yams

/// A serving benchmark's `workload:` section, with its dataset or trace file read and checked row by row.
enum WorkloadReader {
    /// The workload `node` describes; relative file paths are resolved against `base`.
    ///
    /// ```yaml
    /// workload:
    ///   input: {lognormal: [512, 0.8]}      # or 512, {uniform: [256, 768]}, {normal: [512, 100]},
    ///   output: 128                          #    {histogram: {256: 0.5, 1024: 0.5}}, {mean: 512, range_ratio: 0.5}
    ///   dataset: {path: chat.json, format: sharegpt, replacement: false, output_tokens: 128}
    ///   trace: {path: burst.csv, format: burstgpt, speed: 2}     # or timing: shape
    ///   arrivals: poisson                    # constant, poisson, or {gamma: 0.5} (burstiness)
    ///   shared_prefix: {count: 4, tokens: 1024}
    ///   turns: 3
    ///   max_prompt_tokens: 4000
    ///   max_output_tokens: 1024
    /// ```
    static func workload(_ node: TaskNode, base: URL) throws(TaskFileError) -> Workload {
        let fields = try node.fields(allowed: [
            "input", "output", "dataset", "trace", "arrivals", "shared_prefix", "turns", "max_prompt_tokens",
            "max_output_tokens",
        ])
        let source: Workload.Source
        switch (fields["dataset"], fields["trace"]) {
        case (let dataset?, nil):
            if let other = fields["input"] ?? fields["output"] {
                throw other.error("a dataset gives its own prompts and answer lengths: leave out input and output")
            }
            source = .dataset(try self.dataset(dataset, base: base))
        case (nil, let trace?):
            if let other = fields["input"] ?? fields["output"] {
                throw other.error("a trace gives its own lengths: leave out input and output")
            }
            source = .trace(try self.trace(trace, base: base))
        case (_?, _?):
            throw node.error("give a dataset or a trace, not both")
        case (nil, nil):
            source = .synthetic(
                input: try fields["input"].map { node throws(TaskFileError) in try length(node) } ?? .fixed(256),
                output: try fields["output"].map { node throws(TaskFileError) in try length(node) } ?? .fixed(128))
        }
        var workload = Workload(source: source)
        if let arrivals = fields["arrivals"] {
            if case .trace = source {
                throw arrivals.error("a trace's requests arrive at its own times (timing: shape keeps its gaps)")
            }
            workload.arrivals = try self.arrivals(arrivals)
        }
        if let prefix = fields["shared_prefix"] {
            let items = try prefix.fields(allowed: ["count", "tokens"])
            workload.sharedPrefix = Workload.SharedPrefix(
                count: try items.required("count", "how many distinct prefixes").int(in: 1...100_000),
                tokens: try items.required("tokens", "each prefix's length in tokens").int(in: 1...1_000_000))
        }
        workload.turns = try fields["turns"]?.int(in: 1...1000) ?? 1
        if case .trace = source, workload.turns > 1 {
            throw fields["turns"]!.error("a trace's requests are single turns")
        }
        workload.maxPromptTokens = try fields["max_prompt_tokens"]?.int(in: 1...10_000_000)
        workload.maxOutputTokens = try fields["max_output_tokens"]?.int(in: 1...10_000_000)
        return workload
    }

    /// A length distribution: a number (fixed) or one of `uniform`, `normal`, `lognormal`, `histogram`,
    /// `{mean, range_ratio}` (vLLM's random dataset).
    static func length(_ node: TaskNode) throws(TaskFileError) -> LengthDistribution {
        if case .scalar = node.node { return .fixed(try node.int(in: 1...10_000_000)) }
        let fields = try node.fields(allowed: ["uniform", "normal", "lognormal", "histogram", "mean", "range_ratio"])
        func pair(_ node: TaskNode) throws(TaskFileError) -> (Double, Double) {
            let values = try node.sequence()
            guard values.count == 2 else { throw node.error("expected two numbers, [a, b]") }
            return (try values[0].double(), try values[1].double())
        }
        if let uniform = fields["uniform"] {
            let (low, high) = try pair(uniform)
            guard low >= 1, high >= low, low == low.rounded(), high == high.rounded() else {
                throw uniform.error("expected whole numbers 1 ≤ low ≤ high, got [\(low), \(high)]")
            }
            return .uniform(low: Int(low), high: Int(high))
        }
        if let normal = fields["normal"] {
            let (mean, sd) = try pair(normal)
            guard mean >= 1, sd >= 0 else { throw normal.error("expected [mean ≥ 1, sd ≥ 0]") }
            return .normal(mean: mean, sd: sd)
        }
        if let lognormal = fields["lognormal"] {
            let (median, sigma) = try pair(lognormal)
            guard median >= 1, sigma >= 0, sigma <= 4 else {
                throw lognormal.error("expected [median ≥ 1, sigma from 0 to 4]")
            }
            return .lognormal(median: median, sigma: sigma)
        }
        if let histogram = fields["histogram"] {
            var values: [Int] = []
            var weights: [Double] = []
            for (key, weight) in try histogram.mapping() {
                guard let value = Int(key), value >= 1 else {
                    throw histogram.error("a histogram maps lengths (whole numbers ≥ 1) to weights, got '\(key)'")
                }
                let w = try weight.double()
                guard w >= 0 else { throw weight.error("a weight is at least 0") }
                values.append(value)
                weights.append(w)
            }
            guard weights.reduce(0, +) > 0 else { throw histogram.error("give at least one length a weight") }
            return .histogram(values: values, weights: weights)
        }
        if let mean = fields["mean"] {
            let n = try mean.int(in: 1...10_000_000)
            let ratio = try fields["range_ratio"]?.double() ?? 0
            guard ratio >= 0, ratio < 1 else { throw fields["range_ratio"]!.error("a range ratio from 0 to below 1") }
            let low = max(1, Int((Double(n) * (1 - ratio)).rounded()))
            return .uniform(low: low, high: Int((Double(n) * (1 + ratio)).rounded()))
        }
        throw node.error("give a length: a number, or uniform, normal, lognormal, histogram, or {mean, range_ratio}")
    }

    static func arrivals(_ node: TaskNode) throws(TaskFileError) -> Workload.Arrivals {
        if case .scalar = node.node {
            switch try node.string() {
            case "poisson": return .poisson
            case "constant": return .constant
            default: throw node.error("expected constant, poisson, or {gamma: BURSTINESS}")
            }
        }
        let fields = try node.fields(allowed: ["gamma"])
        guard let gamma = fields["gamma"] else { throw node.error("expected {gamma: BURSTINESS}") }
        let burstiness = try gamma.double()
        guard burstiness > 0, burstiness <= 100 else {
            throw gamma.error("burstiness above 0 (1 is Poisson, below 1 burstier), got \(burstiness)")
        }
        return .gamma(burstiness: burstiness)
    }

    /// The file a dataset or trace names, read: its absolute path and its text, or an error at `node`.
    private static func read(_ node: TaskNode, base: URL) throws(TaskFileError) -> (
        path: String, text: String, fingerprint: String
    ) {
        let given = try node.nonEmptyString()
        let url = given.hasPrefix("/") ? URL(fileURLWithPath: given) : base.appendingPathComponent(given)
        let path = url.standardizedFileURL.path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw node.error("cannot read \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw node.error("\(path) is not UTF-8 text") }
        return (path, text, WorkloadFiles.fingerprint(data))
    }

    static func dataset(_ node: TaskNode, base: URL) throws(TaskFileError) -> Workload.Dataset {
        let fields = try node.fields(allowed: ["path", "format", "replacement", "output_tokens"])
        let pathNode = try fields.required("path", "the dataset file")
        let (path, text, fingerprint) = try read(pathNode, base: base)
        let format: Workload.Dataset.Format
        if let given = fields["format"] {
            guard let value = Workload.Dataset.Format(rawValue: try given.string()) else {
                throw given.error("expected sharegpt or jsonl")
            }
            format = value
        } else {
            format = path.hasSuffix(".jsonl") ? .jsonl : .sharegpt
        }
        do {
            _ = try WorkloadFiles.dataset(text, format: format, path: path)
        } catch {
            throw pathNode.error("\(error)")
        }
        return Workload.Dataset(
            path: path, format: format, replacement: try fields["replacement"]?.bool() ?? true,
            outputTokens: try fields["output_tokens"]?.int(in: 1...10_000_000) ?? 128, fingerprint: fingerprint)
    }

    /// A replayed trace's rows and mean request rate (rows over their span, times `speed`), rounded to a
    /// hundredth: the one level it runs, named by that rate.
    static func replay(_ trace: Workload.Trace, speed: Double, workload node: TaskNode) throws(TaskFileError) -> (
        rows: Int, rate: Double
    ) {
        let rows: [WorkloadRow]
        do {
            let text = try String(contentsOfFile: trace.path, encoding: .utf8)
            rows = try WorkloadFiles.trace(text, format: trace.format, path: trace.path)
        } catch {
            throw node.error("\(error)")
        }
        let times = rows.compactMap(\.timestamp)
        guard let first = times.first, let last = times.last, last > first else {
            throw node.error("\(trace.path): a trace to replay needs at least two rows at different times")
        }
        let rate = Double(times.count - 1) / (last - first) * speed
        return (rows.count, max(0.01, (rate * 100).rounded() / 100))
    }

    static func trace(_ node: TaskNode, base: URL) throws(TaskFileError) -> Workload.Trace {
        let fields = try node.fields(allowed: ["path", "format", "speed", "timing"])
        let pathNode = try fields.required("path", "the trace file")
        let (path, text, fingerprint) = try read(pathNode, base: base)
        let format: Workload.Trace.Format
        if let given = fields["format"] {
            guard let value = Workload.Trace.Format(rawValue: try given.string()) else {
                throw given.error("expected burstgpt (CSV) or mooncake (JSONL)")
            }
            format = value
        } else {
            format = path.hasSuffix(".csv") ? .burstgpt : .mooncake
        }
        do {
            _ = try WorkloadFiles.trace(text, format: format, path: path)
        } catch {
            throw pathNode.error("\(error)")
        }
        var timing = Workload.Trace.Timing.replay(speed: 1)
        if let speed = fields["speed"] {
            let value = try speed.double()
            guard value > 0, value <= 10_000 else { throw speed.error("a speed above 0 (2: twice as fast)") }
            timing = .replay(speed: value)
        }
        if let mode = fields["timing"] {
            switch try mode.string() {
            case "replay": break
            case "shape":
                if let speed = fields["speed"] {
                    throw speed.error("a trace replayed by its shape takes the levels' rates, not a speed")
                }
                timing = .shape
            default: throw mode.error("expected replay (its own times) or shape (its gaps at each level's rate)")
            }
        }
        return Workload.Trace(path: path, format: format, timing: timing, fingerprint: fingerprint)
    }
}
