/// What a study found, decided once for every view (the run's summary, `best`, `status`, the report and the
/// dashboard): the search's best, the confirmed best when configurations were re-measured, the one recommended,
/// the Pareto front, the gain over the baseline with its uncertainty, and how sure the tool is that the
/// recommended configuration meets each SLO.
public struct StudyResult: Sendable, Hashable {
    /// How much better the recommended configuration is than the baseline.
    public struct Gain: Sendable, Hashable, Codable {
        /// The baseline's number (0).
        public var baseline: Int
        /// The baseline's score: its single measurement, or the mean of its measurements with its repeats.
        public var baselineScore: Double?
        /// How many measurements of the baseline the score is from.
        public var baselineRuns: Int
        /// How many measurements of the recommended configuration its score is from.
        public var bestRuns: Int
        /// How much better, as a fraction of the baseline's score (0.25 is 25% better); `nil` when either has no
        /// score.
        public var fraction: Double?
        /// The 90% confidence interval of the fraction, when both were measured more than once (or the noise is
        /// known from other repeats).
        public var low: Double?
        /// Its upper end.
        public var high: Double?

        /// Creates a gain.
        public init(
            baseline: Int, baselineScore: Double?, baselineRuns: Int, bestRuns: Int = 1, fraction: Double?,
            low: Double? = nil, high: Double? = nil
        ) {
            self.baseline = baseline
            self.baselineScore = baselineScore
            self.baselineRuns = baselineRuns
            self.bestRuns = bestRuns
            self.fraction = fraction
            self.low = low
            self.high = high
        }

        /// Whether the interval holds 0: the gain is within the noise.
        public var withinNoise: Bool { (low ?? 1) <= 0 && (high ?? -1) >= 0 }
    }

    /// How sure the tool is that the recommended configuration meets one SLO (a hard constraint).
    public struct Assurance: Sendable, Hashable, Codable {
        /// The metric and its limit, as the task file says them.
        public var constraint: String
        /// The metric's mean over the configuration's measurements.
        public var mean: Double
        /// How many measurements.
        public var runs: Int
        /// How far inside the limit the mean is, as a fraction of the limit (negative: outside).
        public var margin: Double
        /// The probability that the configuration's true mean meets the limit, from the measurements' mean and
        /// the metric's noise; `nil` from one measurement with no noise known.
        public var probability: Double?
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
    /// What the strategy's models recommended, when they chose ``recommended`` (no confirmation runs).
    public var model: StrategyRecommendation?
    /// The Pareto front (several objectives), best first on the first.
    public var front: [FrontPoint]
    /// The recommended trial against the baseline, when the study has one.
    public var gain: Gain?
    /// For each hard constraint, how sure the tool is that the recommended configuration meets it.
    public var assurance: [Assurance]

    /// Decides what `trials` of a study defined by `definition` found; `best` is what the store recorded as the
    /// search's best (and front), `model` what the strategy's models recommend (``Strategy/recommendation()``).
    ///
    /// The recommendation is, in order: the confirmed best when configurations were re-measured; else the
    /// configuration the models recommend (the best they expect among those they are at least 90% sure meet every
    /// SLO), at its measured score; else the search's best measurement.
    public init(definition: StudyDefinition, trials: [Trial], best: BestTrial?, model: StrategyRecommendation? = nil) {
        let objective = definition.objective
        let baseline = definition.baseline == nil ? nil : 0
        searchBest = best
        front = best?.front ?? []
        confirmation = definition.confirm?.ranking(of: trials, objective: objective, baseline: baseline) ?? []
        let confirmed = definition.confirm?.best(of: confirmation)
        isConfirmed = confirmed != nil
        recommended = confirmed ?? best
        self.model = nil
        if confirmed == nil, !objective.isMultiObjective, let model,
            let trial = trials.filter({
                $0.confirms == nil && $0.state == .completed && $0.configuration == model.configuration
            }).max(by: { objective.isBetter($1.score!, than: $0.score!) }), let score = trial.score
        {
            recommended = BestTrial(number: trial.number, score: score)
            self.model = model
        }
        gain = nil
        assurance = []
        guard let recommended else { return }
        // The recommended configuration's measurements: its repeats when confirmed, else its one search score.
        let winner = isConfirmed ? trials.filter { $0.confirms == recommended.number } : []
        let measured = winner.isEmpty ? trials.filter { $0.number == recommended.number } : winner
        let noiseGroups = Dictionary(grouping: trials.filter { $0.confirms != nil }, by: { $0.confirms! })
            .map { target, repeats in
                repeats + trials.filter { $0.number == target && target == baseline && $0.confirms == nil }
            }
        assurance = Self.assurance(
            of: measured, constraints: objective.hardConstraints, noiseGroups: noiseGroups,
            modelProbabilities: self.model?.constraintProbabilities)
        guard let baseline, let first = trials.first(where: { $0.number == baseline && $0.confirms == nil }) else {
            return
        }
        let baselineScores = ConfirmationPhase.measurements(of: baseline, in: trials, baseline: baseline)
        let bestScores =
            isConfirmed
            ? winner.filter { $0.state == .completed }.compactMap(\.score).filter(\.isFinite) : [recommended.score]
        gain = Self.gain(
            baseline: first.number, baselineScores: first.state == .completed ? baselineScores : [],
            bestScores: bestScores, noise: confirmation.first?.noise, objective: objective)
    }

    /// The gain of `bestScores` over `baselineScores` with a 90% interval from Welch's standard error (the noise
    /// `noise` standing in for a side measured once).
    static func gain(
        baseline: Int, baselineScores: [Double], bestScores: [Double], noise: Double?, objective: Objective
    ) -> Gain {
        guard let base = Noise.mean(baselineScores), let best = Noise.mean(bestScores) else {
            return Gain(
                baseline: baseline, baselineScore: Noise.mean(baselineScores), baselineRuns: baselineScores.count,
                bestRuns: bestScores.count, fraction: nil)
        }
        var result = Gain(
            baseline: baseline, baselineScore: base, baselineRuns: baselineScores.count, bestRuns: bestScores.count,
            fraction: gain(best, over: base, objective: objective))
        func variance(_ values: [Double]) -> Double? {
            if values.count > 1 {
                let mean = values.reduce(0, +) / Double(values.count)
                let own = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
                return max(own, (noise ?? 0) * (noise ?? 0))
            }
            return noise.map { $0 * $0 }
        }
        guard base != 0, let vb = variance(baselineScores), let vw = variance(bestScores) else { return result }
        let nb = Double(baselineScores.count)
        let nw = Double(bestScores.count)
        let error = (vb / nb + vw / nw).squareRoot()
        let df = max(1, nb + nw - 2)
        let difference = objective.direction == .maximize ? best - base : base - best
        let half = Noise.t95(degreesOfFreedom: df) * error
        result.low = (difference - half) / abs(base)
        result.high = (difference + half) / abs(base)
        return result
    }

    /// How sure the tool is that the configuration measured by `trials` meets each of `constraints`.
    ///
    /// Without repeats to tell the noise, `modelProbabilities` (the strategy's models', one per constraint) stand in.
    static func assurance(
        of trials: [Trial], constraints: [MetricConstraint], noiseGroups: [[Trial]],
        modelProbabilities: [Double]? = nil
    ) -> [Assurance] {
        constraints.enumerated().compactMap { index, constraint in
            let values = trials.compactMap { $0.metrics[constraint.metric] }.filter(\.isFinite)
            guard let mean = Noise.mean(values), let limit = constraint.maximum ?? constraint.minimum, limit != 0 else {
                return nil
            }
            let upper = constraint.maximum != nil
            let margin = (upper ? limit - mean : mean - limit) / abs(limit)
            let noise = Noise.pooled(
                noiseGroups.map { group in group.compactMap { $0.metrics[constraint.metric] }.filter(\.isFinite) })
            var probability: Double? = modelProbabilities.flatMap { index < $0.count ? $0[index] : nil }
            if let noise {
                let error = max(noise.sd, 1e-12) / Double(values.count).squareRoot()
                let z = (upper ? limit - mean : mean - limit) / error
                probability = Noise.tCDF(z, degreesOfFreedom: noise.degreesOfFreedom)
            }
            return Assurance(
                constraint: constraint.description, mean: mean, runs: values.count, margin: margin,
                probability: probability)
        }
    }

    /// How much better `score` is than `baseline`, as a fraction of the baseline (in the objective's direction);
    /// 0 for a baseline of 0, which no fraction describes.
    public static func gain(_ score: Double, over baseline: Double, objective: Objective) -> Double {
        guard baseline != 0 else { return 0 }
        return objective.direction == .maximize
            ? (score - baseline) / abs(baseline) : (baseline - score) / abs(baseline)
    }
}
