public import Autotune
import AutotuneRunner
import AutotuneStore
import Foundation
import Logging

/// `autotune speedup`: the same task and budget run at several parallelism levels, each as a fresh study in a
/// scratch database, and what parallelism bought: wall time, speedup and efficiency against parallel 1, and the
/// time and trials each level needed to reach what sequential search found.
public struct SpeedupMeasurement: Sendable {
    /// One run of one level.
    public struct Run: Sendable {
        /// The level.
        public var parallel: Int
        /// Seconds the run took.
        public var seconds: Double
        /// Its trials.
        public var trials: [Trial]
        /// The best score it found.
        public var best: Double?
    }

    /// The task's study (its budget set for the measurement).
    public var definition: StudyDefinition
    /// The levels measured: those asked for, and parallel 1 first when they leave it out.
    public var levels: [Int]
    /// The levels asked for.
    public var askedFor: [Int]
    /// Runs per level.
    public var repeats: Int

    /// A measurement of `definition` at `levels` (parallel 1 is run first when they leave it out), `repeats` runs
    /// each, with `trials` trials a run (else the task's budget).
    ///
    /// ``AutotuneError/Code/invalidTask`` when the task has no trial budget to hold fixed.
    public init(definition: StudyDefinition, levels: [Int], repeats: Int, trials: Int?) throws {
        var definition = definition
        if let trials { definition.budget.maxTrials = trials }
        guard definition.budget.maxTrials != nil || definition.strategy.name == "grid" else {
            throw AutotuneError(
                .invalidTask, "speedup needs a trial budget (budget.max_trials in the task file, or --trials)")
        }
        definition.budget.maxTime = nil
        definition.failFast = nil
        self.definition = definition
        self.levels = levels.contains(1) ? levels : [1] + levels
        askedFor = levels
        self.repeats = repeats
    }

    /// Runs every level, `settings` giving the GPUs (resolved as for `run`) and the logger; `announce` is told
    /// of each run as it starts.
    public func run(settings: RunSettings, announce: @Sendable (Int, Int) -> Void = { _, _ in }) async throws
        -> SpeedupTable
    {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-speedup-\(UUID())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let store = try SQLiteStudyStore(path: scratch.appendingPathComponent("speedup.sqlite").path)
        defer { store.close() }
        let location = StoreLocation(flag: store.location)
        var settings = settings
        settings.trialsDirectory = scratch.appendingPathComponent("trials")
        var runs: [Run] = []
        for level in levels {
            for repetition in 0..<repeats {
                var levelDefinition = definition
                levelDefinition.name = "\(definition.name)-p\(level)-\(repetition)"
                levelDefinition.parallel = level
                let study = try await store.createStudy(levelDefinition, taskSource: nil)
                announce(level, repetition)
                var levelSettings = settings
                levelSettings.parallel = level
                let session = await StudySession(
                    study: study, store: store, location: location, settings: levelSettings)
                let summary = try await session.run(try await session.makeLoop())
                runs.append(
                    Run(
                        parallel: level, seconds: summary.seconds, trials: summary.trials,
                        best: summary.result.searchBest?.score))
            }
        }
        return SpeedupTable(runs: runs, levels: levels, objective: definition.objective, askedFor: askedFor)
    }
}

/// What a speedup measurement found, a row per level.
public struct SpeedupTable: Sendable {
    /// One level.
    public struct Row: Sendable, Encodable {
        /// The parallelism.
        public var parallel: Int
        /// Runs measured.
        public var runs: Int
        /// Trials per run.
        public var trials: Int
        /// Trials that completed (in the median run).
        public var completed: Int
        /// The median wall time, and its fastest and slowest.
        public var wallSeconds: Double
        /// The fastest run.
        public var wallSecondsFastest: Double
        /// The slowest run.
        public var wallSecondsSlowest: Double
        /// Parallel 1's median wall time over this level's.
        public var speedup: Double
        /// The speedup over the parallelism.
        public var efficiency: Double
        /// The share of slot-seconds trials were running.
        public var slotUtilization: Double
        /// Trials finished per minute.
        public var trialsPerMinute: Double
        /// The median time until a run's best reached the target (sequential search's median final best), when
        /// every run reached it.
        public var timeToTargetSeconds: Double?
        /// The median trials finished until then.
        public var trialsToTarget: Double?
        /// Parallel 1's time to target over this level's.
        public var speedupToTarget: Double?
        /// GPU-hours the median run used (trial seconds times GPUs held), when trials held GPUs.
        public var gpuHours: Double?
        /// The best score any run of the level found.
        public var bestScore: Double?
        /// Whether parallel 1 was not asked for and was run as the reference.
        public var reference: Bool
    }

    /// The rows, in the order the levels were run.
    public var rows: [Row]
    /// The score runs had to reach for time to target: parallel 1's median final best.
    public var target: Double?
    /// What a person must know to read the figures: runs that completed nothing, efficiencies above 1.
    public var warnings: [String]

    /// The table of `runs`.
    public init(runs: [SpeedupMeasurement.Run], levels: [Int], objective: Objective, askedFor: [Int]) {
        let byLevel = Dictionary(grouping: runs, by: \.parallel)
        let sequential = byLevel[1] ?? []
        let target = Self.median(sequential.compactMap(\.best), objective: objective)
        self.target = target
        let serialWall = Self.median(sequential.map(\.seconds)) ?? .nan
        let serialToTarget = Self.median(
            sequential.compactMap { Self.toTarget($0, target: target, objective: objective)?.seconds })
        var warnings: [String] = []
        rows = levels.map { level in
            let levelRuns = byLevel[level] ?? []
            let walls = levelRuns.map(\.seconds)
            let wall = Self.median(walls) ?? .nan
            let speedup = serialWall / wall
            let busy = levelRuns.map { run in run.trials.compactMap { $0.timings["total"] }.reduce(0, +) }
            let reached = levelRuns.compactMap { Self.toTarget($0, target: target, objective: objective) }
            let everyReached = !levelRuns.isEmpty && reached.count == levelRuns.count
            let timeToTarget = everyReached ? Self.median(reached.map(\.seconds)) : nil
            let gpuSeconds = levelRuns.map { run in
                run.trials.reduce(0.0) { $0 + ($1.timings["total"] ?? 0) * Double($1.gpus?.count ?? 0) }
            }
            let completed = levelRuns.map { $0.trials.count { $0.state == .completed } }
            return Row(
                parallel: level,
                runs: levelRuns.count,
                trials: levelRuns.first?.trials.count ?? 0,
                completed: Int(Self.median(completed.map(Double.init)) ?? 0),
                wallSeconds: wall,
                wallSecondsFastest: walls.min() ?? 0,
                wallSecondsSlowest: walls.max() ?? 0,
                speedup: speedup,
                efficiency: speedup / Double(level),
                slotUtilization: Self.median(zip(busy, walls).map { $0 / (Double(level) * $1) }) ?? 0,
                trialsPerMinute: Double(levelRuns.first?.trials.count ?? 0) / wall * 60,
                timeToTargetSeconds: timeToTarget,
                trialsToTarget: everyReached ? Self.median(reached.map { Double($0.trials) }) : nil,
                speedupToTarget: zip2(serialToTarget, timeToTarget).map { $0 / $1 },
                gpuHours: gpuSeconds.allSatisfy({ $0 == 0 }) ? nil : Self.median(gpuSeconds).map { $0 / 3600 },
                bestScore: levelRuns.compactMap(\.best).reduce(nil as Double?) { best, score in
                    best.map { objective.isBetter(score, than: $0) ? score : $0 } ?? score
                },
                reference: !askedFor.contains(1) && level == 1
            )
        }
        for row in rows {
            if row.completed == 0 {
                warnings.append(
                    "parallel \(row.parallel): no trial completed, so its wall time measures failures, not search; see why with a normal run (autotune run) of the task"
                )
            } else if row.parallel > 1, row.efficiency > 1.15 {
                // Up to about 15% is what the wall times of identical runs differ by here; more means the levels
                // did not do the same work (trials failing fast at one level, a cache warmed by another).
                warnings.append(
                    "parallel \(row.parallel): efficiency \(String(format: "%.2f", row.efficiency)) is above 1 by more than run-to-run noise: the levels did not do the same work (compare their completed trials and failures)"
                )
            }
        }
        self.warnings = warnings
    }

    /// When a run's best first reached `target`: the seconds from its first start and the trials finished by
    /// then; `nil` when it never did.
    static func toTarget(_ run: SpeedupMeasurement.Run, target: Double?, objective: Objective) -> (
        seconds: Double, trials: Int
    )? {
        guard let target, let start = run.trials.compactMap(\.startedAt).min() else { return nil }
        let finished = run.trials.filter { $0.finishedAt != nil }.sorted { $0.finishedAt! < $1.finishedAt! }
        for (index, trial) in finished.enumerated() {
            guard trial.state == .completed, let score = trial.score else { continue }
            if score == target || objective.isBetter(score, than: target) {
                return (trial.finishedAt!.timeIntervalSince(start), index + 1)
            }
        }
        return nil
    }

    /// The median of `values`, `nil` for none.
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// The median score, the worse of the middle two for an even count, so a target is a score some run reached.
    static func median(_ scores: [Double], objective: Objective) -> Double? {
        guard !scores.isEmpty else { return nil }
        let sorted = scores.sorted { objective.isBetter($0, than: $1) }
        return sorted[sorted.count / 2]
    }

    /// The table as markdown or CSV cells: a header and a row per level.
    public var cells: [[String]] {
        let header = [
            "parallel", "runs", "trials", "completed", "wall_s", "wall_spread_s", "speedup", "efficiency",
            "slot_utilization", "trials_per_min", "time_to_target_s", "trials_to_target", "speedup_to_target",
            "gpu_hours", "best",
        ]
        let fixed = { (value: Double, digits: Int) in String(format: "%.\(digits)f", value) }
        let body = rows.map { row -> [String] in
            [
                String(row.parallel) + (row.reference ? " (reference)" : ""), String(row.runs), String(row.trials),
                String(row.completed), fixed(row.wallSeconds, 2),
                "\(fixed(row.wallSecondsFastest, 2))–\(fixed(row.wallSecondsSlowest, 2))", fixed(row.speedup, 2),
                fixed(row.efficiency, 3), fixed(row.slotUtilization, 3), HumanNumber.format(row.trialsPerMinute),
                row.timeToTargetSeconds.map { fixed($0, 2) } ?? "-",
                row.trialsToTarget.map { HumanNumber.format($0) } ?? "-",
                row.speedupToTarget.map { fixed($0, 2) } ?? "-",
                row.gpuHours.map { HumanNumber.format($0) } ?? "-",
                row.bestScore.map { HumanNumber.format($0) } ?? "-",
            ]
        }
        return [header] + body
    }

    /// The table in markdown.
    public var markdown: String {
        let cells = cells
        let lines = [cells[0], cells[0].map { _ in "---" }] + cells.dropFirst()
        return lines.map { "| " + $0.joined(separator: " | ") + " |" }.joined(separator: "\n")
    }
}

/// Both values, when both are there.
private func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
