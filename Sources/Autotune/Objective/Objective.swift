/// What a study optimises: a metric or a weighted sum of metrics, a direction, and constraints on metrics; or
/// several such goals at once, whose trade-off (the Pareto front) is then the study's result.
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

    /// One of several objectives: a metric (or weighted sum) and its direction.
    public struct Goal: Sendable, Hashable, Codable {
        /// Whether bigger or smaller is better.
        public var direction: Direction
        /// The metrics summed (with weights).
        public var terms: [Term]

        /// Creates a goal.
        public init(_ direction: Direction, terms: [Term]) {
            self.direction = direction
            self.terms = terms
        }

        /// A goal over one metric.
        public static func maximize(_ metric: String) -> Self { Self(.maximize, terms: [Term(metric: metric)]) }

        /// A goal over one metric, smaller being better.
        public static func minimize(_ metric: String) -> Self { Self(.minimize, terms: [Term(metric: metric)]) }

        /// The metric's name, or the weighted sum written out.
        public var label: String {
            terms.count == 1 && terms[0].weight == 1
                ? terms[0].metric
                : terms.map { "\(ParameterValue.format($0.weight))·\($0.metric)" }.joined(separator: " + ")
        }

        /// The goal's value from a run's metrics, or `nil` when a metric is missing or not finite.
        public func value(_ metrics: [String: Double]) -> Double? {
            var sum = 0.0
            for term in terms {
                guard let value = metrics[term.metric], value.isFinite else { return nil }
                sum += term.weight * value
            }
            return sum
        }

        /// The value as a loss: smaller is better.
        public func loss(_ value: Double) -> Double { direction == .maximize ? -value : value }
    }

    /// The direction of the score.
    public var direction: Direction
    /// The metrics summed (with weights) into the score.
    public var terms: [Term]
    /// Bounds on metrics (service-level objectives).
    public var constraints: [MetricConstraint]
    /// With two or more, the objectives searched together; the first is also the score (``direction`` and
    /// ``terms``). Empty for a study of one objective.
    public var goals: [Goal]

    /// Creates an objective over a weighted sum of metrics.
    public init(_ direction: Direction, terms: [Term], constraints: [MetricConstraint] = []) {
        self.direction = direction
        self.terms = terms
        self.constraints = constraints
        self.goals = []
    }

    /// Creates an objective of several goals (at least two), searched for their Pareto front; the first is also
    /// the score a single-objective strategy or a progress line uses.
    public init(goals: [Goal], constraints: [MetricConstraint] = []) {
        precondition(!goals.isEmpty)
        direction = goals[0].direction
        terms = goals[0].terms
        self.constraints = constraints
        self.goals = goals.count >= 2 ? goals : []
    }

    private enum CodingKeys: String, CodingKey {
        case direction, terms, constraints, goals
    }

    /// Decodes an objective; definitions stored before several objectives existed have no `goals`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        direction = try container.decode(Direction.self, forKey: .direction)
        terms = try container.decode([Term].self, forKey: .terms)
        constraints = try container.decode([MetricConstraint].self, forKey: .constraints)
        goals = try container.decodeIfPresent([Goal].self, forKey: .goals) ?? []
    }

    /// Whether the study searches several objectives at once.
    public var isMultiObjective: Bool { goals.count >= 2 }

    /// The objectives: the goals, or the one score's.
    public var allGoals: [Goal] { isMultiObjective ? goals : [Goal(direction, terms: terms)] }

    /// Each objective's value from a run's metrics, or `nil` when one cannot be computed.
    public func values(_ metrics: [String: Double]) -> [Double]? {
        var values: [Double] = []
        for goal in allGoals {
            guard let value = goal.value(metrics) else { return nil }
            values.append(value)
        }
        return values
    }

    /// Whether objective vector `a` Pareto-dominates `b`: no worse on every objective and better on one.
    public func dominates(_ a: [Double], _ b: [Double]) -> Bool {
        var better = false
        for (goal, (x, y)) in zip(allGoals, zip(a, b)) {
            let (lx, ly) = (goal.loss(x), goal.loss(y))
            if lx > ly { return false }
            if lx < ly { better = true }
        }
        return better
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

    /// The best trial once `trial` has finished: it, if it completed with a better score than `current`. With
    /// several objectives the front moves too: a completed trial that no front member dominates joins it, and
    /// the members it dominates leave. Equal vectors dominate neither way, so ties all stay.
    public func best(_ current: BestTrial?, after trial: Trial) -> BestTrial? {
        guard trial.state == .completed, let score = trial.score else { return current }
        var best =
            current.map {
                isBetter(score, than: $0.score) ? BestTrial(number: trial.number, score: score, front: $0.front) : $0
            } ?? BestTrial(number: trial.number, score: score)
        if isMultiObjective, let values = values(trial.metrics),
            !best.front.contains(where: { $0.number == trial.number || dominates($0.values, values) })
        {
            best.front.removeAll { dominates(values, $0.values) }
            best.front.append(FrontPoint(number: trial.number, values: values))
            let first = goals[0]
            best.front.sort { (first.loss($0.values[0]), $0.number) < (first.loss($1.values[0]), $1.number) }
        }
        return best
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
        // Every objective must be measured, not only the first that makes the score.
        for goal in goals.dropFirst() {
            for term in goal.terms {
                guard let value = metrics[term.metric] else {
                    return .failure(.missingMetric(term.metric, available: metrics.keys.sorted()))
                }
                guard value.isFinite else { return .failure(.nonFiniteMetric(term.metric, value)) }
            }
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

/// Pareto-front arithmetic on objective vectors as losses (smaller is better on every coordinate).
public enum Pareto {
    /// The two-objective hypervolume of `points` against `reference`: the area they dominate inside the box
    /// below the reference, by a sweep along the first objective.
    public static func hypervolume(_ points: [[Double]], reference: [Double]) -> Double {
        precondition(reference.count == 2, "the hypervolume is computed for two objectives")
        let inside = points.filter { $0[0] < reference[0] && $0[1] < reference[1] }.sorted {
            $0[0] < $1[0] || ($0[0] == $1[0] && $0[1] < $1[1])
        }
        var volume = 0.0
        var ceiling = reference[1]
        for point in inside where point[1] < ceiling {
            volume += (reference[0] - point[0]) * (ceiling - point[1])
            ceiling = point[1]
        }
        return volume
    }
}
