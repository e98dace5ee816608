/// What a study optimises: a metric or a weighted sum of metrics, a direction, and constraints on metrics.
public struct Objective: Sendable, Hashable, Codable {
    /// Whether bigger or smaller scores are better.
    public enum Direction: String, Sendable, Hashable, Codable {
        /// Bigger is better (throughput).
        case maximize
        /// Smaller is better (latency).
        case minimize
    }

    /// One metric's contribution to the score.
    public struct Term: Sendable, Hashable, Codable {
        /// The metric's name as the experiment reports it.
        public var metric: String
        /// Its weight in the sum.
        public var weight: Double

        /// Creates a term.
        public init(metric: String, weight: Double = 1) {
            self.metric = metric
            self.weight = weight
        }
    }

    /// The direction of the score.
    public var direction: Direction
    /// The metrics summed (with weights) into the score.
    public var terms: [Term]
    /// Bounds on metrics (service-level objectives).
    public var constraints: [MetricConstraint]

    /// Creates an objective over a weighted sum of metrics.
    public init(_ direction: Direction, terms: [Term], constraints: [MetricConstraint] = []) {
        self.direction = direction
        self.terms = terms
        self.constraints = constraints
    }

    /// Creates an objective over one metric.
    public static func maximize(_ metric: String, constraints: [MetricConstraint] = []) -> Self {
        Self(.maximize, terms: [Term(metric: metric)], constraints: constraints)
    }

    /// Creates an objective over one metric, smaller being better.
    public static func minimize(_ metric: String, constraints: [MetricConstraint] = []) -> Self {
        Self(.minimize, terms: [Term(metric: metric)], constraints: constraints)
    }

    /// A short name for the score in progress lines: the metric, or `score` for a weighted sum.
    public var label: String {
        terms.count == 1 && terms[0].weight == 1 ? terms[0].metric : "score"
    }

    /// Whether `a` is a better score than `b`.
    public func isBetter(_ a: Double, than b: Double) -> Bool {
        direction == .maximize ? a > b : a < b
    }

    /// The best trial once `trial` has finished: it, if it completed with a better score than `current`.
    public func best(_ current: BestTrial?, after trial: Trial) -> BestTrial? {
        guard trial.state == .completed, let score = trial.score,
            current.map({ isBetter(score, than: $0.score) }) ?? true
        else { return current }
        return BestTrial(number: trial.number, score: score)
    }

    /// The score of a run's metrics, or why it does not count.
    ///
    /// A hard constraint that is broken fails the trial; a soft one moves the score towards worse by its
    /// penalty times the size of the violation.
    public func evaluate(_ metrics: [String: Double]) -> Result<Double, ObjectiveFailure> {
        var score = 0.0
        for term in terms {
            guard let value = metrics[term.metric] else {
                return .failure(.missingMetric(term.metric, available: metrics.keys.sorted()))
            }
            guard value.isFinite else { return .failure(.nonFiniteMetric(term.metric, value)) }
            score += term.weight * value
        }
        for constraint in constraints {
            guard let value = metrics[constraint.metric] else {
                return .failure(.missingMetric(constraint.metric, available: metrics.keys.sorted()))
            }
            let violation = constraint.violation(of: value)
            guard violation > 0 else { continue }
            switch constraint.enforcement {
            case .hard:
                return .failure(.constraintViolated(constraint, value: value))
            case .soft(let penalty):
                score += (direction == .maximize ? -1 : 1) * penalty * violation
            }
        }
        return .success(score)
    }

    /// The score a model of the objective learns from: the weighted sum with soft penalties, whether or not a
    /// hard constraint was broken (the objective was measured all the same); `nil` when a metric it needs is
    /// missing or not finite.
    public func modelScore(_ metrics: [String: Double]) -> Double? {
        var score = 0.0
        for term in terms {
            guard let value = metrics[term.metric], value.isFinite else { return nil }
            score += term.weight * value
        }
        for constraint in constraints {
            guard case .soft(let penalty) = constraint.enforcement else { continue }
            guard let value = metrics[constraint.metric] else { return nil }
            score += (direction == .maximize ? -1 : 1) * penalty * constraint.violation(of: value)
        }
        return score
    }

    /// The hard constraints: a model of each predicts whether it holds.
    public var hardConstraints: [MetricConstraint] {
        constraints.filter { $0.enforcement == .hard }
    }

    /// A finite score worse than every successful one, used for failed trials where a number is needed
    /// (a model's training data, a ranking).
    ///
    /// It sits below the worst success by a tenth of the observed range (at least 1 when all successes
    /// are equal), so models see failures as bad without an infinity or a far outlier.
    public func penaltyScore(successes: some Collection<Double>) -> Double {
        guard let low = successes.min(), let high = successes.max() else { return 0 }
        let margin = max((high - low) * 0.1, 1)
        return direction == .maximize ? low - margin : high + margin
    }
}

/// A bound on a metric, such as `p99_ttft_ms <= 500`.
public struct MetricConstraint: Sendable, Hashable, Codable, CustomStringConvertible {
    /// How a violation is treated.
    public enum Enforcement: Sendable, Hashable, Codable {
        /// The trial fails.
        case hard
        /// The score is made worse by `penalty` per unit of violation.
        case soft(penalty: Double)
    }

    /// The metric bounded.
    public var metric: String
    /// The smallest allowed value, if any.
    public var minimum: Double?
    /// The largest allowed value, if any.
    public var maximum: Double?
    /// What a violation does.
    public var enforcement: Enforcement

    /// Creates a constraint; at least one bound should be given.
    public init(metric: String, minimum: Double? = nil, maximum: Double? = nil, enforcement: Enforcement = .hard) {
        self.metric = metric
        self.minimum = minimum
        self.maximum = maximum
        self.enforcement = enforcement
    }

    /// How far `value` is outside the bounds (0 inside).
    public func violation(of value: Double) -> Double {
        guard value.isFinite else { return .greatestFiniteMagnitude }
        if let minimum, value < minimum { return minimum - value }
        if let maximum, value > maximum { return value - maximum }
        return 0
    }

    /// `metric >= min`, `metric <= max` or both.
    public var description: String {
        var parts: [String] = []
        if let minimum { parts.append("\(metric) >= \(ParameterValue.format(minimum))") }
        if let maximum { parts.append("\(metric) <= \(ParameterValue.format(maximum))") }
        return parts.joined(separator: " and ")
    }
}

/// Why a run's metrics give no score.
public enum ObjectiveFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// A metric the objective needs was not reported.
    case missingMetric(String, available: [String])
    /// A metric was NaN or infinite.
    case nonFiniteMetric(String, Double)
    /// A hard constraint was broken.
    case constraintViolated(MetricConstraint, value: Double)

    /// A message naming the metric.
    public var description: String {
        switch self {
        case .missingMetric(let name, let available):
            "metric '\(name)' was not reported (got: \(available.isEmpty ? "none" : available.joined(separator: ", ")))"
        case .nonFiniteMetric(let name, let value):
            "metric '\(name)' is \(value)"
        case .constraintViolated(let constraint, let value):
            "constraint \(constraint) violated: \(constraint.metric) = \(HumanNumber.format(value))"
        }
    }
}
