import Autotune
import AutotuneStorePostgres
import Foundation
import Synchronization
import Testing

/// The PostgreSQL store against a real server: `AUTOTUNE_TEST_POSTGRES` (scripts/test-cluster starts one; CI
/// does). Each test makes studies of its own names, so runs do not see each other.
private let url = ProcessInfo.processInfo.environment["AUTOTUNE_TEST_POSTGRES"]
private let inCI = ProcessInfo.processInfo.environment["CI"] == "true"

private func definition(_ name: String) throws -> StudyDefinition {
    StudyDefinition(
        name: name,
        space: try SearchSpace([Parameter("x", .int(lower: 0, upper: 999))]),
        objective: .maximize("y"),
        strategy: StrategySpec(name: "random"),
        budget: Budget(maxTrials: 40),
        experiment: .command(CommandSpec(command: [Template("true")]))
    )
}

/// A list child tasks append to.
private final class Collected<Element: Sendable>: Sendable {
    private let values = Mutex<[Element]>([])
    func append(_ value: Element) { values.withLock { $0.append(value) } }
    var all: [Element] { values.withLock { $0 } }
}

private func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }

@Suite(
    .enabled(
        if: url != nil || inCI,
        "AUTOTUNE_TEST_POSTGRES is not set: run `eval \"$(scripts/test-cluster start)\"` as root first (CI does)"))
struct PostgresStudyStoreTests {
    private func open() async throws -> PostgresStudyStore {
        try await PostgresStudyStore(url: try #require(url, "CI must start PostgreSQL first (scripts/test-cluster)"))
    }

    @Test func studiesAndTrialsRoundTrip() async throws {
        let store = try await open()
        defer { store.close() }
        let name = uniqueName("round-trip")
        let created = try await store.createStudy(try definition(name), taskSource: "name: x")
        await #expect(throws: StoreError.studyExists(name)) {
            _ = try await store.createStudy(try definition(name), taskSource: nil)
        }
        var trial = Trial(number: 0, configuration: Configuration(["x": .int(7)]))
        trial.state = .completed
        trial.metrics = ["y": 3.5]
        trial.score = 3.5
        trial.gpus = [2, 3]
        trial.host = "n2"
        trial.attempt = 1
        trial.error = nil
        try await store.saveFinished(
            trial, studyID: created.id, checkpoint: Data([1, 2, 3]), best: BestTrial(number: 0, score: 3.5),
            elapsedSeconds: 12)
        let loaded = try #require(try await store.study(named: name))
        #expect(loaded.definition == created.definition)
        #expect(loaded.taskSource == "name: x")
        #expect(loaded.checkpoint == Data([1, 2, 3]))
        #expect(loaded.best == BestTrial(number: 0, score: 3.5))
        #expect(loaded.elapsedSeconds == 12)
        let trials = try await store.trials(ofStudy: created.id)
        #expect(trials.count == 1)
        #expect(trials[0].configuration == trial.configuration)
        #expect(trials[0].metrics == ["y": 3.5] && trials[0].gpus == [2, 3] && trials[0].host == "n2")
    }

    /// Six workers claiming at once from 40 pending trials: every trial is claimed exactly once.
    @Test func concurrentClaimsNeverHandOutATrialTwice() async throws {
        let store = try await open()
        defer { store.close() }
        let study = try await store.createStudy(try definition(uniqueName("claims")), taskSource: nil)
        let pending = (0..<40).map { Trial(number: $0, configuration: Configuration(["x": .int($0)])) }
        try await store.saveLaunched(pending, studyID: study.id, checkpoint: nil)
        let claimed = try await withThrowingTaskGroup(of: [Int].self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var mine: [Int] = []
                    let identity = RunnerIdentity(host: "host\(worker)", pid: Int32(1000 + worker))
                    while let trial = try await store.claimPending(studyID: study.id, worker: identity) {
                        #expect(trial.state == .running && trial.attempt == 1)
                        mine.append(trial.number)
                    }
                    return mine
                }
            }
            var all: [Int] = []
            for try await mine in group { all += mine }
            return all
        }
        #expect(claimed.sorted() == Array(0..<40))
        #expect(try await store.trials(ofStudy: study.id).allSatisfy { $0.state == .running })
    }

    /// Proposals run one at a time under the study's lock: each sees the others' trials and the latest
    /// checkpoint version, so four concurrent ones number 12 trials without a clash.
    @Test func proposalsAreSerialisedThroughTheStudysLock() async throws {
        let store = try await open()
        defer { store.close() }
        let study = try await store.createStudy(try definition(uniqueName("propose")), taskSource: nil)
        let versions = Collected<Int64>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    let identity = RunnerIdentity(host: "host", pid: Int32(worker))
                    _ = try await store.propose(studyID: study.id, worker: identity) { state in
                        versions.append(state.version)
                        let next = (state.trials.map(\.number).max() ?? -1) + 1
                        let trials = (next..<next + 3).map {
                            Trial(number: $0, configuration: Configuration(["x": .int($0)]))
                        }
                        return SharedProposal(
                            trials: trials, checkpoint: Data("v\(state.version + 1)".utf8), exhausted: false,
                            unfinished: state.trials.count)
                    }
                }
            }
            try await group.waitForAll()
        }
        let trials = try await store.trials(ofStudy: study.id)
        #expect(trials.map(\.number) == Array(0..<12))
        #expect(trials.allSatisfy { $0.state == .running })
        #expect(versions.all.sorted() == [0, 1, 2, 3])
        #expect(try await store.study(named: study.definition.name)?.checkpoint == Data("v4".utf8))
    }

    /// A trial whose heartbeat is stale is cleaned up while still running (nobody can claim it yet), then
    /// re-queued; a trial whose worker keeps stamping it is left alone.
    @Test func staleTrialsAreReclaimedAndLiveOnesAreNot() async throws {
        let store = try await open()
        defer { store.close() }
        let study = try await store.createStudy(try definition(uniqueName("stale")), taskSource: nil)
        let dead = RunnerIdentity(host: "gone", pid: 1)
        let alive = RunnerIdentity(host: "here", pid: 2)
        try await store.saveLaunched(
            (0..<2).map { Trial(number: $0, configuration: Configuration(["x": .int($0)])) }, studyID: study.id,
            checkpoint: nil)
        let first = try #require(try await store.claimPending(studyID: study.id, worker: dead))
        let second = try #require(try await store.claimPending(studyID: study.id, worker: alive))
        try await Task.sleep(for: .milliseconds(1500))
        try await store.heartbeat(studyID: study.id, worker: alive, elapsedSeconds: 1)
        let cleaned = Collected<Int>()
        let reclaimed = try await store.reclaimStale(studyID: study.id, olderThan: 1, policy: .requeue, worker: alive) {
            record in
            cleaned.append(record.trial.number)
        }
        #expect(reclaimed.map(\.trial.number) == [first.number])
        #expect(reclaimed.first?.previousWorker == dead)
        #expect(cleaned.all == [first.number])
        let trials = try await store.trials(ofStudy: study.id)
        #expect(trials.first { $0.number == first.number }?.state == .pending)
        #expect(trials.first { $0.number == second.number }?.state == .running)
        // Claimed again, it is a second attempt.
        #expect(try await store.claimPending(studyID: study.id, worker: alive)?.attempt == 2)
    }

    @Test func gpuLeasesAreKeptPerHost() async throws {
        let store = try await open()
        defer { store.close() }
        let study = uniqueName("leases")
        let a = LeaseHolder(host: "\(study)-a", pid: getpid(), study: study, trial: 0)
        let b = LeaseHolder(host: "\(study)-b", pid: getpid(), study: study, trial: 1)
        let c = LeaseHolder(host: "\(study)-a", pid: getpid(), study: study, trial: 2)
        #expect(try await store.leaseGPUs(2, among: [0, 1, 2], holder: a, isAlive: { _ in true }) == [0, 1])
        // Another machine's GPU 0 is another GPU.
        #expect(try await store.leaseGPUs(2, among: [0, 1], holder: b, isAlive: { _ in true }) == [0, 1])
        #expect(try await store.leaseGPUs(2, among: [0, 1, 2], holder: c, isAlive: { _ in true }) == nil)
        try await store.release(a)
        #expect(try await store.leaseGPUs(2, among: [0, 1, 2], holder: c, isAlive: { _ in true }) == [0, 1])
        try await store.release(b)
        try await store.release(c)
        #expect(try await store.leases(host: a.host).isEmpty)
    }

    @Test func aBadURLSaysWhatIsWrong() async throws {
        await #expect(throws: (any Error).self) { _ = try await PostgresStudyStore(url: "mysql://x@y/z") }
        do {
            _ = try await PostgresStudyStore(url: "postgres://autotune@127.0.0.1:1/none", connectTimeout: .seconds(2))
            Issue.record("connected to a port nobody listens on")
        } catch {
            #expect("\(error)".contains("127.0.0.1:1"), "\(error)")
        }
    }
}
