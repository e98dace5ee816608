import Autotune
import Foundation

/// The part of a study's loop that depends on where the study is kept: one process with its own history over a
/// ``StudyStore`` (``LocalCoordinator``), or one of several workers that decide under the study's lock in a
/// ``SharedStudyStore`` (``SharedCoordinator``).
///
/// Both decide through a ``StudyBook`` and hold the strategy. A coordinator is an actor of its own, so asking and
/// telling the strategy (a model fit of a fifth of a second, a plug-in's reply) runs off the ``StudyLoop``'s
/// actor: the loop goes on hearing stop requests, stamping heartbeats and redrawing progress meanwhile. The loop
/// runs at most one of ``begin(elapsed:)``, ``obtain(room:elapsed:)``, ``finish(_:elapsed:)`` and
/// ``reclaim(elapsed:)`` at a time, in the order trials finished, so the same seed and the same finish order
/// give the same proposals.
protocol StudyCoordinator: Actor {
    /// The study.
    nonisolated var study: StoredStudy { get }

    /// Where the store keeps the study, which trial tokens include.
    nonisolated var storeLocation: String { get }

    /// Whether another process may produce work this one can take (re-queued trials, a strategy that changes
    /// its mind once others' trials finish): the loop then looks again after a while when it finds none.
    nonisolated var waitsForOthers: Bool { get }

    /// How often heartbeats are stamped.
    nonisolated var heartbeatInterval: Duration { get }

    /// Prepares the run: marks the study as running and recovers what a dead runner left behind.
    func begin(elapsed: Duration) async throws -> CoordinatorView

    /// Up to `room` trials to start now, already saved as running; `done` when the study can produce nothing
    /// more and nothing runs anywhere.
    func obtain(room: Int, elapsed: Duration) async throws -> (trials: [Trial], done: Bool, view: CoordinatorView)

    /// Records a trial whose experiment ended; `finished` is whether it was finished (told and saved) rather than
    /// put back to pending.
    func finish(_ trial: Trial, elapsed: Duration) async throws -> (finished: Bool, view: CoordinatorView)

    /// Stamps this run's trials as alive. Touches no strategy, so it never waits for an ask.
    nonisolated func stampHeartbeat(elapsed: Duration) async throws

    /// Takes back trials of runners that stopped stamping theirs (a shared study's), re-queueing or failing them;
    /// `nil` when there was nothing to take back.
    func reclaim(elapsed: Duration) async throws -> CoordinatorView?

    /// Records how the run ended and returns the study's status; `nil` when other workers go on with it.
    func end(done: Bool, stopped: Bool, elapsed: Duration) async throws -> StudyStatus?

    /// Records that the run failed with an error.
    func abort(elapsed: Duration) async
}

/// What the loop knows of its coordinator between calls: where the study stands, whether it should give up,
/// and the finished trials (for the nearest neighbour a capacity search starts from).
struct CoordinatorView: Sendable {
    /// Counts, best trial, expected size.
    var standing: StudyStanding
    /// Why the study should give up now rather than spend its budget failing, when it should.
    var failFastReason: String?
    /// The finished trials the coordinator knows of.
    var finishedTrials: [Trial]
}

extension StudyCoordinator {
    /// The token trial `number`'s programs carry in their environment.
    nonisolated func token(trial number: Int) -> String {
        TrialProcesses.token(storeLocation: storeLocation, study: study.definition.name, trial: number)
    }

    /// Trial `number` as a runner that takes it back from `previousRunner` sees it, its directory under
    /// `trialsDirectory`.
    nonisolated func abandoned(trial number: Int, trialsDirectory: URL, previousRunner: RunnerIdentity?)
        -> AbandonedTrial
    {
        AbandonedTrial(
            directory: StudyLoop.trialDirectory(trialsDirectory, study: study.definition.name, trial: number),
            token: token(trial: number), previousRunner: previousRunner)
    }
}

/// Where a study stands, as progress lines show it.
struct StudyStanding: Sendable {
    /// How many trials are in each state, every worker's included.
    var counts: [TrialState: Int] = [:]
    /// The best trial so far.
    var best: BestTrial?
    /// The number of trials the study will have, when known.
    var expected: Int?
}

extension StudyBook {
    /// What the loop sees of the book, with the strategy's own size when it has one; the finished trials only
    /// when `finished` (an experiment that reads its neighbour), since a view holding the book's list makes the
    /// book copy it at its next change.
    func view(strategyTotal: Int?, finished: Bool) -> CoordinatorView {
        CoordinatorView(
            standing: StudyStanding(counts: counts, best: best, expected: expectedCount(strategyTotal: strategyTotal)),
            failFastReason: failFastReason, finishedTrials: finished ? history.finished : [])
    }
}
