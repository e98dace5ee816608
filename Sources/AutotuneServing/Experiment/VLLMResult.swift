import Autotune
import Foundation

/// A level's result in `vllm bench serve --save-result`'s JSON format: the field names vLLM's scripts, plots and
/// `bench sweep` read (`request_throughput`, `output_throughput`, `p99_ttft_ms`, `mean_tpot_ms`,
/// `request_goodput`, …), written as each trial's `result.json`.
struct VLLMResult {
    let fields: [String: JSONValue]

    /// The fields of `level`, run with `spec` against `model`; `metrics` adds the trial's search results
    /// (`max_request_rate`, `goodput`).
    init(level: LevelResult, spec: LoadSpec, model: String, metrics: [String: Double]) {
        var fields: [String: JSONValue] = [
            "date": .string(Date().formatted(.iso8601)),
            "backend": .string("openai"),
            "model_id": .string(model),
            "workload": .string(spec.effectiveWorkload.description),
            "num_prompts": .number(Double(level.records.count)),
            "duration": .number(level.seconds),
            "completed": .number(Double(level.records.filter(\.succeeded).count)),
            "total_input_tokens": .number(Double(level.records.filter(\.succeeded).reduce(0) { $0 + $1.promptTokens })),
            "total_output_tokens": .number(
                Double(level.records.filter(\.succeeded).reduce(0) { $0 + $1.outputTokens })),
        ]
        switch Self.load(of: level) {
        case let load? where level.name.hasPrefix("c"):
            fields["max_concurrency"] = .number(load)
            fields["request_rate"] = .string("inf")
        case let load?:
            fields["request_rate"] = .number(load)
        case nil:
            break
        }
        let m = level.metrics
        let renames: [(String, String)] = [
            ("requests_per_s", "request_throughput"), ("output_tokens_per_s", "output_throughput"),
            ("total_tokens_per_s", "total_token_throughput"), ("goodput", "request_goodput"),
        ]
        for (ours, theirs) in renames { if let value = m[ours] ?? metrics[ours] { fields[theirs] = .number(value) } }
        for (ours, theirs) in [("ttft_ms", "ttft"), ("tpot_ms", "tpot"), ("itl_ms", "itl"), ("e2e_ms", "e2el")] {
            if let value = m["\(ours)_mean"] { fields["mean_\(theirs)_ms"] = .number(value) }
            if let value = m["\(ours)_p50"] { fields["median_\(theirs)_ms"] = .number(value) }
            for p in ["p90", "p99"] {
                if let value = m["\(ours)_\(p)"] { fields["\(p)_\(theirs)_ms"] = .number(value) }
            }
        }
        for name in ["max_request_rate", "max_concurrency", "slo_attainment"] {
            if let value = metrics[name] { fields[name] = .number(value) }
        }
        self.fields = fields
    }

    /// The load a level ran at, from its name: `c64` → 64, `r4.5` → 4.5.
    static func load(of level: LevelResult) -> Double? { Double(level.name.dropFirst()) }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(JSONValue.object(fields))
    }

    /// Autotune's metric names for the fields of a vLLM result, so an external `vllm bench serve` needs no key
    /// map: `request_throughput` → `requests_per_s`, `p99_ttft_ms` → `ttft_ms_p99`, `median_e2el_ms` →
    /// `e2e_ms_p50`, and every other numeric top-level field under its own name.
    static func metrics(from document: JSONValue) -> [String: Double] {
        guard case .object(let fields) = document else { return [:] }
        var metrics: [String: Double] = [:]
        let renames = [
            "request_throughput": "requests_per_s", "output_throughput": "output_tokens_per_s",
            "total_token_throughput": "total_tokens_per_s", "request_goodput": "goodput", "completed": "requests",
        ]
        let distributions = ["ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms", "e2el": "e2e_ms"]
        for (name, value) in fields {
            guard let number = value.doubleValue else { continue }
            metrics[name] = number
            if let ours = renames[name] { metrics[ours] = number }
            let parts = name.split(separator: "_")
            if parts.count == 3, parts[2] == "ms", let ours = distributions[String(parts[1])] {
                let statistic = parts[0] == "median" ? "p50" : String(parts[0])
                if ["mean", "p50", "p90", "p95", "p99"].contains(statistic) {
                    metrics["\(ours)_\(statistic)"] = number
                }
            }
        }
        return metrics
    }
}
