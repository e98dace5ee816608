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

    /// One load level the benchmark ran (a capacity search's probes, or the task's levels), in the order run.
    public struct Level: Sendable, Hashable {
        /// Its name: `c32` (32 concurrent requests) or `r4.5` (4.5 requests per second).
        public var name: String
        /// The load it offered: the concurrency or the rate asked for, from its name.
        public var load: Double?
        /// Whether the load is a request rate (else a concurrency).
        public var isRate: Bool
        /// Its figures (`ttft_ms_p99`, `sustained`, `slo_met`, …).
        public var metrics: [String: Double]
        /// Why it was not sustained, when it was not.
        public var unsustained: String?

        /// Levels in order of the load they offered (then by name).
        public static func byLoad(_ a: Level, _ b: Level) -> Bool { (a.load ?? 0, a.name) < (b.load ?? 0, b.name) }

        /// Whether it was sustained and met its SLOs: a level a capacity search may report.
        public var passed: Bool { metrics["sustained"] != 0 && metrics["slo_met"] != 0 && unsustained == nil }

        /// Creates a level.
        public init(name: String, metrics: [String: Double], unsustained: String? = nil) {
            self.name = name
            self.metrics = metrics
            self.unsustained = unsustained
            isRate = name.hasPrefix("r")
            load = Double(name.dropFirst())
        }
    }

    /// The trial's number.
    public var trial: Int
    /// The level drawn (`c32`, `r4.5`).
    public var level: String
    /// Its requests.
    public var points: [Point]
    /// Every level the benchmark ran, in order.
    public var levels: [Level]

    /// Creates a sample.
    public init(trial: Int, level: String, points: [Point], levels: [Level] = []) {
        self.trial = trial
        self.level = level
        self.points = points
        self.levels = levels
    }

    /// The requests of trial `trial` from its `benchmark.json` (the built-in load generator's), at the level its
    /// figures come from: the highest level that was sustained and met its SLOs, else the first; `nil` when the
    /// file is missing or not the generator's.
    public static func read(benchmarkFile path: String, trial: Int) -> RequestSample? {
        guard let data = FileManager.default.contents(atPath: path),
            let levels = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]], !levels.isEmpty
        else { return nil }
        let summaries = levels.map { level in
            Level(
                name: level["name"] as? String ?? "", metrics: level["metrics"] as? [String: Double] ?? [:],
                unsustained: level["unsustained"] as? String)
        }
        let chosen = summaries.indices.last(where: { summaries[$0].passed }).map { levels[$0] } ?? levels[0]
        let records = chosen["records"] as? [[String: Any]] ?? []
        let points = records.compactMap { record -> Point? in
            guard let e2e = record["endToEnd"] as? Double else { return nil }
            let prompt = (record["promptTokens"] as? Int) ?? (record["plannedPromptTokens"] as? Int) ?? 0
            return Point(
                promptTokens: prompt, ttftMs: (record["timeToFirstToken"] as? Double).map { $0 * 1000 },
                e2eMs: e2e * 1000, succeeded: record["succeeded"] as? Bool ?? false)
        }
        guard !points.isEmpty else { return nil }
        return RequestSample(trial: trial, level: chosen["name"] as? String ?? "", points: points, levels: summaries)
    }
}
