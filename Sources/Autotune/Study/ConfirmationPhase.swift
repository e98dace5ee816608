/// Re-measuring the best configurations once the search is over, so that a configuration that won on one lucky
/// measurement is not what gets deployed (`confirm: {top: 3, repeats: 3}`).
///
/// When the search has spent its budget and its last trial has finished, the study starts `repeats` new trials
/// for each of its `top` best completed trials, with the same configuration. They run like any trial (in
/// parallel, on the pool, recorded and resumed), but no strategy is told of them and they never become the
/// study's best: ``ConfirmedResult`` ranks the configurations by what the repeats measured. A study with a
/// baseline has it re-measured as often, so the gain over it compares like with like (``StudyResult``).
///
/// The noise of a measurement is estimated from the repeats themselves, pooled over every re-measured
/// configuration (and the baseline, whose first measurement is an unbiased one too); a configuration's search
/// score, the one that won it its place, is left out of that estimate, since it was picked for being high.
public struct ConfirmationPhase: Sendable, Hashable, Codable {
    /// Which figure of the repeats ranks the configurations.
    public enum Ranking: String, Sendable, Hashable, Codable, CaseIterable {
        /// The mean score of the repeats.
        case mean
        /// The worst score of the repeats.
        case worst
        /// The pessimistic 95% confidence bound on the mean (lower when maximising): a configuration that is
        /// good on average but noisy ranks below a steady one as good.
        case lcb
    }

    /// How many of the search's best configurations are re-measured.
    public var top: Int
    /// How many times each is re-measured.
    public var repeats: Int
    /// What ranks them.
    public var rankBy: Ranking

    /// The most `top` or `repeats` a task file may ask for.
    public static let limit = 100

    /// Creates a confirmation phase.
    public init(top: Int = 3, repeats: Int = 3, rankBy: Ranking = .mean) {
        self.top = top
        self.repeats = repeats
        self.rankBy = rankBy
    }

    /// The search trials to re-measure: the `top` best completed ones, best first (ties to the lower number),
    /// confirmation trials aside.
    public func targets(of trials: some Sequence<Trial>, objective: Objective) -> [Trial] {
        let completed = trials.filter { $0.confirms == nil && $0.state == .completed && $0.score?.isFinite == true }
        let ranked = completed.sorted { a, b in
            a.score! == b.score! ? a.number < b.number : objective.isBetter(a.score!, than: b.score!)
        }
        return Array(ranked.prefix(top))
    }

    /// The confirmation trials still to create for `trials`: for each target, `repeats` minus those it has
    /// (in any state), in target order, then the same for the `baseline` trial (0) when the study has one that
    /// completed, as the configuration and the number of the trial it re-measures.
    public func missing(in trials: some Sequence<Trial>, objective: Objective, baseline: Int? = nil) -> [(
        configuration: Configuration, target: Int
    )] {
        let all = Array(trials)
        var had: [Int: Int] = [:]
        for trial in all { if let target = trial.confirms { had[target, default: 0] += 1 } }
        var targets = self.targets(of: all, objective: objective)
        if let baseline, !targets.contains(where: { $0.number == baseline }),
            let trial = all.first(where: { $0.number == baseline && $0.confirms == nil }), trial.state == .completed
        {
            targets.append(trial)
        }
        return targets.flatMap { target in
            Array(
                repeating: (configuration: target.configuration, target: target.number),
                count: max(0, repeats - (had[target.number] ?? 0)))
        }
    }

    /// Every score measured of the configuration of trial `number` apart from the search's pick: its repeats',
    /// and for the baseline its own first measurement too (it was not chosen for being high).
    public static func measurements(of number: Int, in trials: [Trial], baseline: Int?) -> [Double] {
        let repeats = trials.filter { $0.confirms == number && $0.state == .completed }.compactMap(\.score)
            .filter(\.isFinite)
        guard number == baseline, let first = trials.first(where: { $0.number == number && $0.confirms == nil }),
            first.state == .completed, let score = first.score, score.isFinite
        else { return repeats }
        return [score] + repeats
    }

    /// The confirmed ranking of `trials`' best configurations, best first, or empty when no confirmation trial
    /// exists yet.
    ///
    /// A configuration with a repeat that failed ranks after every one whose repeats all completed: it did not
    /// hold up, whatever its mean. Among equals, the figure `rankBy` names decides, then the search's score.
    ///
    /// The repeats of the `baseline` are left out of the ranking unless it is among the best, but they inform
    /// the noise estimate.
    public func ranking(of trials: some Sequence<Trial>, objective: Objective, baseline: Int? = nil)
        -> [ConfirmedResult]
    {
        let all = Array(trials)
        let repeatsByTarget = Dictionary(grouping: all.filter { $0.confirms != nil }, by: { $0.confirms! })
        guard !repeatsByTarget.isEmpty else { return [] }
        let byNumber = Dictionary(all.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
        let searchOrder = targets(of: all, objective: objective).map(\.number)
        // Targets that have repeats, in the search's order; a target that fell out of the top (it cannot, once
        // the search is over, but a store edited by hand could) keeps its repeats ranked too. The baseline's
        // repeats only measure the baseline.
        let numbers =
            searchOrder.filter { repeatsByTarget[$0] != nil }
            + repeatsByTarget.keys.filter { !searchOrder.contains($0) && $0 != baseline }.sorted()
        let noise = Noise.pooled(
            repeatsByTarget.keys.map { Self.measurements(of: $0, in: all, baseline: baseline) })
        var results: [ConfirmedResult] = []
        for (index, number) in numbers.enumerated() {
            guard let original = byNumber[number], let searchScore = original.score else { continue }
            let runs = repeatsByTarget[number] ?? []
            let scores = runs.filter { $0.state == .completed }.compactMap(\.score).filter(\.isFinite)
            let failures = runs.filter { $0.isFinished && !($0.state == .completed && $0.score?.isFinite == true) }
            results.append(
                ConfirmedResult(
                    trial: number, searchScore: searchScore, searchRank: index + 1,
                    repeats: runs.map(\.number).sorted(),
                    scores: scores, failures: failures.count, unfinished: runs.count(where: { !$0.isFinished }),
                    objective: objective, noise: noise))
        }
        let figure = { (result: ConfirmedResult) -> Double? in
            switch rankBy {
            case .mean: result.mean
            case .worst: result.worst
            case .lcb: result.bound
            }
        }
        let sorted = results.sorted { a, b in
            if (a.failures == 0) != (b.failures == 0) { return a.failures == 0 }
            let x = figure(a)
            let y = figure(b)
            switch (x, y) {
            case (let x?, let y?) where x != y: return objective.isBetter(x, than: y)
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.searchRank < b.searchRank
            }
        }
        return sorted.enumerated().map { index, result in
            var result = result
            result.rank = index + 1
            return result
        }
    }
}

extension ConfirmationPhase {
    /// The confirmed best of a ranking: its first configuration at its repeats' mean (their worst when ranked by
    /// the worst), at its search score while no repeat has completed; `nil` for an empty ranking.
    public func best(of ranking: [ConfirmedResult]) -> BestTrial? {
        guard let winner = ranking.first else { return nil }
        return BestTrial(
            number: winner.trial, score: (rankBy == .worst ? winner.worst : winner.mean) ?? winner.searchScore)
    }
}

/// One re-measured configuration: what the search measured and what its repeats did.
public struct ConfirmedResult: Sendable, Hashable, Codable {
    /// The search trial whose configuration was re-measured.
    public var trial: Int
    /// Its score in the search.
    public var searchScore: Double
    /// Its place in the search's ranking, from 1.
    public var searchRank: Int
    /// Its place once confirmed, from 1.
    public var rank: Int
    /// The confirmation trials' numbers.
    public var repeats: [Int]
    /// The scores of the repeats that completed.
    public var scores: [Double]
    /// Repeats that failed (crashed, or broke a hard constraint).
    public var failures: Int
    /// Repeats not finished yet.
    public var unfinished: Int
    /// The mean of `scores`.
    public var mean: Double?
    /// The sample standard deviation of `scores` (0 for one).
    public var spread: Double?
    /// The worst of `scores`, in the objective's direction.
    public var worst: Double?
    /// The pessimistic end of the 95% one-sided confidence interval of the mean (below it when maximising): the
    /// mean minus Student's t times the standard error, the standard deviation being this configuration's own
    /// shrunk towards the pooled noise.
    public var bound: Double?
    /// The noise of one measurement, pooled over every re-measured configuration; `nil` while no configuration
    /// has two measurements.
    public var noise: Double?
    /// Whether the repeats confirmed the search's score (see ``heldUp(objective:)``); `nil` before any finished.
    public var verdict: Bool?

    /// Creates a result and its figures; `noise` is the pooled noise of the phase.
    public init(
        trial: Int, searchScore: Double, searchRank: Int, repeats: [Int], scores: [Double], failures: Int,
        unfinished: Int, objective: Objective, noise: (sd: Double, degreesOfFreedom: Double)? = nil
    ) {
        self.trial = trial
        self.searchScore = searchScore
        self.searchRank = searchRank
        self.rank = searchRank
        self.repeats = repeats
        self.scores = scores
        self.failures = failures
        self.unfinished = unfinished
        self.noise = noise?.sd
        if failures > 0 { verdict = false }
        guard !scores.isEmpty else { return }
        let mean = scores.reduce(0, +) / Double(scores.count)
        self.mean = mean
        spread =
            scores.count > 1
            ? (scores.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(scores.count - 1)).squareRoot() : 0
        worst = scores.reduce(scores[0]) { objective.isBetter($1, than: $0) ? $0 : $1 }
        let n = Double(scores.count)
        let sign = objective.direction == .maximize ? -1.0 : 1.0
        if let own = Noise.shrunk(scores, pooled: noise) {
            let df = n - 1 + (noise == nil ? 0 : 2)
            bound = mean + sign * Noise.t95(degreesOfFreedom: df) * own / n.squareRoot()
        }
        guard failures == 0 else { return }
        // If the configuration is as good as its search score said, that score minus the repeats' mean is noise
        // with a standard deviation of σ√(1 + 1/n): it held up unless the shortfall is past the 95% quantile.
        // Without two measurements of any configuration there is no σ: a shortfall of 5% fails.
        let shortfall = objective.direction == .maximize ? searchScore - mean : mean - searchScore
        if let noise {
            let sd = max(noise.sd, 0.005 * abs(searchScore))
            verdict = shortfall <= Noise.t95(degreesOfFreedom: noise.degreesOfFreedom) * sd * (1 + 1 / n).squareRoot()
        } else {
            verdict = shortfall <= 0.05 * abs(searchScore)
        }
    }

    /// Whether the repeats confirmed the search's score: every repeat completed, and the search score is above
    /// the repeats' mean by no more than the noise allows — the 95% quantile of Student's t (the pooled degrees of
    /// freedom) times σ√(1 + 1/n), σ the noise pooled over every re-measured configuration (at least 0.5% of the
    /// score). A configuration's own spread does not widen its allowance, so a noisy one is not favoured.
    public func heldUp(objective: Objective) -> Bool { verdict ?? false }
}
