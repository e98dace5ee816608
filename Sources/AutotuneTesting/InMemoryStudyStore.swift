public import Autotune
public import Foundation
import Synchronization

/// A ``SharedStudyStore`` (and so a ``StudyStore`` and a ``ResourceLedger``) in memory, for tests of the loop,
/// of workers and of code built on Autotune: no file, no server, and it passes ``StudyStoreConformance``.
///
/// The study's lock is a mutex held while a proposal or a tell decides, so concurrent workers in one process
/// serialise exactly as they do over PostgreSQL. Heartbeats use the process's clock.
public final class InMemoryStudyStore: SharedStudyStore {
    private struct StoredTrial {
        var trial: Trial
        var worker: RunnerIdentity?
        var heartbeat: ContinuousClock.Instant
        /// The study's change number when the trial was last written.
        var change: Int64 = 0
    }

    private struct State {
        var studies: [Int64: StoredStudy] = [:]
        var versions: [Int64: Int64] = [:]
        /// Each study's latest change number.
        var changes: [Int64: Int64] = [:]
        var trials: [Int64: [Int: StoredTrial]] = [:]
        var leases: [ResourceLease] = []
        var nextID: Int64 = 1
    }

    private let state = Mutex(State())
    /// The studies' lock, held across a decision that may wait (a plug-in strategy's reply).
    private let studyLock = AsyncLock()

    /// A name of its own, so two in-memory stores' studies are told apart.
    public let location = "memory:\(UUID().uuidString)"

    /// An empty store.
    public init() {}

    // MARK: - StudyStore

    /// Creates a study; fails with ``AutotuneError`` if the name is taken.
    public func createStudy(_ definition: StudyDefinition, taskSource: String?) async throws -> StoredStudy {
        try state.withLock { state in
            guard !state.studies.values.contains(where: { $0.definition.name == definition.name }) else {
                throw AutotuneError.studyExists(definition.name)
            }
            let study = StoredStudy(
                id: state.nextID, definition: definition, taskSource: taskSource, status: .running, checkpoint: nil,
                best: nil, elapsedSeconds: 0, runner: nil, createdAt: Date())
            state.nextID += 1
            state.studies[study.id] = study
            state.versions[study.id] = 0
            state.trials[study.id] = [:]
            return study
        }
    }

    /// The study called `name`, or `nil`.
    public func study(named name: String) async throws -> StoredStudy? {
        state.withLock { $0.studies.values.first { $0.definition.name == name } }
    }

    /// Every study, oldest first.
    public func studies() async throws -> [StoredStudy] {
        state.withLock { $0.studies.values.sorted { $0.id < $1.id } }
    }

    /// The study's trials in number order.
    public func trials(ofStudy studyID: Int64) async throws -> [Trial] {
        state.withLock { Self.trials(studyID, in: $0) }
    }

    /// Saves starting trials and the ask's checkpoint.
    public func saveLaunched(_ trials: [Trial], studyID: Int64, checkpoint: Data?) async throws {
        try state.withLock { state in
            try Self.save(trials, studyID: studyID, worker: nil, in: &state)
            if let checkpoint { try Self.saveCheckpoint(checkpoint, studyID: studyID, in: &state) }
        }
    }

    /// Saves a finished trial with its checkpoint, the best and the running time.
    public func saveFinished(
        _ trial: Trial, studyID: Int64, checkpoint: Data?, best: BestTrial?, elapsedSeconds: Double
    )
        async throws
    {
        try state.withLock { state in
            try Self.finish(
                trial, studyID: studyID, checkpoint: checkpoint, best: best, elapsed: elapsedSeconds, in: &state)
        }
    }

    /// Puts trials back to pending, unclaimed.
    public func saveRequeued(_ trials: [Trial], studyID: Int64) async throws {
        try state.withLock { state in try Self.save(trials, studyID: studyID, worker: nil, in: &state) }
    }

    /// Replaces the study's definition and task file text.
    public func saveDefinition(_ definition: StudyDefinition, taskSource: String?, studyID: Int64) async throws {
        try state.withLock { state in
            try Self.update(studyID, in: &state) { study in
                study.definition = definition
                study.taskSource = taskSource
            }
        }
    }

    /// Stamps the study's running trials and its running time.
    public func saveHeartbeat(studyID: Int64, elapsedSeconds: Double) async throws {
        try stamp(studyID: studyID, worker: nil, elapsed: elapsedSeconds, raiseOnly: false)
    }

    /// Deletes the study and its trials.
    public func deleteStudy(_ studyID: Int64) async throws {
        state.withLock { state in
            state.studies[studyID] = nil
            state.trials[studyID] = nil
            state.versions[studyID] = nil
        }
    }

    /// Records the status, the runner and the running time.
    public func saveStatus(_ status: StudyStatus, studyID: Int64, runner: RunnerIdentity?, elapsedSeconds: Double)
        async throws
    {
        try state.withLock { state in
            try Self.update(studyID, in: &state) { study in
                study.status = status
                study.runner = runner
                study.elapsedSeconds = elapsedSeconds
            }
        }
    }

    // MARK: - SharedStudyStore

    /// Claims the lowest pending trial.
    public func claimPending(studyID: Int64, worker: RunnerIdentity) async throws -> Trial? {
        state.withLock { state in
            guard
                var stored = state.trials[studyID]?.values.filter({ $0.trial.state == .pending })
                    .min(by: { $0.trial.number < $1.trial.number })
            else { return nil }
            stored.trial.state = .running
            stored.trial.attempt += 1
            stored.trial.startedAt = Date()
            stored.trial.finishedAt = nil
            stored.trial.error = nil
            stored.worker = worker
            stored.heartbeat = .now
            stored.change = Self.nextChange(studyID, in: &state)
            state.trials[studyID]?[stored.trial.number] = stored
            return stored.trial
        }
    }

    /// Runs `decide` under the study's lock and saves its trials as claimed by `worker`.
    public func propose(
        studyID: Int64,
        worker: RunnerIdentity,
        since: Int64?,
        _ decide: (SharedStudyState) async throws -> SharedProposal
    ) async throws -> SharedProposal {
        try await studyLock.withLock {
            let locked = try state.withLock { try Self.lockedState(studyID, since: since, in: $0) }
            let proposal = try await decide(locked)
            try state.withLock { state in
                try Self.save(proposal.trials, studyID: studyID, worker: worker, in: &state)
                if let checkpoint = proposal.checkpoint {
                    try Self.saveCheckpoint(checkpoint, studyID: studyID, in: &state)
                }
            }
            return proposal
        }
    }

    /// Runs `decide` under the study's lock and saves the finished trial with its verdict.
    public func finish(
        _ trial: Trial,
        studyID: Int64,
        elapsedSeconds: Double,
        since: Int64?,
        _ decide: (SharedStudyState) async throws -> SharedVerdict
    ) async throws {
        try await studyLock.withLock {
            let locked = try state.withLock { try Self.lockedState(studyID, since: since, in: $0) }
            let verdict = try await decide(locked)
            try state.withLock { state in
                try Self.finish(
                    trial, studyID: studyID, checkpoint: verdict.checkpoint, best: verdict.best,
                    elapsed: elapsedSeconds, in: &state, raiseOnly: true)
            }
        }
    }

    /// Stamps `worker`'s running trials and raises the running time.
    public func heartbeat(studyID: Int64, worker: RunnerIdentity, elapsedSeconds: Double) async throws {
        try stamp(studyID: studyID, worker: worker, elapsed: elapsedSeconds, raiseOnly: true)
    }

    /// Claims stale running trials for `worker`, cleaning each up before anyone else can take it.
    public func reclaimStale(
        studyID: Int64,
        olderThan age: Duration,
        worker: RunnerIdentity,
        cleanUp: (ReclaimedTrial) async -> Void
    ) async throws -> [ReclaimedTrial] {
        let taken = state.withLock { state -> [ReclaimedTrial] in
            let now = ContinuousClock.now
            let name = state.studies[studyID]?.definition.name
            var taken: [ReclaimedTrial] = []
            for (number, stored) in state.trials[studyID] ?? [:]
            where stored.trial.state == .running && now - stored.heartbeat > age {
                taken.append(ReclaimedTrial(trial: stored.trial, previousWorker: stored.worker))
                state.trials[studyID]?[number]?.worker = worker
                state.trials[studyID]?[number]?.heartbeat = now
                state.leases.removeAll { $0.holder.study == name && $0.holder.trial == number }
            }
            return taken.sorted { $0.trial.number < $1.trial.number }
        }
        for trial in taken { await cleanUp(trial) }
        return taken
    }

    // MARK: - ResourceLedger

    /// Leases the lowest free GPUs among `candidates` on the holder's host.
    public func leaseGPUs(
        _ count: Int,
        among candidates: [Int],
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool
    ) async throws -> [Int]? {
        state.withLock { state in
            let held = Self.liveHolds(gpu: true, host: holder.host, isAlive: isAlive, in: &state)
            guard let chosen = LeaseChoice.gpus(count, among: candidates, held: held) else { return nil }
            state.leases += chosen.map { ResourceLease(resource: .gpu($0), holder: holder) }
            return chosen
        }
    }

    /// Reserves the lowest free bindable port of `range` on the holder's host.
    public func reservePort(
        in range: ClosedRange<Int>,
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool,
        isBindable: @escaping @Sendable (Int) -> Bool
    ) async throws -> Int? {
        state.withLock { state in
            let held = Self.liveHolds(gpu: false, host: holder.host, isAlive: isAlive, in: &state)
            guard let port = LeaseChoice.port(in: range, held: held, isBindable: isBindable) else { return nil }
            state.leases.append(ResourceLease(resource: .port(port), holder: holder))
            return port
        }
    }

    /// Releases the holder's trial's GPUs and port.
    public func release(_ holder: LeaseHolder) async throws {
        state.withLock { state in
            state.leases.removeAll {
                $0.holder.host == holder.host && $0.holder.study == holder.study && $0.holder.trial == holder.trial
            }
        }
    }

    /// The leases on `host`.
    public func leases(host: String) async throws -> [ResourceLease] {
        state.withLock { $0.leases.filter { $0.holder.host == host } }
    }

    // MARK: - State

    private func stamp(studyID: Int64, worker: RunnerIdentity?, elapsed: Double, raiseOnly: Bool) throws {
        try state.withLock { state in
            for (number, stored) in state.trials[studyID] ?? [:]
            where stored.trial.state == .running && (worker == nil || stored.worker == worker) {
                state.trials[studyID]?[number]?.heartbeat = .now
            }
            try Self.update(studyID, in: &state) { study in
                study.elapsedSeconds = raiseOnly ? max(study.elapsedSeconds, elapsed) : elapsed
                study.updatedAt = Date()
            }
        }
    }

    private static func trials(_ studyID: Int64, in state: State) -> [Trial] {
        (state.trials[studyID] ?? [:]).values.map(\.trial).sorted { $0.number < $1.number }
    }

    private static func lockedState(_ studyID: Int64, since: Int64?, in state: State) throws -> SharedStudyState {
        guard let study = state.studies[studyID] else { throw AutotuneError(.corrupt, "study \(studyID) is gone") }
        let after = since ?? -1
        return SharedStudyState(
            checkpoint: study.checkpoint,
            version: state.versions[studyID] ?? 0,
            changes: (state.trials[studyID] ?? [:]).values.filter { $0.change > after }.map(\.trial)
                .sorted { $0.number < $1.number },
            sequence: state.changes[studyID] ?? 0,
            best: study.best
        )
    }

    private static func nextChange(_ studyID: Int64, in state: inout State) -> Int64 {
        state.changes[studyID, default: 0] += 1
        return state.changes[studyID]!
    }

    private static func save(_ trials: [Trial], studyID: Int64, worker: RunnerIdentity?, in state: inout State) throws {
        guard state.studies[studyID] != nil else { throw AutotuneError(.corrupt, "study \(studyID) is gone") }
        for trial in trials {
            let change = nextChange(studyID, in: &state)
            state.trials[studyID]?[trial.number] = StoredTrial(
                trial: trial, worker: worker, heartbeat: .now, change: change)
        }
    }

    private static func saveCheckpoint(_ checkpoint: Data, studyID: Int64, in state: inout State) throws {
        try update(studyID, in: &state) { $0.checkpoint = checkpoint }
        state.versions[studyID, default: 0] += 1
    }

    private static func finish(
        _ trial: Trial, studyID: Int64, checkpoint: Data?, best: BestTrial?, elapsed: Double, in state: inout State,
        raiseOnly: Bool = false
    ) throws {
        try save([trial], studyID: studyID, worker: nil, in: &state)
        if let checkpoint { try saveCheckpoint(checkpoint, studyID: studyID, in: &state) }
        try update(studyID, in: &state) { study in
            study.best = best
            study.elapsedSeconds = raiseOnly ? max(study.elapsedSeconds, elapsed) : elapsed
        }
    }

    private static func update(_ studyID: Int64, in state: inout State, _ change: (inout StoredStudy) -> Void) throws {
        guard var study = state.studies[studyID] else { throw AutotuneError(.corrupt, "study \(studyID) is gone") }
        change(&study)
        study.updatedAt = Date()
        state.studies[studyID] = study
    }

    /// What is held on `host` of one kind, after dropping the leases of this host's processes that are gone.
    private static func liveHolds(gpu: Bool, host: String, isAlive: (LeaseHolder) -> Bool, in state: inout State)
        -> Set<Int>
    {
        state.leases.removeAll { $0.holder.host == host && !isAlive($0.holder) }
        return Set(
            state.leases.compactMap { lease in
                guard lease.holder.host == host else { return nil }
                switch lease.resource {
                case .gpu(let index): return gpu ? index : nil
                case .port(let port): return gpu ? nil : port
                }
            })
    }
}

/// A lock that may be held across suspension points, taken in the order it was asked for.
final class AsyncLock: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Runs `body` holding the lock.
    func withLock<T>(_ body: () async throws -> T) async throws -> T {
        await withCheckedContinuation { continuation in
            let acquired = state.withLock { state in
                if state.held {
                    state.waiters.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if acquired { continuation.resume() }
        }
        defer {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard !state.waiters.isEmpty else {
                    state.held = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
