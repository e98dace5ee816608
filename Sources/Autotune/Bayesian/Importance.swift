/// How much each parameter matters to the score: the share of the variance of a Gaussian process's posterior
/// mean explained by that parameter alone (its first-order Sobol index, the main effect of a functional
/// ANOVA).
///
/// A GP (the bayesian strategy's: Matérn-5/2 ARD, MAP hyperparameters, warped and standardised scores) is fitted
/// to the completed trials. For each parameter, 17 values across its unit interval are set in each of 64
/// quasi-random base configurations; the mean prediction averaged over the bases at each value is the
/// parameter's main effect, and its variance over the values is the parameter's importance. Shares are
/// normalised to sum to 1. Interactions are not attributed to either parameter; a parameter that matters only
/// together with another scores low. Length scales alone were not used: they measure smoothness, not effect
/// size, and a categorical's one-hot features share them out.
///
/// The fit costs O(n³) per step: past ``maximumTrials`` completed trials, that many are used, spread evenly over
/// the study's order (a report of 2,000 trials took 80 s with all of them; main effects of a smooth model
/// settle long before).
public enum ParameterImportance {
    /// One parameter's share with its uncertainty.
    public struct Share: Sendable, Hashable {
        /// The parameter.
        public var name: String
        /// Its share, from all the trials.
        public var share: Double
        /// The 10th and 90th percentiles of its share over bootstrap resamples of the trials.
        public var low: Double
        /// The upper end.
        public var high: Double
    }

    /// Importance with how far to trust it.
    public struct Estimate: Sendable, Hashable {
        /// Each parameter's share, largest first.
        public var shares: [Share]
        /// How many completed trials it is from.
        public var trials: Int
        /// Why the shares say little, when they do: too few trials, or intervals that overlap so much that no
        /// parameter stands out.
        public var caution: String?
    }

    /// The fewest completed trials shares are computed from; below ``confidentTrials`` they come with a caution.
    public static let minimumTrials = 5
    /// The trials from which shares are trusted when their intervals allow.
    public static let confidentTrials = 12
    /// The most completed trials the model is fitted to.
    public static let maximumTrials = 400

    /// Each parameter's share with an interval from `resamples` bootstrap resamples of the completed trials
    /// (each at most 120 trials, so a report stays quick), and a caution when they say little; `nil` with
    /// fewer than five completed trials or when the model cannot be fitted.
    ///
    /// Measured: 7 trials that differ only by noise gave 0%/23% in one run of a task and 17%/2% in the next; the
    /// interval shows that spread, and the caution says there is too little to tell.
    public static func estimate(space: SearchSpace, trials: [Trial], seed: UInt64 = 0, resamples: Int = 12)
        -> Estimate?
    {
        let completed = trials.filter { $0.state == .completed && $0.score?.isFinite == true }
        guard let point = compute(space: space, trials: completed, seed: seed) else { return nil }
        var draws: [String: [Double]] = [:]
        var generator = SeededGenerator(seed: seed &+ 0x5EED)
        for _ in 0..<resamples {
            let size = min(completed.count, 120)
            let sample = (0..<size).map { _ in completed[generator.nextInt(below: completed.count)] }
            // A resample's repeated trials are fine for the model: it sees them as repeated measurements.
            guard let shares = compute(space: space, trials: sample, seed: seed) else { continue }
            for entry in shares { draws[entry.name, default: []].append(entry.share) }
        }
        func percentile(_ values: [Double], _ q: Double) -> Double {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
        }
        let shares = point.map { entry -> Share in
            let values = draws[entry.name] ?? [entry.share]
            return Share(
                name: entry.name, share: entry.share, low: min(entry.share, percentile(values, 0.1)),
                high: max(entry.share, percentile(values, 0.9)))
        }
        var caution: String?
        if completed.count < confidentTrials {
            caution =
                "from \(completed.count) completed trials: too few to tell which parameters matter (the intervals show how much the shares move)"
        } else if let top = shares.first, shares.dropFirst().contains(where: { $0.high >= top.low }) {
            caution = "the intervals overlap: no parameter clearly matters more than the others yet"
        }
        return Estimate(shares: shares, trials: completed.count, caution: caution)
    }

    /// `maximumTrials` of `trials` spread evenly over their order (all of them when there are no more).
    static func spread(_ trials: [Trial]) -> [Trial] {
        FitSubset.indices(count: trials.count, maximum: maximumTrials).map { trials[$0] }
    }

    /// A GP fitted to the completed trials (at most ``maximumTrials``, spread over the study) with `outputs` of
    /// their scores as its targets, and the encoder of its features; `nil` with fewer than ``minimumTrials`` or
    /// when the fit fails.
    static func fit(space: SearchSpace, trials: [Trial], outputs: ([Double]) -> [Double]) -> (
        FeatureEncoder, GaussianProcess
    )? {
        let completed = spread(trials.filter { $0.state == .completed && $0.score?.isFinite == true })
        guard completed.count >= minimumTrials else { return nil }
        let encoder = FeatureEncoder(space: space)
        guard
            let model = GaussianProcess.fit(
                inputs: encoder.encode(completed.map(\.configuration)), outputs: outputs(completed.map { $0.score! }),
                dimension: encoder.dimension, start: nil, maxIterations: 60)
        else { return nil }
        return (encoder, model)
    }

    /// Each searched parameter's share, largest first; `nil` with fewer than five completed trials or when the
    /// model cannot be fitted.
    public static func compute(space: SearchSpace, trials: [Trial], seed: UInt64 = 0) -> [(
        name: String, share: Double
    )]? {
        guard space.dimension >= 1,
            let (encoder, model) = fit(
                space: space, trials: trials,
                outputs: { scores in
                    let scale = LossScale(scores)
                    return scores.map(scale.apply)
                })
        else { return nil }
        var sobol = SobolSequence(dimension: space.dimension, seed: seed)
        let bases = (0..<64).map { _ in sobol.next() }
        let steps = 17
        var effects: [Double] = []
        for coordinate in 0..<space.dimension {
            var features: [Double] = []
            for step in 0..<steps {
                for base in bases {
                    var point = base
                    point[coordinate] = (Double(step) + 0.5) / Double(steps)
                    encoder.encode(space.configuration(atUnit: point), into: &features)
                }
            }
            let mean = model.predict(features, count: steps * bases.count).mean
            let curve = (0..<steps).map { step in
                mean[(step * bases.count)..<((step + 1) * bases.count)].reduce(0, +) / Double(bases.count)
            }
            let average = curve.reduce(0, +) / Double(steps)
            effects.append(curve.map { ($0 - average) * ($0 - average) }.reduce(0, +) / Double(steps))
        }
        let total = effects.reduce(0, +)
        let names = space.searched.map(\.name)
        return zip(names, effects).map { (name: $0, share: total > 0 ? $1 / total : 1 / Double(names.count)) }
            .sorted { $0.share > $1.share }
    }
}
