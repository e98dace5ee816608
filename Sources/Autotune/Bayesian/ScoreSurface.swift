/// The score a Gaussian process predicts across two parameters, the others held where a reference trial has
/// them: what a contour plot of the two most important parameters draws.
///
/// The model is the importance estimate's (Matérn-5/2 ARD, MAP hyperparameters), fitted to the standardised
/// scores of the completed trials (at most ``ParameterImportance/maximumTrials``, spread over the study), so the
/// surface is in the score's own units. Holding the other parameters at a real trial's values (the recommended
/// one) keeps the picture a slice through configurations that were run, not an average over ones that never were;
/// optuna-dashboard's contour interpolates the trials' scores instead, which draws two parameters' effect mixed
/// with whatever the others did in those trials.
public enum ScoreSurface {
    /// The predicted scores on a grid over two parameters' unit intervals.
    public struct Grid: Sendable, Hashable {
        /// The parameter across.
        public var x: String
        /// The parameter up.
        public var y: String
        /// The grid's positions along each parameter's unit interval (cell centres).
        public var units: [Double]
        /// `means[row][column]`: the predicted score at `units[column]` of `x` and `units[row]` of `y`.
        public var means: [[Double]]
        /// The trial whose values the other parameters keep.
        public var reference: Int

        /// The lowest and highest prediction.
        public var range: ClosedRange<Double> {
            let all = means.joined()
            return (all.min() ?? 0)...(all.max() ?? 0)
        }
    }

    /// The surface over `x` and `y` (searched parameters of `space`) with the others at `reference`'s values,
    /// `steps` cells a side; `nil` with fewer than five completed trials, when a name is not a searched parameter,
    /// or when the model cannot be fitted.
    public static func predict(
        space: SearchSpace, trials: [Trial], x: String, y: String, reference: Trial, steps: Int = 24
    ) -> Grid? {
        let names = space.searched.map(\.name)
        guard steps >= 2, x != y, let column = names.firstIndex(of: x), let row = names.firstIndex(of: y),
            let base = try? space.unitPoint(of: reference.configuration)
        else { return nil }
        var standardisation = Standardisation([])
        guard
            let (encoder, model) = ParameterImportance.fit(
                space: space, trials: trials,
                outputs: { scores in
                    standardisation = Standardisation(scores)
                    return scores.map(standardisation.apply)
                })
        else { return nil }
        let units = (0..<steps).map { (Double($0) + 0.5) / Double(steps) }
        var features: [Double] = []
        for v in units {
            for u in units {
                var point = base
                point[column] = u
                point[row] = v
                encoder.encode(space.configuration(atUnit: point), into: &features)
            }
        }
        let mean = model.predict(features, count: steps * steps).mean.map {
            $0 * standardisation.scale + standardisation.mean
        }
        let means = (0..<steps).map { Array(mean[($0 * steps)..<(($0 + 1) * steps)]) }
        return Grid(x: x, y: y, units: units, means: means, reference: reference.number)
    }
}
