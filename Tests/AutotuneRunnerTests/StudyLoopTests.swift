import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTesting
import Foundation
import Synchronization
import Testing

@Suite(.serialized, .timeLimit(.minutes(5))) struct StudyLoopTests {
    @Test func aTwelvePointGridWithParallelFourEndsWithTwelveDistinctCompletedTrials() async throws {
        try await withTestStudy(
            definition(
                space: gridSpace(), command: ["echo", #"{{"score": {level}, "long": {long}, "mode": "{mode}"}}"#])
        ) { study in
            let outcome = try await study.run()
            #expect(outcome.status == .completed)
            let trials = try await study.trials()
            #expect(trials.count == 12)
            #expect(trials.allSatisfy { $0.state == .completed && $0.attempt == 1 })
            #expect(Set(trials.map(\.configuration)).count == 12)
            #expect(trials.allSatisfy { $0.score == $0.configuration["level"]?.numericValue })
            #expect(trials.allSatisfy { ($0.metrics["wall_time"] ?? -1) >= 0 })
            #expect(outcome.best?.score == 3)
            let reloaded = try await study.stored()
            #expect(reloaded.status == .completed)
            #expect(reloaded.best == outcome.best)
            #expect(reloaded.runner == nil)
            let log = study.trialDirectory(0).appendingPathComponent("stdout.log")
            #expect(try String(contentsOf: log, encoding: .utf8).hasPrefix(#"{"score": "#))
        }
    }

    @Test func slotsRefillAsSoonAsOneFrees() async throws {
        let counter = Counter()
        let order = Counter()
        // Trial 0 holds its slot until the eleven others have finished: they can only finish if the three other
        // slots keep turning over while it runs (a loop that waited for a whole batch would never open it).
        let othersDone = StrategyLaneTests.Gate()
        let experiment = AsyncExperiment { trial in
            if trial.number == 0 {
                #expect(await othersDone.wait(), "the other trials did not finish while trial 0 held its slot")
            }
            return ExperimentResult(metrics: ["score": Double(trial.number)])
        }
        let tracking = TrackingExperiment(inner: experiment, counter: counter, finished: order)
        // The gate opens once the eleven others are in the finish order, not when the eleventh's body ends: trial 0
        // could then be recorded before it (one run in CI's suite saw 11 last).
        let gated = AsyncContextExperiment { context in
            let result = try await tracking.run(context)
            if tracking.finishOrder.count == 11 { othersDone.open() }
            return result
        }
        try await withTestStudy(definition(space: gridSpace(), parallel: 4)) { study in
            _ = try await study.run(experiment: gated)
        }
        #expect((2...4).contains(counter.peak), "trial 0 and others at once, never more than 4")
        #expect(tracking.finishOrder.last == 0)
        #expect(tracking.finishOrder.count == 12)
    }

    @Test func failingExperimentsBecomeFailedTrialsAndTheStudyGoesOn() async throws {
        let script = """
            case {level}-{mode} in
              2-a) echo 'bad things' >&2; exit 3 ;;
              3-a) echo 'no metrics here' ;;
              3-b) kill -9 $$ ;;
              *) echo '{{"score": {level}}}' ;;
            esac
            """
        let (outcome, trials) = try await withTestStudy(
            definition(space: gridSpace(), command: ["/bin/sh", "-c", script])
        ) {
            study in (try await study.run(), try await study.trials())
        }
        #expect(outcome.status == .completed)
        #expect(trials.count == 12)
        func matching(level: Int, mode: String) -> [Trial] {
            trials.filter { $0.configuration["level"] == .int(level) && $0.configuration["mode"] == .string(mode) }
        }
        for trial in matching(level: 2, mode: "a") {
            #expect(trial.state == .failed)
            #expect(trial.error?.stage == .run)
            #expect(trial.error?.message.hasPrefix("exit status 3") == true)
            #expect(trial.error?.message.contains("bad things") == true)
        }
        for trial in matching(level: 3, mode: "a") {
            #expect(trial.error?.stage == .objective)
            #expect(
                trial.error?.message
                    == "metric 'score' was not reported (got: wall_time); stdout has no JSON object line (its last line: 'no metrics here'): print one, as {\"score\": 1.5}, or read it with experiment.metrics (file, patterns)"
            )
        }
        for trial in matching(level: 3, mode: "b") {
            #expect(trial.error?.stage == .run)
            #expect(trial.error?.message.hasPrefix("killed by signal 9") == true)
        }
        #expect(trials.filter { $0.state == .completed }.count == 6)
        #expect(outcome.best?.score == 2)
    }

    @Test func aProgramThatCannotStartFailsAtLaunch() async throws {
        let trials = try await withTestStudy(
            definition(space: gridSpace(), maxTrials: 2, command: ["no-such-program-autotune"])
        ) { study in
            _ = try await study.run()
            return try await study.trials()
        }
        #expect(trials.count == 2)
        #expect(
            trials.allSatisfy {
                $0.error?.stage == .launch && $0.error?.message.contains("no-such-program-autotune") == true
            })
    }

    @Test func aTrialPastItsDeadlineIsFailedAndItsProcessTreeIsGone() async throws {
        // The child ignores SIGTERM and leaves a grandchild that ignores it too.
        let script = """
            trap '' TERM
            sh -c "trap '' TERM; sleep 30" &
            echo $! > {trial_dir}/grandchild
            echo $$ > {trial_dir}/child
            sleep 30
            """
        try await withTestStudy(
            definition(
                space: gridSpace(),
                maxTrials: 1,
                timeouts: Timeouts(trial: .seconds(1), killGrace: .milliseconds(300)),
                command: ["/bin/sh", "-c", script]
            )
        ) { study in
            _ = try await study.run()
            let trial = try #require(try await study.trials().first)
            #expect(trial.state == .failed)
            #expect(trial.error?.stage == .timeout)
            let directory = study.trialDirectory(0)
            let child = try readPID(directory.appendingPathComponent("child"))
            let grandchild = try readPID(directory.appendingPathComponent("grandchild"))
            #expect(!processExists(child))
            #expect(!processExists(grandchild))
        }
    }

    @Test func cancelledTrialsGoBackToPendingAndResumeFinishesWithoutRepeats() async throws {
        let completions = Counter()
        // In the first run, trials after the fourth outlast the stop, so some are surely running when it comes,
        // however the host's load moves the others.
        let resumed = Counter()
        let experiment = CountingExperiment(
            inner: ScriptedExperiment(delay: { trial in
                trial.number >= 4 && resumed.values.isEmpty ? .seconds(60) : .milliseconds(50)
            }) { trial in
                .metrics(["score": trial.configuration["level"]?.numericValue ?? 0])
            },
            completions: completions
        )
        try await withTestStudy(definition(space: gridSpace(), parallel: 3)) { study in
            let outcome = try await study.run(stoppingAfter: 4, experiment: experiment)
            #expect(outcome.status == .interrupted)
            var trials = try await study.trials()
            #expect(!trials.contains { $0.state == .running })
            let pending = trials.filter { $0.state == .pending }
            #expect(!pending.isEmpty, "\(trials.map { "\($0.number) \($0.state)" })")
            #expect(trials.filter { $0.state == .completed }.count >= 4)

            #expect(try await study.stored().status == .interrupted)
            resumed.add(1)
            #expect(try await study.run(experiment: experiment).status == .completed)
            trials = try await study.trials()
            #expect(trials.count == 12)
            #expect(trials.allSatisfy { $0.state == .completed })
            #expect(Set(trials.map(\.configuration)).count == 12)
            #expect(completions.values.count == 12)
            #expect(completions.values.values.allSatisfy { $0 == 1 })
            #expect(pending.allSatisfy { p in trials.first { $0.number == p.number }?.attempt == 2 })
        }
    }

    @Test func drainingLetsRunningTrialsFinish() async throws {
        let experiment = ScriptedExperiment(delay: { _ in .milliseconds(100) }) { _ in .metrics(["score": 1]) }
        let trials = try await withTestStudy(definition(space: gridSpace(), parallel: 3)) { study in
            #expect(try await study.run(stoppingAfter: 2, mode: .drain, experiment: experiment).status == .interrupted)
            return try await study.trials()
        }
        #expect(trials.allSatisfy { $0.state == .completed })
        #expect(trials.count < 12)
    }

    @Test(arguments: [LostTrialPolicy.requeue, .fail])
    func trialsLeftRunningByADeadRunnerAreRecovered(policy: LostTrialPolicy) async throws {
        let definition = try definition(space: gridSpace(), maxTrials: 6, parallel: 2, lostTrials: policy)
        try await withTestStudy(definition) { study in
            // What a runner killed mid-trial leaves: two running trials and the checkpoint of the ask.
            var grid = try GridSearch(context: definition.strategyContext)
            let asked = try grid.ask(2, history: StudyHistory())
            let lost = asked.enumerated().map { index, configuration in
                var trial = Trial(number: index, configuration: configuration)
                trial.state = .running
                trial.attempt = 1
                return trial
            }
            try await study.store.saveLaunched(lost, studyID: study.id, checkpoint: try grid.encodedState())
            try await study.store.saveStatus(
                .running, studyID: study.id, runner: RunnerIdentity(host: "gone", pid: 1), elapsedSeconds: 0)

            let experiment = ScriptedExperiment { _ in .metrics(["score": 1]) }
            #expect(try await study.run(experiment: experiment).status == .completed)
            let trials = try await study.trials()
            #expect(trials.count == 6)
            #expect(Set(trials.map(\.configuration)).count == 6)
            for number in [0, 1] {
                let trial = try #require(trials.first { $0.number == number })
                switch policy {
                case .requeue:
                    #expect(trial.state == .completed)
                    #expect(trial.attempt == 2)
                case .fail:
                    #expect(trial.state == .failed)
                    #expect(trial.error?.stage == .lost)
                    #expect(trial.attempt == 1)
                }
            }
        }
    }

    @Test func aStrategyThatBreaksItsContractStopsTheStudyWithAClearError() async throws {
        var registry = StrategyRegistry.builtIn
        registry.register("repeats") { context, _ in RepeatingStrategy(space: context.space) }
        let definition = try definition(space: gridSpace(), strategy: "repeats", maxTrials: 4, parallel: 2)
        let experiment = ScriptedExperiment(delay: { _ in .milliseconds(50) }) { _ in .metrics(["score": 1]) }
        try await withTestStudy(definition) { study in
            let loop = try await study.loop(experiment: experiment, registry: registry)
            let error = await #expect(throws: AutotuneError.self) { try await loop.run() }
            #expect(error?.code == .strategy)
            #expect(try await study.stored().status == .interrupted)
        }
    }
}

/// Counts completed runs per trial number.
struct CountingExperiment: Experiment {
    let inner: any Experiment
    let completions: Counter

    func run(_ context: TrialContext) async throws -> ExperimentResult {
        let result = try await inner.run(context)
        completions.add(context.trial.number)
        return result
    }
}

/// Tracks concurrency and the order trials finish in.
final class TrackingExperiment: Experiment {
    let inner: any Experiment
    let counter: Counter
    private let order = Mutex<[Int]>([])

    init(inner: any Experiment, counter: Counter, finished: Counter) {
        self.inner = inner
        self.counter = counter
    }

    var finishOrder: [Int] { order.withLock { $0 } }

    func run(_ context: TrialContext) async throws -> ExperimentResult {
        counter.enter()
        defer { counter.leave() }
        let result = try await inner.run(context)
        order.withLock { $0.append(context.trial.number) }
        return result
    }
}

/// An experiment that runs `body`, which may wait.
struct AsyncExperiment: Experiment {
    let body: @Sendable (Trial) async throws -> ExperimentResult

    func run(_ context: TrialContext) async throws -> ExperimentResult { try await body(context.trial) }
}

/// An experiment that runs `body` with the whole context, which may wait.
struct AsyncContextExperiment: Experiment {
    let body: @Sendable (TrialContext) async throws -> ExperimentResult

    func run(_ context: TrialContext) async throws -> ExperimentResult { try await body(context) }
}

/// Proposes the same configuration every time: the loop must refuse it while it runs.
struct RepeatingStrategy: Strategy {
    let space: SearchSpace
    var state: Int { 0 }
    var isExhausted: Bool { false }

    mutating func ask(_ count: Int, history: StudyHistory) throws -> [Configuration] {
        Array(repeating: space.gridConfiguration(at: 0, resolution: 1), count: min(count, 1))
    }

    mutating func tell(_ trial: Trial) throws {}
}

@Suite(.timeLimit(.minutes(5))) struct ProgressTests {
    private func event(finished: Int, expected: Int?, runSeconds: Double) throws -> ProgressEvent {
        var trial = Trial(number: 4, configuration: Configuration(["level": .int(2)]))
        trial.state = .completed
        trial.score = 93.64
        return ProgressEvent(
            trial: trial,
            space: try gridSpace(),
            objective: .maximize("compress_mb_s"),
            best: BestTrial(number: 3, score: 95.1),
            finishedCount: finished,
            expectedCount: expected,
            runningCount: 2,
            completedCount: finished - 1,
            failedCount: 1,
            elapsedSeconds: 252,
            finishedThisRun: finished,
            runSeconds: runSeconds
        )
    }

    @Test func theLineNamesTheTrialTheScoreAndTheBest() throws {
        let line = try event(finished: 5, expected: 12, runSeconds: 60).line
        #expect(line == "[5/12] trial 4 ok compress_mb_s=93.64 best=95.1 (#3) · 2 running · 4m12s · 5 trials/min")
    }

    @Test func theBarFillsWithProgressAndEstimatesTheRest() throws {
        let bar = try event(finished: 6, expected: 12, runSeconds: 60).bar(width: 10)
        #expect(bar == "[#####-----] 6/12 ok 5 failed 1 running 2 · best=95.1 · 4m12s · ETA 1m00s")
        let unknown = try event(finished: 3, expected: nil, runSeconds: 60).bar(width: 4)
        #expect(unknown == "[----] 3/? ok 2 failed 1 running 2 · best=95.1 · 4m12s")
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct BayesianStudyTests {
    private func study(_ scratch: TestScratch, name: String) async throws -> TestStudy {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("n", .int(lower: 1, upper: 32, log: true)),
        ])
        var definition = definition(
            name: name, space: space, objective: .minimize("loss"), strategy: "bayesian", maxTrials: 14, parallel: 1)
        definition.strategy.options = ["candidates": .number(128), "initial_points": .number(4)]
        return try await scratch.study(definition)
    }

    private let experiment = ScriptedExperiment(delay: { _ in .milliseconds(5) }) { trial in
        let x = trial.configuration["x"]!.numericValue!
        let n = trial.configuration["n"]!.numericValue!
        return .metrics(["loss": (x - 0.3) * (x - 0.3) + abs(log2(n) - 2) / 10])
    }

    @Test func aResumedBayesianStudyProposesWhatAnUninterruptedOneWould() async throws {
        try await withTestScratch { scratch in
            let straight = try await study(scratch, name: "straight")
            _ = try await straight.run(experiment: experiment)

            let interrupted = try await study(scratch, name: "interrupted")
            #expect(try await interrupted.run(stoppingAfter: 6, experiment: experiment).status == .interrupted)
            #expect(try await interrupted.run(experiment: experiment).status == .completed)

            let a = try await straight.trials()
            let b = try await interrupted.trials()
            #expect(a.count == 14)
            #expect(b.count == 14)
            #expect(a.map(\.configuration) == b.map(\.configuration))
            #expect(a.compactMap(\.score).min()! < 0.05)
        }
    }
}
