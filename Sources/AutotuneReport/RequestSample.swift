import Foundation

/// One trial's requests, as its benchmark measured them: what the report's requests section draws, so a user sees
/// which requests (by prompt length) break the SLO, not only a percentile.
public struct RequestSample: Sendable, Hashable {
    /// One request.
    public struct Point: Sendable, Hashable {
        /// Prompt tokens, as the server counted them (else as planned).
        public var promptTokens: Int
        /// Time to first token, ms; `nil` when none came.
        public var ttftMs: Double?
        /// End-to-end latency, ms.
        public var e2eMs: Double
        /// Whether it succeeded.
        public var succeeded: Bool

        /// Creates a point.
        public init(promptTokens: Int, ttftMs: Double?, e2eMs: Double, succeeded: Bool) {
            self.promptTokens = promptTokens
            self.ttftMs = ttftMs
            self.e2eMs = e2eMs
            self.succeeded = succeeded
        }
    }

    /// The trial's number.
    public var trial: Int
    /// The level drawn (`c32`, `r4.5`).
    public var level: String
    /// Its requests.
    public var points: [Point]

    /// Creates a sample.
    public init(trial: Int, level: String, points: [Point]) {
        self.trial = trial
        self.level = level
        self.points = points
    }

    /// The requests of trial `trial` from its `benchmark.json` (the built-in load generator's), at the level its
    /// figures come from: the highest level that was sustained and met its SLOs, else the first; `nil` when the
    /// file is missing or not the generator's.
    public static func read(benchmarkFile path: String, trial: Int) -> RequestSample? {
        guard let data = FileManager.default.contents(atPath: path),
            let levels = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]], !levels.isEmpty
        else { return nil }
        func passed(_ level: [String: Any]) -> Bool {
            let metrics = level["metrics"] as? [String: Double] ?? [:]
            return metrics["sustained"] != 0 && metrics["slo_met"] != 0 && level["unsustained"] == nil
        }
        let chosen = levels.last(where: passed) ?? levels[0]
        let records = chosen["records"] as? [[String: Any]] ?? []
        let points = records.compactMap { record -> Point? in
            guard let e2e = record["endToEnd"] as? Double else { return nil }
            let prompt = (record["promptTokens"] as? Int) ?? (record["plannedPromptTokens"] as? Int) ?? 0
            return Point(
                promptTokens: prompt, ttftMs: (record["timeToFirstToken"] as? Double).map { $0 * 1000 },
                e2eMs: e2e * 1000, succeeded: record["succeeded"] as? Bool ?? false)
        }
        guard !points.isEmpty else { return nil }
        return RequestSample(trial: trial, level: chosen["name"] as? String ?? "", points: points)
    }
}
