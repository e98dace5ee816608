public import Autotune
import AutotuneRunner
import Foundation

/// Checks that a study store keeps the contract the loop relies on, whatever keeps the data: the SQLite file,
/// a PostgreSQL server, the in-memory store, or a store of your own.
///
/// Each check creates studies of its own (unique names, so a shared server needs no cleaning) and returns the
/// problems it found, empty when the store conforms, so a test can `#expect(problems.isEmpty, "\(problems)")`
/// and see them all. ``run()`` covers ``StudyStore`` and ``ResourceLedger``; ``runShared()`` adds what
/// ``SharedStudyStore`` promises workers: claims, the study's lock, heartbeats and reclaiming.
public struct StudyStoreConformance<Store: StudyStore & ResourceLedger>: Sendable {
    private let store: Store

    /// A suite for `store`.
    public init(_ store: Store) {
        self.store = store
    }

    /// Every check of ``StudyStore`` and ``ResourceLedger``; empty when the store conforms.
    public func run() async -> [String] {
        var problems: [String] = []
        for check in [studiesRoundTrip, savesTogether, failuresAndRequeues, statusAndHeartbeat, deleting, leases] {
            do {
                problems += try await check()
            } catch {
                problems.append("a check threw: \(error)")
            }
        }
        return problems
    }

    /// The definition every check's studies have.
    public static func definition(_ name: String) -> StudyDefinition {
        StudyDefinition(
            name: name,
            space: try! SearchSpace([Parameter("x", .int(lower: 0, upper: 999))]),
            objective: .maximize("y"),
            strategy: StrategySpec(name: "random"),
            budget: Budget(maxTrials: 40),
            experiment: .command(CommandSpec(command: [Template("true")]))
        )
    }

    static func unique(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }

    static func trial(_ number: Int, _ state: TrialState = .pending) -> Trial {
        var trial = Trial(number: number, configuration: Configuration(["x": .int(number)]))
        trial.state = state
        return trial
    }

    private func studiesRoundTrip() async throws -> [String] {
        var problems: [String] = []
        let name = Self.unique("round-trip")
        let created = try await store.createStudy(Self.definition(name), taskSource: "name: \(name)")
        guard let loaded = try await store.study(named: name) else { return ["a created study is not found by name"] }
        if loaded.id != created.id || loaded.definition != Self.definition(name) {
            problems.append("a study does not read back as created")
        }
        if loaded.taskSource != "name: \(name)" { problems.append("the task source is not kept") }
        var amended = Self.definition(name)
        amended.budget = Budget(maxTrials: 80)
        try await store.saveDefinition(amended, taskSource: "name: \(name) # more", studyID: created.id)
        let reread = try await store.study(named: name)
        if reread?.definition != amended || reread?.taskSource != "name: \(name) # more" {
            problems.append("a saved definition and task source do not read back")
        }
        try await store.saveDefinition(Self.definition(name), taskSource: "name: \(name)", studyID: created.id)
        if loaded.status != .running || loaded.best != nil || loaded.checkpoint != nil {
            problems.append("a new study is not running without best or checkpoint")
        }
        do {
            _ = try await store.createStudy(Self.definition(name), taskSource: nil)
            problems.append("a second study of the same name was created")
        } catch let error as AutotuneError where error.code == .studyExists {
        } catch {
            problems.append("a taken name fails with \(error), not AutotuneError.studyExists")
        }
        if try await store.study(named: Self.unique("missing")) != nil { problems.append("an unknown name is found") }
        let later = try await store.createStudy(Self.definition(Self.unique("later")), taskSource: nil)
        let ids = try await store.studies().map(\.id)
        if let first = ids.firstIndex(of: created.id), let second = ids.firstIndex(of: later.id), first < second {
        } else {
            problems.append("studies() does not list every study oldest first")
        }
        return problems
    }

    private func savesTogether() async throws -> [String] {
        var problems: [String] = []
        let name = Self.unique("together")
        let study = try await store.createStudy(Self.definition(name), taskSource: nil)
        var trial = Self.trial(3, .running)
        trial.attempt = 1
        trial.startedAt = Date(timeIntervalSince1970: 1_000)
        try await store.saveLaunched([trial, Self.trial(5, .running)], studyID: study.id, checkpoint: Data("ask".utf8))
        if try await store.trials(ofStudy: study.id).map(\.number) != [3, 5] {
            problems.append("launched trials are not listed in number order")
        }
        if try await store.study(named: name)?.checkpoint != Data("ask".utf8) {
            problems.append("an ask's checkpoint is not saved with its trials")
        }
        trial.state = .completed
        trial.metrics = ["y": 2.5, "wall_time": 0.1]
        trial.timings = ["run": 0.1, "total": 0.2]
        trial.score = 2.5
        trial.gpus = [2, 3]
        trial.port = 30_001
        trial.host = "n2"
        trial.confirms = 1
        trial.finishedAt = Date(timeIntervalSince1970: 1_001)
        let best = BestTrial(
            number: 3, score: 2.5,
            front: [FrontPoint(number: 3, values: [2.5, 40]), FrontPoint(number: 1, values: [1.25, 12.5])])
        try await store.saveFinished(
            trial, studyID: study.id, checkpoint: Data("tell".utf8), best: best, elapsedSeconds: 12)
        let stored = try await store.study(named: name)
        if stored?.checkpoint != Data("tell".utf8) { problems.append("a tell's checkpoint is not saved") }
        if stored?.best != best { problems.append("the best and its Pareto front are not saved with the tell") }
        if stored?.elapsedSeconds != 12 { problems.append("the running time is not saved with the tell") }
        if try await store.trials(ofStudy: study.id).first != trial {
            problems.append("a finished trial does not read back field for field")
        }
        return problems
    }

    private func failuresAndRequeues() async throws -> [String] {
        var problems: [String] = []
        let study = try await store.createStudy(Self.definition(Self.unique("failures")), taskSource: nil)
        var failed = Self.trial(4, .failed)
        failed.attempt = 2
        failed.error = TrialError(stage: .run, message: "exit status 3; last output:\nboom ' \" \\ ünïcode")
        try await store.saveFinished(failed, studyID: study.id, checkpoint: nil, best: nil, elapsedSeconds: 1)
        if try await store.trials(ofStudy: study.id).first != failed {
            problems.append("a failure does not keep its state, stage, message and attempt")
        }
        var running = Self.trial(5, .running)
        running.attempt = 1
        try await store.saveLaunched([running], studyID: study.id, checkpoint: nil)
        var pending = running
        pending.returnToPending()
        try await store.saveRequeued([pending], studyID: study.id)
        let requeued = try await store.trials(ofStudy: study.id).first { $0.number == 5 }
        if requeued?.state != .pending || requeued?.attempt != 1 {
            problems.append("a re-queued trial is not pending with its attempt count")
        }
        return problems
    }

    private func statusAndHeartbeat() async throws -> [String] {
        var problems: [String] = []
        let name = Self.unique("status")
        let study = try await store.createStudy(Self.definition(name), taskSource: nil)
        let runner = RunnerIdentity(host: "h", pid: 42, started: "boot-1:4242")
        try await store.saveStatus(.interrupted, studyID: study.id, runner: runner, elapsedSeconds: 3)
        var loaded = try await store.study(named: name)
        if loaded?.status != .interrupted || loaded?.runner != runner {
            problems.append("the status and the runner (host, pid and start) are not recorded")
        }
        try await store.saveHeartbeat(studyID: study.id, elapsedSeconds: 5)
        loaded = try await store.study(named: name)
        if loaded?.elapsedSeconds != 5 { problems.append("a heartbeat does not record the running time") }
        try await store.saveStatus(.completed, studyID: study.id, runner: nil, elapsedSeconds: 6)
        loaded = try await store.study(named: name)
        if loaded?.status != .completed || loaded?.runner != nil || loaded?.elapsedSeconds != 6 {
            problems.append("a finished study does not drop its runner")
        }
        return problems
    }

    private func deleting() async throws -> [String] {
        let name = Self.unique("delete")
        let study = try await store.createStudy(Self.definition(name), taskSource: nil)
        let kept = try await store.createStudy(Self.definition(Self.unique("kept")), taskSource: nil)
        try await store.saveLaunched([Self.trial(0, .running)], studyID: study.id, checkpoint: Data("c".utf8))
        try await store.saveLaunched([Self.trial(0, .running)], studyID: kept.id, checkpoint: nil)
        try await store.deleteStudy(study.id)
        var problems: [String] = []
        if try await store.study(named: name) != nil { problems.append("a deleted study is still found") }
        if try await !store.trials(ofStudy: study.id).isEmpty { problems.append("a deleted study's trials remain") }
        if try await store.trials(ofStudy: kept.id).count != 1 { problems.append("deleting one study touched another") }
        return problems
    }

    private func leases() async throws -> [String] {
        var problems: [String] = []
        let study = Self.unique("leases")
        let a = LeaseHolder(host: "\(study)-a", pid: 10, study: study, trial: 0, started: "boot-1:10")
        let b = LeaseHolder(host: "\(study)-b", pid: 10, study: study, trial: 1)
        let c = LeaseHolder(host: "\(study)-a", pid: 11, study: study, trial: 2)
        let alive: @Sendable (LeaseHolder) -> Bool = { _ in true }
        if try await store.leaseGPUs(2, among: [2, 0, 1], holder: a, isAlive: alive) != [0, 1] {
            problems.append("GPUs are not leased lowest index first")
        }
        if try await store.leaseGPUs(2, among: [0, 1], holder: b, isAlive: alive) != [0, 1] {
            problems.append("another machine's GPUs are taken for this one's")
        }
        if try await store.leaseGPUs(2, among: [0, 1, 2], holder: c, isAlive: alive) != nil {
            problems.append("a leased GPU was handed out twice")
        }
        if try await store.reservePort(in: 40_000...40_002, holder: a, isAlive: alive, isBindable: { $0 != 40_000 })
            != 40_001
        {
            problems.append("a port is not the lowest free bindable one")
        }
        if try await store.reservePort(in: 40_001...40_001, holder: c, isAlive: alive, isBindable: { _ in true }) != nil
        {
            problems.append("a reserved port was handed out twice")
        }
        let held = try await store.leases(host: a.host)
        if Set(held.map(\.resource)) != [.gpu(0), .gpu(1), .port(40_001)] || !held.allSatisfy({ $0.holder == a }) {
            problems.append("leases(host:) does not list what the host's holders hold")
        }
        // Whether a holder lives is judged on its pid and its start together: a later process given the pid is
        // not it. So the start the holder leased with is what the check is shown.
        if try await store.leaseGPUs(2, among: [0, 1], holder: c, isAlive: { $0.started == a.started }) != nil {
            problems.append("a holder's start is not kept with its leases")
        }
        // A holder whose process is gone loses its leases to the next request.
        if try await store.leaseGPUs(2, among: [0, 1], holder: c, isAlive: { $0.pid != 10 }) != [0, 1] {
            problems.append("a dead holder's GPUs are not taken back")
        }
        try await store.release(c)
        try await store.release(a)
        try await store.release(b)
        let left = try await store.leases(host: a.host) + store.leases(host: b.host)
        if !left.isEmpty {
            problems.append("released leases are still listed")
        }
        return problems
    }
}

extension StudyStoreConformance where Store: SharedStudyStore {
    /// Every check, with those of ``SharedStudyStore``; empty when the store conforms.
    public func runShared() async -> [String] {
        var problems = await run()
        for check in [claims, proposals, finishing, reclaiming] {
            do {
                problems += try await check()
            } catch {
                problems.append("a check threw: \(error)")
            }
        }
        return problems
    }

    /// Six workers claiming at once from 40 pending trials: every trial is claimed exactly once.
    private func claims() async throws -> [String] {
        let study = try await store.createStudy(Self.definition(Self.unique("claims")), taskSource: nil)
        try await store.saveLaunched((0..<40).map { Self.trial($0) }, studyID: study.id, checkpoint: nil)
        let store = self.store
        let claimed = try await withThrowingTaskGroup(of: [Trial].self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var mine: [Trial] = []
                    let identity = RunnerIdentity(host: "host\(worker)", pid: Int32(1000 + worker))
                    while let trial = try await store.claimPending(studyID: study.id, worker: identity) {
                        mine.append(trial)
                    }
                    return mine
                }
            }
            var all: [Trial] = []
            for try await mine in group { all += mine }
            return all
        }
        var problems: [String] = []
        if claimed.map(\.number).sorted() != Array(0..<40) {
            problems.append("concurrent claims did not hand out each pending trial exactly once")
        }
        if !claimed.allSatisfy({ $0.state == .running && $0.attempt == 1 }) {
            problems.append("a claimed trial is not running at attempt 1")
        }
        if try await !store.trials(ofStudy: study.id).allSatisfy({ $0.state == .running }) {
            problems.append("claimed trials are not saved as running")
        }
        return problems
    }

    /// Proposals run one at a time under the study's lock: each sees the others' trials and the latest
    /// checkpoint version, so four concurrent ones number 12 trials without a clash.
    private func proposals() async throws -> [String] {
        let name = Self.unique("propose")
        let study = try await store.createStudy(Self.definition(name), taskSource: nil)
        let store = self.store
        let versions = try await withThrowingTaskGroup(of: Int64.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var seen: Int64 = -1
                    _ = try await store.propose(
                        studyID: study.id, worker: RunnerIdentity(host: "h", pid: Int32(worker)), since: nil
                    ) {
                        state in
                        seen = state.version
                        let next = (state.changes.map(\.number).max() ?? -1) + 1
                        let trials = (next..<next + 3).map { Self.trial($0, .running) }
                        return SharedProposal(trials: trials, checkpoint: Data("v\(state.version + 1)".utf8))
                    }
                    return seen
                }
            }
            var all: [Int64] = []
            for try await version in group { all.append(version) }
            return all
        }
        var problems: [String] = []
        let trials = try await store.trials(ofStudy: study.id)
        if trials.map(\.number) != Array(0..<12) || !trials.allSatisfy({ $0.state == .running }) {
            problems.append("concurrent proposals did not see each other's trials")
        }
        if versions.sorted() != [0, 1, 2, 3] {
            problems.append("proposals did not see the checkpoint's versions in turn")
        }
        if try await store.study(named: name)?.checkpoint != Data("v4".utf8) {
            problems.append("the last proposal's checkpoint is not the study's")
        }
        return problems
    }

    /// A tell under the lock sees the trials that changed since the sequence it gives (only those), and saves the
    /// trial, checkpoint and best.
    private func finishing() async throws -> [String] {
        let name = Self.unique("finish")
        let study = try await store.createStudy(Self.definition(name), taskSource: nil)
        let worker = RunnerIdentity(host: "h", pid: 1)
        _ = try await store.propose(studyID: study.id, worker: worker, since: nil) { _ in
            SharedProposal(trials: [Self.trial(0, .running), Self.trial(1, .running)], checkpoint: Data("a".utf8))
        }
        var problems: [String] = []
        // Where the study stands after the proposal: both trials are changes since the start.
        var sequence: Int64 = 0
        _ = try await store.propose(studyID: study.id, worker: worker, since: nil) { state in
            sequence = state.sequence
            if state.changes.map(\.number) != [0, 1] {
                problems.append("a read since the start saw trials \(state.changes.map(\.number)), not 0 and 1")
            }
            return SharedProposal(trials: [], checkpoint: nil)
        }
        // Another worker puts trial 1 back: a read since `sequence` sees it, and only it.
        try await store.saveRequeued([Self.trial(1, .pending)], studyID: study.id)
        var trial = Self.trial(0, .completed)
        trial.score = 4
        var changed: [Trial] = []
        try await store.finish(trial, studyID: study.id, elapsedSeconds: 2, since: sequence) { state in
            changed = state.changes
            return SharedVerdict(checkpoint: Data("b".utf8), best: BestTrial(number: 0, score: 4))
        }
        if changed.map(\.number) != [1] || changed.first?.state != .pending {
            problems.append(
                "a read since the last one saw \(changed.map { "\($0.number) \($0.state.rawValue)" }), not trial 1 pending"
            )
        }
        let stored = try await store.study(named: name)
        if stored?.checkpoint != Data("b".utf8) || stored?.best != BestTrial(number: 0, score: 4) {
            problems.append("a tell under the lock did not save its checkpoint and best")
        }
        if try await store.trials(ofStudy: study.id).first?.state != .completed {
            problems.append("a tell under the lock did not save the trial")
        }
        return problems
    }

    /// A trial whose heartbeat is stale is cleaned up while still running (nobody can claim it meanwhile) and
    /// handed to the reclaiming worker; a trial whose worker keeps stamping it is left alone.
    private func reclaiming() async throws -> [String] {
        let study = try await store.createStudy(Self.definition(Self.unique("stale")), taskSource: nil)
        let dead = RunnerIdentity(host: "gone", pid: 1)
        let alive = RunnerIdentity(host: "here", pid: 2)
        try await store.saveLaunched([Self.trial(0), Self.trial(1)], studyID: study.id, checkpoint: nil)
        guard let first = try await store.claimPending(studyID: study.id, worker: dead),
            let second = try await store.claimPending(studyID: study.id, worker: alive)
        else { return ["pending trials could not be claimed"] }
        // The dead worker's stamp is two seconds old when the live one stamps again; the reclaim takes back what
        // is a second old, so the live trial survives whatever the host delays the reclaim by, up to a second.
        try await Task.sleep(for: .seconds(2))
        try await store.heartbeat(studyID: study.id, worker: alive, elapsedSeconds: 1)
        let cleaned = Locked<[Int]>([])
        let store = self.store
        let reclaimed = try await store.reclaimStale(studyID: study.id, olderThan: .seconds(1), worker: alive) {
            taken in
            // Still running: another worker cannot claim it while what the dead one left is ended.
            let intruder = try? await store.claimPending(studyID: study.id, worker: RunnerIdentity(host: "x", pid: 3))
            if intruder != nil { cleaned.withLock { $0.append(-1) } }
            cleaned.withLock { $0.append(taken.trial.number) }
        }
        var problems: [String] = []
        if reclaimed.map(\ReclaimedTrial.trial.number) != [first.number] || reclaimed.first?.previousWorker != dead {
            problems.append("the stale trial was not reclaimed from its dead worker (got \(reclaimed))")
        }
        if cleaned.withLock({ $0 }) != [first.number] { problems.append("the clean-up did not run once, unclaimable") }
        let trials = try await store.trials(ofStudy: study.id)
        if trials.first(where: { $0.number == first.number })?.state != .running {
            problems.append("a reclaimed trial is not left running for the reclaiming worker")
        }
        if trials.first(where: { $0.number == second.number })?.state != .running {
            problems.append("a live worker's trial was disturbed")
        }
        if try await !store.reclaimStale(studyID: study.id, olderThan: .seconds(1), worker: alive, cleanUp: { _ in })
            .isEmpty
        {
            problems.append("a just reclaimed trial was reclaimed again")
        }
        return problems
    }
}
