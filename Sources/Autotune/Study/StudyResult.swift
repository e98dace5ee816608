/// What a study found, decided once for every view (the run's summary, `best`, `status`, the report and the
/// dashboard): the search's best, the confirmed best when configurations were re-measured, the one recommended,
/// the Pareto front, and the gain over the baseline.
public struct StudyResult: Sendable, Hashable {
    /// How much better the recommended configuration is than the baseline.
    public struct Gain: Sendable, Hashable, Codable {
        /// The baseline's number (0).
        public var baseline: Int
        /// The baseline's score: its single measurement, or the mean of its repeats.
        public var baselineScore: Double?
        /// How many measurements of the baseline the score is from.
        public var baselineRuns: Int
        /// How much better, as a fraction of the baseline's score (0.25 is 25% better); `nil` when either has no
        /// score.
        public var fraction: Double?

        /// Creates a gain.
        public init(baseline: Int, baselineScore: Double?, baselineRuns: Int, fraction: Double?) {
            self.baseline = baseline
            self.baselineScore = baselineScore
            self.baselineRuns = baselineRuns
            self.fraction = fraction
        }
    }

    /// The best completed trial of the search, at the score it measured once.
    public var searchBest: BestTrial?
    /// The re-measured configurations, best first; empty without confirmation runs.
    public var confirmation: [ConfirmedResult]
    /// The trial to deploy and the score it stands for: the confirmed best when there are confirmation runs,
    /// else the search's best.
    public var recommended: BestTrial?
    /// Whether ``recommended`` comes from confirmation runs.
    public var isConfirmed: Bool
    /// The Pareto front (several objectives), best first on the first.
    public var front: [FrontPoint]
    /// The recommended trial against the baseline, when the study has one.
    public var gain: Gain?

    /// Decides what `trials` of a study defined by `definition` found; `best` is what the store recorded as the
    /// search's best (and front).
    public init(definition: StudyDefinition, trials: [Trial], best: BestTrial?) {
        let objective = definition.objective
        searchBest = best
        front = best?.front ?? []
        confirmation = definition.confirm?.ranking(of: trials, objective: objective) ?? []
        let confirmed = definition.confirm?.best(of: confirmation)
        isConfirmed = confirmed != nil
        recommended = confirmed ?? best
        gain = nil
        guard definition.baseline != nil, let baseline = trials.first(where: { $0.number == 0 }) else { return }
        let score = baseline.state == .completed ? baseline.score : nil
        gain = Gain(
            baseline: baseline.number, baselineScore: score, baselineRuns: score == nil ? 0 : 1,
            fraction: zip(recommended?.score, score).map { Self.gain($0, over: $1, objective: objective) })
    }

    /// How much better `score` is than `baseline`, as a fraction of the baseline (in the objective's direction);
    /// 0 for a baseline of 0, which no fraction describes.
    public static func gain(_ score: Double, over baseline: Double, objective: Objective) -> Double {
        guard baseline != 0 else { return 0 }
        return objective.direction == .maximize
            ? (score - baseline) / abs(baseline) : (baseline - score) / abs(baseline)
    }
}

/// Both values, when both are there.
private func zip<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
