import Autotune
import AutotuneRunner
import AutotuneTesting
import Foundation
import Logging
import Testing

/// Workers sharing one study, through the in-memory shared store: the same loop as a study run alone, with
/// trials claimed and the strategy asked and told under the study's lock.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SharedLoopTests {
    private func options(_ progress: any ProgressReporter = SilentProgress(), parallel: Int = 2) -> StudyLoop.Options {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        var options = StudyLoop.Options(
            parallel: parallel,
            trialsDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("autotune-shared-\(UUID())"),
            progress: progress, logger: logger)
        options.heartbeatInterval = .milliseconds(100)
        return options
    }

    private let experiment = ScriptedExperiment(delay: { trial in .milliseconds(10 + 7 * (trial.number % 4)) }) {
        trial in .metrics(["score": trial.configuration["level"]?.numericValue ?? 0])
    }

    @Test func threeWorkersFinishAGridWithEveryPointOnceAndProgressKnowsItsSize() async throws {
        let store = InMemoryStudyStore()
        let study = try await store.createStudy(try definition(space: gridSpace(), parallel: 2), taskSource: nil)
        let events = Collected<ProgressEvent>()
        let outcomes = try await withThrowingTaskGroup(of: StudyLoop.Outcome.self) { group in
            for _ in 0..<3 {
                let worker = try StudyLoop(
                    study: study, sharedStore: store, experiment: experiment,
                    options: options(CallbackProgress { events.append($0) }), staleAfter: .seconds(5))
                group.addTask { try await worker.run() }
            }
            var all: [StudyLoop.Outcome] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        let trials = try await store.trials(ofStudy: study.id)
        #expect(trials.count == 12)
        #expect(trials.allSatisfy { $0.state == .completed && $0.attempt == 1 })
        #expect(Set(trials.map(\.configuration)).count == 12)
        #expect(outcomes.map(\.finishedThisRun).reduce(0, +) == 12)
        #expect(try await store.study(named: "study")?.status == .completed)
        #expect(try await store.study(named: "study")?.best?.score == 3)
        // Every worker's progress counts the whole study against the grid's size.
        #expect(events.all.allSatisfy { $0.expectedCount == 12 })
        #expect(events.all.map(\.finishedCount).max() == 12)
    }

    @Test(arguments: [LostTrialPolicy.requeue, .fail])
    func aDeadWorkersTrialIsTakenBackByASurvivor(policy: LostTrialPolicy) async throws {
        let store = InMemoryStudyStore()
        let definition = try definition(space: gridSpace(), maxTrials: 6, parallel: 2, lostTrials: policy)
        let study = try await store.createStudy(definition, taskSource: nil)
        // A worker that died mid-trial: its claim stays running and its heartbeat ages.
        let dead = RunnerIdentity(host: RunnerIdentity.current.host, pid: 999_999)
        _ = try await store.propose(studyID: study.id, worker: dead, since: nil) { _ in
            var trial = Trial(
                number: 0, configuration: Configuration(["level": .int(1), "long": .bool(false), "mode": .string("a")]))
            trial.state = .running
            trial.attempt = 1
            return SharedProposal(trials: [trial], checkpoint: nil)
        }
        let survivor = try StudyLoop(
            study: study, sharedStore: store, experiment: experiment, options: options(), staleAfter: .milliseconds(300)
        )
        #expect(try await survivor.run().status == .completed)
        let trials = try await store.trials(ofStudy: study.id)
        #expect(trials.count == 6)
        let lost = try #require(trials.first { $0.number == 0 })
        switch policy {
        case .requeue:
            #expect(lost.state == .completed && lost.attempt == 2)
        case .fail:
            #expect(lost.state == .failed && lost.error?.stage == .lost)
            #expect(lost.error?.message.contains("worker 999999@") == true)
        }
    }

    @Test func aDrainedWorkerLeavesTheStudyToTheOthers() async throws {
        let store = InMemoryStudyStore()
        let study = try await store.createStudy(try definition(space: gridSpace(), parallel: 2), taskSource: nil)
        let slow = ScriptedExperiment(delay: { _ in .milliseconds(40) }) { _ in .metrics(["score": 1]) }
        let stopping = try StudyLoop(study: study, sharedStore: store, experiment: slow, options: options())
        let staying = try StudyLoop(study: study, sharedStore: store, experiment: slow, options: options())
        let (first, second) = try await withThrowingTaskGroup(of: (Int, StudyLoop.Outcome).self) { group in
            group.addTask { (0, try await stopping.run()) }
            group.addTask { (1, try await staying.run()) }
            // Drained once the study is under way: a worker drained before any trial ran anywhere is the only
            // one it knows of, and rightly leaves the study interrupted.
            while try await store.trials(ofStudy: study.id).isEmpty { try await Task.sleep(for: .milliseconds(2)) }
            stopping.requestStop(.drain)
            var results: [Int: StudyLoop.Outcome] = [:]
            for try await (index, outcome) in group { results[index] = outcome }
            return (results[0]!, results[1]!)
        }
        // The drained worker leaves without declaring the study interrupted: the other one is still at it.
        #expect([.running, .completed].contains(first.status))
        #expect(second.status == .completed)
        #expect(first.finishedThisRun + second.finishedThisRun == 12)
        #expect(try await store.trials(ofStudy: study.id).allSatisfy { $0.state == .completed })
    }
}
