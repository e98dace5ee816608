import Autotune
import Foundation
import Testing

/// Every decision of the study book, without a loop, a store or a clock.
@Suite struct StudyBookTests {
    private let now = Date(timeIntervalSince1970: 1_000)

    private func definition(
        maxTrials: Int? = 10,
        maxTime: Duration? = nil,
        baseline: Configuration? = nil,
        lost: LostTrialPolicy = .requeue,
        finite: Bool = true,
        confirm: ConfirmationPhase? = nil
    ) throws -> StudyDefinition {
        StudyDefinition(
            name: "book",
            space: try SearchSpace([
                finite ? Parameter("x", .int(lower: 0, upper: 99)) : Parameter("x", .float(lower: 0, upper: 1))
            ]),
            objective: .maximize("y"),
            strategy: StrategySpec(name: "test"),
            budget: Budget(maxTrials: maxTrials, maxTime: maxTime),
            experiment: .command(CommandSpec(command: [Template("true")])),
            lostTrials: lost,
            baseline: baseline,
            confirm: confirm
        )
    }

    private func x(_ value: Int) -> Configuration { Configuration(["x": .int(value)]) }

    private func trial(_ number: Int, _ state: TrialState, x value: Int? = nil, score: Double? = nil) -> Trial {
        var trial = Trial(number: number, configuration: x(value ?? number))
        trial.state = state
        trial.score = score
        trial.attempt = state == .pending ? 0 : 1
        return trial
    }

    private func completed(_ trial: Trial, score: Double) -> Trial {
        var trial = trial
        trial.state = .completed
        trial.score = score
        return trial
    }

    @Test func newTrialsAreNumberedAfterEveryTrialOfTheStudyAndStartRunning() throws {
        var book = StudyBook(
            definition: try definition(),
            trials: [trial(0, .completed, score: 1), trial(4, .failed)])
        let plan = book.plan(room: 2, elapsed: .zero, strategyExhausted: false)
        #expect(plan == StudyBook.Plan(trials: [], ask: 2))
        let started = try book.start(plan, proposals: [x(10), x(11)], at: now)
        #expect(started.map(\.number) == [5, 6])
        #expect(started.allSatisfy { $0.state == .running && $0.attempt == 1 && $0.startedAt == now })
        #expect(book.nextNumber == 7)
        #expect(book.counts[.running] == 2)
        #expect(book.history.running.count == 2)
    }

    @Test func theBaselineIsTrialZeroOfAnEmptyStudyAndCountsTowardsTheBudget() throws {
        let baseline = x(50)
        var book = StudyBook(definition: try definition(maxTrials: 3, baseline: baseline), trials: [])
        let plan = book.plan(room: 4, elapsed: .zero, strategyExhausted: false)
        #expect(plan.trials.map(\.number) == [0])
        #expect(plan.trials.first?.configuration == baseline)
        #expect(plan.ask == 2)
        let started = try book.start(plan, proposals: [x(1), x(2)], at: now)
        #expect(started.map(\.number) == [0, 1, 2])
        #expect(book.plan(room: 4, elapsed: .zero, strategyExhausted: false).isEmpty)

        // A study that has trials already never gets the baseline again.
        let later = StudyBook(definition: try definition(baseline: baseline), trials: [trial(0, .completed)])
        #expect(later.plan(room: 2, elapsed: .zero, strategyExhausted: false).trials.isEmpty)
    }

    @Test func theTrialBudgetBoundsTheAskAndTheTimeBudgetStopsEverything() throws {
        let trials = (0..<8).map { trial($0, .completed, score: 1) }
        let book = StudyBook(definition: try definition(maxTrials: 10, maxTime: .seconds(60)), trials: trials)
        #expect(book.plan(room: 4, elapsed: .seconds(59), strategyExhausted: false).ask == 2)
        #expect(book.plan(room: 4, elapsed: .seconds(60), strategyExhausted: false).isEmpty)
        #expect(book.plan(room: 4, elapsed: .zero, strategyExhausted: true).isEmpty)
        #expect(book.plan(room: 0, elapsed: .zero, strategyExhausted: false).isEmpty)
    }

    @Test func requeuedTrialsStartFirstAtTheirNextAttemptUnlessWorkersClaimThem() throws {
        var pending = trial(2, .pending)
        pending.attempt = 1
        var book = StudyBook(definition: try definition(), trials: [trial(0, .completed), trial(1, .running), pending])
        #expect(book.queue.map(\.number) == [2])
        #expect(book.plan(room: 3, elapsed: .zero, strategyExhausted: false, includeQueued: false).trials.isEmpty)
        let plan = book.plan(room: 3, elapsed: .zero, strategyExhausted: false)
        #expect(plan.trials.map(\.number) == [2])
        #expect(plan.ask == 2)
        let started = try book.start(plan, proposals: [x(7)], at: now)
        #expect(started.map(\.number) == [2, 3])
        #expect(started[0].attempt == 2)
        #expect(book.queue.isEmpty)
        #expect(book.counts[.pending] == 0)
        #expect(book.counts[.running] == 3)
    }

    @Test(arguments: [
        (
            [Configuration(["x": .int(1)]), Configuration(["x": .int(2)]), Configuration(["x": .int(3)])],
            "for an ask of 2"
        ),
        ([Configuration(["x": .int(500)])], "invalid configuration"),
        ([Configuration(["x": .int(1)])], "running trial 1"),
        ([Configuration(["x": .int(0)])], "the study already has"),
        ([Configuration(["x": .int(5)]), Configuration(["x": .int(5)])], "the study already has"),
    ])
    func proposalsThatBreakTheContractAreRefusedAndChangeNothing(proposals: [Configuration], message: String) throws {
        var book = StudyBook(definition: try definition(), trials: [trial(0, .completed), trial(1, .running)])
        let before = book.nextNumber
        let plan = book.plan(room: 2, elapsed: .zero, strategyExhausted: false)
        let error = #expect(throws: AutotuneError.self) { try book.start(plan, proposals: proposals, at: now) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("strategy 'test'") == true)
        #expect(book.nextNumber == before)
        #expect(book.counts[.running] == 1)
    }

    @Test func aRepeatIsALegitimateReMeasurementInAContinuousSpace() throws {
        let done = Trial(number: 0, configuration: Configuration(["x": .double(0.5)]))
        var book = StudyBook(definition: try definition(finite: false), trials: [completed(done, score: 1)])
        let plan = book.plan(room: 1, elapsed: .zero, strategyExhausted: false)
        #expect(try book.start(plan, proposals: [done.configuration], at: now).map(\.number) == [1])
    }

    @Test func finishedTrialsAreCountedAndTheBestFollowsTheObjective() throws {
        var book = StudyBook(definition: try definition(), trials: [trial(0, .running), trial(1, .running)])
        #expect(
            book.finish(completed(trial(0, .running), score: 3)) == .record(completed(trial(0, .running), score: 3)))
        #expect(book.best == BestTrial(number: 0, score: 3))
        var failed = trial(1, .failed)
        failed.error = TrialError(stage: .run, message: "exit status 1")
        _ = book.finish(failed)
        #expect(book.best == BestTrial(number: 0, score: 3))
        #expect(book.counts == [.running: 0, .completed: 1, .failed: 1])
        #expect(book.finishedCount == 2)
        #expect(book.unfinishedCount == 0)
    }

    @Test func anInterruptedTrialGoesBackToPendingUntold() throws {
        var book = StudyBook(definition: try definition(), trials: [trial(0, .running)])
        var interrupted = trial(0, .running)
        interrupted.error = TrialError(stage: .interrupted, message: "stopped before it finished")
        interrupted.finishedAt = now
        guard case .requeue(let pending) = book.finish(interrupted) else {
            Issue.record("an interrupted trial was recorded")
            return
        }
        #expect(pending.state == .pending && pending.error == nil && pending.finishedAt == nil)
        #expect(book.queue.map(\.number) == [0])
        #expect(book.finishedCount == 0)
        #expect(book.counts[.pending] == 1)
    }

    @Test(arguments: [LostTrialPolicy.requeue, .fail])
    func aLostTrialIsRequeuedOrFailedAsTheStudySays(policy: LostTrialPolicy) throws {
        var book = StudyBook(
            definition: try definition(lost: policy), trials: [trial(0, .completed, score: 1), trial(1, .running)])
        let outcomes = book.loseRunning(reason: "the runner stopped while this trial was running", at: now)
        #expect(outcomes.count == 1)
        switch (policy, outcomes.first) {
        case (.requeue, .requeue(let trial)?):
            #expect(trial.number == 1 && trial.state == .pending && trial.attempt == 1)
            #expect(book.queue.map(\.number) == [1])
            let restarted = try book.start(
                book.plan(room: 1, elapsed: .zero, strategyExhausted: true), proposals: [], at: now)
            #expect(restarted.map(\.attempt) == [2])
        case (.fail, .record(let trial)?):
            #expect(trial.state == .failed && trial.error?.stage == .lost && trial.finishedAt == now)
            #expect(trial.error?.message == "the runner stopped while this trial was running (attempt 1)")
            #expect(book.counts[.failed] == 1)
            #expect(book.queue.isEmpty)
        default:
            Issue.record("policy \(policy) gave \(outcomes)")
        }
    }

    @Test func theStudyIsDoneOnlyWhenNothingIsUnfinishedAndNothingStarted() throws {
        var book = StudyBook(
            definition: try definition(maxTrials: 2), trials: [trial(0, .completed), trial(1, .running)])
        #expect(!book.isDone(afterStarting: 0))
        _ = book.finish(completed(trial(1, .running), score: 2))
        #expect(book.plan(room: 1, elapsed: .zero, strategyExhausted: false).isEmpty)
        #expect(book.isDone(afterStarting: 0))
        #expect(!book.isDone(afterStarting: 1))
    }

    @Test func theExpectedSizeIsTheSmallerOfTheBudgetAndWhatTheStrategyCanPropose() throws {
        let book = StudyBook(definition: try definition(maxTrials: 10), trials: [])
        #expect(book.expectedCount(strategyTotal: 12) == 10)
        #expect(book.expectedCount(strategyTotal: 6) == 6)
        #expect(book.expectedCount(strategyTotal: nil) == 10)
        #expect(
            StudyBook(definition: try definition(maxTrials: nil), trials: []).expectedCount(strategyTotal: nil) == nil)
    }

    @Test func countsAndTheBestGivenByTheCallerStandForTrialsItDidNotRead() throws {
        var book = StudyBook(
            definition: try definition(), trials: [], counts: [.running: 3, .completed: 5],
            best: BestTrial(number: 2, score: 9))
        _ = book.finish(completed(trial(7, .running), score: 10))
        #expect(book.counts == [.running: 2, .completed: 6])
        #expect(book.best == BestTrial(number: 7, score: 10))
    }
    /// ConfirmationPhase runs start only once the search is over and its last trial finished: the top configurations,
    /// `repeats` each, numbered after every trial, never the study's best, and counted in the expected size.
    @Test func confirmationRunsFollowTheSearchAndNeverBecomeTheBest() throws {
        let definition = try definition(maxTrials: 4, confirm: ConfirmationPhase(top: 2, repeats: 2))
        #expect(StudyBook(definition: definition, trials: []).expectedCount(strategyTotal: nil) == 8)
        let scores: [Double] = [5, 9, 7, 1]
        var book = StudyBook(
            definition: definition,
            trials: (0..<3).map { trial($0, .completed, score: scores[$0]) } + [trial(3, .running)])
        // The budget is spent but trial 3 still runs: its score may change the top.
        #expect(book.plan(room: 3, elapsed: .zero, strategyExhausted: false).isEmpty)
        _ = book.finish(completed(book.history.running[3]!, score: scores[3]))
        let plan = book.plan(room: 3, elapsed: .zero, strategyExhausted: false)
        #expect(plan.ask == 0)
        #expect(plan.trials.map(\.number) == [4, 5, 6])
        #expect(plan.trials.map(\.confirms) == [1, 1, 2])
        #expect(plan.trials.map(\.configuration) == [x(1), x(1), x(2)])
        let started = try book.start(plan, proposals: [], at: now)
        #expect(book.plan(room: 3, elapsed: .zero, strategyExhausted: false).trials.map(\.confirms) == [2])
        #expect(!book.isDone(afterStarting: 0))
        // A lucky repeat does not move the study's best; the confirmed ranking reads the repeats.
        for (trial, score) in zip(started, [3.0, 4, 8]) { _ = book.finish(completed(trial, score: score)) }
        #expect(book.best?.number == 1 && book.best?.score == 9)
        let last = try book.start(book.plan(room: 3, elapsed: .zero, strategyExhausted: false), proposals: [], at: now)
        #expect(last.map(\.number) == [7])
        _ = book.finish(completed(last[0], score: 6))
        #expect(book.plan(room: 3, elapsed: .zero, strategyExhausted: false).isEmpty)
        #expect(book.isDone(afterStarting: 0))
        let trials = book.history.finished
        let ranking = definition.confirm!.ranking(of: trials, objective: definition.objective)
        #expect(ranking.map(\.trial) == [2, 1], "trial 2's repeats (8, 6) beat trial 1's (3, 4)")
        #expect(ranking.map(\.searchRank) == [2, 1])
        #expect(ranking[1].mean == 3.5 && ranking[1].worst == 3 && !ranking[1].heldUp(objective: definition.objective))
        #expect(ranking[0].heldUp(objective: definition.objective))
        var worst = definition.confirm!
        worst.rankBy = .worst
        #expect(worst.best(of: worst.ranking(of: trials, objective: definition.objective))?.score == 6)
    }

    /// A study whose time ran out still confirms what it found, and a resumed one creates only the repeats it
    /// lacks; a configuration with a failed repeat ranks after those whose repeats all completed.
    @Test func confirmationOutlivesTheTimeBudgetAndResumesWhereItStopped() throws {
        let definition = try definition(
            maxTrials: nil, maxTime: .seconds(10), confirm: ConfirmationPhase(top: 2, repeats: 2))
        var repeated = trial(3, .failed, x: 0)
        repeated.confirms = 0
        var pending = trial(4, .pending, x: 0)
        pending.confirms = 0
        let book = StudyBook(
            definition: definition,
            trials: [
                trial(0, .completed, score: 9), trial(1, .completed, score: 8), trial(2, .failed), repeated, pending,
            ])
        let plan = book.plan(room: 4, elapsed: .seconds(60), strategyExhausted: false)
        #expect(plan.ask == 0)
        #expect(plan.trials.map(\.number) == [4, 5, 6], "the re-queued repeat first, then trial 1's two")
        #expect(plan.trials.map(\.confirms) == [0, 1, 1])
        var one = trial(5, .completed, x: 1, score: 2)
        one.confirms = 1
        var done = pending
        done.state = .completed
        done.score = 20
        let ranking = definition.confirm!.ranking(
            of: [trial(0, .completed, score: 9), trial(1, .completed, score: 8), repeated, done, one],
            objective: definition.objective)
        #expect(ranking.map(\.trial) == [1, 0], "trial 0 had a repeat fail, whatever its mean")
        #expect(ranking[1].failures == 1 && ranking[1].mean == 20)
    }
}
