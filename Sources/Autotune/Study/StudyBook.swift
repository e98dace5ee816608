public import Foundation

/// The decisions of a study, as a value: which trials start next and with what numbers, the baseline, what a
/// strategy may propose, the budget, what becomes of a finished, interrupted or lost trial, the counts, the best
/// trial, and when the study is over.
///
/// It does no I/O, starts no task and reads no clock: the loop hands it the time and the strategy's proposals,
/// and carries out what it returns (save these trials as running, tell the strategy of this one, put that one
/// back to pending). A study run by one process keeps one book for the whole run; workers sharing a study
/// build one from what they read under the study's lock, so every worker decides the same way.
public struct StudyBook: Sendable {
    /// What the book decides about.
    public let definition: StudyDefinition
    /// The study's trials as a strategy sees them: finished ones and those running or pending.
    public private(set) var history: StudyHistory
    /// Pending trials (re-queued after an interruption or a lost runner), lowest number first, to start before
    /// anything new.
    public private(set) var queue: [Trial]
    /// The number the next new trial gets.
    public private(set) var nextNumber: Int
    /// The best completed trial so far.
    public private(set) var best: BestTrial?
    /// How many trials are in each state.
    public private(set) var counts: [TrialState: Int]
    /// The values of constants known constraints read (`gpus`).
    public let constants: [String: Double]
    /// Each trial's state as the book last saw it, to move the counts when a trial changes elsewhere.
    private var states: [Int: TrialState]

    /// A book of a study whose trials are `trials` (in any state).
    ///
    /// `counts` and `best`, when given, stand for trials the caller did not read.
    public init(
        definition: StudyDefinition,
        trials: [Trial],
        counts: [TrialState: Int]? = nil,
        best: BestTrial? = nil,
        constants: [String: Double] = [:]
    ) {
        self.definition = definition
        self.constants = constants
        self.history = StudyHistory(trials: trials)
        self.queue = trials.filter { $0.state == .pending }.sorted { $0.number < $1.number }
        self.nextNumber = (trials.map(\.number).max() ?? -1) + 1
        self.counts = counts ?? Dictionary(grouping: trials, by: \.state).mapValues(\.count)
        self.best =
            best ?? trials.filter { $0.confirms == nil }.reduce(nil) { definition.objective.best($0, after: $1) }
        self.states = Dictionary(trials.map { ($0.number, $0.state) }, uniquingKeysWith: { _, last in last })
    }

    /// Takes trials whose rows changed outside this book (other workers of a shared study started, finished,
    /// re-queued or took them back), so the book stays whole while reading only what moved. A trial the book
    /// already has in the same finished state is left as it is: a worker reads its own writes back too.
    public mutating func absorb(_ changes: some Sequence<Trial>) {
        for trial in changes {
            let previous = states[trial.number]
            if let previous, previous.isFinished { continue }
            if let previous { counts[previous, default: 0] -= 1 }
            counts[trial.state, default: 0] += 1
            states[trial.number] = trial.state
            if previous == .pending { queue.removeAll { $0.number == trial.number } }
            if trial.state == .pending {
                queue.append(trial)
                queue.sort { $0.number < $1.number }
            }
            history.record(trial)
            nextNumber = max(nextNumber, trial.number + 1)
            if trial.isFinished, trial.confirms == nil { best = definition.objective.best(best, after: trial) }
        }
    }

    // MARK: - Starting trials

    /// What to start in some free slots: trials that exist already (re-queued ones, the baseline) and how
    /// many configurations to ask the strategy for.
    public struct Plan: Sendable, Hashable {
        /// Existing or reserved trials to start, numbered.
        public var trials: [Trial]
        /// How many new configurations the strategy is asked for (0: do not ask).
        public var ask: Int

        /// Creates a plan.
        public init(trials: [Trial], ask: Int) {
            self.trials = trials
            self.ask = ask
        }

        /// Whether the plan starts nothing and asks nothing.
        public var isEmpty: Bool { trials.isEmpty && ask == 0 }
    }

    /// The plan for `room` free slots after `elapsed` running time.
    ///
    /// Nothing new is searched once the time budget is spent. Re-queued trials come first (unless `includeQueued`
    /// is false: workers claim those from the store instead); then, in a study with no trial yet, the baseline as
    /// trial 0; then the strategy is asked for the rest, within what the trial budget leaves, unless it is
    /// exhausted. Once the search is over and its last trial has finished, the confirmation runs
    /// (``ConfirmationPhase``) are what starts, numbered after every trial; the time budget bounds the search, not
    /// them.
    public func plan(room: Int, elapsed: Duration, strategyExhausted: Bool, includeQueued: Bool = true) -> Plan {
        guard room > 0 else { return Plan(trials: [], ask: 0) }
        let searching = !definition.budget.timeIsUp(after: elapsed)
        var trials = includeQueued ? Array(queue.lazy.filter { searching || $0.confirms != nil }.prefix(room)) : []
        var number = nextNumber
        var ask = 0
        if searching {
            if number == 0, trials.count < room, let baseline = definition.baseline {
                trials.append(Trial(number: 0, configuration: baseline))
                number = 1
            }
            let remaining = definition.budget.maxTrials.map { max(0, $0 - number) } ?? .max
            ask = strategyExhausted ? 0 : min(room - trials.count, remaining)
        }
        if ask == 0, trials.count < room {
            trials += confirmations(room: room - trials.count, from: number)
        }
        return Plan(trials: trials, ask: ask)
    }

    /// The confirmation runs to start in `room` slots, numbered from `number`: none until no trial of the
    /// search is pending or running anywhere, since until then the best configurations are not known.
    private func confirmations(room: Int, from number: Int) -> [Trial] {
        guard let confirm = definition.confirm, history.running.values.allSatisfy({ $0.confirms != nil }) else {
            return []
        }
        let trials = history.finished + history.running.values
        let baseline = definition.baseline == nil ? nil : 0
        return confirm.missing(in: trials, objective: definition.objective, baseline: baseline).prefix(room)
            .enumerated().map {
                var trial = Trial(number: number + $0, configuration: $1.configuration)
                trial.confirms = $1.target
                return trial
            }
    }

    /// Starts `plan` at `now`: checks the strategy's `proposals` against its contract, numbers them after every
    /// trial of the study, and marks every trial of the plan running (attempt + 1), as the store must save them.
    ///
    /// A proposal outside the space, the configuration of a running trial, more proposals than asked for, or,
    /// in a finite space, a configuration the study already has (it could only waste a trial) breaks the
    /// contract: ``AutotuneError`` names the strategy and the proposal, and the book is unchanged.
    public mutating func start(_ plan: Plan, proposals: [Configuration], at now: Date) throws(AutotuneError)
        -> [Trial]
    {
        let admitted = try admit(proposals, asked: plan.ask, besides: plan.trials)
        var number = max(nextNumber, (plan.trials.map(\.number).max() ?? -1) + 1)
        var starting = plan.trials
        for configuration in admitted {
            starting.append(Trial(number: number, configuration: configuration))
            number += 1
        }
        nextNumber = number
        let planned = Set(plan.trials.map(\.number))
        let queued = Set(queue.lazy.map(\.number).filter { planned.contains($0) })
        queue.removeAll { queued.contains($0.number) }
        for index in starting.indices {
            if queued.contains(starting[index].number) { counts[.pending, default: 0] -= 1 }
            starting[index].state = .running
            starting[index].attempt += 1
            starting[index].startedAt = now
            starting[index].finishedAt = nil
            starting[index].error = nil
            counts[.running, default: 0] += 1
            states[starting[index].number] = .running
            history.record(starting[index])
        }
        return starting
    }

    private func admit(_ proposals: [Configuration], asked: Int, besides planned: [Trial]) throws(AutotuneError)
        -> [Configuration]
    {
        let name = definition.strategy.name
        guard proposals.count <= asked else {
            throw AutotuneError(
                .tooManyProposals,
                "strategy '\(name)' returned \(proposals.count) configurations for an ask of \(asked)")
        }
        let finite = definition.space.cardinality != nil
        var admitted: [Configuration] = []
        for proposal in proposals {
            let configuration: Configuration
            do {
                configuration = try definition.space.coerce(proposal.values)
            } catch {
                throw AutotuneError(
                    .invalidProposal, "strategy '\(name)' proposed an invalid configuration: \(error)")
            }
            if let broken = definition.space.brokenConstraint(configuration, constants: constants) {
                throw AutotuneError(
                    .infeasibleProposal,
                    "strategy '\(name)' proposed a configuration that breaks the constraint '\(broken)': \(configuration.summary(in: definition.space))"
                )
            }
            if let twin = history.running.values.first(where: { $0.configuration == configuration }) {
                throw AutotuneError(
                    .runningProposal, "strategy '\(name)' proposed the configuration of running trial \(twin.number)")
            }
            if finite,
                history.contains(configuration) || planned.contains(where: { $0.configuration == configuration })
                    || admitted.contains(configuration)
            {
                throw AutotuneError(
                    .repeatedProposal,
                    "strategy '\(name)' proposed a configuration the study already has: \(configuration.summary(in: definition.space))"
                )
            }
            admitted.append(configuration)
        }
        return admitted
    }

    // MARK: - Ending trials

    /// What becomes of a trial whose experiment ended.
    public enum Outcome: Sendable, Hashable {
        /// It ran to a result (completed, failed, pruned): tell the strategy, then save it with the checkpoint and
        /// ``StudyBook/best`` in one write.
        case record(Trial)
        /// It was interrupted, or lost and re-queued: save it as pending, untold; it runs again (attempt + 1).
        case requeue(Trial)
    }

    /// Takes a trial whose experiment ended: an interrupted one goes back to pending, unseen by the strategy;
    /// any other is finished, counted, and may become the best.
    public mutating func finish(_ trial: Trial) -> Outcome {
        var trial = trial
        counts[.running, default: 0] -= 1
        if trial.error?.stage == .interrupted {
            trial.returnToPending()
            return requeue(trial)
        }
        counts[trial.state, default: 0] += 1
        states[trial.number] = trial.state
        history.record(trial)
        // A confirmation run re-measures a configuration the search already ranked; ``ConfirmationPhase`` ranks
        // the repeats, and one lucky repeat must not become the study's best.
        if trial.confirms == nil { best = definition.objective.best(best, after: trial) }
        return .record(trial)
    }

    /// Takes a trial whose runner died while it ran (`reason` says how that was found): as the study's
    /// ``LostTrialPolicy`` says, it is re-queued for another attempt, or failed at stage `lost`.
    public mutating func lose(_ trial: Trial, reason: String, at now: Date) -> Outcome {
        var trial = trial
        switch definition.lostTrials {
        case .requeue:
            counts[.running, default: 0] -= 1
            trial.returnToPending()
            return requeue(trial)
        case .fail:
            trial.state = .failed
            trial.finishedAt = now
            trial.error = TrialError(stage: .lost, message: "\(reason) (attempt \(trial.attempt))")
            return finish(trial)
        }
    }

    /// Takes every trial recorded as running, whose runner is known to be gone (a resume after a crash).
    public mutating func loseRunning(reason: String, at now: Date) -> [Outcome] {
        var outcomes: [Outcome] = []
        for trial in history.runningTrials where trial.state == .running {
            outcomes.append(lose(trial, reason: reason, at: now))
        }
        return outcomes
    }

    private mutating func requeue(_ trial: Trial) -> Outcome {
        counts[.pending, default: 0] += 1
        states[trial.number] = .pending
        history.record(trial)
        queue.append(trial)
        queue.sort { $0.number < $1.number }
        return .requeue(trial)
    }

    // MARK: - Progress

    /// Trials that are pending or running.
    public var unfinishedCount: Int { (counts[.pending] ?? 0) + (counts[.running] ?? 0) }

    /// Trials that reached a final state.
    public var finishedCount: Int { counts.filter { $0.key.isFinished }.map(\.value).reduce(0, +) }

    /// Why the study should give up, or `nil`: no trial of it has completed, and its last ``StudyDefinition/failFast``
    /// finished trials all failed at the same stage with the same message (a program that is not installed, a
    /// flag the engine refuses, a metric nobody reports), so the rest of the budget would fail the same way.
    public var failFastReason: String? {
        guard let limit = definition.failFast, (counts[.completed] ?? 0) == 0, history.finished.count >= limit else {
            return nil
        }
        let last = history.finished.suffix(limit).map { $0.error?.summary }
        guard let first = last.first, let reason = first, last.allSatisfy({ $0 == reason }) else { return nil }
        return "the last \(limit) trials all failed the same way: \(reason)"
    }

    /// Whether the study is over once a plan started nothing: no trial is pending or running anywhere, so
    /// nothing can change the strategy's mind or come back.
    public func isDone(afterStarting started: Int) -> Bool {
        started == 0 && unfinishedCount == 0
    }

    /// The number of trials the study will have when done, when known: the trial budget, or what the strategy
    /// can ever propose (a grid's size), whichever is smaller.
    ///
    /// The confirmation runs are counted in: `repeats` for each of the `top` best, or of all the search's trials
    /// when there are fewer.
    public func expectedCount(strategyTotal: Int?) -> Int? {
        let search: Int? =
            switch (definition.budget.maxTrials, strategyTotal) {
            case (let trials?, let points?): min(trials, points)
            case (let trials?, nil): trials
            case (nil, let points?): points
            case (nil, nil): nil
            }
        guard let search, let confirm = definition.confirm else { return search }
        // The baseline is re-measured as often (counted apart even when it is among the best: a bound, not exact).
        return search + (min(confirm.top, search) + (definition.baseline == nil ? 0 : 1)) * confirm.repeats
    }
}
